// Datasets in the worker: read and checked by the dataset doctor (streaming, with progress), kept in
// memory by id, and stored in IndexedDB (store.datasets.save) so that a reload can resume a run without
// the file. `prepare` turns a dataset into the training and validation examples of one model, and
// re-runs the doctor with a run's frozen options when a resume needs exactly the same encoding.
import { inspectDataset, textSource, bytesSource, type DataInput, type DataSource, type InspectOptions, type InspectResult, type ReadProgress } from '../data/index';
import type { RecordEncoder } from '../data/encode';
import type { LanguageModel } from '../model/load';
import type { TabtuneStore } from '../storage/index';
import { toExamples } from '../train/job';
import type { Example } from '../train/loop';
import type { DatasetInput, EventMessage, FrozenInspectOptions, InspectDataOptions, InspectDataPayload, InspectDataResult, ProtocolError } from '../protocol/messages';
import { fail, toProtocolError } from './errors';
import { parseJob } from './jobs';

interface ResolvedInput {
  input: DataInput;
  name: string;
  mimeType: string | undefined;
  bytes(): Promise<Uint8Array>;
}

interface DatasetEntry {
  id: string;
  name: string;
  fingerprint: string;
  input: DataInput;
  validation: { id: string | null; name: string; input: DataInput } | null;
  options: InspectDataOptions;
  /** The doctor's last run on this dataset with a model (reused while model and options are the same). */
  inspected: { model: LanguageModel; key: string; result: InspectResult } | null;
}

export interface PreparedData {
  datasetId: string;
  name: string;
  fingerprint: string;
  valDatasetId: string | null;
  result: InspectResult;
  encoder: RecordEncoder;
  /** The options the doctor was given for this dataset. */
  requested: InspectDataOptions;
  /** The options with the stop token frozen in: what a run stores to encode the same way after a reload. */
  frozen: FrozenInspectOptions;
  train: Example[];
  val: Example[];
}

export interface DatasetRegistryDeps {
  store(): Promise<TabtuneStore>;
  /** Runs fn with the base model (the active adapter switched off): the doctor measures the base model. */
  withBase<T>(fn: () => Promise<T>): Promise<T>;
  /** Sends the doctor's `data-progress` events to the page. */
  post(m: EventMessage): void;
}

export interface DatasetContext {
  /** The model the doctor measures with (tokens, stop token), or null for a parse-only report. */
  model: LanguageModel | null;
  /** The request the doctor's reads report `data-progress` to; none when negative. */
  requestId: number;
  signal?: AbortSignal;
}

type TaggedProgress = (p: ReadProgress & { file: 'train' | 'validation' }) => void;

function nameFromUrl(url: string): string {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : 'dataset';
  } catch {
    return 'dataset';
  }
}

async function resolveInput(d: DatasetInput, signal?: AbortSignal): Promise<ResolvedInput> {
  switch (d?.kind) {
    case 'blob': {
      if (!(d.blob instanceof Blob)) throw fail('BAD_REQUEST', 'inspect-data: `blob` must be a File or Blob.');
      const name = d.name ?? (d.blob as Blob & { name?: string }).name ?? 'dataset';
      // A File stays a reference to the disk: the doctor streams it, and only storing it reads it whole.
      return { input: slicedBlobSource(d.blob, name), name, mimeType: d.blob.type || undefined, bytes: async () => new Uint8Array(await d.blob.arrayBuffer()) };
    }
    case 'url': {
      let res: Response;
      try {
        res = await fetch(d.url, { signal });
      } catch (e) {
        if ((e as Error)?.name === 'AbortError') throw e;
        throw fail('BAD_DATASET', `Could not download ${d.url}: ${(e as Error).message}`, 'Check the address and that the server allows this page to read it (CORS).');
      }
      if (!res.ok) throw fail('BAD_DATASET', `Could not download ${d.url}: HTTP ${res.status}`, 'Check the address of the dataset.');
      const blob = await res.blob();
      return { input: slicedBlobSource(blob, d.name ?? nameFromUrl(d.url)), name: d.name ?? nameFromUrl(d.url), mimeType: blob.type || undefined, bytes: async () => new Uint8Array(await blob.arrayBuffer()) };
    }
    case 'text': {
      if (typeof d.text !== 'string') throw fail('BAD_REQUEST', 'inspect-data: `text` must be a string.');
      const name = d.name || 'dataset.jsonl';
      return { input: textSource(d.text, name), name, mimeType: 'text/plain', bytes: async () => new TextEncoder().encode(d.text) };
    }
    default:
      throw fail('BAD_REQUEST', `inspect-data: unknown source kind ${JSON.stringify((d as { kind?: unknown })?.kind)}.`, 'Give a blob (a dropped file), a url or text.');
  }
}

