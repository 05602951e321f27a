import * as tf from '@tensorflow/tfjs-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import type { LoraConfig } from '../train/config';
import { setupBackend } from '../model/backend';
import type { CausalLM } from '../model/causal-lm';
import { seededRandom } from '../util/random';
import { buildCausalLM } from '../model/load';
import type { WeightMap } from '../model/types';
import { tinyConfig, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { exportMergedModel } from './export';
import { directorySource } from '../node/fs-source';
import { writeFolder } from '../node/hf-write';
import {
  exportPeftAdapter,
  importPeftAdapter,
  loadPeftAdapter,
  parsePeftConfig,
  PEFT_CONFIG_FILE,
  PEFT_WEIGHTS_FILE,
  PeftError,
  sameBaseModel,
  type PeftFiles,
} from './peft';
import { SafetensorsFile, writeSafetensors } from './safetensors';
import { zipFiles, zipSource } from './zip';

const IDS = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];

const LLAMA: TinySpec = { arch: 'llama', hidden: 16, layers: 2, tied: true, seed: 3 };
const GPT2: TinySpec = { arch: 'gpt2', hidden: 16, layers: 2, seed: 4 };

function model(spec: TinySpec, rename?: (n: string) => string): CausalLM {
  const w = tinyWeights(spec);
  const weights: WeightMap = rename ? new Map([...w].map(([k, v]) => [rename(k), v])) : w;
  return buildCausalLM({ config: tinyConfig(spec), weights });
}

/** A trained-looking adapter: random A (PEFT init) and random non-zero B. */
function trainedAdapter(lm: CausalLM, config: LoraConfig, seed = 7): LoraAdapter {
  const ad = new LoraAdapter(lm, config, { seed });
  const rand = seededRandom(seed + 1);
  for (const m of ad.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => (rand() - 0.5) * 0.6), m.B.shape));
  return ad;
}

function logits(lm: CausalLM): Float32Array {
  const t = lm.forward(IDS);
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
}

function files(m: Map<string, Uint8Array>): PeftFiles {
  return { config: JSON.parse(new TextDecoder().decode(m.get(PEFT_CONFIG_FILE)!)) as Record<string, unknown>, safetensors: m.get(PEFT_WEIGHTS_FILE)! };
}

/** Rewrites the safetensors of an adapter export, renaming/dropping/adding tensors. */
function rewrite(bytes: Uint8Array, f: (name: string) => string | null, extra: { name: string; shape: number[] }[] = []): Uint8Array {
  const st = new SafetensorsFile(bytes);
  const tensors = [];
  for (const n of st.names()) {
    const name = f(n);
    if (name) tensors.push({ name, dtype: 'F32' as const, shape: st.entry(n).shape, data: st.getFloat32(n) });
  }
  for (const e of extra) tensors.push({ name: e.name, dtype: 'F32' as const, shape: e.shape, data: new Float32Array(e.shape.reduce((a, b) => a * b, 1)) });
  return writeSafetensors(tensors, { format: 'pt' });
}

