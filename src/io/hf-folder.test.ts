import { describe, expect, it } from 'vitest';
import { ModelLoadError, type ModelErrorCode } from '../model/types';
import { DEFAULT_MAX_MODEL_BYTES, readHFModelFiles, type HFReadProgress } from './hf-folder';
import { f32ToBF16, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from './safetensors';
import type { ModelSource, ProgressFn } from './source';

// ---------- helpers ----------

const enc = new TextEncoder();
const json = (v: unknown) => enc.encode(JSON.stringify(v));
const f32 = (xs: number[]) => Float32Array.from(xs);

/** An in-memory folder. Reports a file's size up front (like File.size or content-length) and records reads. */
class MemorySource implements ModelSource {
  readonly label = 'test-folder';
  readonly reads: string[] = [];
  readonly files: Map<string, Uint8Array>;
  constructor(files: Record<string, Uint8Array | string>, private readonly chunk = 0) {
    this.files = new Map(Object.entries(files).map(([k, v]) => [k, typeof v === 'string' ? enc.encode(v) : v]));
  }
  async read(path: string, onProgress?: ProgressFn) {
    this.reads.push(path);
    const bytes = this.files.get(path);
    if (!bytes) return null;
    onProgress?.({ file: path, loaded: 0, total: bytes.byteLength });
    // Optionally deliver progress in chunks, like a download.
    if (this.chunk > 0) for (let i = this.chunk; i < bytes.byteLength; i += this.chunk) onProgress?.({ file: path, loaded: i, total: bytes.byteLength });
    onProgress?.({ file: path, loaded: bytes.byteLength, total: bytes.byteLength });
    return bytes;
  }
}

/** The same, plus a cheap existence probe (like urlSource's HEAD request). */
class ProbingMemorySource extends MemorySource {
  readonly probes: string[] = [];
  async exists(path: string) {
    this.probes.push(path);
    return this.files.has(path);
  }
}

async function loadError(p: Promise<unknown>): Promise<ModelLoadError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelLoadError);
    return e as ModelLoadError;
  }
  throw new Error('expected readHFModelFiles to fail');
}

async function expectCode(p: Promise<unknown>, code: ModelErrorCode, message: RegExp): Promise<ModelLoadError> {
  const e = await loadError(p);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(message);
  return e;
}

/** A safetensors file built by hand, for dtypes writeSafetensors refuses to write. */
function handBuilt(entries: Record<string, { dtype: string; shape: number[]; bytes: number[] }>): Uint8Array {
  const header: Record<string, unknown> = {};
  const data: number[] = [];
  for (const [name, e] of Object.entries(entries)) {
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [data.length, data.length + e.bytes.length] };
    data.push(...e.bytes);
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - ((8 + text.length) % 8)) % 8);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setUint32(0, text.length, true);
  out.set(enc.encode(text), 8);
  out.set(data, 8 + text.length);
  return out;
}

const CONFIG = { model_type: 'llama', hidden_size: 4, vocab_size: 8 };
const tiny = () => writeSafetensors([{ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 2], data: f32([1, 2, 3, 4]) }]);

// ---------- tests ----------