/** Only the known options, so what a run stores is exactly what the doctor used. */
function cleanOptions(o: InspectDataOptions | undefined): InspectDataOptions {
  const out: InspectDataOptions = {};
  if (!o) return out;
  if (o.maxSeqLen !== undefined) {
    if (!Number.isInteger(o.maxSeqLen) || o.maxSeqLen < 2) throw fail('BAD_REQUEST', `maxSeqLen must be an integer of at least 2, got ${o.maxSeqLen}`);
    out.maxSeqLen = o.maxSeqLen;
  }
  if (o.lossOn !== undefined) out.lossOn = o.lossOn;
  if (o.template !== undefined) out.template = o.template;
  if (o.stop !== undefined) out.stop = { ...o.stop };
  if (o.valFraction !== undefined) {
    if (!(o.valFraction >= 0 && o.valFraction < 1)) throw fail('BAD_REQUEST', `valFraction must be in [0, 1), got ${o.valFraction}`);
    out.valFraction = o.valFraction;
  }
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.format !== undefined) out.format = o.format;
  if (o.columns !== undefined) out.columns = o.columns;
  return out;
}

function doctorOptions(o: InspectDataOptions): InspectOptions {
  return { ...o, stop: o.stop ? { ...o.stop } : undefined };
}

/** Tags doctor progress with the file it is about: train is read first, then validation; then both are tokenized in that order. */
function progressTagger(on: TaggedProgress | undefined, hasValidation: boolean): ((p: ReadProgress) => void) | undefined {
  if (!on) return undefined;
  const last: Record<ReadProgress['phase'], { loaded: number; file: 'train' | 'validation' } | null> = { read: null, tokenize: null };
  return (p) => {
    const prev = last[p.phase];
    let file: 'train' | 'validation' = prev?.file ?? 'train';
    if (hasValidation && prev && prev.file === 'train' && p.loaded < prev.loaded) file = 'validation';
    last[p.phase] = { loaded: p.loaded, file };
    on({ ...p, file });
  };
}

export class DatasetRegistry {
  private readonly entries = new Map<string, DatasetEntry>();
  private memCounter = 0;

  constructor(private readonly deps: DatasetRegistryDeps) {}

  private progress(requestId: number): TaggedProgress | undefined {
    return requestId >= 0 ? (payload) => this.deps.post({ kind: 'data-progress', id: requestId, payload }) : undefined;
  }

  /** A `stored` source as the blob it was stored from (the doctor reads it again; storing it again finds it by fingerprint). */
  private async fromStorage(d: DatasetInput): Promise<DatasetInput> {
    if (d?.kind !== 'stored') return d;
    if (typeof d.datasetId !== 'string' || !d.datasetId) throw fail('BAD_REQUEST', 'inspect-data: a stored source needs a datasetId.');
    let loaded: Awaited<ReturnType<TabtuneStore['datasets']['load']>>;
    try {
      loaded = await (await this.deps.store()).datasets.load(d.datasetId);
    } catch (e) {
      const pe = toProtocolError(e);
      if (pe.code === 'NOT_FOUND') throw fail('BAD_DATASET', `The dataset ${d.datasetId} is no longer stored in this browser.`, 'Add the file again.');
      throw e;
    }
    const bytes = loaded.bytes;
    return { kind: 'blob', blob: new Blob([bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer], { type: loaded.info.mimeType ?? '' }), name: loaded.info.name };
  }

