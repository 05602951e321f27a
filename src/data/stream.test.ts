// Large files stream: a ~20 MB JSONL file generated on the fly (never held as one string or buffer)
// parses record by record, reports progress up to 1, and leaves the event loop free while it works.
import { describe, expect, it } from 'vitest';
import { parseDataset } from './parse';
import type { DataSource, ReadProgress } from './types';

const enc = new TextEncoder();

/** A source that produces `count` lines by calling line(i), 256 lines per chunk. */
function generated(name: string, count: number, line: (i: number) => string, head = '', tail = ''): DataSource {
  let size = enc.encode(head + tail).byteLength;
  for (let i = 0; i < count; i++) size += enc.encode(line(i)).byteLength;
  return {
    name,
    size,
    stream: () => {
      let i = 0;
      let started = false;
      return new ReadableStream<Uint8Array>({
        pull(c) {
          if (!started) {
            started = true;
            if (head) return c.enqueue(enc.encode(head));
          }
          if (i >= count) {
            if (tail) c.enqueue(enc.encode(tail));
            return c.close();
          }
          let s = '';
          for (let k = 0; k < 256 && i < count; k++) s += line(i++);
          c.enqueue(enc.encode(s));
        },
      });
    },
  };
}

describe('streaming parse', () => {
  it('a ~20 MB JSONL file: every record, progress to 1, the event loop keeps running', async () => {
    const N = 250_000;
    const src = generated('big.jsonl', N, (i) => JSON.stringify({ prompt: `Write as digits: number ${i} of the big file`, completion: String(i) }) + (i === 1234 ? ',' : '') + '\n');
    expect(src.size!).toBeGreaterThan(18e6);
    const progress: ReadProgress[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const t0 = performance.now();
    const r = await parseDataset(src, { onProgress: (p) => progress.push(p) });
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    expect(r.total).toBe(N);
    expect(r.records).toHaveLength(N - 1);
    expect(r.issues.errors.map((e) => [e.line, e.code])).toEqual([[1235, 'invalid-json']]);
    expect(r.records[N - 2]!.line).toBe(N);
    expect(progress.length).toBeGreaterThan(10);
    expect(progress.every((p, i) => i === 0 || p.loaded >= progress[i - 1]!.loaded)).toBe(true);
    expect(progress[progress.length - 1]!.fraction).toBe(1);
    expect(progress[progress.length - 1]!.loaded).toBe(src.size);
    expect(ticks).toBeGreaterThan(5); // timers ran during the parse: it yielded
    expect(seconds).toBeLessThan(60);
  });

  it('a ~5 MB JSON array streams through the scanner with correct lines', async () => {
    const N = 50_000;
    const src = generated('big.json', N, (i) => `  {"instruction": "Say ${i}", "input": "", "output": "${i}"}${i < N - 1 ? ',' : ''}\n`, '[\n', ']\n');
    const progress: number[] = [];
    const r = await parseDataset(src, { onProgress: (p) => progress.push(p.fraction) });
    expect(r.format).toBe('alpaca-json');
    expect(r.records).toHaveLength(N);
    expect(r.records[N - 1]!.line).toBe(N + 1);
    expect(r.issues.errorCount).toBe(0);
    expect(progress[progress.length - 1]).toBe(1);
  });

  it('a CSV with quoted newlines across batch boundaries keeps every row and its line', async () => {
    const N = 40_000;
    // Each row spans two physical lines: "p i\nsecond half",c i
    const src = generated('big.csv', N, (i) => `"p ${i}\nsecond half","c ${i}"\n`, 'prompt,completion\n');
    const r = await parseDataset(src);
    expect(r.records).toHaveLength(N);
    expect(r.records.map((x) => x.line).filter((l, i) => l !== 2 + 2 * i)).toEqual([]);
    expect(r.issues.errorCount).toBe(0);
  });
});