describe('readHFModelFiles', () => {
  it('reads a complete folder with a single model.safetensors', async () => {
    const src = new MemorySource({
      'config.json': JSON.stringify(CONFIG),
      'model.safetensors': tiny(),
      'tokenizer.json': '{"model":{"type":"BPE"}}',
      'tokenizer_config.json': '\uFEFF{"eos_token":"</s>"}', // a BOM is tolerated
      'generation_config.json': '{"temperature":0.7}',
    });
    const m = await readHFModelFiles(src);
    expect(m.config).toEqual(CONFIG);
    expect(m.tokenizerJson).toEqual({ model: { type: 'BPE' } });
    expect(m.tokenizerConfig).toEqual({ eos_token: '</s>' });
    expect(m.generationConfig).toEqual({ temperature: 0.7 });
    expect(m.weightBytes).toBe(src.files.get('model.safetensors')!.byteLength);
    const w = m.weights.get('model.embed_tokens.weight')!; // names kept exactly as stored
    expect(w).toEqual({ shape: [2, 2], data: f32([1, 2, 3, 4]), dtype: 'F32' });
  });

  it('returns null for missing optional files', async () => {
    const m = await readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': tiny() }));
    expect(m.tokenizerJson).toBeNull();
    expect(m.tokenizerConfig).toBeNull();
    expect(m.generationConfig).toBeNull();
  });

  it('requires config.json', async () => {
    const src = new MemorySource({ 'model.safetensors': tiny() });
    const e = await expectCode(readHFModelFiles(src), 'MISSING_FILE', /config\.json not found in test-folder: a Hugging Face model folder needs config\.json/);
    expect(e.hint).toBeTruthy();
    expect(src.reads).toEqual(['config.json']); // nothing else is downloaded
  });

  it('refuses quantized configs', async () => {
    const src = new MemorySource({
      'config.json': JSON.stringify({ ...CONFIG, quantization_config: { quant_method: 'gptq', bits: 4 } }),
      'model.safetensors': tiny(),
    });
    const e = await expectCode(readHFModelFiles(src), 'UNSUPPORTED_MODEL', /quantized weights \(gptq\)/);
    expect(e.hint).toMatch(/unquantized checkpoint/);
    expect(src.reads).toEqual(['config.json']);
  });

  it('refuses integer / quantized tensors, naming the tensor and dtype', async () => {
    const weights = handBuilt({
      'model.norm.weight': { dtype: 'F32', shape: [1], bytes: [0, 0, 0x80, 0x3f] },
      'model.layers.0.q_proj.qweight': { dtype: 'I8', shape: [2, 2], bytes: [1, 2, 3, 4] },
    });
    const e = await expectCode(
      readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': weights })),
      'UNSUPPORTED_MODEL',
      /model\.safetensors: tensor "model\.layers\.0\.q_proj\.qweight" is stored as I8/,
    );
    expect(e.hint).toMatch(/unquantized/);
  });

  it('explains that PyTorch .bin checkpoints are not supported, probing instead of downloading', async () => {
    const bin = new Uint8Array(100);
    const plain = new MemorySource({ 'config.json': '{}', 'pytorch_model.bin': bin });
    const e = await expectCode(readHFModelFiles(plain), 'UNSUPPORTED_MODEL', /PyTorch \.bin weights \(pytorch_model\.bin\)/);
    expect(e.hint).toMatch(/[Cc]onvert .*safetensors/);

    const probing = new ProbingMemorySource({ 'config.json': '{}', 'pytorch_model.bin': bin });
    await expectCode(readHFModelFiles(probing), 'UNSUPPORTED_MODEL', /not support/);
    expect(probing.probes).toContain('pytorch_model.bin');
    expect(probing.reads).not.toContain('pytorch_model.bin');

    const sharded = new ProbingMemorySource({ 'config.json': '{}', 'pytorch_model.bin.index.json': '{}' });
    await expectCode(readHFModelFiles(sharded), 'UNSUPPORTED_MODEL', /PyTorch \.bin/);
  });

  it('says which weight files it expected when there are none', async () => {
    await expectCode(readHFModelFiles(new MemorySource({ 'config.json': '{}' })), 'MISSING_FILE', /expected model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('names the file with bad JSON', async () => {
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors.index.json']) {
      const files: Record<string, Uint8Array | string> = { 'config.json': '{}', 'model.safetensors': tiny(), [file]: '{"a": 1,,}' };
      if (file === 'model.safetensors.index.json') delete files['model.safetensors'];
      const e = await expectCode(readHFModelFiles(new MemorySource(files)), 'BAD_CONFIG', new RegExp(`^${file.replace(/\./g, '\\.')} is not valid JSON`));
      expect(e.hint).toBeTruthy();
    }
    await expectCode(readHFModelFiles(new MemorySource({ 'config.json': '[1,2]', 'model.safetensors': tiny() })), 'BAD_CONFIG', /config\.json should contain a JSON object/);
  });

  it('refuses a corrupt or truncated weight file', async () => {
    const w = tiny();
    await expectCode(
      readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': w.subarray(0, w.byteLength - 2) })),
      'BAD_TENSOR',
      /model\.safetensors: tensor "model\.embed_tokens\.weight" has bad offsets/,
    );
    // A header that is valid JSON but not an object.
    const nul = new Uint8Array(16);
    nul.set([8, 0, 0, 0, 0, 0, 0, 0, ...enc.encode('null    ')]);
    await expectCode(readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': nul })), 'BAD_TENSOR', /model\.safetensors/);
    const negative = handBuilt({ w: { dtype: 'F16', shape: [-1, -2], bytes: [0, 0, 0, 0] } });
    await expectCode(readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': negative })), 'BAD_TENSOR', /tensor "w" has an invalid shape \[-1,-2\]/);
  });

  describe('size limit', () => {
    it('defaults to 1.5 GiB', () => {
      expect(DEFAULT_MAX_MODEL_BYTES).toBe(1.5 * 1024 ** 3);
    });

    it('refuses a weight file over maxBytes before reading it, with the size in MB and the limit', async () => {
      let delivered = false;
      const src: ModelSource = {
        label: 'big',
        async read(path, onProgress) {
          if (path === 'config.json') return json(CONFIG);
          if (path !== 'model.safetensors') return null;
          onProgress?.({ file: path, loaded: 0, total: 3 * 1024 ** 2 }); // announced size, e.g. content-length
          delivered = true;
          return new Uint8Array(3 * 1024 ** 2);
        },
      };
      const e = await expectCode(readHFModelFiles(src, { maxBytes: 2 * 1024 ** 2 }), 'TOO_LARGE', /model\.safetensors is 3\.0 MB, more than the 2\.0 MB limit/);
      expect(delivered).toBe(false); // the throw from onProgress stopped the read
      expect(e.hint).toBeTruthy();
    });

    it('also checks sources that report no progress', async () => {
      const src: ModelSource = { label: 'quiet', read: async (p) => (p === 'config.json' ? json({}) : p === 'model.safetensors' ? tiny() : null) };
      await expectCode(readHFModelFiles(src, { maxBytes: 10 }), 'TOO_LARGE', /model\.safetensors is 0\.0 MB, more than/);
    });

    it('refuses an index whose total_size is over maxBytes without reading any shard', async () => {
      const src = new MemorySource({
        'config.json': '{}',
        'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: 5 * 1024 ** 3 }, weight_map: { a: 'model-00001-of-00002.safetensors' } }),
      });
      await expectCode(readHFModelFiles(src), 'TOO_LARGE', /total_size in model\.safetensors\.index\.json\) is 5120\.0 MB, more than the 1536\.0 MB limit/);
      expect(src.reads.some((r) => r.startsWith('model-'))).toBe(false);
    });

    it('counts shards together when the index has no total_size', async () => {
      const t = (name: string): TensorToWrite => ({ name, dtype: 'F32', shape: [64], data: new Float32Array(64) });
      const { files, index } = writeShardedSafetensors([t('a'), t('b'), t('c')], 256);
      delete index.metadata;
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': JSON.stringify(index), ...Object.fromEntries(files) });
      const one = files.values().next().value!.byteLength;
      await expectCode(readHFModelFiles(src, { maxBytes: one * 2 + 10 }), 'TOO_LARGE', /The weights read so far \(up to model-00003-of-00003\.safetensors\)/);
    });
  });

  describe('checkpoints stored in half precision', () => {
    it('decodes F16 weights to the right float32 values', async () => {
      const values = [0, -0, 1, -2.5, 0.333251953125, 65504, 2 ** -24, -Infinity];
      const src = new MemorySource({
        'config.json': '{}',
        'model.safetensors': writeSafetensors([{ name: 'lm_head.weight', dtype: 'F16', shape: [2, 4], data: f32(values) }]),
      });
      const w = (await readHFModelFiles(src)).weights.get('lm_head.weight')!;
      expect(w.dtype).toBe('F16');
      expect(w.shape).toEqual([2, 4]);
      expect(Array.from(w.data)).toEqual(values);
      expect(Object.is(w.data[1], -0)).toBe(true);
    });

    it('decodes BF16 weights (hand-encoded bytes) to the right float32 values', async () => {
      // bf16 is the top half of a float32: 1.0 = 0x3f80, -2.0 = 0xc000, 0.15625 = 0x3e20, 3.0e38 ~ 0x7f62.
      const weights = handBuilt({ 'model.norm.weight': { dtype: 'BF16', shape: [4], bytes: [0x80, 0x3f, 0x00, 0xc0, 0x20, 0x3e, 0x62, 0x7f] } });
      const w = (await readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': weights }))).weights.get('model.norm.weight')!;
      expect(w.dtype).toBe('BF16');
      expect(Array.from(w.data)).toEqual([1, -2, 0.15625, new Float32Array(new Uint32Array([0x7f620000]).buffer)[0]]);
      expect(f32ToBF16(0.15625)).toBe(0x3e20);
    });
  });

  describe('sharded checkpoints', () => {
    const tensors: TensorToWrite[] = ['a', 'b', 'c', 'd'].map((name, i) => ({
      name: `model.layers.${i}.${name}`,
      dtype: i % 2 ? 'BF16' : 'F16',
      shape: [3, 2],
      data: f32([i, 0.5, -1, 2, 4, -8]),
    }));
    const sharded = () => writeShardedSafetensors(tensors, 24);

    it('reads every shard exactly once', async () => {
      const { files, index } = sharded();
      expect(files.size).toBe(2);
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': JSON.stringify(index), ...Object.fromEntries(files) });
      const m = await readHFModelFiles(src);
      expect(m.weights.size).toBe(4);
      for (const t of tensors) expect(m.weights.get(t.name)).toEqual({ shape: t.shape, data: t.data, dtype: t.dtype });
      for (const f of files.keys()) expect(src.reads.filter((r) => r === f)).toHaveLength(1);
    });

    it('reports a shard missing from the folder', async () => {
      const { files, index } = sharded();
      const [first, second] = [...files.keys()];
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': JSON.stringify(index), [first!]: files.get(first!)! });
      await expectCode(readHFModelFiles(src), 'MISSING_FILE', new RegExp(`${second!.replace(/\./g, '\\.')} not found in test-folder, but model\\.safetensors\\.index\\.json lists it`));
    });

    it('checks every weight_map entry against its shard', async () => {
      const { files, index } = sharded();
      const [first] = [...files.keys()];
      index.weight_map['model.layers.9.ghost'] = first!;
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': JSON.stringify(index), ...Object.fromEntries(files) });
      await expectCode(readHFModelFiles(src), 'BAD_TENSOR', /model-00001-of-00002\.safetensors has no tensor "model\.layers\.9\.ghost"/);
    });

    it('refuses an index without a weight_map', async () => {
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': '{"metadata":{}}' });
      await expectCode(readHFModelFiles(src), 'BAD_CONFIG', /model\.safetensors\.index\.json has no "weight_map"/);
    });
  });

  describe('progress', () => {
    it('rises monotonically to exactly 1 for a single file', async () => {
      const big = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4096], data: new Float32Array(4096) }]);
      const events: HFReadProgress[] = [];
      await readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': big, 'tokenizer.json': '{}' }, 512), { onProgress: (p) => events.push(p) });
      const fractions = events.map((e) => e.fraction);
      expect(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!)).toBe(true);
      expect(fractions.at(-1)).toBe(1);
      expect(fractions.filter((f) => f === 1)).toHaveLength(1); // 1 only once everything is done
      expect(fractions.some((f) => f > 0.4 && f < 0.6)).toBe(true); // intermediate events for the weights
      expect(events.some((e) => e.file === 'config.json')).toBe(true);
      expect(events.some((e) => e.file === 'tokenizer.json')).toBe(true);
      const w = events.filter((e) => e.file === 'model.safetensors' && e.fraction < 1);
      expect(w.every((e) => e.total === big.byteLength && e.loaded <= big.byteLength)).toBe(true);
    });

    it('spreads over shards using the index total_size', async () => {
      const t = (name: string): TensorToWrite => ({ name, dtype: 'F32', shape: [256], data: new Float32Array(256) });
      const { files, index } = writeShardedSafetensors([t('a'), t('b'), t('c'), t('d')], 1024);
      expect(files.size).toBe(4);
      const events: HFReadProgress[] = [];
      const src = new MemorySource({ 'config.json': '{}', 'model.safetensors.index.json': JSON.stringify(index), ...Object.fromEntries(files) }, 128);
      await readHFModelFiles(src, { onProgress: (p) => events.push(p) });
      const fractions = events.map((e) => e.fraction);
      expect(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!)).toBe(true);
      expect(fractions.at(-1)).toBe(1);
      // When the second shard starts, about a quarter of the weights are done.
      const secondStart = events.find((e) => e.file === 'model-00002-of-00004.safetensors')!;
      expect(secondStart.fraction).toBeGreaterThan(0.2);
      expect(secondStart.fraction).toBeLessThan(0.3);
    });

    it('is thinned for many small chunks', async () => {
      const big = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [1 << 18], data: new Float32Array(1 << 18) }]); // 1 MiB
      let count = 0;
      await readHFModelFiles(new MemorySource({ 'config.json': '{}', 'model.safetensors': big }, 16), { onProgress: () => count++ });
      expect(count).toBeLessThan(1100); // 65536 chunks -> about one event per 0.1 %
      expect(count).toBeGreaterThan(100);
    });
  });
});