  /** `inspect-data`: the doctor's report, the dataset kept by id (and stored unless payload.store is false). */
  async inspect(p: InspectDataPayload, ctx: DatasetContext): Promise<InspectDataResult> {
    const t0 = performance.now();
    if (!p || typeof p !== 'object' || !p.source) throw fail('BAD_REQUEST', 'inspect-data needs a `source`.');
    const options = cleanOptions(p.options);
    const main = await resolveInput(await this.fromStorage(p.source), ctx.signal);
    const val = p.validation ? await resolveInput(await this.fromStorage(p.validation), ctx.signal) : null;
    const result = await this.deps.withBase(() =>
      inspectDataset(main.input, {
        ...doctorOptions(options),
        model: ctx.model ?? undefined,
        validation: val?.input,
        onProgress: progressTagger(this.progress(ctx.requestId), !!val),
        signal: ctx.signal,
      }),
    );

    let id: string | null = null;
    let valId: string | null = null;
    let fingerprint = '';
    let storageError: ProtocolError | null = null;
    if (p.store !== false) {
      try {
        const store = await this.deps.store();
        const rec = await store.datasets.save({ name: main.name, content: await main.bytes(), mimeType: main.mimeType });
        if (val) valId = (await store.datasets.save({ name: val.name, content: await val.bytes(), mimeType: val.mimeType })).id;
        id = rec.id;
        fingerprint = rec.fingerprint;
      } catch (e) {
        storageError = toProtocolError(e);
        id = null;
      }
    }
    if (!id) {
      id = `mem-${Date.now().toString(36)}-${++this.memCounter}`;
      fingerprint = `memory:${id}`;
      valId = null;
    }
    const entry: DatasetEntry = {
      id,
      name: main.name,
      fingerprint,
      input: main.input,
      validation: val ? { id: valId, name: val.name, input: val.input } : null,
      options,
      inspected: ctx.model ? { model: ctx.model, key: this.key(options, valId ?? val?.name ?? null), result } : null,
    };
    this.entries.set(id, entry);
    return { datasetId: id, report: result.report, stored: storageError === null && !id.startsWith('mem-'), storageError, ms: performance.now() - t0 };
  }

  /**
   * The examples of a dataset for `model`. `frozen` (a run's stored options) and `valDatasetId` make a
   * resume encode exactly as the run did; without them the dataset's own inspect options are used.
   */
  /**
   * The dataset encoded for training: with the options a stored run froze (`run`), else the ones it was
   * inspected with, and `o.stop` forcing the end of replies (a run that continues another run's adapter ends them as it did).
   */
  async prepare(datasetId: string, ctx: DatasetContext & { model: LanguageModel }, run?: { frozen: FrozenInspectOptions; valDatasetId: string | null }, o: { stop?: FrozenInspectOptions['stop'] } = {}): Promise<PreparedData> {
    if (typeof datasetId !== 'string' || !datasetId) throw fail('BAD_REQUEST', 'A datasetId is required.', 'Inspect a dataset first (inspect-data) and train on the id it returns.');
    let entry = this.entries.get(datasetId) ?? (await this.loadStored(datasetId));
    if (run && (entry.validation?.id ?? null) !== run.valDatasetId) {
      // The run was trained with another validation file than the one this dataset was last inspected with.
      const validation = run.valDatasetId ? await this.loadValidation(run.valDatasetId) : null;
      entry = { ...entry, validation, inspected: null };
    }
    const options = run ? run.frozen : o.stop ? { ...entry.options, stop: o.stop } : entry.options;
    const key = this.key(options, entry.validation ? (entry.validation.id ?? entry.validation.name) : null);
    let result: InspectResult;
    if (entry.inspected && entry.inspected.model === ctx.model && entry.inspected.key === key) result = entry.inspected.result;
    else {
      result = await this.deps.withBase(() =>
        inspectDataset(entry.input, {
          ...doctorOptions(options),
          model: ctx.model,
          validation: entry.validation?.input,
          onProgress: progressTagger(this.progress(ctx.requestId), !!entry.validation),
          signal: ctx.signal,
        }),
      );
      if (this.entries.get(datasetId) === entry || !this.entries.has(datasetId)) {
        entry.inspected = { model: ctx.model, key, result };
        this.entries.set(datasetId, entry);
      }
    }
    const encoder = result.encoder;
    if (!encoder) throw fail('NO_MODEL', 'The dataset cannot be encoded without a tokenizer.', 'Load a model first.');
    if (!result.train.length) {
      const r = result.report;
      throw fail(
        'BAD_DATASET',
        `"${entry.name}" has no valid training records (${r.total} read, ${r.errorCount} rejected${r.split.val ? `, ${r.split.val} held out` : ''}).`,
        r.errorCount ? 'Fix the rejected lines (the dataset report lists them with line numbers) or pick another file.' : 'Add examples to the file (one JSON object per line).',
      );
    }
    const frozen: FrozenInspectOptions = { ...options, stop: { stopTokenId: encoder.stop.stopTokenId, stopStrings: [...encoder.stop.stopStrings] } };
    return {
      datasetId,
      name: entry.name,
      fingerprint: entry.fingerprint,
      valDatasetId: entry.validation?.id ?? null,
      result,
      encoder,
      requested: entry.options,
      frozen,
      train: toExamples(encoder, result.train),
      val: toExamples(encoder, result.val),
    };
  }

