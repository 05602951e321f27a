#!/usr/bin/python3
"""Pretrains a tabtune Llama with PyTorch on CPU (or CUDA when present): the path for models larger
than the TF.js engine trains in reasonable time (tabtune-base). Same architecture as src/model/llama.ts
(Hugging Face LlamaForCausalLM: RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU, tied
embeddings), same recipe fields (models/<name>/train.json), same token stream (.cache/corpus/tokens-V/),
same metrics.jsonl lines as the TF.js trainer, so `npm run pretrain` can take it from there.

Usage (normally through `npm run pretrain -- --config models/tabtune-base/train.json`):
  /usr/bin/python3 scripts/pretrain/train_torch.py --config CFG --work DIR --export DIR [--resume] [--steps N]
      [--max-minutes M] [--threads K]
Writes DIR/checkpoint.pt (model + AdamW + step + RNG) every saveEveryMinutes and when stopped,
DIR/metrics.jsonl, and at the end the HF folder (config.json, model.safetensors F32) into --export
plus golden.json: input ids and this implementation's logits, which the TF.js runtime must reproduce.

Needs only Debian's python3-torch (apt-get install -y python3-torch libopenblas0-openmp); no
transformers, no safetensors package (the file is written by hand).
"""
import argparse
import json
import math
import os
import signal
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


# ------------------------------------------------------------------------------------------------
# Model (module names = Hugging Face checkpoint names)

