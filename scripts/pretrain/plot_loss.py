#!/usr/bin/env python3
"""Loss curve of a pretraining run as a PNG, with the standard library only (zlib + struct).

usage: plot_loss.py METRICS.jsonl OUT.png TITLE [METRICS_SUMMARY.json]

Plots the smoothed training loss (blue) and the held-out loss (orange dots + line) against the step,
and, when the summary (models/<name>/metrics.json) is given, the unigram and bigram baselines'
held-out loss as dashed lines (grey, green). Labels use a built-in 3x5 pixel font.
"""
import json
import math
import struct
import sys
import zlib

FONT = {
    '0': '111101101101111', '1': '010110010010111', '2': '111001111100111', '3': '111001111001111',
    '4': '101101111001001', '5': '111100111001111', '6': '111100111101111', '7': '111001001001001',
    '8': '111101111101111', '9': '111101111001111', '.': '000000000000010', '-': '000000111000000',
    'A': '010101111101101', 'B': '110101110101110', 'C': '011100100100011', 'D': '110101101101110',
    'E': '111100110100111', 'F': '111100110100100', 'G': '011100101101011', 'H': '101101111101101',
    'I': '111010010010111', 'J': '001001001101010', 'K': '101101110101101', 'L': '100100100100111',
    'M': '101111111101101', 'N': '110101101101101', 'O': '010101101101010', 'P': '110101110100100',
    'Q': '010101101110011', 'R': '110101110101101', 'S': '011100010001110', 'T': '111010010010010',
    'U': '101101101101111', 'V': '101101101101010', 'W': '101101111111101', 'X': '101101010101101',
    'Y': '101101010010010', 'Z': '111001010100111', ' ': '000000000000000', '(': '010100100100010',
    ')': '010001001001010', '=': '000111000111000', '/': '001001010100100', ',': '000000000010100',
    ':': '000010000010000',
}


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b'\xff' * (w * h * 3))

    def set(self, x, y, c):
        x, y = int(round(x)), int(round(y))
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def rect(self, x0, y0, x1, y1, c):
        for y in range(int(y0), int(y1) + 1):
            for x in range(int(x0), int(x1) + 1):
                self.set(x, y, c)

    def line(self, x0, y0, x1, y1, c, width=1, dash=0):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(n + 1):
            if dash and (i // dash) % 2:
                continue
            t = i / max(n, 1)
            x, y = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
            for dx in range(width):
                for dy in range(width):
                    self.set(x + dx - width // 2, y + dy - width // 2, c)

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s.upper():
            g = FONT.get(ch, FONT[' '])
            for r in range(5):
                for col in range(3):
                    if g[r * 3 + col] == '1':
                        self.rect(x + col * scale, y + r * scale, x + col * scale + scale - 1, y + r * scale + scale - 1, c)
            x += 4 * scale
        return x

    def png(self):
        raw = b''.join(b'\x00' + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))
        chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
        return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', self.w, self.h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')


def nice_ticks(lo, hi, n=6):
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-9:
        out.append(round(t, 10))
        t += step
    return out


def main():
    metrics, out, title = sys.argv[1], sys.argv[2], sys.argv[3]
    summary = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else None
    train, held = [], []
    for line in open(metrics):
        if not line.strip():
            continue
        r = json.loads(line)
        if 'smooth_loss' in r:
            train.append((r['step'], r['smooth_loss']))
        elif 'val_loss' in r:
            held.append((r['step'], r['val_loss']))
    if not train:
        sys.exit('no training steps in ' + metrics)
    base = []
    if summary:
        base = [('UNIGRAM', summary['baselines']['unigram_loss'], (120, 120, 120)), ('BIGRAM', summary['baselines']['bigram_loss'], (40, 150, 60))]
    W, H = 900, 520
    L, R, TOP, B = 80, 30, 50, 60
    c = Canvas(W, H)
    xmax = max(s for s, _ in train)
    ys = [l for _, l in train] + [l for _, l in held] + [b for _, b, _ in base]
    ylo, yhi = math.floor(min(ys) * 2) / 2, math.ceil(max(ys) * 2) / 2
    X = lambda s: L + (W - L - R) * s / max(xmax, 1)
    Y = lambda v: TOP + (H - TOP - B) * (yhi - v) / max(yhi - ylo, 1e-9)
    for t in nice_ticks(ylo, yhi):
        c.line(L, Y(t), W - R, Y(t), (225, 225, 225))
        c.text(L - 8 - 8 * len(f'{t:g}'), Y(t) - 5, f'{t:g}')
    for t in nice_ticks(0, xmax):
        c.line(X(t), TOP, X(t), H - B, (225, 225, 225))
        c.text(X(t) - 4 * len(str(int(t))), H - B + 10, str(int(t)))
    c.line(L, TOP, L, H - B, (0, 0, 0))
    c.line(L, H - B, W - R, H - B, (0, 0, 0))
    for name, v, col in base:
        c.line(L, Y(v), W - R, Y(v), col, width=2, dash=6)
        c.text(W - R - 8 * (len(name) + 1) - 60, Y(v) - 14, f'{name} {v:.2f}', col)
    for (s0, l0), (s1, l1) in zip(train, train[1:]):
        c.line(X(s0), Y(l0), X(s1), Y(l1), (30, 90, 200), width=2)
    for (s0, l0), (s1, l1) in zip(held, held[1:]):
        c.line(X(s0), Y(l0), X(s1), Y(l1), (230, 120, 20), width=2)
    for s, l in held:
        c.rect(X(s) - 3, Y(l) - 3, X(s) + 3, Y(l) + 3, (230, 120, 20))
    c.text(L, 16, f'{title} - LOSS (NATS/TOKEN)', scale=3)
    x = c.text(L + 420, 22, 'TRAIN (SMOOTHED)', (30, 90, 200))
    c.text(x + 20, 22, 'HELD-OUT', (230, 120, 20))
    c.text((W - L - R) // 2 + L - 16, H - 24, 'STEP')
    with open(out, 'wb') as f:
        f.write(c.png())


if __name__ == '__main__':
    main()
