// `tabtune convert-llama2c --checkpoint FILE --tokenizer FILE --out DIR [--name NAME]`:
// converts a llama2.c model (.bin) and its tokenizer (.bin) into a Hugging Face Llama folder.

import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { convertLlama2cDetailed } from '../../io/llama2c';
import { writeFolder } from '../../node/hf-write';

export const CONVERT_LLAMA2C_USAGE =
  'usage: convert-llama2c --checkpoint MODEL.bin --tokenizer TOKENIZER.bin --out DIR [--name NAME]';

function arg(args: Record<string, string | boolean>, key: string): string | undefined {
  const v = args[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export async function convertLlama2cCommand(args: Record<string, string | boolean>): Promise<void> {
  const checkpoint = arg(args, 'checkpoint');
  const tokenizer = arg(args, 'tokenizer');
  const out = arg(args, 'out');
  const missing = [!checkpoint && '--checkpoint', !tokenizer && '--tokenizer', !out && '--out'].filter(Boolean);
  if (missing.length) throw new Error(`convert-llama2c: missing ${missing.join(', ')}\n${CONVERT_LLAMA2C_USAGE}`);
  const name = arg(args, 'name') ?? basename(checkpoint!).replace(/\.bin$/i, '');
  const [ck, tok] = await Promise.all([readFile(checkpoint!), readFile(tokenizer!)]);
  const { files, checkpoint: parsed } = convertLlama2cDetailed(new Uint8Array(ck), new Uint8Array(tok), { name });
  const dir = resolve(out!);
  await writeFolder(dir, files);
  const c = parsed.config;
  const bytes = [...files.values()].reduce((a, b) => a + b.byteLength, 0);
  console.log(
    `converted ${name}: ${parsed.nParams.toLocaleString('en-US')} params (dim ${c.dim}, ${c.nLayers} layers, ` +
      `${c.nHeads}/${c.nKvHeads} heads, vocab ${c.vocabSize}, ${c.sharedClassifier ? 'tied' : 'untied'} embeddings) -> ${dir}: ` +
      `${[...files.keys()].join(', ')} (${bytes.toLocaleString('en-US')} bytes)`,
  );
}
