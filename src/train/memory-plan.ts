// The memory plan: how many bytes a training run needs before it starts, against what the device allows,
// and the largest micro-batch that fits (gradient accumulation keeps the effective batch). Plain data, no
// TF.js: the page computes the same plan as the worker (the Train panel shows it), the worker applies it.
//
// What a LoRA step holds at its peak (without recomputation, see below), per micro-batch of N = rows x T tokens (rows: the batch, twice it for
// DPO; T: the longest sequence, prompt tuning's virtual tokens included), counted in float32 values:
//   weights           P (+ V x D for a frozen tied head: the model keeps the embedding transposed once);
//                     a frozen Llama of at most KEEP_TRANSPOSES_MAX_BYTES keeps every weight transposed too
//                     (2 P), and its backward then transposes nothing: head 0.3 V D instead of 5 on the fused path
//   per layer         c_layer (D + I) per token: the tensors a Llama block keeps for backprop (norms,
//                     q/k/v after RoPE, the residual stream, the MLP's gate/up/silu products [N, I] ...)
//                     and the copies TF.js adds (custom-gradient identities, reshapes on WASM)
//                     + c_lora (in + out) per token for each targeted linear (dropout's mask and input,
//                     the adapter's [N, r] and [N, out] outputs and their sum)
//                     + c_attention per attention score, B x H x T x T (scores, scaled, masked, softmax,
//                     and their gradients in the backward pass)
//   The CPU backends (wasm, cpu) run tabtune's fused ops (attention that keeps no scores, RMSNorm, SwiGLU,
//   RoPE, LoRA's dropout, the LoRA linear, the cross-entropy: src/model/cpu-attention.ts, cpu-fused.ts, ops.ts, loss.ts): c_layer 23, c_lora 2,
//   c_attention 0, and 4.5 N V for the logits (the fused cross-entropy keeps its exponentials in its own
//   scratch memory, outside the WASM heap). TF.js's own ops (the GPU backends' path): c_layer 33, c_lora 7.5,
//   c_attention 15, and 8 N V for the logits.
//   logits            N V per copy: logits, the exponentials and the one-hot of the cross-entropy, their gradient
//   head              6 V D (fused ops: 5): the vocabulary projection's transposed weight and its copies during
//                     backprop; on the fused path 0.3 when the backward transposes nothing (kept transposes), 1.5
//                     when layers are recomputed
//   trained params    4 x trainable: value, gradient, AdamW's two moments
// The coefficients are measured, not guessed: the peak tensor bytes of one step (tf.profile) of
// tabtune-tiny, tabtune-base and the SmolLM2-135M-shaped model on tfjs-wasm at 24 shapes (B x T from
// 1 x 16 to 4 x 256, LoRA on q,v or on every linear layer) fit these terms within 10-20%, with the fused
// ops and with TF.js's ops (setCpuFusedOps(false); the test memory-plan.test.ts measures both again).
// The fused coefficients were measured again (2026-12-03) after the fused SwiGLU, RoPE and dropout: 18 shapes
// of the three models (1 x 64 to 4 x 128, LoRA dropout 0.05), 1.04-1.14 of the peak; with recomputation
// 1.07-1.22. Again after the embedding lookup left the gradient tape (gatherRowsCpu: the tape's saved clone of
// the frozen table, which tf.profile counted in full, is gone; head term 1.5 -> 0.3 V D with kept
// transposes): 1.10-1.17 on tabtune-tiny and tabtune-base, with recomputation 1.08-1.25. The engine's ops
// change: when they do, that test says by how much, and these numbers are measured again.
// That peak counts bytes as TF.js does, every tensor in full. Since tfjs-wasm's clones share their input's
// buffer (src/kernels/wasm-kernels.ts: the gradient tape's saved tensors), the buffers really alive are
// fewer: on tabtune-base (LoRA on every linear layer, 2 x 128) 124 MB at the peak where TF.js counts 185
// (159 MB when clones copied). The plan keeps that difference as margin, on top of HEADROOM.
// Full-parameter training, OFT, prompt tuning and GPT-2 use the same terms without their own calibration.
//
// With activation recomputation (TrainConfig.recompute, src/model/checkpoint.ts) a step holds one layer's
// activations (the per-layer term once, while that layer is recomputed in the backward) plus c_checkpoint N D
// per layer: each layer's saved input and the gradient that reached it (TF.js frees a backward's gradients
// only when it ends); logits and head as before. c_checkpoint 2, measured the same way (tabtune-tiny and
// tabtune-base, 1 x 64 to 4 x 128, LoRA on q,v and on every linear layer, fused ops): 1.07-1.28 of the
// peak, the head and logits terms weighing more on the small shapes. The measured peak with it was 0.26-0.56
// of the peak without it (the larger the model and batch, the larger the saving).
import { KEEP_TRANSPOSES_MAX_BYTES } from '../model/config';
import type { ModelInfo } from '../model/load';
import { nearestDivisor, RECOMPUTE_OPTION, type TrainConfig } from './config';

