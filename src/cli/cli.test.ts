// The CLI runs the same engine in Node: check its JSON against the engine run in this process (on the
// bundled tabtune-tiny) and against the reference model's golden outputs (where ../shared has it), a URL
// source served on localhost, and its error behaviour (stderr + non-zero exit).
import { execFile } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAIN_FORMAT, plainPromptText } from '../data/encode';
import { tabtuneJson } from '../io/export';
import { directorySource } from '../node/fs-source';
import { writeFolder } from '../node/hf-write';
import { exportPeftAdapter } from '../io/peft';
import { setupBackend } from '../model/backend';
import { generate, meanNLL, type GenerateResult } from '../model/generate';
import { loadModel } from '../io/load-model';
import { BUNDLED_BOS, BUNDLED_EOS, TINY_DIR } from '../testing/models';
import { describeReference, ensureReferenceHF, loadGolden, type Golden } from '../testing/reference';
import { trainStopAdapter } from '../testing/stop-adapter';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../..');

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return { stdout: err.stdout, stderr: err.stderr, code: err.code };
  }
}

describe('npm run cli (tabtune-tiny)', () => {
  const dir = TINY_DIR;
  let server: Server;
  let base: string;
  /** What the engine computes in this process, on the CLI's default backend (wasm). */
  let engine: { logits: number[][]; greedy: GenerateResult; promptIds: number[]; nll: number; text: string };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const file = join(dir, decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\/model\//, '')));
      if (!req.url?.startsWith('/model/') || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address() as { port: number };
    base = `http://127.0.0.1:${addr.port}/model`;

    await setupBackend('wasm');
    const m = await loadModel(directorySource(dir));
    const t = m.lm.forward([[1, 403]]);
    const flat = Array.from(t.dataSync());
    t.dispose();
    const V = m.info.vocabSize;
    const [greedy] = await generate(m, ['Once upon a time'], { maxNewTokens: 40, temperature: 0 });
    const text = 'Once upon a time' + greedy!.text;
    engine = { logits: [flat.slice(0, V), flat.slice(V, 2 * V)], greedy: greedy!, promptIds: m.tokenizer.encode('Once upon a time'), nll: meanNLL(m.lm, m.tokenizer.encode(text)), text };
    m.dispose();
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

  it('forward --json gives the logits the engine computes', async () => {
    const r = await cli('forward', '--model', dir, '--tokens', '1,403', '--json');
    expect(r.code).toBe(0);
    const { logits } = JSON.parse(r.stdout) as { logits: number[][] };
    expect(logits.length).toBe(2);
    expect(logits[0]).toHaveLength(4096);
    expect(maxDiff(logits[0]!, engine.logits[0]!)).toBeLessThanOrEqual(1e-4);
    expect(maxDiff(logits[1]!, engine.logits[1]!)).toBeLessThanOrEqual(1e-4);
  });

  it('forward works from a URL served on localhost, on the cpu backend', async () => {
    const r = await cli('forward', '--model', base, '--tokens', '1', '--json', '--backend', 'cpu');
    expect(r.stderr).toBe('');
    const { logits } = JSON.parse(r.stdout) as { logits: number[][] };
    expect(maxDiff(logits[0]!, engine.logits[0]!)).toBeLessThanOrEqual(1e-4);
  });

  it('generate --json --temperature 0 gives the engine\'s greedy tokens', async () => {
    const r = await cli('generate', '--model', dir, '--prompt', 'Once upon a time', '--max-new-tokens', '40', '--temperature', '0', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { prompt_tokens: number[]; tokens: number[]; text: string };
    expect(engine.greedy.tokens).toHaveLength(40); // greedy tabtune-tiny runs on past 40 tokens here (no EOS)
    expect(j.prompt_tokens).toEqual(engine.promptIds);
    expect(j.tokens).toEqual(engine.greedy.tokens);
    expect(j.text).toBe(engine.greedy.text);
  });

  it('generate with sampling is reproducible with --seed', async () => {
    const args = ['generate', '--model', dir, '--prompt', 'Once upon a time', '--max-new-tokens', '20', '--temperature', '0.9', '--top-k', '30', '--top-p', '0.95', '--seed', '3', '--json'];
    const a = JSON.parse((await cli(...args)).stdout) as { tokens: number[] };
    const b = JSON.parse((await cli(...args)).stdout) as { tokens: number[] };
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens.length).toBe(20);
  });

  it('score and tokenize --json', async () => {
    const s = JSON.parse((await cli('score', '--model', dir, '--text', engine.text, '--json')).stdout) as { tokens: number[]; mean_nll: number };
    expect(s.tokens[0]).toBe(1);
    expect(s.mean_nll).toBeGreaterThan(0);
    expect(Math.abs(s.mean_nll - engine.nll)).toBeLessThanOrEqual(1e-4);
    // Its own greedy text is likely under the model: far below the uniform ln(4096) = 8.3 nats.
    expect(s.mean_nll).toBeLessThan(3);
    const t = JSON.parse((await cli('tokenize', '--model', dir, '--text', 'Once upon a time', '--json')).stdout) as { tokens: number[] };
    expect(t.tokens).toEqual(engine.promptIds);
  });

  it('errors go to stderr with a non-zero exit', async () => {
    const missing = await cli('forward', '--tokens', '1');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--model/);
    const nodir = await cli('forward', '--model', join(ROOT, 'no-such-model'), '--tokens', '1');
    expect(nodir.code).toBe(1);
    expect(nodir.stderr).toMatch(/config\.json/);
    const badTok = await cli('forward', '--model', dir, '--tokens', '1,9999');
    expect(badTok.code).toBe(1);
    expect(badTok.stderr).toMatch(/outside the vocabulary/);
    const unknown = await cli('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command/);
  });
});

describeReference('npm run cli against the reference model\'s golden outputs (stories260K)', () => {
  let dir: string;
  let golden: Golden;
  beforeAll(async () => {
    golden = loadGolden();
    dir = await ensureReferenceHF();
  });

  it('forward --json gives the golden logits at position 0', async () => {
    const r = await cli('forward', '--model', dir, '--tokens', '1,403', '--json');
    expect(r.code).toBe(0);
    const { logits } = JSON.parse(r.stdout) as { logits: number[][] };
    expect(logits.length).toBe(2);
    const want = golden.logits_pos0_after_bos.all as number[];
    expect(Math.max(...want.map((w, i) => Math.abs(w - logits[0]![i]!)))).toBeLessThanOrEqual(1e-4);
  });

  it('generate --json --temperature 0 gives the golden greedy tokens', async () => {
    const g = golden.prompt_greedy;
    const n = g.tokens.length - g.prompt_tokens.length;
    const r = await cli('generate', '--model', dir, '--prompt', g.prompt, '--max-new-tokens', String(n), '--temperature', '0', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { prompt_tokens: number[]; tokens: number[]; text: string };
    expect(j.prompt_tokens).toEqual(g.prompt_tokens);
    expect([...j.prompt_tokens, ...j.tokens]).toEqual(g.tokens);
    expect(g.prompt + j.text).toBe(g.text);
  });

  it('score and tokenize --json', async () => {
    const s = JSON.parse((await cli('score', '--model', dir, '--text', golden.prompt_greedy.text, '--json')).stdout) as { tokens: number[]; mean_nll: number };
    expect(s.tokens[0]).toBe(1);
    expect(s.mean_nll).toBeGreaterThan(0);
    expect(s.mean_nll).toBeLessThan(1.5);
    const t = JSON.parse((await cli('tokenize', '--model', dir, '--text', 'Once upon a time', '--json')).stdout) as { tokens: number[] };
    expect(t.tokens).toEqual([1, 403, 407, 261, 378]);
  });
});

describe('npm run cli -- export-merged on tabtune-tiny', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tabtune-cli-merged-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("the merged folder generates base + adapter's tokens, stopping on the adapter's stop token (BOS, not the model's EOS)", { timeout: 300_000 }, async () => {
    // An adapter whose replies end on BOS, saved as `train` saves one (PEFT files + tabtune.json).
    await setupBackend('cpu');
    const model = await loadModel(directorySource(TINY_DIR));
    const run = await trainStopAdapter(model);
    const adapterDir = join(tmp, 'adapter');
    const files = exportPeftAdapter(run.adapter, { baseModel: TINY_DIR });
    files.set('tabtune.json', tabtuneJson({ stop_token_id: run.stopTokenId, stop_strings: [], plain_format: PLAIN_FORMAT }));
    await writeFolder(adapterDir, files);
    const prompt = plainPromptText(run.records[0]!.prompt);
    run.dispose();
    model.dispose();

    const generate = async (...args: string[]) => {
      const r = await cli('generate', ...args, '--prompt', prompt, '--max-new-tokens', '12', '--json');
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as { tokens: number[]; text: string; finish_reason: string };
    };
    const tuned = await generate('--model', TINY_DIR, '--adapter', adapterDir);
    expect(tuned.finish_reason).toBe('eos'); // the adapter's tabtune.json stop token, before the budget
    const merged = join(tmp, 'merged');
    const exported = await cli('export-merged', '--model', TINY_DIR, '--adapter', adapterDir, '--out', merged, '--json');
    expect(exported.code).toBe(0);
    const gen = JSON.parse(readFileSync(join(merged, 'generation_config.json'), 'utf8')) as { eos_token_id: unknown };
    expect(gen.eos_token_id).toEqual([BUNDLED_EOS, BUNDLED_BOS]);
    const fromMerged = await generate('--model', merged);
    console.log(`[cli merged stop] ${JSON.stringify(tuned.text)}: ${tuned.tokens.length} tokens, ${tuned.finish_reason}`);
    expect({ tokens: fromMerged.tokens, finish: fromMerged.finish_reason }).toEqual({ tokens: tuned.tokens, finish: tuned.finish_reason });
  });
});
