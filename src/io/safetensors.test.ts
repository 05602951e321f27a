import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SafetensorsError,
  SafetensorsFile,
  f16ToF32,
  f32ToBF16,
  f32ToF16,
  writeSafetensors,
  writeShardedSafetensors,
  type FloatDType,
  type TensorToWrite,
} from './safetensors';
import { readHFModelFiles } from './hf-folder';
import type { ModelSource } from './source';

// ---------- helpers ----------

const f32 = (xs: number[]) => Float32Array.from(xs);
const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const fromBits = (u: number) => new Float32Array(Uint32Array.of(u >>> 0).buffer)[0]!;
const bf16ToF32 = (b: number) => fromBits(b << 16);

/** Same value, with -0 and NaN compared exactly (toEqual on typed arrays treats them loosely). */
function expectSameFloats(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

function headerLength(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
}

function memorySource(files: Map<string, Uint8Array>): ModelSource {
  return { label: 'memory', read: async (p) => files.get(p) ?? null };
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

// All finite non-negative half values in increasing order (bit patterns 0x0000..0x7bff are monotonic).
const HALF_FINITE = Array.from({ length: 0x7c00 }, (_, h) => f16ToF32(h));

// ---------- float conversions ----------

describe('f16 conversion', () => {
  it('encodes well-known values to the published bit patterns', () => {
    expect(f32ToF16(0)).toBe(0x0000);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(0.5)).toBe(0x3800);
    expect(f32ToF16(65504)).toBe(0x7bff); // largest finite half
    expect(f32ToF16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    const nan = f32ToF16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
    // A signalling NaN whose payload sits only in the low bits must stay NaN, not become infinity.
    expect(Number.isNaN(f16ToF32(f32ToF16(fromBits(0x7f800001))))).toBe(true);
  });

  it('round-trips every half bit pattern exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        continue;
      }
      if (f32ToF16(v) !== h) throw new Error(`half 0x${h.toString(16)} -> ${v} -> 0x${f32ToF16(v).toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even, across normals, subnormals and into infinity', () => {
    // For each pair of neighbouring halves: the exact midpoint goes to the even one, a hair either
    // side goes to the nearer one. Midpoints of halves are exact in float32 (12 significant bits).
    for (let h = 0; h < 0x7c00; h++) {
      const lo = HALF_FINITE[h]!;
      const hi = h + 1 < 0x7c00 ? HALF_FINITE[h + 1]! : 65536; // past 65504 the next "value" is 2^16 = inf
      const mid = (lo + hi) / 2;
      expect(Math.fround(mid)).toBe(mid);
      const even = h % 2 === 0 ? h : h + 1;
      const got = f32ToF16(mid);
      if (got !== even) throw new Error(`tie ${mid} between 0x${h.toString(16)} and next: got 0x${got.toString(16)}`);
      const below = fromBits(bitsOf(mid) - 1);
      const above = fromBits(bitsOf(mid) + 1);
      if (mid > 0 && f32ToF16(below) !== h) throw new Error(`just below ${mid}: got 0x${f32ToF16(below).toString(16)}`);
      if (f32ToF16(above) !== h + 1) throw new Error(`just above ${mid}: got 0x${f32ToF16(above).toString(16)}`);
      // Negative values mirror positive ones with the sign bit set.
      if (mid > 0 && f32ToF16(-mid) !== (even | 0x8000)) throw new Error(`negative tie ${-mid}`);
    }
  });

  it('overflows to infinity and underflows to signed zero', () => {
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // the tie between 65504 and 2^16 rounds up to infinity
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(-1e6)).toBe(0xfc00);
    expect(f32ToF16(3.4e38)).toBe(0x7c00);
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal -> 0 (even)
    expect(f32ToF16(2 ** -26)).toBe(0x0000);
    expect(f32ToF16(-(2 ** -26))).toBe(0x8000);
    expect(f32ToF16(1e-45)).toBe(0x0000); // float32 subnormal input
    expect(f32ToF16(1.5 * 2 ** -24)).toBe(0x0002); // tie between 1 and 2 subnormal units -> 2 (even)
    expect(f32ToF16(1023.5 * 2 ** -24)).toBe(0x0400); // largest subnormal + half ulp -> smallest normal
  });
});

describe('bf16 conversion', () => {
  it('round-trips every bf16 bit pattern exactly', () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = bf16ToF32(b);
      if (Number.isNaN(v)) {
        expect(Number.isNaN(bf16ToF32(f32ToBF16(v)))).toBe(true);
        continue;
      }
      if (f32ToBF16(v) !== b) throw new Error(`bf16 0x${b.toString(16)} -> ${v} -> 0x${f32ToBF16(v).toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even, including into infinity', () => {
    for (let b = 0; b < 0x10000; b++) {
      const exp = (b >> 7) & 0xff;
      if (exp === 0xff) continue; // inf / NaN have no upper neighbour to round to
      const tie = ((b << 16) | 0x8000) >>> 0;
      const even = b % 2 === 0 ? b : b + 1;
      const checks: Array<[number, number]> = [
        [tie, even],
        [tie + 1, b + 1],
        [tie - 1, b],
      ];
      for (const [bits, want] of checks) {
        const got = f32ToBF16(fromBits(bits));
        if (got !== want) throw new Error(`f32 0x${bits.toString(16)}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
      }
    }
    expect(f32ToBF16(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to +inf
    expect(f32ToBF16(-Infinity)).toBe(0xff80);
    const nan = f32ToBF16(fromBits(0x7f800001)); // NaN with payload only in the dropped bits
    expect(Number.isNaN(bf16ToF32(nan))).toBe(true);
  });
});

// ---------- file round trips ----------

describe('writeSafetensors / SafetensorsFile', () => {
  const f16Exact = [0, -0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, 3.140625, Infinity, -Infinity];
  const bf16Exact = [0, -0, 1, -2, 0.5, 3.140625, 2 ** -126, 2 ** -133, 3.3895313892515355e38, -1.875, Infinity, -Infinity];

  it('round-trips F32 exactly, keeping names, shapes and dtypes', () => {
    const data = f32([Math.fround(Math.PI), -0, 1e-40, 3.4028234663852886e38, -1.5, Infinity, NaN, 42]);
    const bytes = writeSafetensors([
      { name: 'w', dtype: 'F32', shape: [2, 4], data },
      { name: 'scalar', dtype: 'F32', shape: [], data: f32([7]) },
      { name: 'empty', dtype: 'F32', shape: [0, 3], data: f32([]) },
    ]);
    const st = new SafetensorsFile(bytes);
    expect(st.names()).toEqual(['w', 'scalar', 'empty']);
    expect(st.entry('w')).toMatchObject({ dtype: 'F32', shape: [2, 4] });
    expectSameFloats(st.getFloat32('w'), data);
    expectSameFloats(st.getFloat32('scalar'), [7]);
    expect(st.getFloat32('empty').length).toBe(0);
  });

  it('round-trips representable F16 and BF16 values exactly (incl. -0, subnormals, infinities) and NaN as NaN', () => {
    const bytes = writeSafetensors([
      { name: 'h', dtype: 'F16', shape: [f16Exact.length], data: f32(f16Exact) },
      { name: 'b', dtype: 'BF16', shape: [bf16Exact.length], data: f32(bf16Exact) },
      { name: 'nan', dtype: 'F16', shape: [1], data: f32([NaN]) },
      { name: 'bnan', dtype: 'BF16', shape: [1], data: f32([NaN]) },
    ]);
    const st = new SafetensorsFile(bytes);
    expect(st.entry('h')).toMatchObject({ dtype: 'F16', data_offsets: [0, 2 * f16Exact.length] });
    expectSameFloats(st.getFloat32('h'), f16Exact);
    expectSameFloats(st.getFloat32('b'), bf16Exact.map((x) => Math.fround(x)));
    expect(Number.isNaN(st.getFloat32('nan')[0]!)).toBe(true);
    expect(Number.isNaN(st.getFloat32('bnan')[0]!)).toBe(true);
  });

  it('rounds values that F16/BF16 cannot hold to nearest-even on write', () => {
    const xs = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 1e6, 2 ** -25, 3 * 2 ** -25];
    const ys = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, 0.1];
    const st = new SafetensorsFile(
      writeSafetensors([
        { name: 'h', dtype: 'F16', shape: [xs.length], data: f32(xs) },
        { name: 'b', dtype: 'BF16', shape: [ys.length], data: f32(ys) },
      ]),
    );
    expectSameFloats(st.getFloat32('h'), [1, 1 + 2 ** -9, Infinity, Infinity, 0, 2 ** -23]);
    // 3.4e38 is past the tie between bf16's largest finite value and 2^128, so it becomes infinity.
    expectSameFloats(st.getFloat32('b'), [1, 1 + 2 ** -6, Infinity, 0.10009765625]);
  });

  it('starts the data at an 8-byte boundary whatever the header length', () => {
    for (let len = 1; len <= 24; len++) {
      const bytes = writeSafetensors([{ name: 'x'.repeat(len), dtype: 'F16', shape: [3], data: f32([1, 2, 3]) }], len % 2 ? { format: 'pt' } : undefined);
      const n = headerLength(bytes);
      expect((8 + n) % 8).toBe(0);
      // Padding is spaces after the JSON, which the format allows; the header still parses.
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(text).toMatch(/^\{.*\} *$/);
      expect(() => JSON.parse(text)).not.toThrow();
      expect(bytes.byteLength).toBe(8 + n + 6);
    }
  });

  it('keeps string metadata', () => {
    const st = new SafetensorsFile(writeSafetensors([{ name: 'a', dtype: 'F32', shape: [1], data: f32([1]) }], { format: 'pt', note: 'hi' }));
    expect(st.metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(st.names()).toEqual(['a']);
  });

  it('refuses data whose length does not match the shape', () => {
    expect(() => writeSafetensors([{ name: 'a', dtype: 'F32', shape: [2, 2], data: f32([1, 2, 3]) }])).toThrow(/shape \[2,2\] has 4 elements but data has 3/);
  });
});

// ---------- the published byte layout ----------

describe('byte layout (https://huggingface.co/docs/safetensors)', () => {
  // Two tensors, built byte by byte: u64 LE header size, the JSON header, then the data buffer, with
  // data_offsets relative to the start of the data buffer (not of the file).
  const header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]}}';
  const padded = header + ' '.repeat((8 - ((8 + header.length) % 8)) % 8);
  const layout = new Uint8Array([
    ...[padded.length, 0, 0, 0, 0, 0, 0, 0],
    ...new TextEncoder().encode(padded),
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f LE
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f LE
    ...[0x00, 0x3c], // half 1.0 LE
    ...[0x00, 0xb8], // half -0.5 LE
  ]);

  it('reads a hand-built file', () => {
    const st = new SafetensorsFile(layout);
    expectSameFloats(st.getFloat32('a'), [1, -2]);
    expectSameFloats(st.getFloat32('b'), [1, -0.5]);
    expect(st.entry('b').shape).toEqual([1, 2]);
  });

  it('writes exactly those bytes', () => {
    const bytes = writeSafetensors([
      { name: 'a', dtype: 'F32', shape: [2], data: f32([1, -2]) },
      { name: 'b', dtype: 'F16', shape: [1, 2], data: f32([1, -0.5]) },
    ]);
    expect(Array.from(bytes)).toEqual(Array.from(layout));
  });

  it('reads a file whose header needs no padding and whose header length uses the high u32 as 0', () => {
    const h = '{"x":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}'; // 54 chars
    const text = h + ' '.repeat(2); // 8 + 56 = 64
    const bytes = new Uint8Array([56, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(text), 0xc0, 0x3f]); // bf16 1.5
    expectSameFloats(new SafetensorsFile(bytes).getFloat32('x'), [1.5]);
  });
});

// ---------- malformed input ----------

describe('malformed files', () => {
  const good = writeSafetensors([{ name: 'w', dtype: 'F32', shape: [4], data: f32([1, 2, 3, 4]) }]);

  it('rejects a file too short to hold the header length', () => {
    expect(() => new SafetensorsFile(good.subarray(0, 5), 'x.safetensors')).toThrow(SafetensorsError);
    expect(() => new SafetensorsFile(good.subarray(0, 5), 'x.safetensors')).toThrow(/x\.safetensors: file is 5 bytes, too short/);
  });

  it('rejects a header length past the end of the file (truncated in the header)', () => {
    const cut = good.subarray(0, 8 + headerLength(good) - 3);
    expect(() => new SafetensorsFile(cut)).toThrow(/header length \d+ does not fit .*truncated/);
  });

  it('rejects a zero or absurd header length', () => {
    const zero = good.slice();
    zero.fill(0, 0, 8);
    expect(() => new SafetensorsFile(zero)).toThrow(SafetensorsError);
    const huge = good.slice();
    huge.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00], 0);
    expect(() => new SafetensorsFile(huge)).toThrow(/does not fit/);
  });

  it('rejects a file truncated in the data', () => {
    expect(() => new SafetensorsFile(good.subarray(0, good.byteLength - 1))).toThrow(/tensor "w" has bad offsets or shape \(file truncated\?\)/);
  });

  it('rejects a header that is not JSON', () => {
    const bad = good.slice();
    bad[8] = 0x21; // '!' instead of '{'
    expect(() => new SafetensorsFile(bad)).toThrow(/header is not valid JSON/);
  });

  it('rejects offsets that do not match dtype and shape', () => {
    const h = '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}';
    const text = h + ' '.repeat((8 - ((8 + h.length) % 8)) % 8);
    const bytes = new Uint8Array(8 + text.length + 8);
    bytes[0] = text.length;
    bytes.set(new TextEncoder().encode(text), 8);
    expect(() => new SafetensorsFile(bytes)).toThrow(/tensor "w" is 8 bytes but F32\[3\] needs 12/);
  });

  it('rejects reversed offsets and a missing shape', () => {
    for (const entry of ['{"dtype":"F32","shape":[1],"data_offsets":[4,0]}', '{"dtype":"F32","data_offsets":[0,4]}']) {
      const h = `{"w":${entry}}`;
      const text = h + ' '.repeat((8 - ((8 + h.length) % 8)) % 8);
      const bytes = new Uint8Array(8 + text.length + 4);
      bytes[0] = text.length;
      bytes.set(new TextEncoder().encode(text), 8);
      expect(() => new SafetensorsFile(bytes)).toThrow(/tensor "w" has (bad offsets or shape|an invalid shape)/);
    }
  });

  it('names the tensor and the dtype when asked to decode an unsupported dtype', () => {
    const h = '{"q":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}';
    const text = h + ' '.repeat((8 - ((8 + h.length) % 8)) % 8);
    const bytes = new Uint8Array(8 + text.length + 4);
    bytes[0] = text.length;
    bytes.set(new TextEncoder().encode(text), 8);
    const st = new SafetensorsFile(bytes, 'q.safetensors');
    expect(() => st.getFloat32('q')).toThrow(/q\.safetensors: tensor "q" is stored as I8.*unquantized/);
    expect(() => st.getFloat32('nope')).toThrow(/no tensor named "nope"/);
  });
});

// ---------- shards ----------

describe('writeShardedSafetensors', () => {
  it('splits by size, writes an index, and reads back through readHFModelFiles', async () => {
    const tensors: TensorToWrite[] = [];
    const dtypes: FloatDType[] = ['F32', 'F16', 'BF16'];
    for (let i = 0; i < 7; i++) {
      const n = 10 + i;
      tensors.push({
        name: `model.layers.${i}.weight`,
        dtype: dtypes[i % 3]!,
        shape: [n],
        data: Float32Array.from({ length: n }, (_, j) => (j - 5) * 0.25), // exact in all three dtypes
      });
    }
    const { files, index } = writeShardedSafetensors(tensors, 60);
    expect(files.size).toBeGreaterThan(2);
    const names = [...files.keys()];
    expect(names[0]).toBe(`model-00001-of-${String(files.size).padStart(5, '0')}.safetensors`);
    expect(Object.keys(index.weight_map).sort()).toEqual(tensors.map((t) => t.name).sort());
    const bytesOf = (t: TensorToWrite) => t.data.length * (t.dtype === 'F32' ? 4 : 2);
    expect(index.metadata?.total_size).toBe(tensors.reduce((a, t) => a + bytesOf(t), 0));
    for (const [name, bytes] of files) {
      const st = new SafetensorsFile(bytes, name);
      const size = st.names().reduce((a, n) => a + bytesOf(tensors.find((t) => t.name === n)!), 0);
      // A shard only goes over the limit when a single tensor is larger than it.
      expect(size <= 60 || st.names().length === 1).toBe(true);
      expect(st.metadata).toEqual({ format: 'pt' });
    }

    const folder = new Map<string, Uint8Array>(files);
    folder.set('model.safetensors.index.json', json(index));
    folder.set('config.json', json({ model_type: 'llama' }));
    const model = await readHFModelFiles(memorySource(folder));
    expect([...model.weights.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    for (const t of tensors) {
      const w = model.weights.get(t.name)!;
      expect(w.dtype).toBe(t.dtype);
      expect(w.shape).toEqual(t.shape);
      expectSameFloats(w.data, t.data);
    }
    expect(model.weightBytes).toBe([...files.values()].reduce((a, b) => a + b.byteLength, 0));
  });
});

// ---------- an independent reader and writer (python3 with json + struct + numpy only) ----------

const PYTHON_OK = spawnSync('python3', ['-c', 'import json, struct, numpy'], { encoding: 'utf8' }).status === 0;

// read <file>: parses a safetensors file from the spec alone and prints what it found.
// write <file> <bits.json>: writes F32 and F16 tensors (F16 rounded by numpy) for our reader.
const PY = String.raw`
import json, struct, sys
import numpy as np
mode, path = sys.argv[1], sys.argv[2]
NP = {'F32': '<f4', 'F16': '<f2'}
if mode == 'read':
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', None)
    data = raw[8 + n:]
    spans = sorted(tuple(e['data_offsets']) for e in header.values())
    contiguous = spans[0][0] == 0 and spans[-1][1] == len(data) and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    out = {}
    for name, e in header.items():
        b, end = e['data_offsets']
        chunk = data[b:end]
        if e['dtype'] == 'BF16':
            vals = (np.frombuffer(chunk, '<u2').astype(np.uint32) << 16).view('<f4')
        else:
            vals = np.frombuffer(chunk, NP[e['dtype']]).astype(np.float32)
        size = int(np.prod(e['shape'])) * (4 if e['dtype'] == 'F32' else 2)
        out[name] = {'dtype': e['dtype'], 'shape': e['shape'], 'sized': size == end - b, 'values': [repr(float(v)) for v in vals]}
    print(json.dumps({'aligned': (8 + n) % 8 == 0, 'contiguous': contiguous, 'metadata': meta, 'tensors': out}))
else:
    values = np.array(json.load(open(sys.argv[3])), dtype=np.uint32).view(np.float32)  # float32 bit patterns
    blobs = {'f32': values.astype('<f4').tobytes(), 'f16': values.astype(np.float16).astype('<f2').tobytes()}
    header, off = {}, 0
    for name, dtype in (('f32', 'F32'), ('f16', 'F16')):
        header[name] = {'dtype': dtype, 'shape': [len(values)], 'data_offsets': [off, off + len(blobs[name])]}
        off += len(blobs[name])
    h = json.dumps(header).encode('utf-8')
    h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + blobs['f32'] + blobs['f16'])
`;

const pyNumber = (s: string) => (s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s));

describe.skipIf(!PYTHON_OK)('cross-check with an independent python reader/writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabtune-st-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function python(...args: string[]): string {
    const r = spawnSync('python3', ['-c', PY, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
    return r.stdout;
  }

  // Values that exercise rounding: ties, subnormals, overflow, signs.
  const values = [0, -0, 1, -1.5, Math.PI, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 1e5, -1e5, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1e-8, 0.1, -0.3333, Infinity, -Infinity, NaN];

  it('python parses what writeSafetensors wrote, with the same values', () => {
    const data = f32(values);
    const file = join(dir, 'ours.safetensors');
    writeFileSync(
      file,
      writeSafetensors(
        [
          { name: 'f32', dtype: 'F32', shape: [data.length], data },
          { name: 'f16', dtype: 'F16', shape: [1, data.length], data },
          { name: 'bf16', dtype: 'BF16', shape: [data.length, 1], data },
        ],
        { format: 'pt' },
      ),
    );
    const res = JSON.parse(python('read', file));
    expect(res.aligned).toBe(true);
    expect(res.contiguous).toBe(true);
    expect(res.metadata).toEqual({ format: 'pt' });
    const ours = new SafetensorsFile(readFileSync(file));
    for (const [name, shape] of [['f32', [values.length]], ['f16', [1, values.length]], ['bf16', [values.length, 1]]] as const) {
      const t = res.tensors[name];
      expect(t.dtype).toBe(name.toUpperCase());
      expect(t.shape).toEqual(shape);
      expect(t.sized).toBe(true);
      expectSameFloats((t.values as string[]).map(pyNumber), ours.getFloat32(name));
    }
    expectSameFloats(ours.getFloat32('f32'), data);
  });

  it('our reader parses what python wrote, and numpy rounds to F16 exactly as f32ToF16 does', () => {
    // Plus every tie and near-tie between neighbouring halves in a slice of the range.
    const extra: number[] = [];
    for (let h = 0; h < 0x7c00; h += 37) {
      const mid = (HALF_FINITE[h]! + (HALF_FINITE[h + 1] ?? 65536)) / 2;
      extra.push(mid, fromBits(bitsOf(mid) + 1), -mid);
    }
    const all = [...values, ...extra];
    // Passed as float32 bit patterns so -0, infinities and NaN survive the trip through JSON.
    const vfile = join(dir, 'bits.json');
    writeFileSync(vfile, JSON.stringify(all.map(bitsOf)));
    const file = join(dir, 'theirs.safetensors');
    python('write', file, vfile);
    const st = new SafetensorsFile(readFileSync(file));
    const data = f32(all);
    expectSameFloats(st.getFloat32('f32'), data);
    const ourRounding = Array.from(data, (v) => f16ToF32(f32ToF16(v)));
    expectSameFloats(st.getFloat32('f16'), ourRounding);
  });
});