/**
 * What the plan reads of a model: its config's sizes, as ModelInfo carries them. intermediateSize, heads,
 * kvHeads, headDim and tiedHead are absent in model summaries stored before the plan: 8/3 of the width
 * (Llama's ratio), 4x for GPT-2.
 */
export type ModelShape = Pick<ModelInfo, 'arch' | 'numParams' | 'vocabSize' | 'hiddenSize' | 'layers' | 'intermediateSize' | 'heads' | 'kvHeads' | 'headDim' | 'tiedHead'>;

/** What the device allows. */
export interface DeviceMemoryLimits {
  backend: string;
  /** The most bytes tensors may take together (WASM: its 4 GiB heap), null when unknown (WebGPU does not say). */
  totalBytes: number | null;
  /** Why totalBytes is what it is, in words ("the WASM heap's 4 GiB cap"). */
  totalSource: string | null;
  /** The largest single tensor a kernel can read (WebGPU: min(maxBufferSize, maxStorageBufferBindingSize)), null when unlimited. */
  maxTensorBytes: number | null;
}

/** WebAssembly's 32-bit address space: tfjs-backend-wasm's heap grows to 4 GiB - 64 KiB (its getHeapMax). */
export const WASM_HEAP_MAX = 4_294_901_760;
/**
 * Share of a limit the plan fills. Measured: after generating and one training step of the SmolLM2-135M-shaped
 * model, the WASM heap had grown to 1.25x the plan's estimate (the heap fragments and grows in 20% steps), and
 * running out of the heap aborts the worker: the plan keeps 25% free.
 */
export const HEADROOM = 0.75;

/** The limits of a backend by name (the worker adds WebGPU's buffer limits and the device memory it knows). */
export function limitsFor(backend: string, o: { maxBufferSize?: number; maxStorageBufferBindingSize?: number; deviceMemoryGiB?: number } = {}): DeviceMemoryLimits {
  if (backend === 'wasm') {
    // navigator.deviceMemory (GiB, rounded down, at most 8) bounds what a tab gets on small devices.
    const dev = o.deviceMemoryGiB ? (o.deviceMemoryGiB / 2) * 2 ** 30 : Infinity;
    return dev < WASM_HEAP_MAX
      ? { backend, totalBytes: dev, totalSource: `half of this device's ${o.deviceMemoryGiB} GB`, maxTensorBytes: null }
      : { backend, totalBytes: WASM_HEAP_MAX, totalSource: "the WASM heap's 4 GB cap", maxTensorBytes: null };
  }
  if (backend === 'webgpu') {
    const caps = [o.maxBufferSize, o.maxStorageBufferBindingSize].filter((v): v is number => typeof v === 'number' && v > 0);
    return { backend, totalBytes: null, totalSource: null, maxTensorBytes: caps.length ? Math.min(...caps) : null };
  }
  return { backend, totalBytes: null, totalSource: null, maxTensorBytes: null };
}

export interface MemoryEstimate {
  /** Base weights (float32), with the frozen tied head's transposed copy. */
  weights: number;
  /** Trained parameters: value, gradient and two AdamW moments. */
  trainable: number;
  trainableParams: number;
  /** What one micro-batch's forward and backward hold at the peak, logits included. */
  activations: number;
  total: number;
  /** The largest single tensor of the step and what it is (WebGPU's buffer limit applies to it). */
  largest: { bytes: number; what: string };
  /** Activations counted with recomputation (TrainConfig.recompute). */
  recompute: boolean;
}

