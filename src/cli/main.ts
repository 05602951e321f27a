// tabtune's command line: the same engine as the browser worker, with the filesystem instead of
// IndexedDB. `npm run cli -- <command> [--flags]`. Errors go to stderr with a non-zero exit.
import * as tf from '@tensorflow/tfjs-core';
import { meanNLL, generate } from '../model/generate';
import { parseArgs, str, optNum, UsageError, type Args, type OptionSpec } from './args';
import { attachAdapter as attach, openModel, sourceFor } from './model-args';
import { exportMergedCommand } from './commands/export-merged';
import { convertLlama2cCommand } from './commands/convert-llama2c';
import { DATA_INSPECT_OPTIONS, DATA_INSPECT_USAGE, dataInspectCommand } from './commands/data-inspect';
import { trainCommand, TRAIN_OPTIONS, TRAIN_USAGE } from './commands/train';
import { readTabtuneRecord, recordStops } from '../io/export';
import type { LanguageModel } from '../model/load';

const USAGE = `usage: npm run cli -- <command> [options]

commands:
  forward   --model DIR_OR_URL --tokens 1,2,3 [--adapter DIR] [--json]   logits at every position
  generate  --model DIR_OR_URL --prompt TEXT [--max-new-tokens N --temperature T --top-k K --top-p P --seed S --stop STR]
            [--adapter DIR --adapter-scale S] [--stop-token ID] [--json]
  train     --model DIR --data FILE --out DIR [...]                 LoRA fine-tuning (see: train --help)
  export-merged --model DIR --adapter DIR --out DIR [--dtype F32|F16|BF16]   base + adapter as one HF folder
  score     --model DIR_OR_URL --text TEXT [--json]                teacher-forced mean NLL (nats)
  tokenize  --model DIR_OR_URL --text TEXT [--json]
  convert-llama2c --checkpoint FILE --tokenizer FILE --out DIR [--name NAME]
  data inspect FILE [--model DIR] [--format F] [--max-seq-len N] [--json]   the dataset doctor

common: --backend wasm|cpu (default wasm). DIR_OR_URL is a Hugging Face model folder, an http(s) base URL, or hub:org/name.`;

function out(args: Args, json: unknown, text: string): void {
  process.stdout.write(args.json ? JSON.stringify(json) + '\n' : text + '\n');
}

type CommandName = 'forward' | 'generate' | 'score' | 'tokenize' | 'convert-llama2c' | 'data' | 'train' | 'export-merged';

