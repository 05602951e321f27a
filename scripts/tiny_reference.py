#!/usr/bin/env python3
"""Tiny random-weight Hugging Face model folders plus an independent NumPy forward pass.

Usage: python3 scripts/tiny_reference.py OUT_DIR [--mutate NAME]

For each architecture variant below this writes OUT_DIR/<variant>/ containing
  config.json        a Hugging Face config (model_type, sizes, rope settings, tying)
  model.safetensors  random weights with HF names and layouts (F32, F16, BF16 or mixed)
  expected.json      token sequences and the float64 logits at every position

The forward passes follow the Hugging Face modeling files (modeling_gpt2.py, modeling_llama.py,
modeling_qwen2.py, modeling_mistral.py and modeling_rope_utils.py), not tabtune's TypeScript.
They compute in float64 from the weights *as stored*: F16/BF16 values are rounded first, so a
correct loader (which decodes them exactly to float32) should match as closely as an F32 one.

Only the standard library and numpy are used (no torch, no safetensors package).

--mutate NAME deliberately breaks one piece of the reference (for checking that the test that
consumes these files is sensitive to it): rope_sign, gqa_map, rope_half, llama3_off, no_qkv_bias,
gelu_erf, untie_ignored.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

MUTATIONS = {"rope_sign", "gqa_map", "rope_half", "llama3_off", "no_qkv_bias", "gelu_erf", "untie_ignored"}
MUTATE = None

# ---------------------------------------------------------------------------------------------
# Storage: rounding to the stored dtype and the safetensors format


def f32_to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lsb = (u >> np.uint64(16)) & np.uint64(1)
    return ((u + np.uint64(0x7FFF) + lsb) >> np.uint64(16)).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


def stored(a, dtype):
    """(bytes, float64 values exactly as a reader decodes them) for a float array stored as dtype."""
    a32 = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "F32":
        return a32.astype("<f4").tobytes(), a32.astype(np.float64)
    if dtype == "F16":
        h = a32.astype(np.float16)  # round to nearest even
        assert np.all(np.isfinite(h)), "value out of float16 range"
        return h.astype("<f2").tobytes(), h.astype(np.float64)
    if dtype == "BF16":
        bits = f32_to_bf16_bits(a32)
        return bits.astype("<u2").tobytes(), bf16_bits_to_f32(bits).astype(np.float64)
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, raw bytes). Header padded with spaces to 8-byte alignment."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    with atomic_open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, _, raw in tensors:
            f.write(raw)


class atomic_open:
    """Writes path.tmp-<pid> and renames it over path, so a concurrent reader never sees a partial file."""

    def __init__(self, path, mode="w"):
        self.path, self.tmp = path, f"{path}.tmp-{os.getpid()}"
        self.f = open(self.tmp, mode)

    def __enter__(self):
        return self.f

    def __exit__(self, exc_type, *_):
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


class Checkpoint:
    """Collects tensors: random float32 values, stored as some dtype, read back as float64."""

    def __init__(self, seed, dtype, norm_dtype=None):
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.norm_dtype = norm_dtype or dtype
        self.tensors = []  # (name, dtype, shape, raw)
        self.values = {}  # name -> float64 array, as stored

    def add(self, name, value, dtype=None):
        dtype = dtype or self.dtype
        raw, v = stored(value, dtype)
        self.tensors.append((name, dtype, value.shape, raw))
        self.values[name] = v.reshape(value.shape)
        return self.values[name]

    def randn(self, name, shape, std):
        return self.add(name, (self.rng.standard_normal(shape) * std).astype(np.float32))

    def norm(self, name, n, center=1.0, std=0.2):
        v = (center + self.rng.standard_normal(n) * std).astype(np.float32)
        return self.add(name, v, self.norm_dtype)

    def write(self, folder):
        write_safetensors(os.path.join(folder, "model.safetensors"), self.tensors)


# ---------------------------------------------------------------------------------------------
# Shared math (float64)


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def causal_attention(q, k, v):
    """q: [H, T, hd], k/v: [H, T, hd] (already one kv per query head) -> [T, H*hd]."""
    H, T, hd = q.shape
    scores = q @ np.swapaxes(k, 1, 2) / math.sqrt(hd)  # [H, T, T]
    future = np.triu(np.ones((T, T), dtype=bool), k=1)
    scores = np.where(future[None], -np.inf, scores)
    p = softmax(scores, -1)
    o = p @ v  # [H, T, hd]
    return np.transpose(o, (1, 0, 2)).reshape(T, H * hd)


# ---------------------------------------------------------------------------------------------
# GPT-2 (modeling_gpt2.py)


def gelu_new(x):
    if MUTATE == "gelu_erf":
        return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * np.power(x, 3.0))))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mu) / np.sqrt(var + eps) * w + b


def gpt2_forward(cfg, W, ids):
    p = "transformer."
    D, H = cfg["n_embd"], cfg["n_head"]
    hd = D // H
    eps = cfg["layer_norm_epsilon"]
    T = len(ids)
    x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][np.arange(T)]
    for i in range(cfg["n_layer"]):
        b = f"{p}h.{i}."
        h = layer_norm(x, W[b + "ln_1.weight"], W[b + "ln_1.bias"], eps)
        qkv = h @ W[b + "attn.c_attn.weight"] + W[b + "attn.c_attn.bias"]  # Conv1D: x @ W[in, out] + b
        q, k, v = np.split(qkv, 3, axis=-1)
        heads = lambda t: np.transpose(t.reshape(T, H, hd), (1, 0, 2))  # noqa: E731
        a = causal_attention(heads(q), heads(k), heads(v))
        x = x + a @ W[b + "attn.c_proj.weight"] + W[b + "attn.c_proj.bias"]
        h2 = layer_norm(x, W[b + "ln_2.weight"], W[b + "ln_2.bias"], eps)
        m = gelu_new(h2 @ W[b + "mlp.c_fc.weight"] + W[b + "mlp.c_fc.bias"])
        x = x + m @ W[b + "mlp.c_proj.weight"] + W[b + "mlp.c_proj.bias"]
    x = layer_norm(x, W[p + "ln_f.weight"], W[p + "ln_f.bias"], eps)
    return x @ W[p + "wte.weight"].T  # lm_head tied to wte


def make_gpt2(seed):
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": 72,
        "n_embd": 24,
        "n_layer": 2,
        "n_head": 3,
        "n_inner": None,  # -> 4 * n_embd
        "n_positions": 32,
        "n_ctx": 32,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float32",
    }
    ck = Checkpoint(seed, "F32")
    D, V, P, I = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"], 4 * cfg["n_embd"]
    p = "transformer."
    ck.randn(p + "wte.weight", (V, D), 0.5)
    ck.randn(p + "wpe.weight", (P, D), 0.3)
    for i in range(cfg["n_layer"]):
        b = f"{p}h.{i}."
        ck.norm(b + "ln_1.weight", D)
        ck.randn(b + "ln_1.bias", (D,), 0.1)
        ck.randn(b + "attn.c_attn.weight", (D, 3 * D), 0.3)  # Conv1D weights are [in, out]
        ck.randn(b + "attn.c_attn.bias", (3 * D,), 0.1)
        ck.randn(b + "attn.c_proj.weight", (D, D), 0.2)
        ck.randn(b + "attn.c_proj.bias", (D,), 0.1)
        ck.norm(b + "ln_2.weight", D)
        ck.randn(b + "ln_2.bias", (D,), 0.1)
        ck.randn(b + "mlp.c_fc.weight", (D, I), 0.3)
        ck.randn(b + "mlp.c_fc.bias", (I,), 0.1)
        ck.randn(b + "mlp.c_proj.weight", (I, D), 0.15)
        ck.randn(b + "mlp.c_proj.bias", (D,), 0.1)
        # The causal-mask buffer older transformers versions saved: unused, must be ignored.
        ck.add(b + "attn.bias", np.tril(np.ones((P, P), dtype=np.float32)).reshape(1, 1, P, P))
    ck.norm(p + "ln_f.weight", D)
    ck.randn(p + "ln_f.bias", (D,), 0.1)
    return cfg, ck, gpt2_forward


# ---------------------------------------------------------------------------------------------
# Llama family (modeling_llama.py, modeling_qwen2.py, modeling_mistral.py, modeling_rope_utils.py)


def rope_inv_freq(cfg, hd):
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.float64) / hd))  # [hd/2]
    rs = cfg.get("rope_scaling")
    rtype = (rs or {}).get("rope_type", (rs or {}).get("type", "default"))
    if rtype == "linear":
        inv = inv / rs["factor"]
    elif rtype == "llama3" and MUTATE != "llama3_off":
        # _compute_llama3_parameters
        factor = rs["factor"]
        low, high = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        inv_l = np.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = np.where(medium, smoothed, inv_l)
    elif rtype not in ("default", "llama3"):
        raise ValueError(rtype)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    if MUTATE == "rope_sign":
        return np.concatenate([x2, -x1], -1)
    return np.concatenate([-x2, x1], -1)


def apply_rope(x, cos, sin):
    """x: [N, T, hd]; cos/sin: [T, hd]."""
    if MUTATE == "rope_half":  # GPT-J style interleaved pairs instead of rotate-half
        x1, x2 = x[..., 0::2], x[..., 1::2]
        c, s = cos[:, 0::2], sin[:, 0::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * c - x2 * s
        out[..., 1::2] = x2 * c + x1 * s
        return out
    return x * cos[None] + rotate_half(x) * sin[None]


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def llama_head_dim(cfg):
    # LlamaAttention / MistralAttention: getattr(config, "head_dim", None) or hidden_size // num_attention_heads
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def llama_forward(cfg, W, ids):
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = llama_head_dim(cfg)
    eps = cfg["rms_norm_eps"]
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    if MUTATE == "no_qkv_bias":
        qkv_bias = False
    o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)
    T = len(ids)

    def lin(x, name, bias):  # nn.Linear: weight [out, in]
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if bias else y

    inv = rope_inv_freq(cfg, hd)
    freqs = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]  # [T, hd/2]
    emb = np.concatenate([freqs, freqs], -1)  # [T, hd]
    cos, sin = np.cos(emb), np.sin(emb)

    x = W["model.embed_tokens.weight"][ids]  # [T, D]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(h, p + "self_attn.q_proj", qkv_bias).reshape(T, H, hd).transpose(1, 0, 2)  # [H, T, hd]
        k = lin(h, p + "self_attn.k_proj", qkv_bias).reshape(T, KV, hd).transpose(1, 0, 2)  # [KV, T, hd]
        v = lin(h, p + "self_attn.v_proj", qkv_bias).reshape(T, KV, hd).transpose(1, 0, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # repeat_kv: query head h reads kv head h // (H / KV)
        rep = H // KV
        kv_of = np.arange(H) % KV if MUTATE == "gqa_map" else np.arange(H) // rep
        a = causal_attention(q, k[kv_of], v[kv_of])  # [T, H*hd]
        x = x + lin(a, p + "self_attn.o_proj", o_bias)
        h2 = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        m = silu(lin(h2, p + "mlp.gate_proj", mlp_bias)) * lin(h2, p + "mlp.up_proj", mlp_bias)
        x = x + lin(m, p + "mlp.down_proj", mlp_bias)
    x = rms_norm(x, W["model.norm.weight"], eps)
    tied = cfg.get("tie_word_embeddings", False)
    if MUTATE == "untie_ignored":
        tied = True
    head = W["model.embed_tokens.weight"] if tied else W["lm_head.weight"]
    return x @ head.T


def make_llama(seed, cfg, dtype, norm_dtype=None):
    ck = Checkpoint(seed, dtype, norm_dtype)
    D, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = llama_head_dim(cfg)
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    o_bias = cfg["model_type"] != "qwen2" and cfg.get("attention_bias", False)
    mlp_bias = cfg.get("mlp_bias", False)
    ck.randn("model.embed_tokens.weight", (V, D), 0.5)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        ck.norm(p + "input_layernorm.weight", D)
        for name, out_dim, in_dim, bias, std in [
            ("self_attn.q_proj", H * hd, D, qkv_bias, 0.35),
            ("self_attn.k_proj", KV * hd, D, qkv_bias, 0.35),
            ("self_attn.v_proj", KV * hd, D, qkv_bias, 0.3),
            ("self_attn.o_proj", D, H * hd, o_bias, 0.2),
            ("mlp.gate_proj", I, D, mlp_bias, 0.3),
            ("mlp.up_proj", I, D, mlp_bias, 0.3),
            ("mlp.down_proj", D, I, mlp_bias, 0.2),
        ]:
            ck.randn(p + name + ".weight", (out_dim, in_dim), std)
            if bias:
                ck.randn(p + name + ".bias", (out_dim,), 0.3)
        ck.norm(p + "post_attention_layernorm.weight", D)
    ck.norm("model.norm.weight", D)
    if not cfg.get("tie_word_embeddings", False):
        ck.randn("lm_head.weight", (V, D), 0.3)
    return cfg, ck, llama_forward


def llama_cfg(**kw):
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": 80,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }
    cfg.update(kw)
    return cfg


def variants():
    return {
        # Plain MHA llama with a separate lm_head.
        "llama-untied": lambda: make_llama(101, llama_cfg(), "F32"),
        # GQA (4 query heads on 2 kv heads), explicit head_dim (10) != hidden / heads (6), tied head,
        # llama-3 style rope_theta; stored F16.
        "llama-gqa": lambda: make_llama(
            102,
            llama_cfg(
                vocab_size=96, hidden_size=24, intermediate_size=40, num_attention_heads=4, num_key_value_heads=2,
                head_dim=10, rope_theta=500000.0, tie_word_embeddings=True, torch_dtype="float16",
            ),
            "F16",
        ),
        # Qwen2: q/k/v biases, no o_proj bias, GQA 6 -> 2 (3 query heads per kv head), tied; BF16
        # matrices with F32 norms (a mixed-dtype file).
        "qwen2": lambda: make_llama(
            103,
            llama_cfg(
                architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=88, hidden_size=24,
                intermediate_size=56, num_attention_heads=6, num_key_value_heads=2, rope_theta=1000000.0,
                rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False, sliding_window=4096,
                max_window_layers=2, torch_dtype="bfloat16",
            ),
            "BF16",
            "F32",
        ),
        # Mistral: GQA 4 -> 1, untied (the MistralConfig default), sliding window beyond the context.
        "mistral": lambda: make_llama(
            104,
            llama_cfg(
                architectures=["MistralForCausalLM"], model_type="mistral", vocab_size=64, hidden_size=32,
                intermediate_size=64, num_attention_heads=4, num_key_value_heads=1, sliding_window=4096,
                rope_theta=10000.0, rms_norm_eps=1e-6,
            ),
            "F32",
        ),
        # Llama-3.1 rope scaling. original_max_position_embeddings 32 with theta 1e4 and head_dim 16
        # puts the 8 frequencies in all three bands (unscaled, smoothed, divided by factor).
        "llama3-rope": lambda: make_llama(
            105,
            llama_cfg(
                vocab_size=56, hidden_size=32, num_attention_heads=2, num_key_value_heads=2,
                rope_scaling={
                    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 32,
                },
                max_position_embeddings=128, tie_word_embeddings=True,
            ),
            "F32",
        ),
        # Llama with attention_bias (q/k/v/o biases), mlp_bias and linear rope scaling; stored F16.
        "llama-bias-linear": lambda: make_llama(
            106,
            llama_cfg(
                vocab_size=60, hidden_size=16, intermediate_size=40, num_attention_heads=2, num_key_value_heads=1,
                attention_bias=True, mlp_bias=True, rope_scaling={"type": "linear", "factor": 2.0},
                torch_dtype="float16",
            ),
            "F16",
        ),
        "gpt2": lambda: make_gpt2(107),
    }


# ---------------------------------------------------------------------------------------------


def token_cases(vocab, seed):
    """Two full rows of 12 tokens (a batch) and a short row of 7 (for left-padding tests)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=n).tolist() for n in (12, 12, 7)]