const F = 4;
/** The measured coefficients (see the header). */
export const COEF = {
  /** The CPU backends' fused ops. */
  fused: { layer: 23, lora: 2, attention: 0, logits: 4.5, head: 5, checkpoint: 2 },
  /** TF.js's ops (the GPU backends). */
  tfjs: { layer: 33, lora: 7.5, attention: 15, logits: 8, head: 6, checkpoint: 2 },
} as const;

/** Whether a backend runs tabtune's fused CPU ops (attention keeping no [B, H, T, T] scores) or TF.js's ops. */
export function fusedOps(backend: string): boolean {
  return backend === 'wasm' || backend === 'cpu';
}

interface Dims {
  D: number;
  I: number;
  H: number;
  q: number;
  kv: number;
}

function dims(m: ModelShape): Dims {
  const D = m.hiddenSize;
  const gpt2 = m.arch === 'gpt2';
  const I = m.intermediateSize ?? (gpt2 ? 4 * D : Math.round((8 / 3) * D));
  const H = m.heads ?? Math.max(1, Math.round(D / 64));
  const hd = m.headDim ?? D / H;
  return { D, I, H, q: H * hd, kv: (m.kvHeads ?? H) * hd };
}

/** [in, out] of each target a model has (PEFT module-name suffixes). */
function targetShapes(d: Dims): Record<string, [number, number]> {
  const { D, I, q, kv } = d;
  return {
    q_proj: [D, q], k_proj: [D, kv], v_proj: [D, kv], o_proj: [q, D],
    gate_proj: [D, I], up_proj: [D, I], down_proj: [I, D],
    c_attn: [D, 3 * D], c_proj: [D, D], c_fc: [D, I],
  };
}

/** OFT's parameters on one linear layer of `inFeatures` inputs: (in / b) blocks of b(b-1)/2 each (PEFT's block rule). */
export function oftLayerParams(inFeatures: number, blockSize: number): number {
  const b = nearestDivisor(inFeatures, blockSize);
  return (inFeatures / b) * ((b * (b - 1)) / 2);
}

/**
 * The bytes training `model` with `c` needs on sequences of `seqLen` tokens (the longest a micro-batch holds),
 * at c.batchSize rows per micro-batch, on `backend` (its attention path; default WASM, the page's usual one).
 */
export function estimateTrainingMemory(model: ModelShape, c: TrainConfig, seqLen: number, backend = 'wasm'): MemoryEstimate {
  const d = dims(model);
  const { D, I, H } = d;
  const V = model.vocabSize;
  const L = model.layers;
  const shapes = targetShapes(d);
  const frozenTiedHead = c.mode !== 'full' && model.tiedHead === true;
  const keptTransposes = c.mode !== 'full' && model.arch !== 'gpt2' && model.numParams * F <= KEEP_TRANSPOSES_MAX_BYTES;
  const weights = (model.numParams * (keptTransposes ? 2 : 1) + (frozenTiedHead ? V * D : 0)) * F;
  let trainableParams: number;
  let adapted = 0; // sum of (in + out) over the adapted linears of one layer
  if (c.mode === 'full') trainableParams = model.numParams;
  // PEFT's prompt_embeddings: num_virtual_tokens x hidden.
  else if (c.mode === 'prompt') trainableParams = c.prompt.num_virtual_tokens * D;
  else {
    const oft = c.mode === 'oft';
    let perLayer = 0;
    for (const t of oft ? c.oft.target_modules : c.lora.target_modules) {
      const s = shapes[t];
      if (!s) continue;
      perLayer += oft ? oftLayerParams(s[0], c.oft.oft_block_size) : c.lora.r * (s[0] + s[1]);
      adapted += s[0] + s[1];
    }
    trainableParams = perLayer * L;
  }
  // The value is in `weights` for full training; gradient and moments are not.
  const trainable = trainableParams * F * (c.mode === 'full' ? 3 : 4);
  // DPO runs both replies of each pair in one forward (2 rows per pair); prompt tuning prepends its virtual tokens.
  const rows = c.batchSize * (c.objective === 'dpo' ? 2 : 1);
  const T = seqLen + (c.mode === 'prompt' ? c.prompt.num_virtual_tokens : 0);
  const N = rows * T;
  const scores = rows * H * T * T;
  const k = fusedOps(backend) ? COEF.fused : COEF.tfjs;
  const kept = k.attention ? scores : 0;
  const perLayer = N * (k.layer * (D + I) + k.lora * adapted) + k.attention * kept;
  // Measured ~0.2 V D with the fused ops when the backward transposes nothing (kept transposes; since the embedding
  // lookup left the gradient tape, gatherRowsCpu). On tabtune-tiny and tabtune-base V D is small beside the rest, so
  // for a small model with a large vocabulary this is an extrapolation. 1.5 when the layers are recomputed on a large
  // model (its head's backward transposes the [V, D] weight; measured ~1.2 V D while the tape still held the
  // table's clone, kept as margin); 5 on a large model without either.
  const head = fusedOps(backend) && keptTransposes ? 0.3 : fusedOps(backend) && c.recompute ? 1.5 : k.head;
  // Recomputation keeps each layer's input (and, through the backward, the gradient that reaches it) and one
  // layer's activations at a time, recomputed in the backward.
  const layers = c.recompute ? perLayer + k.checkpoint * N * D * L : perLayer * L;
  const activations = (layers + k.logits * N * V + head * V * D) * F;
  const largest = N * V >= kept ? { bytes: N * V * F, what: `the logits (${rows} x ${T} tokens x ${V} vocabulary)` } : { bytes: scores * F, what: `the attention scores (${rows} x ${H} heads x ${T} x ${T})` };
  return { weights, trainable, trainableParams, activations, total: weights + trainable + activations, largest, recompute: c.recompute };
}

