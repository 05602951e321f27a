#!/usr/bin/env python3
"""Checks tabtune's exports against the real tools: transformers + PEFT must compute the logits tabtune did.

Needs torch, transformers, peft and safetensors (CPU is enough for small models):
    pip install torch transformers peft safetensors

Usage:
    python scripts/check_peft_export.py --base BASE_DIR --adapter ADAPTER_DIR --merged MERGED_DIR \
        --logits tabtune_logits.json [--tol 1e-4] [--device cpu]

  BASE_DIR     the base model folder (config.json, model.safetensors, tokenizer files) tabtune trained on
  ADAPTER_DIR  tabtune's PEFT adapter export (adapter_config.json, adapter_model.safetensors)
  MERGED_DIR   tabtune's merged model export
  --logits     JSON written by tabtune (logitsReport in src/io/export.ts) with the adapter at strength 1:
               {"input_ids": [[...], ...], "logits": [[[...V floats]...]...]}
               optional "base_logits" (same shape, adapter off): also checked against the plain base model;
               optional "text" + "text_ids": tabtune's tokenization of text, checked against AutoTokenizer.

Checks, each printing the max abs difference:
  1. every tensor in adapter_model.safetensors is consumed by PeftModel (names map onto the model) and none is missing
  2. PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), ADAPTER) logits == tabtune's
  3. AutoModelForCausalLM.from_pretrained(MERGED) logits == tabtune's
  4. (optional) base logits, tokenizer of the merged folder
Exits 0 when all differences are <= tol, 1 otherwise (2 for bad arguments or files).
"""
import argparse
import json
import os
import sys


def load_causal_lm(path, device):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": "eager"}
    # transformers >= 4.56 calls the argument dtype (torch_dtype is deprecated there).
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kwargs["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.to(device).eval()


def logits_of(model, input_ids, device):
    import torch

    ids = torch.tensor(input_ids, dtype=torch.long, device=device)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    return out.logits.float().cpu()


def max_diff(actual, expected_list):
    import torch

    expected = torch.tensor(expected_list, dtype=torch.float32)
    if tuple(actual.shape) != tuple(expected.shape):
        raise SystemExit(f"shape mismatch: transformers gives {tuple(actual.shape)}, tabtune's JSON has {tuple(expected.shape)}")
    return (actual - expected).abs().max().item()


def main():
    ap = argparse.ArgumentParser(description="Compare tabtune's PEFT adapter and merged exports with transformers + PEFT.")
    ap.add_argument("--base", required=True, help="base model folder")
    ap.add_argument("--adapter", required=True, help="tabtune's PEFT adapter folder")
    ap.add_argument("--merged", required=True, help="tabtune's merged model folder")
    ap.add_argument("--logits", required=True, help="tabtune's logits JSON")
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs logit difference allowed (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    args = ap.parse_args()

    for d in (args.base, args.adapter, args.merged):
        if not os.path.isdir(d):
            print(f"error: {d} is not a folder", file=sys.stderr)
            return 2
    try:
        with open(args.logits) as f:
            ref = json.load(f)
        input_ids, want = ref["input_ids"], ref["logits"]
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot read {args.logits}: {e}", file=sys.stderr)
        return 2

    import torch
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    # Exact float32 matmuls on GPU too (no TF32).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    results = []  # (name, diff or None, ok)

    # 4a. The base model alone (when tabtune also wrote its adapter-off logits).
    base = load_causal_lm(args.base, args.device)
    if "base_logits" in ref:
        d = max_diff(logits_of(base, input_ids, args.device), ref["base_logits"])
        results.append(("base model vs tabtune (adapter off)", d, d <= args.tol))
        effect = max_diff(torch.tensor(want), ref["base_logits"])
        print(f"adapter effect on tabtune's logits: max |adapter - base| = {effect:.3e}")
        if effect <= args.tol:
            print("warning: the adapter barely changes the logits, so checks 2-3 prove little (train it longer or use a larger init)")

    # 1 + 2. Base + adapter through PEFT.
    peft_model = PeftModel.from_pretrained(base, args.adapter).to(args.device).eval()
    file_keys = set(load_file(os.path.join(args.adapter, "adapter_model.safetensors")).keys())
    model_keys = set(get_peft_model_state_dict(peft_model, save_embedding_layers=False).keys())
    missing, unused = sorted(model_keys - file_keys), sorted(file_keys - model_keys)
    names_ok = not missing and not unused
    if missing:
        print(f"adapter tensors PEFT expects but the file lacks ({len(missing)}): {missing[:4]}")
    if unused:
        print(f"adapter tensors in the file that PEFT did not use ({len(unused)}): {unused[:4]}")
    results.append((f"adapter tensor names ({len(file_keys)} tensors)", None, names_ok))
    d = max_diff(logits_of(peft_model, input_ids, args.device), want)
    results.append(("PeftModel(base, adapter) vs tabtune", d, d <= args.tol))
    del peft_model, base

    # 3. The merged folder as a plain transformers model.
    merged = load_causal_lm(args.merged, args.device)
    d = max_diff(logits_of(merged, input_ids, args.device), want)
    results.append(("merged folder vs tabtune", d, d <= args.tol))
    del merged

    # 4b. The merged folder's tokenizer.
    if "text" in ref and "text_ids" in ref:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.merged)
        got = tok(ref["text"])["input_ids"]
        results.append(("merged tokenizer ids == tabtune's", None, got == ref["text_ids"]))
        if got != ref["text_ids"]:
            print(f"tokenizer: transformers {got[:16]} vs tabtune {ref['text_ids'][:16]}")

    ok = True
    for name, diff, passed in results:
        ok &= passed
        shown = "" if diff is None else f"max abs diff {diff:.3e}  "
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {shown}(tol {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
