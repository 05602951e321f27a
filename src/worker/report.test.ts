// The run report from the real worker (in-process, fake IndexedDB, tabtune-tiny): a few training steps,
// then the card of a checkpoint: its YAML front matter parsed with a YAML parser, each figure checked
// against the run's stored metric points, checkpoints and dataset; the PEFT and merged zips carry it, and
// the loss curve PNG decodes (chunk CRCs, zlib via Node's own inflate, pixels of the curve).
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 as nodeCrc32, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { unzipFiles } from '../io/zip';
import type { CardInput, CheckpointInfo, RunMetricPoint } from '../protocol/messages';
import { CARD_FILE, LOSS_CURVE_PNG, cardFiles, modelCard, num, pct } from '../report/index';
import { TRAIN_COLOR, VAL_COLOR, plotArea } from '../report/png';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';

/** The front matter between the first two '---' lines, parsed as YAML; and the body. */
export function splitCard(md: string): { front: Record<string, unknown>; body: string } {
  const m = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(md);
  if (!m) throw new Error('no front matter');
  return { front: parseYaml(m[1]!) as Record<string, unknown>, body: m[2]! };
}

/** A row of a Markdown table whose first cell is `label`: its cells. */
function row(body: string, label: string): string[] {
  const line = body.split('\n').find((l) => l.startsWith(`| ${label} |`));
  if (!line) throw new Error(`no row ${label}`);
  return line.slice(2, -2).split(' | ');
}

/** Decodes an 8-bit RGBA PNG with Node's zlib (filter 0 rows, as encodePng writes), checking every chunk's CRC. */
export function decodePng(png: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let o = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (o < png.length) {
    const len = view.getUint32(o);
    const type = new TextDecoder().decode(png.subarray(o + 4, o + 8));
    const body = png.subarray(o + 8, o + 8 + len);
    expect(view.getUint32(o + 8 + len)).toBe(nodeCrc32(png.subarray(o + 4, o + 8 + len)));
    types.push(type);
    if (type === 'IHDR') {
      width = view.getUint32(o + 8);
      height = view.getUint32(o + 12);
      expect([body[8], body[9], body[12]]).toEqual([8, 6, 0]); // 8-bit RGBA, not interlaced
    }
    if (type === 'IDAT') idat.push(body);
    o += 12 + len;
  }
  expect(types[0]).toBe('IHDR');
  expect(types.at(-1)).toBe('IEND');
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((width * 4 + 1) * height);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width * 4 + 1)]).toBe(0);
    rgba.set(raw.subarray(y * (width * 4 + 1) + 1, (y + 1) * (width * 4 + 1)), y * width * 4);
  }
  return { width, height, rgba };
}