/** The longest sequence a run's examples hold (an Example's input; both replies of a preference pair). */
export function longestSequence(examples: readonly unknown[]): number {
  let n = 0;
  for (const e of examples) {
    const x = e as { input?: number[]; chosen?: { input: number[] }; rejected?: { input: number[] } };
    n = Math.max(n, x.input?.length ?? 0, x.chosen?.input.length ?? 0, x.rejected?.input.length ?? 0);
  }
  return n;
}

export interface MemoryPlan {
  /** The estimate at the micro-batch the plan trains with. */
  estimate: MemoryEstimate;
  /** The estimate at the configured batch. */
  requested: MemoryEstimate;
  limits: DeviceMemoryLimits;
  /** The bytes the plan may fill: HEADROOM of the total limit (null: unknown). */
  budget: number | null;
  /** Whether it fits (at the micro-batch below). */
  fits: boolean;
  /** Micro-batch and accumulation the run trains with: batchSize x gradAccum is the configured effective batch. */
  batchSize: number;
  gradAccum: number;
  /** The configured batch did not fit and the plan made micro-batches smaller. */
  changed: boolean;
  /** For the user: the change, or why nothing fits and what to do (null when the configured batch fits). */
  message: string | null;
  /**
   * When the run does not fit as configured but fits with activation recomputation (TrainConfig.recompute,
   * off here): the micro-batch it would train with then. null otherwise.
   */
  withRecompute: { batchSize: number; gradAccum: number; estimate: MemoryEstimate } | null;
}

const MB = 1024 * 1024;
export function formatMB(bytes: number): string {
  return `${Math.round(bytes / MB).toLocaleString('en-US')} MB`;
}

function problem(e: MemoryEstimate, limits: DeviceMemoryLimits, budget: number | null): string | null {
  if (budget !== null && e.total > budget) return `needs about ${formatMB(e.total)} of the ${formatMB(budget)} ${limits.backend.toUpperCase()} can use (${Math.round(HEADROOM * 100)}% of ${limits.totalSource ?? 'its limit'})`;
  if (limits.maxTensorBytes !== null && e.largest.bytes > limits.maxTensorBytes) return `${e.largest.what} take ${formatMB(e.largest.bytes)} in one tensor, more than this GPU's ${formatMB(limits.maxTensorBytes)} buffer limit`;
  return null;
}

/**
 * The plan for training `model` with `c` on sequences of up to `seqLen` tokens under `limits`: the configured
 * batch when it fits; otherwise the largest micro-batch that divides it and fits, with gradient accumulation
 * raised so batchSize x gradAccum stays the same; if not even one row fits, fits is false and the message
 * names the numbers and the fixes.
 */