  /** `dataset-text`: the dataset's text as it was given (to fix records and save a new version). */
  async text(datasetId: string): Promise<{ datasetId: string; name: string; fingerprint: string; text: string }> {
    if (typeof datasetId !== 'string' || !datasetId) throw fail('BAD_REQUEST', 'dataset-text needs a datasetId.');
    const entry = this.entries.get(datasetId) ?? (await this.loadStored(datasetId));
    const source = entry.input instanceof Blob ? slicedBlobSource(entry.input, entry.name) : entry.input;
    const bytes = new Uint8Array(await new Response(source.stream()).arrayBuffer());
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw fail('BAD_DATASET', `"${entry.name}" is not UTF-8 text, so its records cannot be edited here.`, 'Fix the file in an editor and add it again.');
    }
    return { datasetId, name: entry.name, fingerprint: entry.fingerprint, text };
  }

  /** Forgets what was measured with a model (it was unloaded). */
  forgetModel(): void {
    for (const e of this.entries.values()) e.inspected = null;
  }

  private key(options: InspectDataOptions, validation: string | null): string {
    return JSON.stringify([options, validation]);
  }

  private async loadStored(datasetId: string): Promise<DatasetEntry> {
    if (datasetId.startsWith('mem-')) {
      throw fail('BAD_DATASET', 'This dataset was not stored and is gone since the page was reloaded.', 'Add the file again (inspect-data) and train on the new id.');
    }
    const store = await this.deps.store();
    let loaded;
    try {
      loaded = await store.datasets.load(datasetId);
    } catch (e) {
      const pe = toProtocolError(e);
      if (pe.code === 'NOT_FOUND') throw fail('BAD_DATASET', `The dataset ${datasetId} is no longer stored in this browser.`, 'Add the file again (inspect-data), then resume with its new datasetId.');
      throw e;
    }
    // After a reload the doctor's options are those of the newest run trained on this file (the stop token
    // is measured again: it belongs to the model), else the defaults.
    let options: InspectDataOptions = {};
    let validation: DatasetEntry['validation'] = null;
    const job = (await store.runs.list()).map((r) => parseJob(r.config)).find((j) => j?.data.datasetId === datasetId);
    if (job) {
      options = job.data.requested ?? {};
      if (job.data.valDatasetId) validation = await this.loadValidation(job.data.valDatasetId).catch(() => null);
    }
    const entry: DatasetEntry = {
      id: datasetId,
      name: loaded.info.name,
      fingerprint: loaded.info.fingerprint,
      input: sourceOf(loaded.bytes, loaded.info.name),
      validation,
      options,
      inspected: null,
    };
    this.entries.set(datasetId, entry);
    return entry;
  }

  private async loadValidation(id: string): Promise<{ id: string; name: string; input: DataInput }> {
    const known = this.entries.get(id);
    if (known) return { id, name: known.name, input: known.input };
    for (const e of this.entries.values()) if (e.validation?.id === id) return e.validation as { id: string; name: string; input: DataInput };
    const store = await this.deps.store();
    try {
      const loaded = await store.datasets.load(id);
      return { id, name: loaded.info.name, input: sourceOf(loaded.bytes, loaded.info.name) };
    } catch (e) {
      const pe = toProtocolError(e);
      if (pe.code === 'NOT_FOUND') throw fail('BAD_DATASET', `The run's validation file (${id}) is no longer stored in this browser.`, 'Add the files again (inspect-data) and start a new run.');
      throw e;
    }
  }
}

/**
 * A Blob read in slices of a fixed size. Blob.stream() chunking is up to the platform (Node hands out a
 * whole in-memory Blob at once); fixed slices keep the parser's work per chunk small, so the worker
 * answers other requests between chunks whatever the file size.
 */
export function slicedBlobSource(blob: Blob, name: string, sliceBytes = 256 * 1024): DataSource {
  return {
    name,
    size: blob.size,
    stream: () => {
      let off = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (off >= blob.size) {
            controller.close();
            return;
          }
          const end = Math.min(off + sliceBytes, blob.size);
          const bytes = new Uint8Array(await blob.slice(off, end).arrayBuffer());
          off = end;
          controller.enqueue(bytes);
        },
      });
    },
  };
}

function sourceOf(bytes: Uint8Array, name: string): DataSource {
  return bytesSource(bytes, name);
}
