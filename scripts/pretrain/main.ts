// `npm run pretrain -- --config models/<name>/train.json [--resume] [--steps N] [--max-minutes M] [--export-only]`
// (see src/cli/commands/pretrain.ts). The model card is written by ./card.ts.
import { parseArgs, UsageError } from '../../src/cli/args';
import { pretrainCommand, PRETRAIN_OPTIONS, PRETRAIN_USAGE } from '../../src/cli/commands/pretrain';
import { modelCard } from './card';

let args: ReturnType<typeof parseArgs>;
try {
  args = parseArgs(process.argv.slice(2), PRETRAIN_OPTIONS, 'pretrain');
} catch (e) {
  process.stderr.write(`pretrain: ${(e as Error).message}\n${PRETRAIN_USAGE}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(PRETRAIN_USAGE + '\n');
} else {
  pretrainCommand(args, { modelCard }).catch((e: Error) => {
    const hint = (e as { hint?: string }).hint;
    process.stderr.write(`pretrain: ${e.stack ?? e.message}${hint ? `\n  ${hint}` : ''}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  });
}