export function planMemory(model: ModelShape, c: TrainConfig, seqLen: number, limits: DeviceMemoryLimits): MemoryPlan {
  const budget = limits.totalBytes === null ? null : limits.totalBytes * HEADROOM;
  const requested = estimateTrainingMemory(model, c, seqLen, limits.backend);
  const base = { requested, limits, budget, withRecompute: null };
  const why = problem(requested, limits, budget);
  if (!why) return { ...base, estimate: requested, fits: true, batchSize: c.batchSize, gradAccum: c.gradAccum, changed: false, message: null };
  // Smaller micro-batches first: the same result at (nearly) the same speed. Recomputation costs 1.2-1.3x the
  // step time (bench/README.md), so it is only offered when not even one sequence per micro-batch fits without it.
  const micro = largestMicroBatch(model, c, seqLen, limits, budget);
  if (micro) {
    return {
      ...base,
      ...micro,
      fits: true,
      changed: true,
      message: `Batch ${c.batchSize} of ${seqLen}-token sequences will not fit: it ${why}. Training with micro-batches of ${micro.batchSize} x ${micro.gradAccum} accumulation steps (about ${formatMB(micro.estimate.total)}), the same effective batch of ${c.batchSize * c.gradAccum}.`,
    };
  }
  const one = estimateTrainingMemory(model, { ...c, batchSize: 1 }, seqLen, limits.backend);
  const re = c.recompute ? null : largestMicroBatch(model, { ...c, recompute: true }, seqLen, limits, budget);
  const fixes = [`a shorter max sequence length (now ${seqLen} tokens)`];
  if (c.mode === 'lora' && c.lora.target_modules.length > 2) fixes.push('fewer LoRA targets (q_proj and v_proj only)');
  if (c.mode === 'full') fixes.push('a LoRA adapter instead of every weight');
  fixes.push('a smaller model');
  const offer = re
    ? ` Turn on ${RECOMPUTE_OPTION.label} (each layer's activations recomputed in the backward pass, about a quarter more time per step): then ${re.batchSize === c.batchSize ? `batch ${c.batchSize}` : `micro-batches of ${re.batchSize} x ${re.gradAccum} accumulation steps`} fit (about ${formatMB(re.estimate.total)}). Or try ${fixes.join(', ')}.`
    : ` Try ${fixes.join(', ')}.`;
  return {
    ...base,
    estimate: one,
    fits: false,
    batchSize: 1,
    gradAccum: c.gradAccum * c.batchSize,
    changed: false,
    message: `This run will not fit in memory: even one ${seqLen}-token sequence per micro-batch ${problem(one, limits, budget)} (weights ${formatMB(one.weights)}, activations ${formatMB(one.activations)}, adapter and optimizer ${formatMB(one.trainable)}).${offer}`,
    withRecompute: re,
  };
}

/** The largest micro-batch that divides c.batchSize and fits, with the accumulation that keeps the effective batch; null if none. */
function largestMicroBatch(model: ModelShape, c: TrainConfig, seqLen: number, limits: DeviceMemoryLimits, budget: number | null): { batchSize: number; gradAccum: number; estimate: MemoryEstimate } | null {
  for (let mb = c.batchSize; mb >= 1; mb--) {
    if (c.batchSize % mb !== 0) continue;
    const estimate = estimateTrainingMemory(model, { ...c, batchSize: mb }, seqLen, limits.backend);
    if (!problem(estimate, limits, budget)) return { batchSize: mb, gradAccum: c.gradAccum * (c.batchSize / mb), estimate };
  }
  return null;
}

/** "Memory: ~X MB of Y MB available (weights A, activations B, adapter+optimizer C)", one line for the Train panel and the CLI. */
export function memoryLine(p: MemoryPlan): string {
  const e = p.estimate;
  const of = p.budget !== null ? ` of ${formatMB(p.budget)} available` : p.limits.maxTensorBytes !== null ? ` (largest tensor ${formatMB(e.largest.bytes)} of the GPU's ${formatMB(p.limits.maxTensorBytes)} buffer limit)` : '';
  const micro = p.changed ? `, micro-batches of ${p.batchSize} x ${p.gradAccum}` : '';
  return `Memory: ~${formatMB(e.total)}${of} (weights ${formatMB(e.weights)}, activations ${formatMB(e.activations)}${e.recompute ? ' recomputed per layer' : ''}, adapter+optimizer ${formatMB(e.trainable)}${micro})`;
}
