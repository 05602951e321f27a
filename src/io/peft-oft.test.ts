// OFT adapters in PEFT's format (PEFT 0.20's OFTConfig fields and oft_R key names, read from its source):
// what the export writes, that importing it gives the same logits, PEFT's defaults and variants on import
// (the Cayley-Neumann series, r instead of oft_block_size, adapter names), and what is refused.
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import type { CausalLM } from '../model/causal-lm';
import { buildCausalLM } from '../model/load';
import { directorySource } from '../node/fs-source';
import { writeFolder } from '../node/hf-write';
import { OftAdapter, type OftAdapterConfig } from '../oft/adapter';
import { tinyConfig, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { seededRandom } from '../util/random';
import { exportPeftAdapter, importAnyPeftAdapter, importOftAdapter, importPeftAdapter, loadPeftAdapter, parseOftConfig, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, PeftError, type PeftFiles } from './peft';
import { SafetensorsFile, writeSafetensors } from './safetensors';
import { zipFiles, zipSource } from './zip';

const IDS = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const LLAMA: TinySpec = { arch: 'llama', hidden: 16, layers: 2, tied: true, seed: 3 }; // intermediate 36
const CFG: OftAdapterConfig = { oft_block_size: 8, module_dropout: 0.1, target_modules: ['q_proj', 'v_proj', 'down_proj'], coft: false, eps: 6e-5 };

/** PEFT 0.20's OFTConfig fields (PeftConfig's included, peft_version left out as for LoRA). */
const OFT_FIELDS =
  'auto_mapping base_model_name_or_path bias block_share coft eps exclude_modules fan_in_fan_out inference_mode init_weights layers_pattern layers_to_transform module_dropout modules_to_save num_cayley_neumann_terms oft_block_size peft_type r revision target_modules task_type use_cayley_neumann';

function model(spec: TinySpec = LLAMA): CausalLM {
  return buildCausalLM({ config: tinyConfig(spec), weights: tinyWeights(spec) });
}

function trained(lm: CausalLM, config: OftAdapterConfig = CFG, seed = 7): OftAdapter {
  const ad = new OftAdapter(lm, config);
  const rand = seededRandom(seed);
  ad.setWeights(new Map([...ad.modules].map(([n, m]) => [n, Float32Array.from({ length: m.weight.size }, () => (rand() - 0.5) * 0.4)])));
  return ad;
}

function logits(lm: CausalLM): Float32Array {
  return tf.tidy(() => lm.forward(IDS).dataSync() as Float32Array);
}

function files(m: Map<string, Uint8Array>): PeftFiles {
  return { config: JSON.parse(new TextDecoder().decode(m.get(PEFT_CONFIG_FILE)!)) as Record<string, unknown>, safetensors: m.get(PEFT_WEIGHTS_FILE)! };
}

function rename(bytes: Uint8Array, f: (name: string) => string | null): Uint8Array {
  const st = new SafetensorsFile(bytes);
  const tensors = [];
  for (const n of st.names()) {
    const name = f(n);
    if (name) tensors.push({ name, dtype: 'F32' as const, shape: st.entry(n).shape, data: st.getFloat32(n) });
  }
  return writeSafetensors(tensors, { format: 'pt' });
}

describe('PEFT OFT adapters', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it("writes PEFT's OFT adapter_config.json and oft_R tensors (key names, shapes, values)", () => {
    const lm = model();
    const ad = trained(lm);
    ad.strength = 0.3; // the export is the trained adapter whatever the strength
    const out = exportPeftAdapter(ad, { baseModel: 'org/tiny-llama' });
    const text = new TextDecoder().decode(out.get(PEFT_CONFIG_FILE)!);
    const cfg = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(cfg).join(' ')).toBe(OFT_FIELDS); // every field, sorted as save_pretrained sorts them
    expect(cfg).toMatchObject({
      peft_type: 'OFT',
      task_type: 'CAUSAL_LM',
      r: 0,
      oft_block_size: 8,
      module_dropout: 0.1,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      coft: false,
      eps: 6e-5,
      block_share: false,
      bias: 'none',
      use_cayley_neumann: false,
      num_cayley_neumann_terms: 5,
      init_weights: true,
      fan_in_fan_out: false,
      base_model_name_or_path: 'org/tiny-llama',
    });
    const st = new SafetensorsFile(out.get(PEFT_WEIGHTS_FILE)!);
    expect(st.names().length).toBe(6);
    const q = st.entry('base_model.model.model.layers.0.self_attn.q_proj.oft_R.weight');
    expect([q.dtype, q.shape]).toEqual(['F32', [2, 28]]); // 16 inputs: 2 blocks of 8, 8*7/2 = 28
    // down_proj has 36 inputs: PEFT adjusts 8 to the nearest divisor, 9 (4 blocks of 9*8/2 = 36).
    expect(st.entry('base_model.model.model.layers.1.mlp.down_proj.oft_R.weight').shape).toEqual([4, 36]);
    const w = ad.getWeights();
    expect(Array.from(st.getFloat32('base_model.model.model.layers.1.self_attn.v_proj.oft_R.weight'))).toEqual(Array.from(w.get('model.layers.1.self_attn.v_proj')!));
    ad.dispose();
    lm.dispose();
  });

  it('importing the export gives the same logits, and exporting it again the same bytes', () => {
    const lm = model();
    const ad = trained(lm);
    const want = logits(lm);
    const out = exportPeftAdapter(ad, { baseModel: 'tiny' });
    ad.dispose();
    const base = logits(lm);
    expect(Array.from(base)).not.toEqual(Array.from(want));
    const warnings: string[] = [];
    const back = importOftAdapter(lm, files(out), { expectedBaseModel: 'tiny', onWarning: (w) => warnings.push(w) });
    expect(Array.from(logits(lm))).toEqual(Array.from(want));
    expect(warnings).toEqual([]);
    expect(back.config).toMatchObject({ oft_block_size: 8, module_dropout: 0.1, use_cayley_neumann: false });
    expect(exportPeftAdapter(back, { baseModel: 'tiny' })).toEqual(out);
    back.dispose();
    const any = importAnyPeftAdapter(lm, files(out));
    expect(any).toBeInstanceOf(OftAdapter);
    expect(Array.from(logits(lm))).toEqual(Array.from(want));
    any.dispose();
    expect(() => importPeftAdapter(lm, files(out))).toThrow(/OFT adapter/);
    lm.dispose();
  });

  it("takes PEFT's defaults and variants: the Cayley-Neumann series when the field is absent, r instead of oft_block_size, adapter names", () => {
    const lm = model();
    const ad = trained(lm, { ...CFG, oft_block_size: 4 });
    const exact = logits(lm);
    const out = files(exportPeftAdapter(ad, { baseModel: 'x' }));
    const w = ad.getWeights();
    ad.dispose();
    // PEFT's OFTConfig defaults use_cayley_neumann to true: a config without the field means the series.
    const { use_cayley_neumann: _, ...noField } = out.config;
    const series = importOftAdapter(lm, { config: noField, safetensors: out.safetensors });
    expect(series.neumannTerms).toBe(5);
    const viaSeries = logits(lm);
    series.dispose();
    const ref = new OftAdapter(lm, { ...CFG, oft_block_size: 4, use_cayley_neumann: true }, { weights: w });
    expect(Array.from(logits(lm))).toEqual(Array.from(viaSeries));
    ref.dispose();
    let diff = 0;
    for (let i = 0; i < exact.length; i++) diff = Math.max(diff, Math.abs(exact[i]! - viaSeries[i]!));
    expect(diff).toBeGreaterThan(1e-3); // the series is another rotation (the transpose, approximately)
    // r = 4 blocks instead of blocks of 4: 16 inputs -> the same blocks of 4; 36 -> 4 blocks of 9, which
    // the block-size file does not fit.
    expect(() => importOftAdapter(lm, { config: { ...out.config, r: 4, oft_block_size: 0 }, safetensors: out.safetensors })).toThrow(/r=4 on model.layers.0.mlp.down_proj \(36 inputs: 4 blocks of 9\) needs \[4, 36\]/);
    const qv = { ...out.config, r: 4, oft_block_size: 0, target_modules: ['q_proj', 'v_proj'] };
    const noDown = rename(out.safetensors, (n) => (n.includes('down_proj') ? null : n.replace('.oft_R.weight', '.oft_R.default.weight').replace('base_model.model.', '')));
    const byR = importOftAdapter(lm, { config: qv, safetensors: noDown });
    expect([...byR.modules.keys()]).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    expect(byR.config.r).toBe(4);
    expect(new TextDecoder().decode(exportPeftAdapter(byR, { baseModel: 'x' }).get(PEFT_CONFIG_FILE)!)).toMatch(/"oft_block_size": 0,[\s\S]*"r": 4,/);
    byR.dispose();
    lm.dispose();
  });

  it('refuses what it cannot reproduce, naming it', () => {
    const lm = model();
    const ad = trained(lm);
    const out = files(exportPeftAdapter(ad, { baseModel: 'x' }));
    ad.dispose();
    const c = out.config;
    const { oft_block_size: _, ...old } = c;
    expect(() => parseOftConfig(old)).toThrow(/PEFT < 0.14/);
    expect(() => parseOftConfig({ ...c, r: 4 })).toThrow(/exactly one of r \(4\) and oft_block_size \(8\)/);
    expect(() => parseOftConfig({ ...c, block_share: true })).toThrow(/block_share/);
    expect(() => parseOftConfig({ ...c, bias: 'oft_only' })).toThrow(/bias/);
    expect(() => parseOftConfig({ ...c, modules_to_save: ['lm_head'] })).toThrow(/modules_to_save/);
    expect(() => parseOftConfig({ ...c, peft_type: 'LORA' })).toThrow(/not "OFT"/);
    expect(() => importOftAdapter(lm, { config: c, safetensors: rename(out.safetensors, (n) => n.replace('oft_R', 'oft_r')) })).toThrow(/PEFT <= 0.13/);
    expect(() => importOftAdapter(lm, { config: { ...c, oft_block_size: 4 }, safetensors: out.safetensors })).toThrow(/shape \[2, 28\] but oft_block_size=4/);
    expect(() => importOftAdapter(lm, { config: c, safetensors: rename(out.safetensors, (n) => n.replace('model.layers', 'transformer.blocks')) })).toThrow(/does not have/);
    expect([...lm.linears.values()].every((l) => !l.adapter)).toBe(true);
    lm.dispose();
    // GPT-2's Conv1D layers: PEFT's OFT does not wrap them, so no PEFT export.
    const g = model({ arch: 'gpt2', hidden: 16, layers: 1, seed: 4 });
    const ga = new OftAdapter(g, { ...CFG, target_modules: ['c_attn'] });
    expect(() => exportPeftAdapter(ga, { baseModel: 'gpt2' })).toThrow(PeftError);
    expect(() => exportPeftAdapter(ga, { baseModel: 'gpt2' })).toThrow(/Conv1D/);
    ga.dispose();
    g.dispose();
  });

  it('loads from a folder and a zip (loadPeftAdapter tells OFT from LoRA by peft_type)', async () => {
    const lm = model();
    const ad = trained(lm);
    const want = logits(lm);
    const out = exportPeftAdapter(ad, { baseModel: 'x' });
    ad.dispose();
    const dir = mkdtempSync(join(tmpdir(), 'tabtune-oft-'));
    try {
      await writeFolder(dir, out);
      for (const src of [directorySource(dir), zipSource(zipFiles(out))]) {
        const back = await loadPeftAdapter(lm, src);
        expect(back).toBeInstanceOf(OftAdapter);
        expect(Array.from(logits(lm))).toEqual(Array.from(want));
        back.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    lm.dispose();
  });
});
