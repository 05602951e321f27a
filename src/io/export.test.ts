import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import type { LoraConfig } from '../train/config';
import { readDeltas } from '../lora/merge';
import { setupBackend } from '../model/backend';
import type { CausalLM } from '../model/causal-lm';
import { parseConfig } from '../model/config';
import { generateIds, type GenerateResult } from '../model/generate';
import { seededRandom } from '../util/random';
import { buildCausalLM, type LanguageModel } from '../model/load';
import { loadModel } from './load-model';
import { BUNDLED_BOS, BUNDLED_EOS, TINY_DIR } from '../testing/models';
import { trainStopAdapter } from '../testing/stop-adapter';
import { tinyConfig, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { configFromModel, exportMergedModel, ExportError, logitsReport, readBaseFiles, readTabtuneRecord, recordStops, type TabtuneRecord } from './export';
import { directorySource } from '../node/fs-source';
import { readHFModelFiles } from './hf-folder';
import { writeFolder } from '../node/hf-write';
import { exportPeftAdapter } from './peft';
import { SafetensorsFile, writeSafetensors } from './safetensors';
import { memorySource, unzipFiles, zipFiles, ZipError } from './zip';

const IDS = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const enc = new TextEncoder();

function trainedAdapter(lm: CausalLM, config: LoraConfig, seed = 7): LoraAdapter {
  const ad = new LoraAdapter(lm, config, { seed });
  const rand = seededRandom(seed + 1);
  for (const m of ad.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => (rand() - 0.5) * 0.6), m.B.shape));
  return ad;
}

function logits(lm: CausalLM, ids = IDS): Float32Array {
  const t = lm.forward(ids);
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** A tiny base folder as raw files: config.json, model.safetensors and stand-in tokenizer files. */
function tinyFolder(spec: TinySpec): Map<string, Uint8Array> {
  const w = tinyWeights(spec);
  return new Map([
    ['config.json', enc.encode(JSON.stringify({ ...tinyConfig(spec), torch_dtype: 'bfloat16', _name_or_path: 'tiny' }, null, 2))],
    ['model.safetensors', writeSafetensors([...w].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.data })), { format: 'pt' })],
    ['tokenizer.json', enc.encode('{"version": "1.0", "model": {"type": "BPE"}}')],
    ['tokenizer_config.json', enc.encode('{"bos_token": "<s>"}')],
    ['generation_config.json', enc.encode('{"bos_token_id": 1, "eos_token_id": 2}')],
    ['special_tokens_map.json', enc.encode('{}')],
  ]);
}

async function loadTiny(files: Map<string, Uint8Array>): Promise<CausalLM> {
  return buildCausalLM(await readHFModelFiles(memorySource(files)));
}

