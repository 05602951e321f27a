// The preference requests over the real client and handler (a MessageChannel, structured clone), on a
// fake-IndexedDB store: no model is needed; storage's refusals arrive as protocol errors; delete-run takes
// the run's pairs with it.
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestError } from '../protocol/client';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { connectInProcess, type InProcessWorker } from '../testing/worker';

describe('preference requests', () => {
  let w: InProcessWorker | null = null;
  afterEach(() => {
    w?.close();
    w = null;
  });

  it('save, list, update, delete; errors are BAD_REQUEST / NOT_FOUND; deleting the run deletes its pairs', async () => {
    const store = new TabtuneStore(freshIdb());
    const run = await store.runs.create({ name: 'sft', status: 'finished' });
    w = connectInProcess({ store });
    const { client } = w;

    const { preference: a } = await client.request('save-preference', { runId: run.id, step: 12, prompt: 'two plus two', chosen: '4', rejected: 'five', source: 'base-vs-tuned' });
    const { preference: b } = await client.request('save-preference', {
      runId: run.id,
      step: 12,
      prompt: [{ role: 'user', content: 'hi' }],
      chosen: 'hello there',
      rejected: 'hello',
      source: 'edited',
    });
    expect(a).toMatchObject({ runId: run.id, step: 12, prompt: 'two plus two', chosen: '4', rejected: 'five', source: 'base-vs-tuned' });
    expect((await client.request('list-preferences', { runId: run.id })).preferences).toEqual([a, b]);

    const { preference: edited } = await client.request('update-preference', { runId: run.id, id: a.id, patch: { rejected: 'four?' } });
    expect(edited).toMatchObject({ id: a.id, chosen: '4', rejected: 'four?' });
    expect(await store.preferences.get(run.id, a.id)).toEqual(edited);

    const same = await client.request('update-preference', { runId: run.id, id: a.id, patch: { chosen: 'four?' } }).catch((e) => e);
    expect(same).toBeInstanceOf(RequestError);
    expect(same).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('identical') });
    const noRun = await client.request('list-preferences', { runId: 'gone' }).catch((e) => e);
    expect(noRun).toMatchObject({ code: 'NOT_FOUND' });
    const noPair = await client.request('update-preference', { runId: run.id, id: 'nope', patch: { chosen: 'x' } }).catch((e) => e);
    expect(noPair).toMatchObject({ code: 'NOT_FOUND' });

    expect(await client.request('delete-preference', { runId: run.id, id: b.id })).toEqual({ deleted: true });
    expect((await client.request('list-preferences', { runId: run.id })).preferences.map((p) => p.id)).toEqual([a.id]);

    expect(await client.request('delete-run', { runId: run.id })).toEqual({ deleted: true });
    expect(await store.preferences.list(run.id)).toEqual([]);
  });
});
