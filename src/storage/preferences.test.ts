import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../data/parse';
import { textSource } from '../data/source';
import { storageKeys as keys } from './keys';
import { preferencesToJsonl, type NewPreference } from './preferences';
import { TabtuneStore } from './store';
import { fakeClock, freshIdb } from '../testing/storage';

const pair = (runId: string, over: Partial<NewPreference> = {}): NewPreference => ({
  runId,
  step: 30,
  prompt: 'Write as digits: six hundred ninety seven',
  chosen: '697',
  rejected: 'six nine seven',
  source: 'base-vs-tuned',
  ...over,
});

describe('preferences', () => {
  it('adds, lists oldest first, edits and deletes the pairs of a run; they survive a new store on the same database', async () => {
    const backend = freshIdb();
    const clock = fakeClock();
    const store = new TabtuneStore(backend, { now: clock.now });
    const run = await store.runs.create({ name: 'sft' });
    const other = await store.runs.create({ name: 'other' });
    const a = await store.preferences.add(pair(run.id));
    clock.advance(10);
    const b = await store.preferences.add(pair(run.id, { prompt: [{ role: 'user', content: 'hi' }], chosen: 'hello', rejected: 'go', source: 'edited', step: 40 }));
    await store.preferences.add(pair(other.id));
    expect(a).toMatchObject({ runId: run.id, step: 30, source: 'base-vs-tuned', createdAt: clock.now() - 10, updatedAt: clock.now() - 10 });
    expect(a.id).not.toBe(b.id);

    // A reload: a new store over the same IndexedDB database.
    const again = new TabtuneStore(backend, { now: clock.now });
    expect((await again.preferences.list(run.id)).map((p) => p.id)).toEqual([a.id, b.id]);
    expect(await again.preferences.get(run.id, b.id)).toEqual(b);
    expect(Object.fromEntries(await again.preferences.counts())).toEqual({ [run.id]: 2, [other.id]: 1 });

    clock.advance(5);
    const edited = await again.preferences.update(run.id, a.id, { chosen: 'six hundred ninety-seven: 697' });
    expect(edited).toMatchObject({ id: a.id, chosen: 'six hundred ninety-seven: 697', rejected: 'six nine seven', createdAt: a.createdAt, updatedAt: clock.now() });
    expect(await again.preferences.get(run.id, a.id)).toEqual(edited);

    expect(await again.preferences.delete(run.id, a.id)).toBe(true);
    expect(await again.preferences.delete(run.id, a.id)).toBe(false);
    expect((await again.preferences.list(run.id)).map((p) => p.id)).toEqual([b.id]);
    await expect(again.preferences.update(run.id, a.id, { chosen: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('pairs added within the same millisecond list in the order they were added', async () => {
    const store = new TabtuneStore(freshIdb(), { now: fakeClock().now });
    const run = await store.runs.create({ name: 'sft' });
    const added = [];
    for (let i = 0; i < 8; i++) added.push((await store.preferences.add(pair(run.id, { chosen: `c${i}` }))).id);
    expect((await store.preferences.list(run.id)).map((p) => p.id)).toEqual(added);
  });

  it('refuses what teaches nothing or is not a pair: identical replies, an empty prompt, a prompt without a user turn, unknown runs and sources', async () => {
    const store = new TabtuneStore(freshIdb());
    const run = await store.runs.create({ name: 'sft' });
    await expect(store.preferences.add(pair(run.id, { chosen: 'same', rejected: 'same' }))).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('identical') });
    await expect(store.preferences.add(pair(run.id, { prompt: '  ' }))).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('empty') });
    await expect(store.preferences.add(pair(run.id, { prompt: [{ role: 'system', content: 'be brief' }] }))).rejects.toThrow('no user message');
    await expect(store.preferences.add(pair(run.id, { prompt: [{ role: 'robot', content: 'x' }] as never }))).rejects.toThrow('prompt message 1');
    await expect(store.preferences.add(pair(run.id, { source: 'vibes' as never }))).rejects.toThrow('unknown preference source');
    await expect(store.preferences.add(pair(run.id, { step: -1 }))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.preferences.add(pair('no-such-run'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const ok = await store.preferences.add(pair(run.id));
    // An edit that would make the two replies the same is refused and leaves the pair as it was.
    await expect(store.preferences.update(run.id, ok.id, { chosen: ok.rejected })).rejects.toThrow('identical');
    expect(await store.preferences.get(run.id, ok.id)).toEqual(ok);
    expect(await store.preferences.list(run.id)).toHaveLength(1);
  });

  it('deleting the run deletes its pairs (not another run\u2019s); garbage collection removes pairs left by an interrupted delete', async () => {
    const backend = freshIdb();
    const store = new TabtuneStore(backend);
    const run = await store.runs.create({ name: 'sft' });
    const other = await store.runs.create({ name: 'other' });
    await store.preferences.add(pair(run.id));
    await store.preferences.add(pair(run.id, { chosen: 'a', rejected: 'b' }));
    const kept = await store.preferences.add(pair(other.id));
    await store.deleteRun(run.id);
    expect(await backend.keys(keys.preferencePrefix(run.id))).toEqual([]);
    expect(await store.preferences.list(other.id)).toEqual([kept]);

    // A delete cut short after the record: its pairs are orphans until the next collection.
    await store.preferences.add(pair(other.id, { chosen: 'c', rejected: 'd' }));
    await store.runs.deleteRecordAndMetrics(other.id);
    expect(await backend.keys(keys.preferencePrefix(other.id))).toHaveLength(2);
    expect((await store.collectGarbage()).removedKeys).toBe(2);
    expect(await backend.keys(keys.allPreferencesPrefix)).toEqual([]);
  });

  it('exports JSONL that the dataset doctor reads back as the same preference pairs', async () => {
    const store = new TabtuneStore(freshIdb());
    const run = await store.runs.create({ name: 'sft' });
    await store.preferences.add(pair(run.id));
    await store.preferences.add(pair(run.id, { prompt: 'Quote: "a"\nand a tab\there ✓', chosen: 'multi\nline "reply"', rejected: '', source: 'two-samples' }));
    await store.preferences.add(
      pair(run.id, {
        prompt: [
          { role: 'system', content: 'Answer with digits.' },
          { role: 'user', content: 'twelve' },
        ],
        chosen: '12',
        rejected: 'twelve',
        source: 'edited',
      }),
    );
    const pairs = await store.preferences.list(run.id);
    const jsonl = preferencesToJsonl(pairs);
    const lines = jsonl.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(Object.keys(JSON.parse(lines[0]!))).toEqual(['prompt', 'chosen', 'rejected']);

    const parsed = await parseDataset(textSource(jsonl, 'preferences.jsonl'));
    expect(parsed.format).toBe('preference-jsonl');
    expect(parsed.records).toEqual([
      { kind: 'preference', prompt: [{ role: 'user', content: pairs[0]!.prompt as string }], chosen: '697', rejected: 'six nine seven', line: 1 },
      { kind: 'preference', prompt: [{ role: 'user', content: 'Quote: "a"\nand a tab\there ✓' }], chosen: 'multi\nline "reply"', rejected: '', line: 2 },
      { kind: 'preference', prompt: [{ role: 'system', content: 'Answer with digits.' }, { role: 'user', content: 'twelve' }], chosen: '12', rejected: 'twelve', line: 3 },
    ]);
    expect(parsed.issues.errors).toEqual([]);
    expect(parsed.total).toBe(3);
  });
});
