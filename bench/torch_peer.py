#!/usr/bin/python3
"""PyTorch CPU peer of `npm run bench` (bench/main.ts starts it; not meant to be run by hand, though it can be).

Loads the same Hugging Face folder as tabtune (config.json + model.safetensors, F32) into the Llama of
scripts/pretrain/train_torch.py (imported, not copied: no transformers, no peft), then times, at the shapes
the Node bench gives in --spec:
  torch_train_lora   LoRA (same r / alpha / targets, A Kaiming-uniform, B = 0, dropout 0, base frozen): forward,
                     cross-entropy, backward, global-norm clipping to 1, AdamW step, as tabtune's Trainer does;
  torch_generate     greedy decoding, batch 1, with a KV cache (written here; checked against the no-cache
                     forward's logits before timing);
  torch_prefill      a forward over the prompt into an empty KV cache, logits of the last position;
  torch_matmul_peak  fp32 torch.mm GFLOP/s for the model's real [B*T, in] x [in, out] shapes (best shape).
FLOPs are counted with the formulas of bench/flops.ts (the Node side sends the per-step counts in --spec,
so both sides divide the same numbers).

Threads: OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS are set before torch is imported and
torch.set_num_threads(K). The BLAS that is really loaded is read from /proc/self/maps and reported: Debian's
torch without libopenblas0-openmp falls back to the reference BLAS (about 30x slower), which would flatter tabtune.

Output: JSON lines on stdout. {"kind": "info", ...} once, {"kind": "note", "text": ...} for anything the
reader must know, and measurements ({"name": "torch_...", ...}, the same fields as bench/records.ts).
Exit 3 when torch is not installed (after a note saying so).
"""
import json
import math
import os
import re
import sys
import time


def emit(o):
    sys.stdout.write(json.dumps(o) + '\n')
    sys.stdout.flush()


def note(text):
    emit({'kind': 'note', 'text': text})


SPEC = json.loads(sys.argv[sys.argv.index('--spec') + 1]) if '--spec' in sys.argv else None
if SPEC is None:
    sys.stderr.write('usage: torch_peer.py --spec JSON (bench/main.ts builds it)\n')
    sys.exit(2)
THREADS = int(SPEC['threads'])
for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[var] = str(THREADS)

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    note(f'PyTorch is not installed for {sys.executable} ({e}); the PyTorch rows are skipped. '
         'Install it with: apt-get install -y python3-torch libopenblas0-openmp')
    sys.exit(3)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'scripts', 'pretrain'))
from train_torch import Llama, read_safetensors  # noqa: E402  (the project's own PyTorch Llama)

torch.set_num_threads(THREADS)
torch.set_num_interop_threads(1)


def now():
    return time.perf_counter()


def cpu():
    """CPU time of this (the computing) thread, s: with one thread, the work without other processes' share of
    the core. Summed over all repetitions, as bench/measure.ts does with its coarser clock."""
    return time.thread_time()


def cpu_rate(tokens, cpu_s):
    return tokens / cpu_s if THREADS == 1 and cpu_s and cpu_s > 0 else None


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


# ------------------------------------------------------------------------------------------------
# Which BLAS is loaded

def blas_report():
    """The BLAS/OpenMP libraries mapped into this process (after a matmul ran), and OpenBLAS's own words."""
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    libs = set()
    with open('/proc/self/maps') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and re.search(r'blas|lapack|gomp|libomp|mkl', os.path.basename(parts[-1])):
                libs.add(parts[-1])
    openblas = [p for p in libs if 'openblas' in p]
    openmp = [p for p in openblas if 'openmp' in p or re.search(r'libopenblaso', p)]
    core = None
    config = None
    for p in openblas:
        try:
            import ctypes
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            config = lib.openblas_get_config().decode()
            break
        except (OSError, AttributeError):
            continue
    show = torch.__config__.show()
    m = re.search(r'BLAS_INFO=([^,\s]+)', show)
    return {
        'libraries': sorted(libs),
        'openblas_openmp': bool(openmp),
        'openblas_core': core,
        'openblas_config': config,
        'torch_blas_info': m.group(1) if m else None,
        'cpu_capability': (re.search(r'CPU capability usage: (\S+)', show) or [None, None])[1],
    }


# ------------------------------------------------------------------------------------------------
# Model, LoRA, KV cache

def load(folder):
    with open(os.path.join(folder, 'config.json')) as f:
        c = json.load(f)
    if c.get('model_type') != 'llama':
        raise SystemExit(f'{folder}: the PyTorch peer reads Llama models only (model_type {c.get("model_type")!r})')
    hd = c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']
    if hd * c['num_attention_heads'] != c['hidden_size']:
        raise SystemExit(f'{folder}: head_dim {hd} x {c["num_attention_heads"]} heads != hidden_size; train_torch.Llama assumes equality')
    if c.get('rope_scaling'):
        note(f'{folder}: rope_scaling {c["rope_scaling"]} is ignored by the PyTorch peer (speed is unaffected)')
    c.setdefault('rope_theta', 10000.0)
    c.setdefault('rms_norm_eps', 1e-6)
    w = read_safetensors(os.path.join(folder, 'model.safetensors'))
    c['tie_word_embeddings'] = 'lm_head.weight' not in w  # the head's matmul costs the same either way
    m = Llama(c)
    missing, unexpected = m.load_state_dict(w, strict=False)
    if missing or unexpected:
        raise SystemExit(f'{folder}: weights do not match the Llama (missing {missing[:4]}, unexpected {unexpected[:4]})')
    for p in m.parameters():
        p.requires_grad_(False)
    m.eval()
    return m, c