const LLAMA_CFG: LoraConfig = { r: 4, lora_alpha: 8, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj', 'down_proj'] };
const GPT2_CFG: LoraConfig = { r: 2, lora_alpha: 16, lora_dropout: 0.1, target_modules: ['c_attn', 'c_proj', 'c_fc'] };

function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy, json, struct'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('PEFT adapter export', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('writes adapter_config.json like PEFT LoraConfig.save_pretrained', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const out = exportPeftAdapter(ad, { baseModel: 'org/tiny-llama', arch: 'llama' });
    expect([...out.keys()].sort()).toEqual([PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE]);
    const text = new TextDecoder().decode(out.get(PEFT_CONFIG_FILE)!);
    const cfg = JSON.parse(text) as Record<string, unknown>;
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'org/tiny-llama',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      modules_to_save: null,
      init_lora_weights: true,
      use_rslora: false,
      use_dora: false,
      revision: null,
      rank_pattern: {},
      alpha_pattern: {},
      layers_to_transform: null,
      layers_pattern: null,
      lora_bias: false,
      megatron_core: 'megatron.core',
      loftq_config: {},
    });
    // sorted keys, 2-space indent, as json.dumps(..., indent=2, sort_keys=True)
    const keys = Object.keys(cfg);
    expect(keys).toEqual([...keys].sort());
    expect(text.split('\n')[1]).toBe('  "alora_invocation_tokens": null,');
    // the fields PEFT 0.21 writes (adapter_config.json of get_peft_model(...).save_pretrained), bar peft_version
    const PEFT_021 =
      'alora_invocation_tokens alpha_pattern arrow_config auto_mapping base_model_name_or_path bias corda_config ensure_weight_tying eva_config exclude_modules fan_in_fan_out inference_mode init_lora_weights kasa_config layer_replication layers_pattern layers_to_transform loftq_config lora_alpha lora_bias lora_dropout lora_ga_config megatron_config megatron_core modules_to_save monteclora_config peft_type qalora_group_size r rank_pattern revision target_modules target_parameters task_type trainable_token_indices use_bdlora use_dora use_qalora use_rslora velora_config';
    expect(keys.join(' ')).toBe(PEFT_021);
    ad.dispose();
    lm.dispose();
  });

  it('names and lays out tensors as PEFT: base_model.model.<module>.lora_A.weight [r, in] = A^T, lora_B.weight [out, r] = B^T', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const st = new SafetensorsFile(exportPeftAdapter(ad, { baseModel: 'x', arch: 'llama' }).get(PEFT_WEIGHTS_FILE)!);
    expect(st.metadata).toEqual({ format: 'pt' });
    expect(st.names().length).toBe(2 * ad.modules.size);
    const q = 'base_model.model.model.layers.0.self_attn.q_proj';
    expect(st.entry(`${q}.lora_A.weight`)).toMatchObject({ dtype: 'F32', shape: [4, 16] });
    expect(st.entry(`${q}.lora_B.weight`)).toMatchObject({ dtype: 'F32', shape: [16, 4] });
    const down = ad.modules.get('model.layers.1.mlp.down_proj')!;
    expect(st.entry('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight').shape).toEqual([4, down.inDim]);
    // values: lora_A[j, i] = A[i, j], lora_B[o, j] = B[j, o]
    const m = ad.modules.get('model.layers.0.self_attn.q_proj')!;
    const A = m.A.dataSync();
    const B = m.B.dataSync();
    const la = st.getFloat32(`${q}.lora_A.weight`);
    const lb = st.getFloat32(`${q}.lora_B.weight`);
    for (let i = 0; i < 16; i++) for (let j = 0; j < 4; j++) expect(la[j * 16 + i]).toBe(A[i * 4 + j]);
    for (let j = 0; j < 4; j++) for (let o = 0; o < 16; o++) expect(lb[o * 4 + j]).toBe(B[j * 16 + o]);
    ad.dispose();
    lm.dispose();
  });

  it('names GPT-2 modules under transformer. (even for checkpoints without the prefix) and sets fan_in_fan_out', () => {
    for (const rename of [undefined, (n: string) => n.replace(/^transformer\./, '')]) {
      const lm = model(GPT2, rename);
      const ad = trainedAdapter(lm, GPT2_CFG);
      const out = exportPeftAdapter(ad, { baseModel: 'openai-community/gpt2', arch: 'gpt2' });
      const cfg = files(out).config;
      expect(cfg.fan_in_fan_out).toBe(true);
      const st = new SafetensorsFile(out.get(PEFT_WEIGHTS_FILE)!);
      expect(st.entry('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight').shape).toEqual([2, 16]);
      expect(st.entry('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight').shape).toEqual([48, 2]);
      expect(st.entry('base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight').shape).toEqual([2, 64]);
      expect(st.entry('base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight').shape).toEqual([16, 2]);
      expect(st.names().every((n) => n.startsWith('base_model.model.transformer.h.'))).toBe(true);
      expect(st.names().length).toBe(2 * 4 * 2);
      ad.dispose();
      lm.dispose();
    }
  });

  it('exports the trained adapter whatever its strength / on-off state', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const ref = exportPeftAdapter(ad, { baseModel: 'x' });
    ad.strength = 0.25;
    ad.enabled = false;
    const later = exportPeftAdapter(ad, { baseModel: 'x' });
    expect(later.get(PEFT_WEIGHTS_FILE)).toEqual(ref.get(PEFT_WEIGHTS_FILE));
    ad.dispose();
    lm.dispose();
  });
});

