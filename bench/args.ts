// Command line of `npm run bench` (node:util parseArgs; pure apart from that: no files, no clock).
import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run bench -- [--model DIR]... [--threads K] [--steps N] [--leak-steps N] [--quick]
                        [--recompute] [--json] [--browser] [--gpu-unfused] [--no-torch] [--no-node]
                        [--out FILE]

  --model DIR     a Hugging Face Llama folder (config.json, model.safetensors, tokenizer.json); repeat for
                  several. Default: models/tabtune-tiny, models/tabtune-base and, when ../shared is there,
                  the stories260K reference model (converted into .cache/ on first use).
  --threads K     WASM threads in Node and PyTorch threads (default 1: tfjs-backend-wasm switches its
                  threaded build off in Node; K > 1 uses the bench's own loader for it, see bench/README.md).
  --steps N       timed LoRA training steps per configuration, after 2 warm-up steps (default 10).
  --leak-steps N  training steps between the two numTensors readings of the leak check (default 50).
  --quick         a smoke run or a large model: LoRA on q,v only, 1 warm-up step, steps 3, leak steps 20,
                  fewer repetitions.
  --recompute     also time each training shape with activation recomputation (Recompute activations), in
                  Node: the step time it costs, and what the memory plan then fits.
  --json          one JSON object per line per measurement instead of the table.
  --browser       also run the measurements in headless Chromium (/usr/bin/chromium through Playwright, the
                  page served by Vite with COOP/COEP): WASM with 2 threads (or K) and WebGPU (few steps: here
                  a software adapter), printed beside Node's.
  --gpu-unfused   with --browser: measure WebGPU a second time with TF.js's own ops instead of tabtune's fused
                  WGSL kernels (setGpuFusedOps(false)), labelled "webgpu (TF.js ops)": what the kernels buy.
  --no-torch      skip the PyTorch peer.
  --no-node       skip the Node measurements (with --browser: the page only).
  --out FILE      where to write all measurements as JSON (default bench/results/latest.json).`;

export interface BenchArgs {
  models: string[];
  threads: number;
  steps: number;
  leakSteps: number;
  quick: boolean;
  recompute: boolean;
  json: boolean;
  browser: boolean;
  /** With browser: WebGPU once more with the fused GPU ops off. */
  gpuUnfused: boolean;
  torch: boolean;
  node: boolean;
  out: string;
}

export class ArgsError extends Error {
  override name = 'ArgsError';
}

function positiveInt(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ArgsError(`--${name} needs a whole number of at least 1, got "${v}"`);
  return n;
}

/** Parses the bench's arguments; an unknown option or a bad value throws ArgsError naming it. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        model: { type: 'string', multiple: true },
        threads: { type: 'string' },
        steps: { type: 'string' },
        'leak-steps': { type: 'string' },
        quick: { type: 'boolean' },
        recompute: { type: 'boolean' },
        json: { type: 'boolean' },
        browser: { type: 'boolean' },
        'gpu-unfused': { type: 'boolean' },
        'no-node': { type: 'boolean' },
        'no-torch': { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new ArgsError((e as Error).message.split('\n')[0]!);
  }
  const v = parsed.values;
  if (v.help) throw new ArgsError('');
  const quick = v.quick ?? false;
  const args: BenchArgs = {
    models: v.model ?? [],
    threads: positiveInt('threads', v.threads, 1),
    steps: positiveInt('steps', v.steps, quick ? 3 : 10),
    leakSteps: positiveInt('leak-steps', v['leak-steps'], quick ? 20 : 50),
    quick,
    recompute: v.recompute ?? false,
    json: v.json ?? false,
    browser: v.browser ?? false,
    gpuUnfused: v['gpu-unfused'] ?? false,
    torch: !(v['no-torch'] ?? false),
    node: !(v['no-node'] ?? false),
    out: v.out ?? 'bench/results/latest.json',
  };
  if (!args.node && !args.browser) throw new ArgsError('--no-node without --browser leaves nothing to measure');
  if (args.gpuUnfused && !args.browser) throw new ArgsError('--gpu-unfused measures WebGPU in the browser: add --browser');
  return args;
}