def main():
    global MUTATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--mutate", choices=sorted(MUTATIONS))
    ap.add_argument("--only", nargs="*", help="variants to write (default: all)")
    args = ap.parse_args()
    MUTATE = args.mutate
    os.makedirs(args.out, exist_ok=True)
    summary = {}
    for name, make in variants().items():
        if args.only and name not in args.only:
            continue
        cfg, ck, forward = make()
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        with atomic_open(os.path.join(folder, "config.json")) as f:
            json.dump(cfg, f, indent=2)
        ck.write(folder)
        cases = []
        for ids in token_cases(cfg["vocab_size"], 1000 + len(name)):
            logits = forward(cfg, ck.values, np.asarray(ids))
            assert np.all(np.isfinite(logits))
            cases.append({"ids": ids, "logits": logits.tolist()})
        dtypes = sorted({t[1] for t in ck.tensors})
        expected = {"variant": name, "dtypes": dtypes, "mutation": MUTATE, "cases": cases}
        with atomic_open(os.path.join(folder, "expected.json")) as f:
            json.dump(expected, f)
        allv = np.concatenate([np.asarray(c["logits"]).ravel() for c in cases])
        summary[name] = {"dtypes": dtypes, "logit_std": round(float(allv.std()), 3), "logit_absmax": round(float(np.abs(allv).max()), 3)}
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