const commands: Record<CommandName, (args: Args) => Promise<void>> = {
  async forward(args) {
    const tokens = str(args, 'tokens', USAGE)
      .split(',')
      .map((s) => Number(s.trim()));
    if (tokens.some((t) => !Number.isInteger(t))) throw new UsageError('--tokens must be comma-separated integer ids');
    const m = await openModel(args, USAGE);
    await attachAdapter(m, args);
    const logits = m.lm.forward([tokens]);
    const rows = (await logits.array())[0]!;
    logits.dispose();
    out(args, { logits: rows }, rows.map((r, i) => `pos ${i}: argmax ${r.indexOf(Math.max(...r))} max ${Math.max(...r).toFixed(4)}`).join('\n'));
  },

  async generate(args) {
    const prompt = typeof args.prompt === 'string' ? args.prompt : '';
    if (args.prompt === undefined) throw new UsageError(`missing --prompt\n${USAGE}`);
    const m = await openModel(args, USAGE);
    const adapter = await attachAdapter(m, args);
    // Where tuned replies end: the adapter's tabtune.json, or that of a merged model tabtune exported
    // (whose stop token is also among its generation_config.json EOS ids).
    const run = recordStops(adapter ? adapter.stop : await readTabtuneRecord(sourceFor(str(args, 'model', USAGE))));
    const stop = typeof args.stop === 'string' ? [args.stop.replace(/\\n/g, '\n')] : [];
    const stopTokenIds = run.stopTokenIds;
    if (typeof args['stop-token'] === 'string') stopTokenIds.push(optNum(args, 'stop-token')!);
    stop.push(...run.stopStrings);
    const streaming = !args.json;
    const t0 = performance.now();
    const [r] = await generate(m, [prompt], {
      maxNewTokens: optNum(args, 'max-new-tokens', 64)!,
      temperature: optNum(args, 'temperature', 0)!,
      topK: optNum(args, 'top-k'),
      topP: optNum(args, 'top-p'),
      seed: optNum(args, 'seed', 0),
      stopStrings: stop,
      stopTokenIds,
      onToken: streaming ? (e) => process.stdout.write(e.text) : undefined,
    });
    const dt = (performance.now() - t0) / 1000;
    if (args.json) out(args, { prompt_tokens: r!.promptTokens, tokens: r!.tokens, text: r!.text, finish_reason: r!.finishReason }, '');
    else process.stderr.write(`\n[${r!.tokens.length} tokens in ${dt.toFixed(2)} s, ${(r!.tokens.length / dt).toFixed(1)} tokens/s, ${tf.getBackend()}, finished: ${r!.finishReason}]\n`);
  },

  async score(args) {
    const text = str(args, 'text', USAGE);
    const m = await openModel(args, USAGE);
    const tokens = m.tokenizer.encode(text);
    const nll = meanNLL(m.lm, tokens);
    out(args, { tokens, mean_nll: nll }, `${tokens.length} tokens, mean NLL ${nll.toFixed(6)} nats, perplexity ${Math.exp(nll).toFixed(3)}`);
  },

  async tokenize(args) {
    const text = typeof args.text === 'string' ? args.text : '';
    if (args.text === undefined) throw new UsageError(`missing --text\n${USAGE}`);
    const m = await openModel(args, USAGE);
    const tokens = m.tokenizer.encode(text);
    out(args, { tokens }, tokens.map((t) => `${t}\t${JSON.stringify(m.tokenizer.idToToken(t))}`).join('\n'));
  },

  'convert-llama2c': (args) => convertLlama2cCommand(args),
  data: (args) => dataInspectCommand(args),

  train: (args) => trainCommand(args),

  'export-merged': (args) => exportMergedCommand(args, USAGE),
};

/** --adapter DIR: see attachAdapter (model-args.ts). */
const attachAdapter = (m: LanguageModel, args: Args) => attach(m, args, USAGE);

const MODEL_OPTIONS = { model: 'string', backend: 'string', json: 'boolean', help: 'boolean' } as const;
const ADAPTER_OPTIONS = { adapter: 'string', 'adapter-scale': 'string' } as const;

/** The options each command takes: anything else is an error that lists these. */
const OPTIONS: Record<CommandName, OptionSpec> = {
  forward: { ...MODEL_OPTIONS, ...ADAPTER_OPTIONS, tokens: 'string' },
  generate: {
    ...MODEL_OPTIONS,
    ...ADAPTER_OPTIONS,
    prompt: 'string',
    'max-new-tokens': 'string',
    temperature: 'string',
    'top-k': 'string',
    'top-p': 'string',
    seed: 'string',
    stop: 'string',
    'stop-token': 'string',
  },
  score: { ...MODEL_OPTIONS, text: 'string' },
  tokenize: { ...MODEL_OPTIONS, text: 'string' },
  'convert-llama2c': { checkpoint: 'string', tokenizer: 'string', out: 'string', name: 'string', help: 'boolean' },
  data: DATA_INSPECT_OPTIONS,
  train: TRAIN_OPTIONS,
  'export-merged': { ...MODEL_OPTIONS, ...ADAPTER_OPTIONS, out: 'string', dtype: 'string' },
};

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (!cmd || cmd === 'help' || cmd === '--help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (!Object.hasOwn(commands, cmd)) throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
  const name = cmd as CommandName;
  const args = parseArgs(rest, OPTIONS[name], name);
  if (args.help) {
    process.stdout.write((name === 'train' ? TRAIN_USAGE : name === 'data' ? DATA_INSPECT_USAGE : USAGE) + '\n');
    return;
  }
  await commands[name](args);
}

main().catch((e: Error) => {
  const hint = (e as { hint?: string }).hint;
  process.stderr.write(`tabtune: ${e.message}${hint ? `\n  ${hint}` : ''}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
