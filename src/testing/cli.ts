// Test helper (Node only): runs `npm run cli -- …` (src/cli/main.ts through tsx) as a child process and
// collects what it prints: stdout, its JSON lines parsed, stderr and the exit code. `killWhen` kills it at
// the first stdout line it accepts (a run interrupted right after a checkpoint).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './models';

export interface CliRun {
  stdout: string;
  /** stdout's JSON lines, parsed (other lines are left out). */
  lines: Record<string, unknown>[];
  stderr: string;
  code: number | null;
}

export function runCli(args: string[], killWhen?: (line: string) => boolean): Promise<CliRun> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], { cwd: REPO_ROOT });
    const lines: Record<string, unknown>[] = [];
    let stdout = '';
    let buf = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      const text = d.toString();
      stdout += text;
      buf += text;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!l.trim()) continue;
        if (l.trimStart().startsWith('{')) lines.push(JSON.parse(l) as Record<string, unknown>);
        if (killWhen?.(l)) p.kill('SIGKILL');
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => res({ stdout, lines, stderr, code }));
  });
}
