// Test helper (Node): the page without React: one app store and the controller's actions on a given
// worker client, with a run selected and a model loaded as the panels would have them. Only tests
// import this file.
import { createController, type Controller } from '../app/controller';
import type { WorkerClient } from '../protocol/client';
import type { ModelSummary } from '../protocol/messages';
import type { Selection } from '../store/run-context';
import { createAppStore, patch, type AppStore } from '../store/store';

export interface TestPage {
  store: AppStore;
  actions: Controller;
  /** What the Checkpoints and Runs panels do: pick a run / checkpoint (null: none). */
  select(selection: Selection | null): void;
  /** What a model load leaves in the store (null: none loaded). */
  setModel(model: ModelSummary | null): void;
}

export function testPage(client: WorkerClient, opts: { selection?: Selection | null; model?: ModelSummary | null; now?: () => number } = {}): TestPage {
  const store = createAppStore();
  const select = (s: Selection | null) => patch(store, 'selection', s ?? { runId: null, step: null });
  const setModel = (m: ModelSummary | null) => patch(store, 'model', { summary: m, phase: m ? 'ready' : 'idle' });
  select(opts.selection ?? null);
  setModel(opts.model ?? null);
  const actions = createController({ client, store, fetchCatalog: async () => ({ models: [] }), absoluteUrl: (path) => path, now: opts.now });
  return { store, actions, select, setModel };
}
