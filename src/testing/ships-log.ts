// A small domain text tabtune writes itself, for plain-text domain adaptation (src/data/text.ts): the logs of
// made-up voyages of the schooner "Marrow Lark", one entry per paragraph, one voyage per document. The style
// (log entries in a fixed order: day, wind and force, course, the watch's work, what was sighted, the glass)
// is not in the bundled models' pretraining text. Deterministic: the same seed gives the same text.
// Plain TypeScript (no node:*): the page's example file is this text (scripts/make-examples.ts writes it).
import { seededRandom } from '../util/random';
import { DOCUMENT_SEPARATOR } from '../data/text';

const WINDS = ['north', 'north-east', 'east', 'south-east', 'south', 'south-west', 'west', 'north-west'];
const WORK = [
  'mended the foresail',
  'tarred the rigging',
  'scrubbed the deck',
  'pumped the bilge',
  'spliced the mainsheet',
  'stowed the cargo',
  'painted the rail',
  'greased the windlass',
];
const SIGHTS = ['two gulls', 'a whale', 'a fishing boat', 'driftwood', 'a lighthouse', 'porpoises', 'a squall line', 'a brig under sail'];
const SIDES = ['off the port bow', 'off the starboard bow', 'astern', 'to leeward', 'to windward'];
const PORTS = ['Kestrel Bay', 'Holloway Sound', 'Cape Merrin', 'Dunmore Roads', 'Saltmarsh Harbour', 'Greywater Point'];

/** One voyage: a heading line, then `entries` daily entries. */
function voyage(rand: () => number, n: number, entries: number): string {
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
  const from = pick(PORTS);
  let to = pick(PORTS);
  while (to === from) to = pick(PORTS);
  const paras = [`Log of the schooner Marrow Lark, voyage ${n}, from ${from} to ${to}.`];
  let course = 10 * Math.floor(rand() * 36);
  let glass = 1000 + Math.floor(rand() * 25);
  for (let d = 1; d <= entries; d++) {
    course = (course + 10 * (Math.floor(rand() * 5) - 2) + 360) % 360;
    glass += Math.floor(rand() * 7) - 3;
    const trend = glass > 1015 ? 'rising' : glass < 1005 ? 'falling' : 'steady';
    paras.push(
      `Day ${d}. Wind from the ${pick(WINDS)}, force ${1 + Math.floor(rand() * 7)}. Course ${String(course).padStart(3, '0')}. ` +
        `The watch ${pick(WORK)} and ${pick(WORK)}. Sighted ${pick(SIGHTS)} ${pick(SIDES)}. Glass ${trend} at ${glass}.`,
    );
  }
  paras.push(`Arrived at ${to}. All hands well.`);
  return paras.join('\n\n');
}

/** The logs of `voyages` voyages, separated by DOCUMENT_SEPARATOR lines (one document each), ending with a newline. */
export function shipsLog(o: { voyages?: number; entries?: number; seed?: number } = {}): string {
  const rand = seededRandom(o.seed ?? 7);
  const docs: string[] = [];
  for (let v = 1; v <= (o.voyages ?? 12); v++) docs.push(voyage(rand, v, o.entries ?? 8));
  return docs.join(`\n\n${DOCUMENT_SEPARATOR}\n\n`) + '\n';
}
