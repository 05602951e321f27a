// Reads a Hugging Face model folder (config, safetensors weights, tokenizer files) from any ModelSource
// into HFModelFiles. Weights are decoded to float32 and keep their names exactly as stored in the file.
// Every failure a user can meet is a ModelLoadError whose message names the file at fault.

import { ModelLoadError, type HFModelFiles, type WeightMap } from '../model/types';
import { SafetensorsFile, type SafetensorsIndex } from './safetensors';
import type { ModelSource, ProgressFn } from './source';
import { canProbe } from './sources';

export interface HFReadProgress {
  /** The file being read. */
  file: string;
  /** Bytes of that file read so far, and its size when known. */
  loaded: number;
  total: number | null;
  /**
   * Overall progress over all files, 0..1; reaches exactly 1 once everything is read and decoded. That last
   * event names the last weight file and carries the total weight bytes as loaded and total.
   */
  fraction: number;
}

export interface ReadHFOptions {
  /** Called with config.json before the weights are read; throw to stop (e.g. an unsupported model_type). */
  checkConfig?: (config: Record<string, unknown>) => void;
  onProgress?: (p: HFReadProgress) => void;
  /** Largest checkpoint (weight bytes on disk) to accept; default DEFAULT_MAX_MODEL_BYTES. */
  maxBytes?: number;
}

/** 1.5 GiB: beyond this a tab is likely to run out of memory once weights are float32 and training starts. */
export const DEFAULT_MAX_MODEL_BYTES = 1.5 * 1024 ** 3;

const SUPPORTED_DTYPES = new Set(['F32', 'F16', 'BF16']);
const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

