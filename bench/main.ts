// `npm run bench`: the Node runner of the benchmark (issue 14). For every model: load time, matmul peak,
// prefill, KV-cached generation, LoRA training (batch 8 x 128 and 1 x 256, q,v and all linear targets),
// the numTensors leak check and peak memory on tfjs-backend-wasm; then the same in PyTorch CPU
// (bench/torch_peer.py) with the same thread count; with --browser the same in headless Chromium.
// Prints a table (or JSON lines with --json) and writes bench/results/latest.json.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend, type BackendReport } from '../src/model/backend';
import { directorySource } from '../src/node/fs-source';
import { ensureReferenceHF, referenceAvailable, REFERENCE_DIR } from '../src/testing/reference';
import { ArgsError, parseBenchArgs, USAGE, type BenchArgs } from './args';
import { decodeFlops, prefillFlops, trainStepFlops } from './flops';
import { benchModel, type RunContext } from './measure';
import { withNodeWasmThreads } from './node-wasm-threads';
import { formatTable, jsonLine, parseMeasurement, type Measurement } from './records';
import type { BenchPlan } from './plan';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const PYTHON = '/usr/bin/python3';

interface ModelEntry {
  name: string;
  dir: string;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);

async function defaultModels(notes: string[]): Promise<ModelEntry[]> {
  const out = [
    { name: 'tabtune-tiny', dir: resolve(ROOT, 'models/tabtune-tiny') },
    { name: 'tabtune-base', dir: resolve(ROOT, 'models/tabtune-base') },
  ];
  if (referenceAvailable()) out.push({ name: 'stories260K', dir: await ensureReferenceHF() });
  else notes.push(`stories260K skipped: the reference model is absent at ${REFERENCE_DIR} (../shared/reference-models)`);
  return out;
}

function checkModelDir(dir: string): void {
  for (const f of ['config.json', 'tokenizer.json']) {
    if (!existsSync(resolve(dir, f))) throw new ArgsError(`--model ${dir}: no ${f} there; give a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)`);
  }
}

class Output {
  readonly all: Measurement[] = [];
  constructor(private readonly json: boolean) {}
  add(m: Measurement): void {
    this.all.push(m);
    if (this.json) process.stdout.write(`${jsonLine(m)}\n`);
    if (m.name === 'tensors' && m.leak) log(`!!! LEAK: ${m.model}: numTensors ${String(m.tensors_before)} -> ${String(m.tensors_after)} over ${String(m.steps)} training steps`);
    if (m.name === 'train_lora' && m.leak) log(`!!! LEAK: ${m.model} ${String(m.batch)}x${String(m.seq)}: numTensors ${String(m.tensors_before)} -> ${String(m.tensors_after)} over the timed steps`);
  }
}

/**
 * CPU time of the main thread (where single-threaded WASM computes), ms, from /proc (Linux; 10 ms ticks),
 * null elsewhere. Not process.cpuUsage(): that adds V8's helper threads (GC, compilation), up to half as
 * much again here.
 */
