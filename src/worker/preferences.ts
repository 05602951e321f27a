// The preference pairs of a run (collected in the compare view): list, save, update, delete, over
// store.preferences. They need no model: the page's Preferences list works while the model loads or a run
// trains. Storage's checks (identical replies, empty prompt, unknown run) come back as BAD_REQUEST / NOT_FOUND.
import type { NewPreference, PreferencePair, PreferencePatch } from '../protocol/messages';
import type { WorkerContext } from './context';
import { fail } from './errors';

export class Preferences {
  constructor(private readonly worker: Pick<WorkerContext, 'store'>) {}

  private async existingRun(runId: unknown) {
    if (typeof runId !== 'string' || !runId) throw fail('BAD_REQUEST', 'A preference request needs the run id.');
    const store = await this.worker.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`, 'It may have been deleted (its preferences with it).');
    return store;
  }

  async list(runId: string): Promise<{ preferences: PreferencePair[] }> {
    const store = await this.existingRun(runId);
    return { preferences: await store.preferences.list(runId) };
  }

  async save(p: NewPreference): Promise<{ preference: PreferencePair }> {
    const store = await this.existingRun(p?.runId);
    return { preference: await store.preferences.add({ runId: p.runId, step: p.step, prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, source: p.source }) };
  }

  async update(runId: string, id: string, patch: PreferencePatch): Promise<{ preference: PreferencePair }> {
    const store = await this.existingRun(runId);
    const { prompt, chosen, rejected } = patch ?? {};
    return { preference: await store.preferences.update(runId, id, { ...(prompt !== undefined ? { prompt } : {}), ...(chosen !== undefined ? { chosen } : {}), ...(rejected !== undefined ? { rejected } : {}) }) };
  }

  async delete(runId: string, id: string): Promise<{ deleted: boolean }> {
    const store = await this.existingRun(runId);
    return { deleted: await store.preferences.delete(runId, id) };
  }
}
