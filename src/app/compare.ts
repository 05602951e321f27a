// Compare's actions: base vs tuned (the selected checkpoint) on a prompt, streamed side by side with
// the same decoding settings and seed, and on every held-out example of the run (the worker's
// `compare-heldout`, cancellable, with progress and ETA). State: the `compare` slice (src/store/compare.ts).
import type { RequestHandle } from '../protocol/client';
import type { AdapterInfo, GenerateParams } from '../protocol/messages';
import { clampSettings, compareBlocker, emptyStream, idlePrompt, idleSide, promptToSend, type HeldoutState, type PromptState } from '../store/compare';
import { asProtocolError, pageError } from '../store/errors';
import { keepResult } from '../store/compare-source';
import { sameSelection, selectedCheckpoint, stepFor, type RunContext, type Selection } from '../store/run-context';
import { patchPart, watch } from '../store/store';
import { etaMeter } from '../store/time';
import type { CompareActions } from '../ui/context';
import type { SelectedRunFeatureDeps } from './run-context';


export interface Compare extends CompareActions {
  dispose(): void;
}

export function createCompare({ client, store, selectedRun, now = () => Date.now() }: SelectedRunFeatureDeps): Compare {
  const state = () => store.getState();
  const setPrompt = (update: Partial<PromptState>) => patchPart(store, 'compare', 'prompt', update);
  const setHeldout = (update: Partial<HeldoutState>) => patchPart(store, 'compare', 'heldout', update);

  // Another model: results made with the old one no longer describe what is loaded.
  const unwatchModel = watch(store, (s) => s.model.summary, (model, was) => {
    if (model && was && model.label === was.label && model.loadMs === was.loadMs) return;
    store.setState((s) => ({ compare: { ...s.compare, prompt: idlePrompt(s.compare.prompt.runs), stream: emptyStream() } }));
    if (state().compare.heldout.phase !== 'busy') setHeldout({ result: null, resultRunName: null, error: null, cancelled: null });
  });

  // Another run or checkpoint picked: results made with another run are cleared, those of another step
  // of the same run too; a result of the same run's newest stays, and says the step it was made at (issue 18 #3).
  const unwatchSelection = watch(store, selectedCheckpoint, (selection) => {
    const c = state().compare;
    if (c.prompt.phase !== 'busy' && c.prompt.adapter && !keepResult(c.prompt.adapter, selection)) {
      store.setState((s) => ({ compare: { ...s.compare, prompt: idlePrompt(s.compare.prompt.runs), stream: emptyStream() } }));
    }
    if (c.heldout.phase !== 'busy' && c.heldout.result && !keepResult(c.heldout.result, selection)) setHeldout({ result: null, resultRunName: null, error: null, cancelled: null });
  }, sameSelection);

  /** Makes sure the selected run is read and usable, loads the selected checkpoint as the active adapter. */
  async function prepare(): Promise<{ run: RunContext; adapter: AdapterInfo }> {
    await selectedRun.refresh();
    const blocker = compareBlocker(state());
    if (blocker) throw blocker;
    const run = state().selectedRun.run!;
    const selection = selectedCheckpoint(state()) as Selection;
    const { adapter } = await client.request('load-adapter', { runId: run.runId, step: stepFor(run, selection) });
    if (!adapter) throw pageError('NO_ADAPTER', 'The worker did not load the checkpoint.', 'Pick the checkpoint again.');
    return { run, adapter };
  }

  // ---- the prompt box
  let promptHandles: RequestHandle<'generate'>[] = [];
  let promptToken = 0;

  async function comparePrompt(): Promise<void> {
    if (state().compare.prompt.phase === 'busy') return;
    const token = ++promptToken;
    const settings = clampSettings(state().compare.settings, state().model.summary?.contextLength);
    if (!settings.prompt.trim()) {
      setPrompt({ phase: 'error', error: pageError('BAD_REQUEST', 'The prompt is empty.', 'Type a prompt, e.g. one of your validation examples.') });
      return;
    }
    setPrompt({
      phase: 'busy',
      error: null,
      stopped: false,
      runs: state().compare.prompt.runs + 1,
      base: { phase: 'waiting', outcome: null, error: null },
      tuned: { phase: 'waiting', outcome: null, error: null },
    });
    store.setState((s) => ({ compare: { ...s.compare, stream: emptyStream() } }));
    let run: RunContext;
    let adapter: AdapterInfo;
    try {
      ({ run, adapter } = await prepare());
    } catch (e) {
      if (token === promptToken) setPrompt({ phase: 'error', error: asProtocolError(e), base: idleSide(), tuned: idleSide() });
      return;
    }
    if (token !== promptToken || state().compare.prompt.stopped) {
      if (token === promptToken) setPrompt({ phase: 'ready', base: idleSide(), tuned: idleSide() });
      return;
    }
    const sentPrompt = promptToSend(settings, run);
    const common: GenerateParams = {
      prompt: sentPrompt,
      maxNewTokens: settings.maxNewTokens,
      temperature: settings.temperature,
      topK: settings.topK > 0 ? settings.topK : undefined,
      topP: settings.topP < 1 ? settings.topP : undefined,
      seed: settings.seed,
      stopStrings: run.stopStrings.length ? run.stopStrings : undefined,
      // The run's stop token ends both sides (the worker adds it to the tuned side anyway; the base needs it for a fair comparison).
      stopTokenIds: run.stopTokenId !== null ? [run.stopTokenId] : undefined,
    };
    setPrompt({
      sentPrompt,
      adapter,
      strength: settings.strength,
      used: { maxNewTokens: settings.maxNewTokens, temperature: settings.temperature, topK: settings.topK, topP: settings.topP, seed: settings.seed },
    });

    const side = (which: 'base' | 'tuned', params: GenerateParams) => {
      const countKey = which === 'base' ? 'baseTokens' : 'tunedTokens';
      const setStream = (text: (was: string) => string, count: (was: number) => number) =>
        store.setState((s) => ({ compare: { ...s.compare, stream: { ...s.compare.stream, [which]: text(s.compare.stream[which]), [countKey]: count(s.compare.stream[countKey]) } } }));
      const handle = client.send('generate', params, {
        token: (t) => {
          if (token !== promptToken) return;
          const p = state().compare.prompt;
          if (p[which].phase !== 'streaming') setPrompt({ [which]: { ...p[which], phase: 'streaming' } });
          setStream((was) => was + t.text, (n) => n + 1);
        },
      });
      const done = handle.result.then(
        (outcome) => {
          if (token !== promptToken) return;
          // The outcome's text is the whole continuation (the streamed pieces, decoded together).
          setStream(() => outcome.text, () => outcome.tokens.length);
          setPrompt({ [which]: { phase: 'done', outcome, error: null } });
        },
        (e) => {
          if (token !== promptToken) return;
          setPrompt({ [which]: { phase: 'error', outcome: null, error: asProtocolError(e) } });
        },
      );
      return { handle, done };
    };
    // Both are queued at once: the worker runs them one after the other, base first.
    const base = side('base', { ...common, useAdapter: false });
    const tuned = side('tuned', { ...common, useAdapter: true, adapterStrength: settings.strength });
    promptHandles = [base.handle, tuned.handle];
    await Promise.all([base.done, tuned.done]);
    if (token !== promptToken) return;
    promptHandles = [];
    const p = state().compare.prompt;
    const error = p.base.error ?? p.tuned.error;
    setPrompt({ phase: error ? 'error' : 'ready', error });
  }

  async function stopComparePrompt(): Promise<void> {
    if (state().compare.prompt.phase !== 'busy') return;
    setPrompt({ stopped: true });
    await Promise.all(promptHandles.map((h) => client.cancel(h.id).catch(() => false)));
  }

  // ---- the held-out table
  let heldoutHandle: RequestHandle<'compare-heldout'> | null = null;
  let heldoutToken = 0;

  async function compareHeldout(): Promise<void> {
    if (state().compare.heldout.phase === 'busy') return;
    const token = ++heldoutToken;
    const startedAt = now();
    setHeldout({ phase: 'busy', startedAt, progress: { stage: 'preparing', fraction: 0, done: 0, total: null, etaMs: null }, error: null, cancelled: null });
    let run: RunContext;
    let adapter: AdapterInfo;
    try {
      ({ run, adapter } = await prepare());
    } catch (e) {
      if (token === heldoutToken) setHeldout({ phase: 'error', error: asProtocolError(e), progress: null, startedAt: null });
      return;
    }
    if (token !== heldoutToken) return;
    const eta = etaMeter(startedAt);
    heldoutHandle = client.send(
      'compare-heldout',
      { runId: adapter.runId, step: adapter.training ? undefined : adapter.step },
      {
        progress: (p) => {
          if (token !== heldoutToken) return;
          // `loaded` counts the base pass, then the tuned pass, over `total` = twice the examples.
          const pass = p.total ? p.total / 2 : null;
          const inTuned = pass !== null && p.loaded >= pass;
          setHeldout({
            progress: {
              stage: inTuned ? 'tuned' : 'base',
              fraction: Math.min(1, Math.max(0, p.fraction)),
              done: inTuned ? p.loaded - pass : p.loaded,
              total: pass,
              etaMs: eta(now(), p.fraction),
            },
          });
        },
      },
    );
    try {
      const result = await heldoutHandle.result;
      if (token !== heldoutToken) return;
      setHeldout({ phase: 'ready', result, resultRunName: run.runName, progress: null, startedAt: null });
    } catch (e) {
      if (token !== heldoutToken) return;
      setHeldout({ phase: 'error', error: asProtocolError(e), progress: null, startedAt: null });
    } finally {
      if (token === heldoutToken) heldoutHandle = null;
    }
  }

  async function cancelHeldout(): Promise<void> {
    if (state().compare.heldout.phase !== 'busy') return;
    const handle = heldoutHandle;
    heldoutToken++;
    heldoutHandle = null;
    const stopped = handle ? await client.cancel(handle.id).catch(() => false) : true;
    setHeldout({
      phase: state().compare.heldout.result ? 'ready' : 'idle',
      progress: null,
      startedAt: null,
      cancelled: stopped
        ? 'Cancelled.'
        : 'Cancelled. The worker finishes the comparison it had started before it runs the next request (generation waits until then).',
    });
  }

  return {
    setCompareSettings: (update) => patchPart(store, 'compare', 'settings', update),
    comparePrompt,
    stopComparePrompt,
    compareHeldout,
    cancelHeldout,
    dispose() {
      unwatchModel();
      unwatchSelection();
      void stopComparePrompt();
      void cancelHeldout();
    },
  };
}