describe('PEFT adapter import', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  for (const [spec, cfg, label] of [
    [LLAMA, LLAMA_CFG, 'llama (tied)'],
    [{ ...LLAMA, tied: false }, { ...LLAMA_CFG, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, 'llama (untied, all linears)'],
    [GPT2, GPT2_CFG, 'gpt2'],
  ] as [TinySpec, LoraConfig, string][]) {
    it(`export -> import into a fresh model gives exactly the same logits: ${label}`, () => {
      const lm = model(spec);
      const base = logits(lm);
      const ad = trainedAdapter(lm, cfg);
      const want = logits(lm);
      expect(Math.max(...want.map((v, i) => Math.abs(v - base[i]!)))).toBeGreaterThan(1e-2); // the adapter matters
      const out = exportPeftAdapter(ad, { baseModel: 'tiny' });

      const fresh = model(spec);
      const warnings: string[] = [];
      const back = importPeftAdapter(fresh, files(out), { expectedBaseModel: 'tiny', onWarning: (w) => warnings.push(w) });
      expect(warnings).toEqual([]);
      expect(back.config).toEqual(cfg);
      expect([...back.modules.keys()]).toEqual([...ad.modules.keys()]);
      expect(Array.from(logits(fresh))).toEqual(Array.from(want));
      // and it round-trips to identical files
      expect(exportPeftAdapter(back, { baseModel: 'tiny' })).toEqual(out);
      for (const x of [ad, back, lm, fresh]) x.dispose();
    });
  }

  it('imports PEFT-style variants: adapter name in keys, no base_model prefix, GPT-2 naming without transformer.', () => {
    const lm = model(GPT2);
    const ad = trainedAdapter(lm, GPT2_CFG);
    const want = logits(lm);
    const out = files(exportPeftAdapter(ad, { baseModel: 'gpt2' }));
    const variants = [
      (n: string) => n.replace(/\.lora_([AB])\.weight$/, '.lora_$1.default.weight'),
      (n: string) => n.replace(/^base_model\.model\./, ''),
      (n: string) => n.replace(/^base_model\.model\.transformer\./, 'base_model.model.'),
    ];
    for (const v of variants) {
      for (const target of [model(GPT2), model(GPT2, (n) => n.replace(/^transformer\./, ''))]) {
        const back = importPeftAdapter(target, { config: out.config, safetensors: rewrite(out.safetensors, v) });
        expect(back.modules.size).toBe(8);
        expect(Math.max(...logits(target).map((x, i) => Math.abs(x - want[i]!)))).toBeLessThan(1e-5);
        back.dispose();
        target.dispose();
      }
    }
    ad.dispose();
    lm.dispose();
  });

  it('covers exactly the modules in the file (layers_to_transform-style subsets)', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const out = files(exportPeftAdapter(ad, { baseModel: 'x' }));
    const only0 = rewrite(out.safetensors, (n) => (n.includes('.layers.1.') ? null : n));
    const fresh = model(LLAMA);
    const back = importPeftAdapter(fresh, { config: { ...out.config, layers_to_transform: [0] }, safetensors: only0 });
    expect([...back.modules.keys()].sort()).toEqual(['model.layers.0.mlp.down_proj', 'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj']);
    back.dispose();
    for (const x of [ad, lm, fresh]) x.dispose();
  });

  it('warns (does not fail) when base_model_name_or_path differs from the loaded model', () => {
    expect(sameBaseModel('HuggingFaceTB/SmolLM2-135M', '/models/smollm2-135m/')).toBe(true);
    expect(sameBaseModel('openai-community/gpt2', 'gpt2')).toBe(true);
    expect(sameBaseModel('HuggingFaceTB/SmolLM2-135M', 'Qwen/Qwen2.5-0.5B')).toBe(false);
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const out = files(exportPeftAdapter(ad, { baseModel: 'HuggingFaceTB/SmolLM2-135M' }));
    ad.dispose();
    const warnings: string[] = [];
    const back = importPeftAdapter(lm, out, { expectedBaseModel: 'Qwen/Qwen2.5-0.5B', onWarning: (w) => warnings.push(w) });
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/SmolLM2-135M/);
    back.dispose();
    lm.dispose();
  });

  it('rejects configs tabtune cannot reproduce, naming the field', () => {
    const base = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] };
    expect(() => parsePeftConfig({ ...base, use_dora: true })).toThrow(/DoRA/);
    expect(() => parsePeftConfig({ ...base, rank_pattern: { q_proj: 8 } })).toThrow(/rank_pattern/);
    expect(() => parsePeftConfig({ ...base, alpha_pattern: { q_proj: 8 } })).toThrow(/alpha_pattern/);
    expect(() => parsePeftConfig({ ...base, bias: 'lora_only' })).toThrow(/bias/);
    expect(() => parsePeftConfig({ ...base, lora_bias: true })).toThrow(/lora_bias/);
    expect(() => parsePeftConfig({ ...base, modules_to_save: ['lm_head'] })).toThrow(/modules_to_save/);
    expect(() => parsePeftConfig({ ...base, peft_type: 'IA3' })).toThrow(/LoRA, OFT and prompt-tuning adapters only/);
    expect(() => parsePeftConfig({ ...base, r: 0 })).toThrow(/r should be/);
    expect(() => parsePeftConfig({ r: 4 })).toThrow(/peft_type/);
    expect(() => parsePeftConfig({ ...base, use_dora: true })).toThrow(PeftError);
    // defaults PEFT writes are fine
    expect(parsePeftConfig({ ...base, rank_pattern: {}, alpha_pattern: {}, bias: 'none', modules_to_save: null, use_dora: false }).lora).toEqual({
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      target_modules: ['q_proj'],
    });
  });

  it('converts rsLoRA (alpha/sqrt(r)) into the equivalent alpha', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const want = logits(lm); // scale 8/4 = 2
    const out = files(exportPeftAdapter(ad, { baseModel: 'x' }));
    ad.dispose();
    // rsLoRA with alpha 4 and r 4 scales by 4/sqrt(4) = 2: the same update
    const warnings: string[] = [];
    const back = importPeftAdapter(lm, { config: { ...out.config, use_rslora: true, lora_alpha: 4 }, safetensors: out.safetensors }, { onWarning: (w) => warnings.push(w) });
    expect(back.scale).toBeCloseTo(2, 12);
    expect(warnings.join()).toMatch(/rslora/i);
    expect(Math.max(...logits(lm).map((x, i) => Math.abs(x - want[i]!)))).toBeLessThan(1e-5);
    back.dispose();
    lm.dispose();
  });

  it('rejects files that do not fit the model or hold unsupported tensors', () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const out = files(exportPeftAdapter(ad, { baseModel: 'x' }));
    ad.dispose();
    const other = model({ ...LLAMA, hidden: 24 });
    expect(() => importPeftAdapter(other, out)).toThrow(/shape \[4, 16\].*need \[4, 24\]/);
    other.dispose();
    const g = model(GPT2);
    expect(() => importPeftAdapter(g, out)).toThrow(/does not have/);
    g.dispose();
    expect(() => importPeftAdapter(lm, { config: { ...out.config, r: 8 }, safetensors: out.safetensors })).toThrow(/r=8/);
    expect(() =>
      importPeftAdapter(lm, { config: out.config, safetensors: rewrite(out.safetensors, (n) => n, [{ name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', shape: [16] }]) }),
    ).toThrow(/DoRA/);
    expect(() => importPeftAdapter(lm, { config: out.config, safetensors: rewrite(out.safetensors, (n) => (n.endsWith('q_proj.lora_B.weight') && n.includes('layers.0') ? null : n)) })).toThrow(/lora_A but no lora_B/);
    expect(() => importPeftAdapter(lm, { config: out.config, safetensors: new Uint8Array(10) })).toThrow(PeftError);
    expect(lm.linears.get('model.layers.0.self_attn.q_proj')!.adapter ?? null).toBeNull(); // nothing left attached
    lm.dispose();
  });

  it('loads from a folder and from a zip (with or without a top folder)', async () => {
    const lm = model(LLAMA);
    const ad = trainedAdapter(lm, LLAMA_CFG);
    const want = logits(lm);
    const out = exportPeftAdapter(ad, { baseModel: 'x' });
    ad.dispose();
    const dir = mkdtempSync(join(tmpdir(), 'tabtune-peft-'));
    try {
      await writeFolder(dir, out);
      for (const src of [directorySource(dir), zipSource(zipFiles(out)), zipSource(zipFiles(out, { folder: 'my-adapter' }))]) {
        const back = await loadPeftAdapter(lm, src);
        expect(Array.from(logits(lm))).toEqual(Array.from(want));
        back.dispose();
      }
      await expect(loadPeftAdapter(lm, directorySource(join(dir, 'nope')))).rejects.toThrow(/adapter_config.json not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    lm.dispose();
  });
});

// An independent reader: python3 + numpy parse the files byte by byte (no tabtune code), and check that
// lora_B @ lora_A * alpha / r is exactly what the merged export added to each base weight.
const PY_CHECK = String.raw`
import json, struct, sys
import numpy as np

def read_st(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        s, t = e["data_offsets"]
        out[name] = np.frombuffer(b[8 + n + s:8 + n + t], dtype="<f4").reshape(e["shape"])
    return out

d, arch = sys.argv[1], sys.argv[2]
cfg = json.load(open(d + "/adapter/adapter_config.json"))
ad = read_st(d + "/adapter/adapter_model.safetensors")
base = read_st(d + "/base.safetensors")
merged = read_st(d + "/merged/model.safetensors")
scale = cfg["lora_alpha"] / cfg["r"]
assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "CAUSAL_LM"
assert cfg["fan_in_fan_out"] == (arch == "gpt2")
mods = sorted({k.rsplit(".lora_", 1)[0] for k in ad})
assert len(ad) == 2 * len(mods), "every module has lora_A and lora_B"
worst = 0.0
for m in mods:
    A, B = ad[m + ".lora_A.weight"], ad[m + ".lora_B.weight"]
    assert m.startswith("base_model.model."), m
    key = m[len("base_model.model."):] + ".weight"
    W0, W1 = base[key].astype(np.float64), merged[key].astype(np.float64)
    assert A.shape[0] == cfg["r"] and B.shape[1] == cfg["r"], (m, A.shape, B.shape)
    delta = (B.astype(np.float64) @ A.astype(np.float64)) * scale  # [out, in]
    if cfg["fan_in_fan_out"]:
        delta = delta.T  # Conv1D stores [in, out]
    assert delta.shape == W0.shape, (m, delta.shape, W0.shape)
    err = np.abs((W1 - W0) - delta).max() / max(1.0, np.abs(delta).max())
    worst = max(worst, err)
untouched = [k for k in base if k not in {m[len("base_model.model."):] + ".weight" for m in mods}]
for k in untouched:
    assert np.array_equal(base[k], merged[k]), k
print(json.dumps({"modules": len(mods), "worst": worst, "untouched": len(untouched)}))
`;

describe.skipIf(!hasNumpy())('PEFT files checked by an independent numpy reader', () => {
  let dir: string;
  beforeAll(async () => {
    await setupBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'tabtune-peft-py-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [spec, cfg] of [
    [{ ...LLAMA, tied: false }, LLAMA_CFG],
    [GPT2, GPT2_CFG],
  ] as [TinySpec, LoraConfig][]) {
    it(`lora_B @ lora_A * alpha/r equals the merged delta: ${spec.arch}`, async () => {
      const weights = tinyWeights(spec);
      const lm = buildCausalLM({ config: tinyConfig(spec), weights });
      const ad = trainedAdapter(lm, cfg);
      const sub = join(dir, spec.arch);
      await writeFolder(sub, new Map([['base.safetensors', writeSafetensors([...weights].map(([name, w]) => ({ name, dtype: 'F32' as const, shape: w.shape, data: w.data })))]]));
      await writeFolder(join(sub, 'adapter'), exportPeftAdapter(ad, { baseModel: 'tiny' }));
      await writeFolder(join(sub, 'merged'), exportMergedModel({ lm, baseFiles: new Map([['config.json', new TextEncoder().encode(JSON.stringify(tinyConfig(spec)))]]) }, ad));
      const res = JSON.parse(execFileSync('python3', ['-c', PY_CHECK, sub, spec.arch], { encoding: 'utf8' })) as { modules: number; worst: number; untouched: number };
      expect(res.modules).toBe(ad.modules.size);
      expect(res.worst).toBeLessThan(1e-6);
      expect(res.untouched).toBeGreaterThan(0);
      ad.dispose();
      lm.dispose();
    });
  }
});
