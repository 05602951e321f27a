// Writes public/examples/ships-log.txt: the made-up ship's log of src/testing/ships-log.ts (plain-text domain
// adaptation's example; the page offers it, the tests train on the same text). `npx tsx scripts/make-ships-log.ts`
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shipsLog } from '../src/testing/ships-log';
import { REPO_ROOT } from '../src/testing/models';

const path = join(REPO_ROOT, 'public', 'examples', 'ships-log.txt');
writeFileSync(path, shipsLog());
console.log(`wrote ${path}`);