const toMB = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MB`;

/**
 * Turns per-file byte counts into one overall fraction. Weights dominate the download, so the fraction is
 * the share of weight bytes read (or of weight files, when sizes are unknown); the small JSON files report
 * the current fraction unchanged. It only grows, stays below 1 until finish(), and events are thinned to
 * about one per 0.1% so a 1 GB download does not flood a worker's postMessage.
 */
class ProgressTracker {
  private fraction = 0;
  private lastFraction = -1;
  private lastFile = '';

  constructor(private readonly cb?: (p: HFReadProgress) => void) {}

  private emit(file: string, loaded: number, total: number | null, fraction: number, force = false): void {
    if (!this.cb) return;
    this.fraction = Math.max(this.fraction, Math.min(fraction, 0.999));
    const fileEnd = total !== null && loaded === total;
    if (!force && !fileEnd && file === this.lastFile && this.fraction - this.lastFraction < 0.001) return;
    this.lastFile = file;
    this.lastFraction = this.fraction;
    this.cb({ file, loaded, total, fraction: this.fraction });
  }

  /** Progress of a file that does not move the overall fraction (config, tokenizer, index). */
  other(): ProgressFn {
    return ({ file, loaded, total }) => this.emit(file, loaded, total, this.fraction);
  }

  /**
   * Progress of weight file `index` of `count`. With `totalBytes` (an index's total_size) the fraction is
   * (bytes of earlier files + loaded) / totalBytes; without, each file counts 1/count.
   */
  weight(index: number, count: number, doneBytes: number, totalBytes: number | null): ProgressFn {
    return ({ file, loaded, total }) => {
      const f =
        totalBytes && totalBytes > 0
          ? (doneBytes + loaded) / totalBytes
          : (index + (total && total > 0 ? loaded / total : 0)) / count;
      this.emit(file, loaded, total, f);
    };
  }

  finish(file: string, bytes: number): void {
    if (!this.cb) return;
    this.fraction = 1;
    this.lastFraction = 1;
    this.cb({ file, loaded: bytes, total: bytes, fraction: 1 });
  }
}

/** `what` reads as the subject of "… is N MB", e.g. "model.safetensors". */
function tooLarge(what: string, bytes: number, maxBytes: number): ModelLoadError {
  return new ModelLoadError(
    'TOO_LARGE',
    `${what} is ${toMB(bytes)}, more than the ${toMB(maxBytes)} limit for model files on this device`,
    'Choose a smaller model (tabtune is meant for models up to a few hundred million parameters).',
  );
}

/**
 * Reads one file, refusing it as soon as its size (announced or read so far) passes the limit; sources
 * that report the size up front (content-length, File.size, stat) are stopped before the bulk is read.
 */
async function readLimited(
  source: ModelSource,
  file: string,
  maxBytes: number,
  onProgress: ProgressFn,
  alreadyRead = 0,
): Promise<Uint8Array | null> {
  const check = (bytes: number) => {
    if (bytes > maxBytes) throw tooLarge(file, bytes, maxBytes);
    if (alreadyRead + bytes > maxBytes) throw tooLarge(`The weights read so far (up to ${file})`, alreadyRead + bytes, maxBytes);
  };
  const bytes = await source.read(file, (p) => {
    check(Math.max(p.loaded, p.total ?? 0));
    onProgress(p);
  });
  if (bytes) check(bytes.byteLength); // for sources that never report progress
  return bytes;
}

/** Parses a JSON object; BAD_CONFIG naming the file for invalid JSON or a non-object. */
function parseJsonObject(bytes: Uint8Array, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    const text = new TextDecoder().decode(bytes).replace(/^\uFEFF/, ''); // tolerate a UTF-8 BOM
    value = JSON.parse(text);
  } catch (e) {
    throw new ModelLoadError('BAD_CONFIG', `${file} is not valid JSON (${(e as Error).message})`, 'The file may be damaged: download it again.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelLoadError('BAD_CONFIG', `${file} should contain a JSON object`, 'The file may be damaged: download it again.');
  }
  return value as Record<string, unknown>;
}

async function readJson(source: ModelSource, file: string, maxBytes: number, progress: ProgressTracker): Promise<Record<string, unknown> | null> {
  const bytes = await readLimited(source, file, maxBytes, progress.other());
  return bytes ? parseJsonObject(bytes, file) : null;
}

/** Whether the source has a file, preferring a cheap probe (HEAD, stat) over downloading it. */
async function has(source: ModelSource, file: string): Promise<boolean> {
  if (canProbe(source)) return source.exists(file);
  return (await source.read(file)) !== null;
}

/**
 * Decodes every tensor of one safetensors file into `weights`. Dtypes are checked for the whole file before
 * anything is decoded, so an int8 checkpoint fails at once rather than after decoding the floats.
 */
function decodeFile(bytes: Uint8Array, file: string, weights: WeightMap): SafetensorsFile {
  let st: SafetensorsFile;
  try {
    st = new SafetensorsFile(bytes, file);
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new ModelLoadError(
      'BAD_TENSOR',
      msg.startsWith(file) ? msg : `${file}: not a valid safetensors file (${msg})`,
      'The file may be truncated or damaged: download it again.',
    );
  }
  for (const name of st.names()) {
    const { dtype, shape } = st.entry(name);
    // The reader accepts any numbers whose product matches the byte count, e.g. [-1, -4].
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ModelLoadError('BAD_TENSOR', `${file}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`, 'The file may be damaged: download it again.');
    }
    if (SUPPORTED_DTYPES.has(dtype)) continue;
    try {
      st.getFloat32(name); // throws the reader's own explanation for this dtype
    } catch (e) {
      throw new ModelLoadError('UNSUPPORTED_MODEL', (e as Error).message, 'Use an unquantized checkpoint with F32, F16 or BF16 weights.');
    }
    throw new ModelLoadError('UNSUPPORTED_MODEL', `${file}: tensor "${name}" is stored as ${dtype}, which tabtune cannot use`);
  }
  for (const name of st.names()) {
    if (weights.has(name)) {
      throw new ModelLoadError('BAD_TENSOR', `${file}: tensor "${name}" also appears in another weight file`, 'The checkpoint is inconsistent: download it again.');
    }
    const entry = st.entry(name);
    let data: Float32Array;
    try {
      data = st.getFloat32(name);
    } catch (e) {
      throw new ModelLoadError('BAD_TENSOR', (e as Error).message);
    }
    weights.set(name, { shape: [...entry.shape], data, dtype: entry.dtype });
  }
  return st;
}

/** Validates a parsed model.safetensors.index.json. */
function checkIndex(json: Record<string, unknown>): SafetensorsIndex {
  const map = json.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map) || Object.keys(map).length === 0) {
    throw new ModelLoadError('BAD_CONFIG', `${INDEX_FILE} has no "weight_map" object listing the tensors and their shard files`);
  }
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !shard) {
      throw new ModelLoadError('BAD_CONFIG', `${INDEX_FILE}: weight_map entry "${name}" should name a shard file`);
    }
  }
  const meta = json.metadata as { total_size?: unknown } | undefined;
  const total = meta && typeof meta === 'object' ? meta.total_size : undefined;
  return {
    metadata: typeof total === 'number' && Number.isFinite(total) && total > 0 ? { total_size: total } : {},
    weight_map: map as Record<string, string>,
  };
}

/**
 * Reads a Hugging Face model folder: config.json (required), the safetensors weights (model.safetensors,
 * or model.safetensors.index.json with its shards) and, when present, tokenizer.json,
 * tokenizer_config.json and generation_config.json.
 */
export async function readHFModelFiles(source: ModelSource, opts: ReadHFOptions = {}): Promise<HFModelFiles> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const progress = new ProgressTracker(opts.onProgress);

  // 1. config.json: required, and the first thing to tell an unusable folder apart.
  const config = await readJson(source, 'config.json', maxBytes, progress);
  if (!config) {
    throw new ModelLoadError(
      'MISSING_FILE',
      `config.json not found in ${source.label}: a Hugging Face model folder needs config.json next to its weights`,
      'Pick the folder that contains config.json, model.safetensors and tokenizer.json.',
    );
  }
  const quant = config.quantization_config;
  if (quant !== undefined && quant !== null) {
    const method = typeof quant === 'object' && typeof (quant as { quant_method?: unknown }).quant_method === 'string' ? ` (${(quant as { quant_method: string }).quant_method})` : '';
    throw new ModelLoadError(
      'UNSUPPORTED_MODEL',
      `config.json describes quantized weights${method}; tabtune trains float weights only`,
      'Use an unquantized checkpoint (F32, F16 or BF16 safetensors) of the same model.',
    );
  }

  // The caller can refuse the architecture before any weight is downloaded.
  opts.checkConfig?.(config);

  // 2. Weights.
  const weights: WeightMap = new Map();
  let weightBytes = 0;
  let lastFile = 'config.json';

  const single = await readLimited(source, SINGLE_FILE, maxBytes, progress.weight(0, 1, 0, null));
  if (single) {
    decodeFile(single, SINGLE_FILE, weights);
    weightBytes = single.byteLength;
    lastFile = SINGLE_FILE;
  } else {
    const indexJson = await readJson(source, INDEX_FILE, maxBytes, progress);
    if (!indexJson) {
      if ((await has(source, 'pytorch_model.bin')) || (await has(source, 'pytorch_model.bin.index.json'))) {
        throw new ModelLoadError(
          'UNSUPPORTED_MODEL',
          `${source.label} has PyTorch .bin weights (pytorch_model.bin), which tabtune does not support`,
          'Convert the checkpoint to safetensors (e.g. with the Hugging Face "convert to safetensors" Space), or pick a repository that has model.safetensors.',
        );
      }
      throw new ModelLoadError(
        'MISSING_FILE',
        `No weights in ${source.label}: expected ${SINGLE_FILE} or ${INDEX_FILE} with its shards`,
        'A Hugging Face model folder has config.json and safetensors weights.',
      );
    }
    const index = checkIndex(indexJson);
    const totalSize = index.metadata?.total_size ?? null;
    if (totalSize !== null && totalSize > maxBytes) throw tooLarge(`The checkpoint (total_size in ${INDEX_FILE})`, totalSize, maxBytes);

    // Each shard is read once, in the order the index first mentions it; its bytes are dropped after decoding.
    const shards = [...new Set(Object.values(index.weight_map))];
    for (const [i, shard] of shards.entries()) {
      const bytes = await readLimited(source, shard, maxBytes, progress.weight(i, shards.length, weightBytes, totalSize), weightBytes);
      if (!bytes) {
        throw new ModelLoadError('MISSING_FILE', `${shard} not found in ${source.label}, but ${INDEX_FILE} lists it as a weight shard`, 'Copy every shard file listed in the index.');
      }
      const st = decodeFile(bytes, shard, weights);
      for (const [name, file] of Object.entries(index.weight_map)) {
        if (file === shard && !st.has(name)) {
          throw new ModelLoadError('BAD_TENSOR', `${shard} has no tensor "${name}", but ${INDEX_FILE} says it does`, 'The shards do not match the index: download them again.');
        }
      }
      weightBytes += bytes.byteLength;
      lastFile = shard;
    }
  }
  if (weights.size === 0) throw new ModelLoadError('BAD_TENSOR', `The weights in ${source.label} contain no tensors`);

  // 3. Optional tokenizer and generation files.
  const tokenizerJson = await readJson(source, 'tokenizer.json', maxBytes, progress);
  const tokenizerConfig = await readJson(source, 'tokenizer_config.json', maxBytes, progress);
  const generationConfig = await readJson(source, 'generation_config.json', maxBytes, progress);

  progress.finish(lastFile, weightBytes);
  return { config, weights, tokenizerJson, tokenizerConfig, generationConfig, weightBytes };
}