class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H, KV = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads']
        self.H, self.KV, self.hd = H, KV, D // H
        self.q_proj = nn.Linear(D, H * self.hd, bias=False)
        self.k_proj = nn.Linear(D, KV * self.hd, bias=False)
        self.v_proj = nn.Linear(D, KV * self.hd, bias=False)
        self.o_proj = nn.Linear(H * self.hd, D, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.KV, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.KV, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.KV
        k = k.repeat_interleave(rep, dim=1)  # HF repeat_kv: query head h reads kv head h // rep
        v = v.repeat_interleave(rep, dim=1)
        # Explicit causal softmax attention (torch 1.13, Debian's, has no scaled_dot_product_attention).
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), float('-inf'))
        o = torch.softmax(s, dim=-1) @ v
        return self.o_proj(o.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, I = c['hidden_size'], c['intermediate_size']
        self.gate_proj = nn.Linear(D, I, bias=False)
        self.up_proj = nn.Linear(D, I, bias=False)
        self.down_proj = nn.Linear(I, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Body(c)
        self.tied = c['tie_word_embeddings']
        if not self.tied:
            self.lm_head = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)
        hd = c['hidden_size'] // c['num_attention_heads']
        inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        t = torch.arange(c['max_position_embeddings'], dtype=torch.float64)
        f = torch.outer(t, inv)
        emb = torch.cat([f, f], dim=-1)
        self.register_buffer('cos', emb.cos().float(), persistent=False)
        self.register_buffer('sin', emb.sin().float(), persistent=False)

    def forward(self, ids):
        T = ids.shape[1]
        cos, sin = self.cos[:T], self.sin[:T]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        return x @ (self.model.embed_tokens.weight.t() if self.tied else self.lm_head.weight.t())

    def hf_state(self):
        """Weights by HF name (a tied head is not repeated), float32 CPU tensors."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}


def init_weights(model, c, std, seed):
    g = torch.Generator().manual_seed(seed)
    out_std = std / math.sqrt(2 * c['num_hidden_layers'])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('norm.weight') or 'layernorm' in name:
                p.fill_(1.0)
            elif name.endswith('o_proj.weight') or name.endswith('down_proj.weight'):
                p.copy_(torch.randn(p.shape, generator=g) * out_std)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ------------------------------------------------------------------------------------------------
# Helpers shared with the TF.js side

def hf_config(cfg, ids):
    m = cfg['model']
    return {
        'architectures': ['LlamaForCausalLM'], 'model_type': 'llama', 'vocab_size': cfg['vocab'],
        'hidden_size': m['hidden_size'], 'intermediate_size': m['intermediate_size'],
        'num_hidden_layers': m['num_hidden_layers'], 'num_attention_heads': m['num_attention_heads'],
        'num_key_value_heads': m['num_key_value_heads'], 'head_dim': m['hidden_size'] // m['num_attention_heads'],
        'max_position_embeddings': m['max_position_embeddings'], 'hidden_act': 'silu', 'rms_norm_eps': m['rms_norm_eps'],
        'rope_theta': m['rope_theta'], 'rope_scaling': None, 'attention_bias': False, 'attention_dropout': 0.0,
        'mlp_bias': False, 'initializer_range': m['init_std'], 'pretraining_tp': 1,
        'tie_word_embeddings': m['tie_word_embeddings'], 'bos_token_id': ids['bos'], 'eos_token_id': ids['eos'],
        'pad_token_id': ids['pad'], 'torch_dtype': 'float32', 'use_cache': True,
    }


def lr_at(t, step, total):
    """src/train/schedule.ts learningRate()."""
    if t['warmupSteps'] > 0 and step < t['warmupSteps']:
        return t['lr'] * (step + 1) / t['warmupSteps']
    if t['schedule'] == 'constant':
        return t['lr']
    span = max(1, total - t['warmupSteps'])
    p = min(1.0, max(0.0, (step - t['warmupSteps']) / span))
    f = 1 - p if t['schedule'] == 'linear' else 0.5 * (1 + math.cos(math.pi * p))
    return t['lr'] * (t['minLrRatio'] + (1 - t['minLrRatio']) * f)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].numpy().astype('<f4')
        b = a.tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header['__metadata__'] = {'format': 'pt'}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """F32 tensors of a safetensors file by name (the format write_safetensors writes)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == '__metadata__':
            continue
        if h['dtype'] != 'F32':
            raise ValueError(f'{path}: {name} is {h["dtype"]}, only F32 is read')
        a, b = h['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype='<f4').copy()).reshape(h['shape'])
    return out


def emit(o):
    sys.stdout.write(json.dumps(o) + '\n')
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--export', required=True)
    ap.add_argument('--resume', action='store_true')
    ap.add_argument('--steps', type=int, default=None)
    ap.add_argument('--max-minutes', type=float, default=None)
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))
    t, m = cfg['train'], cfg['model']
    V, T = cfg['vocab'], m['max_position_embeddings']
    corpus = os.path.join(ROOT, '.cache', 'corpus')
    index = json.load(open(os.path.join(corpus, f'tokens-{V}', 'index.json')))
    tok_json = json.load(open(os.path.join(corpus, f'tokenizer-{V}', 'tokenizer.json')))
    pad = next(x['id'] for x in tok_json['added_tokens'] if x['content'] == '<pad>')
    ids = {'bos': index['bos'], 'eos': index['eos'], 'pad': pad}
    train = torch.from_numpy(np.fromfile(os.path.join(corpus, f'tokens-{V}', 'train.bin'), dtype='<u2').astype(np.int64))
    held = torch.from_numpy(np.fromfile(os.path.join(corpus, f'tokens-{V}', 'heldout.bin'), dtype='<u2').astype(np.int64))
    # Copy-rich documents (scripts/corpus/copy.ts), mixed into every batch at cfg['copyMix'] of its windows:
    # a share, or a schedule [[from_step, share], ...] (the last entry whose from_step <= step applies).
    mix = cfg.get('copyMix', 0)
    schedule = [[0, mix]] if isinstance(mix, (int, float)) else sorted(mix)

    def mix_at(step):
        return [m for s, m in schedule if s <= step][-1] if schedule and schedule[0][0] <= step else 0

    copy_train = copy_held = None
    if any(m > 0 for _, m in schedule):
        cpath = os.path.join(corpus, f'tokens-{V}', 'copy-train.bin')
        if not os.path.exists(cpath):
            sys.exit(f'{cpath} is missing: run `npm run corpus:copy -- --vocab {V}` first')
        copy_train = torch.from_numpy(np.fromfile(cpath, dtype='<u2').astype(np.int64))
        copy_held = torch.from_numpy(np.fromfile(os.path.join(corpus, f'tokens-{V}', 'copy-heldout.bin'), dtype='<u2').astype(np.int64))
    nwin = (len(train) - 1) // T
    hwin = (len(held) - 1) // T
    stride = max(1, hwin // cfg['evalWindows'])
    held_idx = list(range(0, hwin, stride))[: cfg['evalWindows']]

    c = hf_config(cfg, ids)
    dev = torch.device(a.device)
    torch.manual_seed(t['seed'])
    model = Llama(c).to(dev)
    init_weights(model, c, m['init_std'], t['seed'])
    if cfg.get('initFrom') and not a.resume:
        # Continued pretraining: start from an exported model's weights (the optimizer starts fresh).
        src = os.path.join(ROOT, cfg['initFrom'], 'model.safetensors')
        missing, unexpected = model.load_state_dict(read_safetensors(src), strict=False)
        if missing or unexpected:
            sys.exit(f'{src} does not fit this config: missing {missing}, unexpected {unexpected}')
        emit({'event': 'init-from', 'path': cfg['initFrom']})
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': t['weightDecay']}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=t['lr'], betas=(0.9, t.get('beta2', 0.999)), eps=1e-8)
    os.makedirs(a.work, exist_ok=True)
    ck_path = os.path.join(a.work, 'checkpoint.pt')
    metrics_path = os.path.join(a.work, 'metrics.jsonl')
    meta = {'train_seconds': 0.0, 'tokens': 0, 'sittings': 0, 'step': 0, 'steps': a.steps or t['steps'], 'smooth': None, 'smooth_n': 0}
    if a.resume:
        ck = torch.load(ck_path, map_location=dev)
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['opt'])
        meta = ck['meta']
        if a.steps and a.steps != meta['steps']:
            # A new total re-times the rest of the schedule (the cosine decays to the new end).
            emit({'event': 'steps-changed', 'from': meta['steps'], 'to': a.steps, 'at': meta['step']})
            meta['steps'] = a.steps
        torch.set_rng_state(ck['rng'])
        lines = [l for l in open(metrics_path) if l.strip() and json.loads(l)['step'] <= meta['step']]
        open(metrics_path, 'w').writelines(lines)
        emit({'event': 'resume', 'step': meta['step']})
    else:
        open(metrics_path, 'w').close()
    meta['sittings'] += 1
    total = meta['steps']
    nparams = sum(p.numel() for p in model.parameters())
    emit({'event': 'start', 'trainer': 'torch', 'device': str(dev), 'threads': torch.get_num_threads(), 'params': nparams,
          'total_steps': total, 'tokens_per_step': t['batchSize'] * t['gradAccum'] * T, 'train_windows': nwin})

    def save():
        torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'meta': meta, 'rng': torch.get_rng_state()}, ck_path + '.tmp')
        os.replace(ck_path + '.tmp', ck_path)
        emit({'event': 'checkpoint', 'step': meta['step']})

    def induction_accuracy(n_seq=32, span=40):
        """In-context copying: random tokens (ids 260.., byte pieces and specials left out) repeated once;
        the share of the repeat's tokens (after its first) that the model predicts exactly. A model that
        cannot copy from its context scores ~0; one with induction heads close to 1."""
        g = torch.Generator().manual_seed(99)
        seq = torch.randint(260, V, (n_seq, span), generator=g)
        x = torch.cat([torch.full((n_seq, 1), ids['bos']), seq, seq], dim=1).to(dev)
        model.eval()
        with torch.no_grad():
            pred = model(x).argmax(-1)
        model.train()
        # Position span + k predicts the repeat's token k (k >= 1): seq[:, k].
        hit = pred[:, span + 1:2 * span] == x[:, span + 2:2 * span + 1]
        return hit.float().mean().item()

    def windows(data, idx):
        starts = torch.as_tensor(idx) * T
        rows = torch.stack([data[s:s + T + 1] for s in starts.tolist()])
        return rows[:, :-1].to(dev), rows[:, 1:].to(dev)

    def evaluate(idx, data=None):
        data = held if data is None else data
        model.eval()
        nll, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(idx), t['batchSize']):
                x, y = windows(data, idx[i:i + t['batchSize']])
                logits = model(x)
                nll += F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction='sum').item()
                n += y.numel()
        model.train()
        return nll / n

    stop = {'flag': False}

    def on_sig(*_):
        stop['flag'] = True
    signal.signal(signal.SIGINT, on_sig)
    signal.signal(signal.SIGTERM, on_sig)
    def eval_line():
        """The periodic evaluation: held-out prose loss, and the copy measures where the run has them."""
        vl = evaluate(held_idx)
        el = {'step': meta['step'], 'val_loss': round(vl, 4), 'val_ppl': round(math.exp(vl), 2), 'train_s': round(meta['train_seconds'])}
        if copy_held is not None:
            el['val_copy_loss'] = round(evaluate(list(range((len(copy_held) - 1) // T)), copy_held), 4)
        el['induction_acc'] = round(induction_accuracy(), 4)
        with open(metrics_path, 'a') as f:
            f.write(json.dumps(el) + '\n')
        emit(el)

    if meta['step'] == 0 and cfg.get('initFrom'):
        eval_line()  # where continued pretraining starts from, on the same measures
    start = time.time()
    last_save = time.time()
    gen = torch.Generator().manual_seed(t['seed'] * 7919 + meta['step'])
    model.train()
    while meta['step'] < total and not stop['flag']:
        t0 = time.time()
        lr = lr_at(t, meta['step'], total)
        for g in opt.param_groups:
            g['lr'] = lr
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        n_copy = int(round(mix_at(meta['step']) * t['batchSize']))
        for _ in range(t['gradAccum']):
            parts = [windows(train, torch.randint(0, nwin, (t['batchSize'] - n_copy,), generator=gen).tolist())] if n_copy < t['batchSize'] else []
            if n_copy:
                parts.append(windows(copy_train, torch.randint(0, (len(copy_train) - 1) // T, (n_copy,), generator=gen).tolist()))
            x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            (loss / t['gradAccum']).backward()
            loss_sum += loss.item()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), t['maxGradNorm']).item()
        opt.step()
        meta['step'] += 1
        meta['train_seconds'] += time.time() - t0
        meta['tokens'] += t['batchSize'] * t['gradAccum'] * T
        loss = loss_sum / t['gradAccum']
        meta['smooth_n'] += 1
        meta['smooth'] = 0.9 * (meta['smooth'] or 0) + 0.1 * loss
        line = {'step': meta['step'], 'loss': round(loss, 4), 'smooth_loss': round(meta['smooth'] / (1 - 0.9 ** meta['smooth_n']), 4),
                'lr': float(f'{lr:.4g}'), 'grad_norm': round(gn, 3), 'tokens_per_s': round(meta['tokens'] / meta['train_seconds']),
                'train_s': round(meta['train_seconds'])}
        with open(metrics_path, 'a') as f:
            f.write(json.dumps(line) + '\n')
        if meta['step'] % 10 == 0 or meta['step'] == 1:
            emit(line)
        last = meta['step'] == total
        if meta['step'] % cfg['evalEvery'] == 0 or last:
            eval_line()
        if a.max_minutes is not None and time.time() - start > a.max_minutes * 60:
            stop['flag'] = True
        if last or stop['flag'] or time.time() - last_save > cfg['saveEveryMinutes'] * 60:
            save()
            last_save = time.time()
    if meta['step'] < total:
        emit({'event': 'paused', 'step': meta['step'], 'of': total})
        sys.exit(3)

    # Export: the HF folder (tokenizer and card files are added by the TS side) and golden logits.
    os.makedirs(a.export, exist_ok=True)
    json.dump(c, open(os.path.join(a.export, 'config.json'), 'w'), indent=2)
    write_safetensors(os.path.join(a.export, 'model.safetensors'), model.hf_state())
    model.eval()
    g = torch.Generator().manual_seed(0)
    # A full-context window (logits kept at a few positions, far ones included: RoPE), a short one, random ids.
    seqs = [held[:T].tolist(), held[T:T + 17].tolist(), torch.randint(0, V, (32,), generator=g).tolist()]
    positions = [[0, 1, T // 2, T - 2, T - 1], list(range(17)), list(range(32))]
    with torch.no_grad():
        logits = [model(torch.tensor([s], device=dev))[0][p].double().cpu().tolist() for s, p in zip(seqs, positions)]
    json.dump({'input_ids': seqs, 'positions': positions, 'logits': logits}, open(os.path.join(a.work, 'golden.json'), 'w'))
    with open(os.path.join(a.work, 'torch_meta.json'), 'w') as f:
        json.dump({**meta, 'params': nparams, 'device': str(dev), 'threads': torch.get_num_threads(), 'torch': torch.__version__}, f, indent=2)
    emit({'event': 'exported', 'out': a.export, 'params': nparams, 'tokens_per_s': round(meta['tokens'] / meta['train_seconds'])})


if __name__ == '__main__':
    main()