function mainThreadCpuMs(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100;

/** Every Node measurement of one model. */
async function nodeModel(entry: ModelEntry, args: BenchArgs, backend: BackendReport, out: Output): Promise<BenchPlan> {
  const ctx: RunContext = { model: entry.name, backend: backend.name, threads: backend.threads ?? 1, host: 'node', jsHeap: () => process.memoryUsage().heapUsed, cpuMs: mainThreadCpuMs };
  return benchModel(directorySource(entry.dir), ctx, args, (m) => out.add(m), log);
}

/** Runs bench/torch_peer.py on one model; its lines become measurements. Returns notes to show. */
async function torchModel(entry: ModelEntry, plan: BenchPlan, args: BenchArgs, out: Output, info: Record<string, unknown>): Promise<string[]> {
  const notes: string[] = [];
  if (!existsSync(PYTHON)) return [`PyTorch rows skipped: ${PYTHON} not found (apt-get install -y python3-torch libopenblas0-openmp)`];
  const s = plan.shape;
  const spec = {
    model: entry.name,
    dir: entry.dir,
    threads: args.threads,
    matmul_shapes: plan.matmulShapes,
    matmul_budget_ms: plan.matmulBudgetMs,
    matmul_min_reps: plan.matmulMinReps,
    prefill: { ...plan.prefill, flops: prefillFlops(s, plan.prefill.seq) },
    generate: { ...plan.generate, flops: decodeFlops(s, plan.generate.prompt_tokens, plan.generate.new_tokens) },
    train: plan.train.filter((t) => !t.recompute).map((t) => ({ ...t, flops_per_step: trainStepFlops(s, t, t.batch, t.seq) })),
  };
  const threadsEnv = String(args.threads);
  log(`[${entry.name}] PyTorch peer (${args.threads} thread${args.threads > 1 ? 's' : ''})`);
  const child = spawn(PYTHON, [resolve(ROOT, 'bench/torch_peer.py'), '--spec', JSON.stringify(spec)], {
    env: { ...process.env, OMP_NUM_THREADS: threadsEnv, OPENBLAS_NUM_THREADS: threadsEnv, MKL_NUM_THREADS: threadsEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (o.kind === 'note') notes.push(`PyTorch: ${String(o.text)}`);
        else if (o.kind === 'info') Object.assign(info, o);
        else out.add(parseMeasurement(line));
      } catch (e) {
        notes.push(`PyTorch peer printed a line the bench does not understand (${(e as Error).message})`);
      }
    }
  });
  const code = await new Promise<number>((res) => child.on('close', (c) => res(c ?? 1)));
  if (code === 3) return notes; // torch missing: the note says so
  if (code !== 0) notes.push(`PyTorch peer failed on ${entry.name} (exit ${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return notes;
}

function machineInfo(backend: BackendReport | null, torchInfo: Record<string, unknown>, loadStart: number[]): Record<string, unknown> {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString(),
    cpu,
    cores: os.cpus().length,
    memory_bytes: os.totalmem(),
    // Other processes may share the cores: load average (1, 5, 15 minutes) at the start and end of the run.
    load_average_start: loadStart,
    load_average_end: os.loadavg(),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    tfjs: tf.version_core,
    backend: backend ? { name: backend.name, threads: backend.threads, simd: backend.simd, reasons: backend.reasons } : null,
    torch: torchInfo.torch ?? null,
    torch_threads: torchInfo.threads ?? null,
    blas: torchInfo.blas ?? null,
  };
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof ArgsError)) throw e;
    if (e.message) process.stderr.write(`npm run bench: ${e.message}\n\n`);
    process.stderr.write(`${USAGE}\n`);
    return e.message ? 2 : 0;
  }
  const loadStart = os.loadavg();
  const notes: string[] = [];
  let models: ModelEntry[];
  try {
    models = args.models.length
      ? args.models.map((d) => {
          checkModelDir(d);
          return { name: resolve(d).split('/').pop()!, dir: resolve(d) };
        })
      : await defaultModels(notes);
  } catch (e) {
    if (!(e instanceof ArgsError)) throw e;
    process.stderr.write(`npm run bench: ${e.message}\n`);
    return 2;
  }
  const out = new Output(args.json);
  const torchInfo: Record<string, unknown> = {};
  let backend: BackendReport | null = null;
  if (args.node) {
    const start = () => setupBackend('wasm', { wasmThreads: args.threads });
    backend = args.threads > 1 ? await withNodeWasmThreads(args.threads, start) : await start();
    log(`Node: tfjs ${tf.version_core}, backend ${backend.name}, ${backend.threads ?? 1} thread(s), SIMD ${String(backend.simd)}`);
    if ((backend.threads ?? 1) !== args.threads) notes.push(`Node WASM runs ${backend.threads ?? 1} thread(s), ${args.threads} asked`);
    // Each model's PyTorch run right after its Node run: on a shared machine, the closer in time the two
    // sides of a ratio are measured, the less the other processes' load skews it.
    for (const m of models) {
      let plan: BenchPlan;
      try {
        plan = await nodeModel(m, args, backend, out);
      } catch (e) {
        // A WASM abort (e.g. the heap exhausted) leaves the backend unusable: report what was measured.
        notes.push(`${m.name}: the Node measurements stopped: ${(e as Error).message}; the remaining Node and PyTorch measurements were skipped`);
        log(`!!! ${m.name}: ${(e as Error).stack ?? String(e)}`);
        break;
      }
      if (args.torch) notes.push(...(await torchModel(m, plan, args, out, torchInfo)));
    }
  }
  if (!args.torch) notes.push('PyTorch rows skipped (--no-torch)');
  else if (!args.node) notes.push('PyTorch rows skipped: the peer runs the plan of the Node run (--no-node)');
  if (args.browser) {
    const { runBrowser } = await import('./browser/run');
    notes.push(...(await runBrowser(models, args, log, (m) => out.add(m))).notes);
  }
  const info = machineInfo(backend, torchInfo, loadStart);
  const file = resolve(ROOT, args.out);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ machine: info, args: { ...args }, notes, measurements: out.all }, null, 2)}\n`);
  if (!args.json) {
    process.stdout.write(`tabtune bench, ${String(info.date)}: ${String(info.cpu)}, ${String(info.cores)} cores; Node ${process.version}, tfjs ${tf.version_core}; PyTorch ${String(info.torch ?? 'not run')}; load average ${loadStart.map((x) => x.toFixed(1)).join(' ')} at the start\n`);
    process.stdout.write(`${formatTable(out.all)}\n`);
    if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
    process.stdout.write(`\nwritten: ${file}\n`);
  } else for (const n of notes) log(`note: ${n}`);
  return out.all.some((m) => m.leak === true) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
