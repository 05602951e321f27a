// `npm run cli -- export-merged`: the base model with an adapter folded into its weights, as one Hugging
// Face folder (src/io/export.ts), with the adapter's tabtune.json (where replies end) and the run's model
// card (README.md and loss_curve.png, from the adapter folder's report.json when `train` wrote it).
import { readBaseFiles, exportMergedModel } from '../../io/export';
import { directorySource } from '../../node/fs-source';
import { writeFolder } from '../../node/hf-write';
import { cardFiles } from '../../report/index';
import { str, UsageError, type Args } from '../args';
import { attachAdapter, openModel } from '../model-args';
import { mergedCardInput } from '../report';

export async function exportMergedCommand(args: Args, usage: string): Promise<void> {
  const outDir = str(args, 'out', usage);
  const modelDir = str(args, 'model', usage);
  const dtype = (args.dtype ?? 'F32') as 'F32' | 'F16' | 'BF16';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new UsageError('--dtype must be F32, F16 or BF16');
  const m = await openModel(args, usage);
  try {
    const adapter = await attachAdapter(m, args, usage, true);
    // Prompt tuning learns input embeddings, not a change of the weights: there is nothing to fold in.
    if (adapter && !('deltaTensor' in adapter)) throw new UsageError(`${str(args, 'adapter', usage)} is a prompt-tuning adapter: it adds learned tokens before the input instead of changing weights, so it cannot be merged; use it with --adapter`);
    // The adapter's record (its stop token, stop strings) goes along: the merged folder stops where base + adapter stops.
    const files = exportMergedModel({ lm: m.lm, baseFiles: await readBaseFiles(directorySource(modelDir)) }, adapter, { dtype, tabtune: adapter?.stop ?? undefined });
    for (const [name, bytes] of cardFiles(await mergedCardInput(str(args, 'adapter', usage), m, modelDir))) files.set(name, bytes);
    await writeFolder(outDir, files);
    const names = [...files.keys()];
    process.stdout.write(args.json ? JSON.stringify({ out: outDir, files: names }) + '\n' : `wrote ${names.join(', ')} to ${outDir}\n`);
  } finally {
    m.dispose();
  }
}