const CASES: [string, TinySpec, LoraConfig][] = [
  ['llama tied', { arch: 'llama', hidden: 16, tied: true, seed: 5 }, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }],
  ['llama untied', { arch: 'llama', hidden: 16, tied: false, seed: 6 }, { r: 2, lora_alpha: 16, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'] }],
  ['gpt2', { arch: 'gpt2', hidden: 16, seed: 8 }, { r: 4, lora_alpha: 4, lora_dropout: 0, target_modules: ['c_attn', 'c_proj', 'c_fc'] }],
];

describe('merged model export', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  for (const [label, spec, cfg] of CASES) {
    it(`reloads with the base + adapter logits (<= 1e-4): ${label}`, async () => {
      const baseFiles = tinyFolder(spec);
      const lm = await loadTiny(baseFiles);
      const ad = trainedAdapter(lm, cfg);
      const want = logits(lm);
      const out = exportMergedModel({ lm, baseFiles }, ad);

      expect([...out.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json']) expect(out.get(f)).toBe(baseFiles.get(f));
      const config = JSON.parse(new TextDecoder().decode(out.get('config.json')!)) as Record<string, unknown>;
      expect(config).toEqual({ ...tinyConfig(spec), torch_dtype: 'float32', _name_or_path: 'tiny', architectures: [spec.arch === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM'] });
      const st = new SafetensorsFile(out.get('model.safetensors')!);
      expect(st.metadata).toEqual({ format: 'pt' });
      expect(st.has('lm_head.weight')).toBe(spec.arch === 'llama' && spec.tied === false);
      expect(st.names().sort()).toEqual([...tinyWeights(spec).keys()].sort());

      const back = await loadTiny(out);
      expect(maxAbs(logits(back), want)).toBeLessThanOrEqual(1e-4);
      back.dispose();
      ad.dispose();
      lm.dispose();
    });
  }

  it('merges at strength 1 by default (opts.strength otherwise); adapter null exports the current weights', async () => {
    const [, spec, cfg] = CASES[0]!;
    const baseFiles = tinyFolder(spec);
    const lm = await loadTiny(baseFiles);
    const base = logits(lm);
    const ad = trainedAdapter(lm, cfg);
    const full = logits(lm);
    ad.strength = 0.3;
    const third = logits(lm);
    const at1 = await loadTiny(exportMergedModel({ lm, baseFiles }, ad));
    expect(maxAbs(logits(at1), full)).toBeLessThanOrEqual(1e-4);
    const at03 = await loadTiny(exportMergedModel({ lm, baseFiles }, ad, { strength: 0.3 }));
    expect(maxAbs(logits(at03), third)).toBeLessThanOrEqual(1e-4);
    expect(ad.strength).toBe(0.3);
    const plain = exportMergedModel({ lm, baseFiles }, null);
    expect(new SafetensorsFile(plain.get('model.safetensors')!).getFloat32('model.layers.0.self_attn.q_proj.weight')).toEqual(tinyWeights(spec).get('model.layers.0.self_attn.q_proj.weight')!.data);
    const p = await loadTiny(plain);
    expect(maxAbs(logits(p), base)).toBe(0);
    for (const x of [at1, at03, p, ad, lm]) x.dispose();
  });

  it('with the updates read asynchronously first (readDeltas, the WebGPU path) writes the same bytes', async () => {
    const [, spec, cfg] = CASES[0]!;
    const baseFiles = tinyFolder(spec);
    const lm = await loadTiny(baseFiles);
    const ad = trainedAdapter(lm, cfg);
    ad.strength = 0.4;
    const sync = exportMergedModel({ lm, baseFiles }, ad, { strength: 0.7 });
    const deltas = await readDeltas(ad, 0.7);
    expect(ad.strength).toBe(0.4);
    expect([...deltas.keys()]).toEqual([...ad.modules.keys()]);
    const asyn = exportMergedModel({ lm, baseFiles }, ad, { strength: 0.7, deltas });
    expect(Buffer.from(asyn.get('model.safetensors')!).equals(Buffer.from(sync.get('model.safetensors')!))).toBe(true);
    const wrong = exportMergedModel({ lm, baseFiles }, ad, { strength: 0.7, deltas: await readDeltas(ad, 1) });
    expect(Buffer.from(wrong.get('model.safetensors')!).equals(Buffer.from(sync.get('model.safetensors')!))).toBe(false);
    ad.dispose();
    lm.dispose();
  });

  it('shards big weights with an index, and writes F16 on request', async () => {
    const [, spec, cfg] = CASES[1]!;
    const baseFiles = tinyFolder(spec);
    const lm = await loadTiny(baseFiles);
    const ad = trainedAdapter(lm, cfg);
    const want = logits(lm);
    const sharded = exportMergedModel({ lm, baseFiles }, ad, { maxShardBytes: 8 * 1024 });
    expect(sharded.has('model.safetensors')).toBe(false);
    const index = JSON.parse(new TextDecoder().decode(sharded.get('model.safetensors.index.json')!)) as { weight_map: Record<string, string> };
    const shards = new Set(Object.values(index.weight_map));
    expect(shards.size).toBeGreaterThan(1);
    for (const s of shards) expect(sharded.has(s)).toBe(true);
    const back = await loadTiny(sharded);
    expect(maxAbs(logits(back), want)).toBeLessThanOrEqual(1e-4);
    back.dispose();

    const half = exportMergedModel({ lm, baseFiles }, ad, { dtype: 'F16' });
    expect(JSON.parse(new TextDecoder().decode(half.get('config.json')!)).torch_dtype).toBe('float16');
    expect(new SafetensorsFile(half.get('model.safetensors')!).entry('model.embed_tokens.weight').dtype).toBe('F16');
    const h = await loadTiny(half);
    expect(maxAbs(logits(h), want)).toBeLessThan(5e-2);
    for (const x of [h, ad, lm]) x.dispose();
  });

  it('refuses an adapter of another model', async () => {
    const [, spec, cfg] = CASES[0]!;
    const baseFiles = tinyFolder(spec);
    const a = await loadTiny(baseFiles);
    const b = await loadTiny(baseFiles);
    const ad = trainedAdapter(b, cfg);
    expect(() => exportMergedModel({ lm: a, baseFiles }, ad)).toThrow(ExportError);
    for (const x of [ad, a, b]) x.dispose();
  });

  it('rebuilds config.json from the parsed config when the base folder has none', () => {
    for (const spec of [CASES[0]![1], CASES[1]![1], CASES[2]![1]]) {
      const parsed = parseConfig(tinyConfig(spec));
      expect(parseConfig(configFromModel(parsed))).toEqual(parsed);
    }
    const lm = buildCausalLM({ config: tinyConfig(CASES[2]![1]), weights: tinyWeights(CASES[2]![1]) });
    const out = exportMergedModel({ lm, baseFiles: new Map() }, null);
    expect(JSON.parse(new TextDecoder().decode(out.get('config.json')!))).toMatchObject({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], torch_dtype: 'float32' });
    lm.dispose();
  });

  it("writes the run's stop token into generation_config.json eos_token_id (a list when it adds to the model's own) and its record as tabtune.json", async () => {
    const [, spec, cfg] = CASES[0]!;
    const baseFiles = tinyFolder(spec);
    baseFiles.set('generation_config.json', enc.encode('{"bos_token_id": 1, "eos_token_id": 2, "max_length": 64}'));
    const lm = await loadTiny(baseFiles);
    const ad = trainedAdapter(lm, cfg);
    const json = (files: Map<string, Uint8Array>, name: string) => JSON.parse(new TextDecoder().decode(files.get(name)!)) as Record<string, unknown>;
    const record: TabtuneRecord = { stop_token_id: 1, stop_strings: ['\n\n'], plain_format: '{prompt}\nAnswer: {completion}', run: 'numbers', step: 6 };

    // BOS as the stop (as the reference model's runs): added to EOS 2, every other field kept.
    const out = exportMergedModel({ lm, baseFiles }, ad, { tabtune: record });
    expect(json(out, 'generation_config.json')).toEqual({ bos_token_id: 1, eos_token_id: [2, 1], max_length: 64 });
    expect(json(out, 'tabtune.json')).toEqual(record);
    expect(await readTabtuneRecord(memorySource(out))).toEqual(record);
    expect(recordStops(await readTabtuneRecord(memorySource(out)))).toEqual({ stopTokenIds: [1], stopStrings: ['\n\n'] });

    // The model's own EOS as the stop: the base's file unchanged (a plain number).
    const same = exportMergedModel({ lm, baseFiles }, ad, { tabtune: { stop_token_id: 2, stop_strings: [] } });
    expect(same.get('generation_config.json')).toBe(baseFiles.get('generation_config.json'));
    // A list of EOS ids already (e.g. Llama 3): the stop token is appended.
    baseFiles.set('generation_config.json', enc.encode('{"eos_token_id": [2, 5], "temperature": 0.6}'));
    expect(json(exportMergedModel({ lm, baseFiles }, ad, { tabtune: record }), 'generation_config.json')).toEqual({ eos_token_id: [2, 5, 1], temperature: 0.6 });
    // No generation_config.json in the base: one from config.json's token ids, with the stop.
    baseFiles.delete('generation_config.json');
    expect(json(exportMergedModel({ lm, baseFiles }, ad, { tabtune: record }), 'generation_config.json')).toEqual({ eos_token_id: 1 }); // config.json without token ids
    baseFiles.set('config.json', enc.encode(JSON.stringify({ ...tinyConfig(spec), bos_token_id: 1, eos_token_id: 2 })));
    expect(json(exportMergedModel({ lm, baseFiles }, ad, { tabtune: record }), 'generation_config.json')).toEqual({ bos_token_id: 1, eos_token_id: [2, 1] });
    expect(json(exportMergedModel({ lm, baseFiles }, ad, { tabtune: { stop_token_id: 2, stop_strings: [] } }), 'generation_config.json')).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    // Stop strings only: no generation_config change, the record still travels.
    const strings = exportMergedModel({ lm, baseFiles: tinyFolder(spec) }, ad, { tabtune: { stop_token_id: null, stop_strings: ['\n'] } });
    expect(strings.get('generation_config.json')).toEqual(tinyFolder(spec).get('generation_config.json'));
    expect(json(strings, 'tabtune.json')).toEqual({ stop_token_id: null, stop_strings: ['\n'] });
    ad.dispose();
    lm.dispose();
  });

  it('logitsReport gives [B][T][V] logits of the model with its adapter', () => {
    const [, spec, cfg] = CASES[2]!;
    const lm = buildCausalLM({ config: tinyConfig(spec), weights: tinyWeights(spec) });
    const ad = trainedAdapter(lm, cfg);
    const r = logitsReport(lm, IDS);
    expect(r.input_ids).toEqual(IDS);
    expect([r.logits.length, r.logits[0]!.length, r.logits[0]![0]!.length]).toEqual([2, 8, 40]);
    expect(Float32Array.from(r.logits.flat(2))).toEqual(logits(lm));
    ad.dispose();
    lm.dispose();
  });
});

describe("merged export of a LoRA-tuned tabtune-tiny: generation stops where base + adapter stops", () => {
  let dir: string;
  beforeAll(async () => {
    await setupBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'tabtune-merged-stop-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("greedy generation from the merged folder (its own stop ids only) equals base + adapter's with the run's stop, token for token", { timeout: 300_000 }, async () => {
    const source = directorySource(TINY_DIR);
    const model = await loadModel(source);
    const disposables: { dispose(): void }[] = [model];
    try {
      // The run ends replies with BOS (as stories260K runs do), not the model's EOS.
      const { adapter, encoder, records, stopTokenId, dispose } = await trainStopAdapter(model);
      disposables.push({ dispose });
      expect([model.eosIds, stopTokenId]).toEqual([[BUNDLED_EOS], BUNDLED_BOS]);

      const prompts = records.map((r) => encoder.promptIds(r));
      const greedy = (m: LanguageModel, eosIds: number[], more: { stopTokenIds?: number[]; ignoreEos?: boolean; maxNewTokens?: number } = {}) =>
        generateIds(m.lm, prompts, eosIds, { maxNewTokens: 12, temperature: 0, ...more }, { newStream: (p) => m.tokenizer.createStreamDecoder(true, p) });
      const tuned = await greedy(model, model.eosIds, { stopTokenIds: [stopTokenId] });
      // The adapter learned to end on the stop token: every reply ends there, before the token budget,
      // where the base model runs on.
      expect(tuned.map((r) => r.finishReason)).toEqual(['eos', 'eos', 'eos', 'eos']);
      adapter.enabled = false;
      const base = await greedy(model, model.eosIds, { stopTokenIds: [stopTokenId] });
      adapter.enabled = true;
      expect(base.map((r) => r.finishReason)).toEqual(['length', 'length', 'length', 'length']);

      const record: TabtuneRecord = { stop_token_id: stopTokenId, stop_strings: [], run: 'numbers', step: 8 };
      await writeFolder(join(dir, 'merged'), exportMergedModel({ lm: model.lm, baseFiles: await readBaseFiles(source) }, adapter, { tabtune: record }));
      const merged = await loadModel(directorySource(join(dir, 'merged')));
      disposables.push(merged);
      expect(merged.eosIds).toEqual([BUNDLED_EOS, BUNDLED_BOS]);
      // Only what the merged folder says: its generation_config.json EOS ids, no extra stop ids.
      const fromMerged = await greedy(merged, merged.eosIds);
      const tokens = (rs: GenerateResult[]) => rs.map((r) => ({ tokens: r.tokens, finish: r.finishReason }));
      console.log(`[merged stop] tuned and merged replies: ${tuned.map((r) => JSON.stringify(r.text)).join(', ')}; base: ${JSON.stringify(base[0]!.text)}`);
      expect(tokens(fromMerged)).toEqual(tokens(tuned));
      // Stop included: the token each reply ended on is the run's stop token (BOS), in both.
      for (const m of [merged, model]) {
        const past = await greedy(m, [], { ignoreEos: true, maxNewTokens: 13 });
        past.forEach((r, i) => expect(r.tokens[tuned[i]!.tokens.length]).toBe(stopTokenId));
      }
    } finally {
      for (const d of disposables.reverse()) d.dispose();
    }
  });
});

describe('zip helpers', () => {
  const files = new Map([
    ['adapter_config.json', enc.encode('{"r": 8}')],
    ['adapter_model.safetensors', new Uint8Array(1000).map((_, i) => (i * 7) & 255)],
    ['sub/notes.txt', enc.encode('hello')],
  ]);

  it('round-trips files, optionally under a folder', async () => {
    expect(unzipFiles(zipFiles(files))).toEqual(files);
    const nested = unzipFiles(zipFiles(files, { folder: 'my-adapter' }));
    expect([...nested.keys()].sort()).toEqual(['my-adapter/adapter_config.json', 'my-adapter/adapter_model.safetensors', 'my-adapter/sub/notes.txt']);
    expect(await memorySource(nested).read('adapter_config.json')).toEqual(files.get('adapter_config.json'));
    expect(await memorySource(nested).read('missing.json')).toBeNull();
    const fixed = new Date(2024, 0, 2, 3, 4, 6);
    expect(zipFiles(files, { mtime: fixed })).toEqual(zipFiles(files, { mtime: fixed }));
  });

  it('writes archives the system unzip reads, and reads what it writes', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync(join(tmpdir(), 'tabtune-zip-'));
    try {
      const zipPath = join(dir, 'a.zip');
      await writeFile(zipPath, zipFiles(files, { folder: 'x' }));
      execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])', zipPath, join(dir, 'out')]);
      expect(new Uint8Array(await readFile(join(dir, 'out', 'x', 'adapter_model.safetensors')))).toEqual(files.get('adapter_model.safetensors'));
      const pyZip = join(dir, 'py.zip');
      execFileSync('python3', ['-c', 'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:\n  z.writestr("f/", "")\n  z.writestr("f/a.json", "{}")\n  z.writestr("__MACOSX/f/._a.json", "junk")', pyZip]);
      expect(unzipFiles(new Uint8Array(await readFile(pyZip)))).toEqual(new Map([['f/a.json', enc.encode('{}')]]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses unsafe names and non-zip bytes', () => {
    expect(() => zipFiles(new Map([['../evil', new Uint8Array(1)]]))).toThrow(ZipError);
    expect(() => unzipFiles(enc.encode('not a zip'))).toThrow(ZipError);
  });
});

describe('merged export of the bundled tabtune-tiny', () => {
  let dir: string;
  beforeAll(async () => {
    await setupBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'tabtune-merged-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through a folder: loadModel gives base + adapter logits and the same tokenizer', async () => {
    const source = directorySource(TINY_DIR);
    const model = await loadModel(source);
    const baseFiles = await readBaseFiles(source);
    expect([...baseFiles.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']);
    const text = 'Once upon a time, there was a little dog.';
    const ids = [model.tokenizer.encode(text)];
    const base = logits(model.lm, ids);
    const ad = trainedAdapter(model.lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    const want = logits(model.lm, ids);
    expect(maxAbs(want, base)).toBeGreaterThan(1e-2);

    const out = exportMergedModel({ lm: model.lm, baseFiles }, ad);
    expect(new SafetensorsFile(out.get('model.safetensors')!).has('lm_head.weight')).toBe(false); // tied
    const merged = join(dir, 'merged');
    await writeFolder(merged, out);
    expect((await readdir(merged)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const back = await loadModel(directorySource(merged));
    expect(back.tokenizer.encode(text)).toEqual(ids[0]);
    expect(back.eosIds).toEqual(model.eosIds);
    expect(maxAbs(logits(back.lm, ids), want)).toBeLessThanOrEqual(1e-4);

    // Fixtures for scripts/check_peft_export.py (run where torch + transformers + peft are installed).
    const checkDir = process.env.TABTUNE_PEFT_CHECK_DIR;
    if (checkDir) {
      const baseOut = new Map(baseFiles);
      baseOut.set('model.safetensors', new Uint8Array(await readFile(join(TINY_DIR, 'model.safetensors'))));
      await writeFolder(join(checkDir, 'base'), baseOut);
      await writeFolder(join(checkDir, 'adapter'), exportPeftAdapter(ad, { baseModel: 'tabtune-tiny' }));
      await writeFolder(join(checkDir, 'merged'), out);
      const V = model.info.vocabSize;
      const report = { ...logitsReport(model.lm, ids), base_logits: [[...Array(ids[0]!.length).keys()].map((t) => Array.from(base.subarray(t * V, (t + 1) * V)))], text, text_ids: ids[0] };
      await writeFile(join(checkDir, 'logits.json'), JSON.stringify(report));
    }
    back.dispose();
    ad.dispose();
    model.dispose();
  });
});