describe('the run report of a real run (tabtune-tiny, worker in-process)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let runId: string;
  let points: RunMetricPoint[];
  let checkpoints: CheckpointInfo[];
  let input: CardInput;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { datasetId } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    const out = await w.client.request('train', { datasetId, name: 'numbers', config: { steps: 6, batchSize: 4, saveEvery: 2, evalEvery: 2, seed: 3, warmupSteps: 1, lr: 1e-2, probeSamples: 4, probeTokens: 8, genEvalExamples: 2 } });
    runId = out.runId;
    points = (await w.client.request('run-metrics', { runId })).points;
    checkpoints = (await w.client.request('list-checkpoints', { runId })).checkpoints;
    input = (await w.client.request('run-report', { runId, step: 4 })).input;
  }, 300_000);

  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('front matter: base model, PEFT, text generation, tabtune and the method as tags, no license', async () => {
    const { front, body } = splitCard(modelCard({ ...input, target: 'adapter' }));
    const job = (await w.client.request('list-runs', {})).runs.find((r) => r.id === runId)!.job!;
    expect(front).toEqual({ base_model: job.model.baseModel, library_name: 'peft', pipeline_tag: 'text-generation', tags: ['tabtune', 'lora', 'sft'] });
    expect(modelCard({ ...input, target: 'adapter' })).toMatch(/^# license: not set/m);
    expect(body).toMatch(/## License\n\nNot set/);
    expect(splitCard(modelCard({ ...input, target: 'merged' })).front).toMatchObject({ library_name: 'transformers', tags: ['tabtune', 'lora', 'sft', 'merged'] });
  });

  it('every figure is the stored one: training, evaluation, checkpoint, data', () => {
    const { body } = splitCard(modelCard(input));
    const steps = points.filter((p) => p.type === 'step');
    const evals = points.filter((p): p is Extract<RunMetricPoint, { type: 'eval' }> => p.type === 'eval');
    const last = steps.at(-1)!;
    expect(steps.length).toBe(6);
    expect(row(body, 'Steps')[1]).toBe('6 (the run\'s last step: 6)');
    expect(row(body, 'Epochs')[1]).toBe(num(last.epoch));
    expect(row(body, 'Final training loss')[1]).toBe(`${num(last.loss)} (smoothed ${num(last.smoothLoss)}) at step 6`);
    const best = evals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    expect(row(body, 'Best validation loss')[1]).toBe(`${num(best.valLoss)} at step ${best.step}`);
    expect(row(body, 'Final validation loss')[1]).toBe(`${num(evals.at(-1)!.valLoss)} at step 6`);
    expect(row(body, 'Tokens trained on')[1]).toBe(evals.at(-1)!.extra!.train_tokens!.toLocaleString('en-US'));
    expect(row(body, 'Training time')[1]).toMatch(new RegExp(`^${evals.at(-1)!.extra!.elapsed_s!.toFixed(1)} s`));
    // Not recorded with browser runs: said, not left out.
    expect(row(body, 'Backend')[1]).toBe('wasm');

    // Evaluation at the exported checkpoint (step 4) beside the first evaluation (step 2).
    const at4 = evals.find((e) => e.step === 4)!;
    const first = evals[0]!;
    // The base model column: the baseline measured before the first step (stored with the run).
    const bl = input.baseline!;
    expect(bl.valLoss).toBeGreaterThan(0);
    expect(row(body, 'Validation loss')).toEqual(['Validation loss', num(bl.valLoss), num(first.valLoss), num(at4.valLoss)]);
    expect(body).toContain('Base model column: the base model (adapter off) measured on the same held-out examples before the first step');
    expect(row(body, 'Exact match (held-out answers)').slice(1)).toEqual([pct(bl.extra.exact_match!), pct(first.extra!.exact_match!), pct(at4.extra!.exact_match!)]);
    const probe = row(body, 'General-text NLL (forgetting probe)');
    expect(probe[1]).toBe(num(input.probe!.baseNll));
    expect(probe[3]).toBe(num(at4.extra!.probe_nll!));
    const d = at4.extra!.probe_nll_delta_pct!;
    expect(row(body, 'General-text NLL change vs base')[3]).toBe(`${d > 0 ? '+' : ''}${d.toFixed(2)}%`);
    expect(body).toContain(`Retained general skill: the general-text NLL (4 base-model continuations of 8 tokens) changed by ${d > 0 ? '+' : ''}${d.toFixed(2)}%`);

    // The checkpoint: its manifest's numbers and why it is this one.
    const ck = checkpoints.find((c) => c.step === 4)!;
    expect(row(body, 'Step')[1]).toBe('4');
    expect(row(body, 'Training loss at this step')[1]).toBe(num(ck.trainLoss));
    expect(row(body, 'Validation loss at this step')[1]).toBe(num(ck.valLoss));
    const q = input.quality!;
    expect(row(body, 'Best / recommended / last step')[1]).toBe(`${q.bestStep ?? '–'} / ${q.recommendedStep ?? '–'} / ${q.finalStep}`);
    const why = row(body, 'Why this one')[1]!;
    expect(why.includes('the best checkpoint')).toBe(q.bestStep === 4);
    expect(why.includes('the recommended checkpoint')).toBe(q.recommendedStep === 4);
    if (q.bestStep !== 4 && q.recommendedStep !== 4) expect(why).toMatch(/^chosen by hand/);
    expect(row(body, 'Stored checkpoints')[1]).toBe(checkpoints.map((c) => c.step).sort((a, b) => a - b).join(', '));

    // The data: the file's SHA-256 and the doctor's counts.
    expect(row(body, 'SHA-256')[1]).toBe(createHash('sha256').update(DATA).digest('hex'));
    expect(row(body, 'Records')[1]).toBe('40 read, 40 used, 0 skipped');
    expect(row(body, 'Size')[1]).toMatch(new RegExp(`\\(${Buffer.byteLength(DATA).toLocaleString('en-US')} bytes\\)$`));
    expect(row(body, 'Train / validation')[1]).toBe(`${input.data.trainExamples} / ${input.data.valExamples} (10% held out, seed 0)`);
    expect(row(body, 'Token that ends replies')[1]).toMatch(new RegExp(`^id ${input.data.stop!.tokenId} `));
    // Settings that differ from the defaults, each with the run's value.
    for (const [k, v] of [['steps', '6'], ['batchSize', '4'], ['evalEvery', '2'], ['probeSamples', '4']]) expect(row(body, k)[1]).toBe(v);
    // The recipe of a LoRA SFT run.
    expect(body).toContain('<summary>axolotl.yaml</summary>');
  });

  it('the PEFT and merged zips carry the card and the loss curve; the PNG decodes and draws the stored losses', async () => {
    const peft = await w.client.request('export', { kind: 'peft', runId, step: 4 });
    const files = unzipFiles(peft.bytes);
    expect(peft.files).toEqual(expect.arrayContaining([CARD_FILE, LOSS_CURVE_PNG, 'adapter_config.json']));
    const card = new TextDecoder().decode(files.get(CARD_FILE));
    expect(card).toBe(new TextDecoder().decode(cardFiles({ ...input, target: 'adapter' }).get(CARD_FILE)));
    expect(card).toContain('![Training loss over 6 steps');
    const merged = await w.client.request('export', { kind: 'merged', runId, step: 4 });
    const mfiles = unzipFiles(merged.bytes);
    expect(splitCard(new TextDecoder().decode(mfiles.get(CARD_FILE))).front.library_name).toBe('transformers');

    const png = decodePng(files.get(LOSS_CURVE_PNG)!);
    expect([png.width, png.height]).toEqual([640, 320]);
    const a = plotArea(png.width, png.height);
    const at = (x: number, y: number) => [...png.rgba.subarray((Math.round(y) * png.width + Math.round(x)) * 4, (Math.round(y) * png.width + Math.round(x)) * 4 + 3)];
    // The first training loss is drawn at the left edge, at its height between the lowest and highest loss.
    const steps = points.filter((p) => p.type === 'step').map((p) => [p.step, p.loss] as const);
    const evals = points.filter((p) => p.type === 'eval').map((p) => [p.step, p.valLoss] as const);
    const ys = [...steps, ...evals].map(([, v]) => v);
    const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
    const py = (v: number) => a.bottom - ((v - lo) / (hi - lo)) * (a.bottom - a.top);
    const px = (s: number) => a.left + ((s - 1) / (6 - 1)) * (a.right - a.left);
    expect(at(px(steps[0]![0]) + 1, py(steps[0]![1]))).toEqual(TRAIN_COLOR);
    // Each evaluation is a dot of the validation colour.
    for (const [s, v] of evals) expect(at(px(s) === a.right ? px(s) - 1 : px(s), py(v) + 2)).toEqual(VAL_COLOR);
  });
});