class LoraLinear(nn.Module):
    """PEFT's LoRA on a frozen nn.Linear: y = x W^T + s * (x A^T) B^T, A Kaiming-uniform, B = 0."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.s = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.s


def add_lora(model, targets, r, alpha):
    wrapped = []
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f'{name}.{child_name}' if name else child_name
            if isinstance(child, nn.Linear) and any(full == t or full.endswith('.' + t) for t in targets):
                lora = LoraLinear(child, r, alpha)
                setattr(mod, child_name, lora)
                wrapped.append((mod, child_name, child))
    return wrapped


def remove_lora(wrapped):
    for mod, child_name, child in wrapped:
        setattr(mod, child_name, child)


def forward_cached(m, ids, cache):
    """ids [B, T] continuing `cache` (a list with one (k, v) per layer, [B, KV, S, hd], or None): logits of the
    last position [B, V]; cache updated in place. Same maths as Llama.forward (train_torch.py)."""
    B, T = ids.shape
    past = 0 if cache[0] is None else cache[0][0].shape[2]
    cos, sin = m.cos[past:past + T], m.sin[past:past + T]
    x = m.model.embed_tokens(ids)
    for i, layer in enumerate(m.model.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(B, T, a.H, a.hd).transpose(1, 2)
        k = a.k_proj(h).view(B, T, a.KV, a.hd).transpose(1, 2)
        v = a.v_proj(h).view(B, T, a.KV, a.hd).transpose(1, 2)
        half = a.hd // 2
        q = q * cos + torch.cat([-q[..., half:], q[..., :half]], dim=-1) * sin
        k = k * cos + torch.cat([-k[..., half:], k[..., :half]], dim=-1) * sin
        if cache[i] is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        cache[i] = (k, v)
        rep = a.H // a.KV
        kk = k.repeat_interleave(rep, dim=1)
        vv = v.repeat_interleave(rep, dim=1)
        s = (q @ kk.transpose(-1, -2)) / math.sqrt(a.hd)
        if T > 1:
            s = s.masked_fill(torch.ones(T, past + T, dtype=torch.bool).triu(past + 1), float('-inf'))
        o = torch.softmax(s, dim=-1) @ vv
        x = x + a.o_proj(o.transpose(1, 2).reshape(B, T, -1))
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    x = m.model.norm(x[:, -1])
    return x @ (m.model.embed_tokens.weight.t() if m.tied else m.lm_head.weight.t())


def check_cache(m, vocab):
    """Greedy steps with the cache against the full forward's last-position logits: max |difference|."""
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(4, vocab, (1, 5), generator=g)
    cache = [None] * len(m.model.layers)
    worst = 0.0
    with torch.no_grad():
        logits = forward_cached(m, ids, cache)
        for _ in range(6):
            ref = m(ids)[:, -1]
            worst = max(worst, (logits - ref).abs().max().item())
            nxt = logits.argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
            logits = forward_cached(m, nxt, cache)
    return worst


# ------------------------------------------------------------------------------------------------
# Measurements

def record(name, **fields):
    base = {'name': name, 'model': SPEC['model'], 'backend': 'torch-cpu', 'threads': THREADS, 'host': 'torch',
            'batch': None, 'seq': None, 'tokens_per_s': None, 'gflops': None, 'mfu': None, 'targets': None,
            'ms_per_step': None}
    base.update(fields)
    return base


def matmul_peak(shapes, budget_ms, min_reps):
    results = []
    for rows, i, o in shapes:
        a = torch.randn(rows, i)
        b = torch.randn(i, o)
        flops = 2 * rows * i * o
        t0 = now()
        torch.mm(a, b)
        first = now() - t0
        k = max(1, min(8, int(budget_ms / 1000 / 4 / max(first, 1e-5))))
        best = math.inf
        start = now()
        rep = 0
        while rep < min_reps or ((now() - start) * 1000 < budget_ms and rep < 20):
            t0 = now()
            for _ in range(k):
                c = torch.mm(a, b)
            c.sum().item()
            best = min(best, (now() - t0) / k)
            rep += 1
        results.append({'shape': f'{rows}x{i}x{o}', 'gflops': flops / best / 1e9})
    return max(r['gflops'] for r in results), results


def train_lora(m, vocab, t, peak):
    wrapped = add_lora(m, t['targets'], t['r'], t['alpha'])
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(7)
    B, T = t['batch'], t['seq']
    data = torch.randint(4, vocab, (2 * B, T + 1), generator=g)
    m.train()

    def step(i):
        rows = data[(i % 2) * B:(i % 2) * B + B]
        logits = m(rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    for i in range(t['warmup']):
        step(i)
    times = []
    cpus = []
    loss = float('nan')
    for i in range(t['steps']):
        c0 = cpu()
        t0 = now()
        loss = step(i)
        times.append(now() - t0)
        cpus.append(cpu() - c0)
    m.eval()
    remove_lora(wrapped)
    mean = sum(times) / len(times) * 1000
    times.sort()
    n = len(times)
    ms = (times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2) * 1000  # median, as bench/measure.ts
    gflops = t['flops_per_step'] / ms / 1e6
    return record('torch_train_lora', batch=B, seq=T, targets=t['targets'], r=t['r'], steps=t['steps'], ms_per_step=ms,
                  ms_per_step_mean=mean, ms_per_step_min=times[0] * 1000, tokens_per_s=B * T / (ms / 1000),
                  flops_per_step=t['flops_per_step'], gflops=gflops, mfu=gflops / peak if peak else None, loss=loss,
                  cpu_ms_per_step=sum(cpus) / len(cpus) * 1000, tokens_per_s_cpu=cpu_rate(B * T, sum(cpus) / len(cpus)),
                  mfu_cpu=t['flops_per_step'] * len(cpus) / sum(cpus) / 1e9 / peak if peak and THREADS == 1 else None)


def generate(m, vocab, gspec):
    p, n = gspec['prompt_tokens'], gspec['new_tokens']
    g = torch.Generator().manual_seed(11)
    prompt = torch.randint(4, vocab, (1, p), generator=g)

    def run(k):
        cache = [None] * len(m.model.layers)
        c0 = cpu()
        t0 = now()
        with torch.no_grad():
            logits = forward_cached(m, prompt, cache)
            out = []
            for i in range(k):
                nxt = logits.argmax(-1, keepdim=True)
                out.append(int(nxt.item()))
                if i + 1 < k:
                    logits = forward_cached(m, nxt, cache)
        return now() - t0, cpu() - c0

    run(min(8, n))
    runs = [run(n) for _ in range(gspec['reps'])]
    best = min(r[0] for r in runs)
    cpu_best = sum(r[1] for r in runs) / len(runs)
    return record('torch_generate', batch=1, seq=p + n, prompt_tokens=p, new_tokens=n, ms=best * 1000,
                  tokens_per_s=n / best, gflops=gspec['flops'] / best / 1e9, cpu_ms=cpu_best * 1000,
                  tokens_per_s_cpu=cpu_rate(n, cpu_best))


def prefill(m, vocab, pspec, peak):
    T = pspec['seq']
    ids = torch.randint(4, vocab, (1, T), generator=torch.Generator().manual_seed(13))

    def once():
        cache = [None] * len(m.model.layers)
        c0 = cpu()
        t0 = now()
        with torch.no_grad():
            forward_cached(m, ids, cache).sum().item()
        return now() - t0, cpu() - c0

    once()
    runs = [once() for _ in range(pspec['reps'])]
    t = median([r[0] for r in runs])
    c = sum(r[1] for r in runs) / len(runs)
    gflops = pspec['flops'] / t / 1e9
    return record('torch_prefill', batch=1, seq=T, ms=t * 1000, tokens_per_s=T / t, gflops=gflops,
                  mfu=gflops / peak if peak else None, cpu_ms=c * 1000, tokens_per_s_cpu=cpu_rate(T, c))


def main():
    blas = blas_report()
    emit({'kind': 'info', 'torch': torch.__version__, 'python': sys.version.split()[0], 'threads': torch.get_num_threads(),
          'blas': blas})
    if not blas['openblas_openmp']:
        note('PyTorch is NOT using the OpenMP OpenBLAS (loaded: ' + (', '.join(blas['libraries']) or 'no BLAS library found') +
             '): its figures may come from a reference BLAS ~30x slower and would flatter tabtune. '
             'Install libopenblas0-openmp.')
    blas_words = ('OpenBLAS-OpenMP' if blas['openblas_openmp'] else 'NOT OpenBLAS-OpenMP') + \
        (f' ({blas["openblas_core"]})' if blas['openblas_core'] else '') + f', torch BLAS_INFO={blas["torch_blas_info"]}'

    t0 = now()
    m, c = load(SPEC['dir'])
    load_ms = (now() - t0) * 1000
    vocab = c['vocab_size']
    diff = check_cache(m, vocab)
    if not diff < 1e-4:
        note(f'KV-cache path differs from the full forward by {diff:.2e}: the torch_generate figures are not trustworthy')

    peak, shapes = matmul_peak([tuple(s) for s in SPEC['matmul_shapes']], SPEC['matmul_budget_ms'], SPEC['matmul_min_reps'])
    emit(record('torch_matmul_peak', gflops=peak, shapes=shapes, blas=blas_words, load_ms=load_ms, kv_cache_max_abs_diff=diff))
    emit(prefill(m, vocab, SPEC['prefill'], peak))
    emit(generate(m, vocab, SPEC['generate']))
    for t in SPEC['train']:
        emit(train_lora(m, vocab, t, peak))


if __name__ == '__main__':
    main()
