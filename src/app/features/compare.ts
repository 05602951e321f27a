// The studio's Compare feature: base vs tuned (the selected checkpoint) on a prompt, streamed side by
// side with the same decoding settings and seed, and on every held-out example of the run (the
// worker's `compare-heldout`). Its own zustand vanilla store; streamed text goes into the `stream`
// slice, which the UI reads through `subscribe` (no React render per token).
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { RequestHandle } from '../../protocol/client';
import type { AdapterInfo, CompareResult, CompareRow, GenerateOutcome, GenerateParams, ModelSummary, ProtocolError } from '../../protocol/messages';
import { PLAIN_SEPARATOR } from '../../data/encode';
import { runContextRefresher, stepFor, unusable, type RunContext } from './run-context';
import { pageError, protocolError, sameSelection, type FeatureDeps, type Phase, type Selection } from './types';

export type CompareDeps = FeatureDeps;

/** The model, the selection and what the worker says about the selected run. */
export interface ContextSlice {
  model: ModelSummary | null;
  selection: Selection | null;
  /** Reading the run (list-runs / list-checkpoints). */
  phase: Phase;
  run: RunContext | null;
  error: ProtocolError | null;
}

export interface CompareSettings {
  prompt: string;
  /** Write the prompt as the run was trained: `{prompt}\nAnswer:` (plain-format runs). */
  trainingFormat: boolean;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
  /** 0 = base model .. 1 = fully tuned. */
  strength: number;
}

export type SidePhase = 'idle' | 'waiting' | 'streaming' | 'done' | 'error';

export interface SideState {
  phase: SidePhase;
  outcome: GenerateOutcome | null;
  error: ProtocolError | null;
}

export interface PromptSlice {
  phase: Phase;
  /** Exactly what was sent to both models. */
  sentPrompt: string;
  /** The adapter the tuned side ran with (run, step) and the strength asked for. */
  adapter: AdapterInfo | null;
  strength: number;
  /** The settings both sides used (for the caption under the outputs). */
  used: Omit<CompareSettings, 'prompt' | 'trainingFormat' | 'strength'> | null;
  base: SideState;
  tuned: SideState;
  /** Stop was pressed. */
  stopped: boolean;
  error: ProtocolError | null;
  /** How many comparisons were started (tells a finished run from the one before). */
  runs: number;
}

/** Streamed text: read it with `store.subscribe` (changes once per token). */
export interface StreamSlice {
  base: string;
  tuned: string;
  baseTokens: number;
  tunedTokens: number;
}

export interface HeldoutProgress {
  /** 'preparing': reading / encoding the validation records; then the base pass, then the tuned pass. */
  stage: 'preparing' | 'base' | 'tuned';
  /** Over both passes, in [0, 1]. */
  fraction: number;
  /** Examples done in the current pass, and the pass size. */
  done: number;
  total: number | null;
  /** Measured from the progress so far (null until there is some). */
  etaMs: number | null;
}

/** One held-out example: outputs, matches and per-example losses of both sides. */
export type HeldoutRow = CompareRow;

export interface HeldoutSlice {
  phase: Phase;
  /** Date.now()-style time the comparison started (for elapsed time), null when idle. */
  startedAt: number | null;
  progress: HeldoutProgress | null;
  result: (CompareResult & { rows: HeldoutRow[] }) | null;
  /** The run name the result belongs to. */
  resultRunName: string | null;
  error: ProtocolError | null;
  /** Set when the user cancelled; says whether the worker stopped or finishes in the background. */
  cancelled: string | null;
}

export interface CompareState {
  context: ContextSlice;
  settings: CompareSettings;
  prompt: PromptSlice;
  stream: StreamSlice;
  heldout: HeldoutSlice;
}

export interface CompareActions {
  setSettings(update: Partial<CompareSettings>): void;
  /** Generates with the base model and with the selected checkpoint. Resolves when both end. */
  runPrompt(): Promise<void>;
  /** Stops both generations. */
  stopPrompt(): Promise<void>;
  runHeldout(): Promise<void>;
  cancelHeldout(): Promise<void>;
  /** Reads the selected run again (e.g. after a new checkpoint). */
  refresh(): Promise<void>;
}

export interface CompareFeature {
  store: StoreApi<CompareState>;
  actions: CompareActions;
  dispose(): void;
}

export const DEFAULT_COMPARE_SETTINGS: CompareSettings = {
  prompt: '',
  trainingFormat: true,
  maxNewTokens: 48,
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 1,
  strength: 1,
};

const idleSide = (): SideState => ({ phase: 'idle', outcome: null, error: null });

function initialState(selection: Selection | null, model: ModelSummary | null): CompareState {
  return {
    context: { model, selection, phase: 'idle', run: null, error: null },
    settings: { ...DEFAULT_COMPARE_SETTINGS },
    prompt: { phase: 'idle', sentPrompt: '', adapter: null, strength: 1, used: null, base: idleSide(), tuned: idleSide(), stopped: false, error: null, runs: 0 },
    stream: { base: '', tuned: '', baseTokens: 0, tunedTokens: 0 },
    heldout: { phase: 'idle', startedAt: null, progress: null, result: null, resultRunName: null, error: null, cancelled: null },
  };
}

function clamp(x: number, lo: number, hi: number, fallback: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : fallback;
}

/** Settings within the bounds the worker accepts. */
export function clampSettings(s: CompareSettings, contextLength = 4096): CompareSettings {
  return {
    prompt: s.prompt,
    trainingFormat: s.trainingFormat,
    maxNewTokens: Math.floor(clamp(s.maxNewTokens, 1, Math.max(1, contextLength), DEFAULT_COMPARE_SETTINGS.maxNewTokens)),
    temperature: clamp(s.temperature, 0, 2, 0),
    topK: Math.floor(clamp(s.topK, 0, 1000, 0)),
    topP: clamp(s.topP, 0.01, 1, 1),
    seed: Math.floor(clamp(s.seed, 0, 2 ** 31 - 1, 1)),
    strength: clamp(s.strength, 0, 1, 1),
  };
}

/** What the prompt box sends: with `{prompt}\nAnswer:` when asked and the run was trained that way. */
export function promptToSend(settings: Pick<CompareSettings, 'prompt' | 'trainingFormat'>, run: Pick<RunContext, 'template'> | null): string {
  if (!settings.trainingFormat || !run || run.template === 'chat-template') return settings.prompt;
  return settings.prompt + PLAIN_SEPARATOR;
}

/** Whether the prompt box and the held-out table can run now (and if not, why). */
export function compareBlocker(s: Pick<CompareState, 'context'>): ProtocolError | null {
  const c = s.context;
  if (!c.model) return pageError('NO_MODEL', 'No model is loaded.', 'Load a model first (Model panel).');
  if (!c.selection) return pageError('NO_ADAPTER', 'No run or checkpoint is selected.', 'Train a run, or pick a checkpoint in the timeline (or a run under Runs).');
  if (c.phase === 'error' && c.error) return c.error;
  if (!c.run) return pageError('NO_ADAPTER', 'Reading the selected run…');
  return unusable(c.run, c.selection, c.model);
}

/** "exact match: base 3% → tuned 94%"; loss: the mean per-example loss (null when no example could be scored). */
export function formatTotals(t: CompareResult['totals']): { exact: string; overlap: string; loss: string | null } {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const loss = (x: number | null) => (x === null ? '–' : x.toFixed(3));
  return {
    exact: `exact match: base ${pct(t.base.exact)} → tuned ${pct(t.tuned.exact)}`,
    overlap: `token overlap: base ${t.base.overlap.toFixed(2)} → tuned ${t.tuned.overlap.toFixed(2)}`,
    loss: t.base.loss === null && t.tuned.loss === null ? null : `mean loss: base ${loss(t.base.loss)} → tuned ${loss(t.tuned.loss)}`,
  };
}

/** "12 s", "2 min 05 s" */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export function createCompareFeature(deps: CompareDeps): CompareFeature {
  const { client } = deps;
  const now = deps.now ?? (() => Date.now());
  const store = createStore<CompareState>()(() => initialState(deps.selection.get(), deps.model.get()));
  const set = <K extends keyof CompareState>(slice: K, update: Partial<CompareState[K]>) =>
    store.setState((s) => ({ [slice]: { ...s[slice], ...update } }) as Pick<CompareState, K>);
  let disposed = false;

  // ---- context: the selected run, read again whenever the selection or the model changes.
  const refresh = runContextRefresher(client, () => store.getState().context.selection, (u) => set('context', u), () => !disposed);

  const unsubSelection = deps.selection.subscribe((selection) => {
    if (sameSelection(selection, store.getState().context.selection)) return;
    set('context', { selection, run: selection?.runId === store.getState().context.run?.runId ? store.getState().context.run : null });
    void refresh();
  });
  const unsubModel = deps.model.subscribe((model) => {
    const was = store.getState().context.model;
    set('context', { model });
    // Another model: results made with the old one no longer describe what is loaded.
    if (!model || !was || model.label !== was.label || model.loadMs !== was.loadMs) {
      store.setState((s) => ({ prompt: { ...initialState(null, null).prompt, runs: s.prompt.runs }, stream: initialState(null, null).stream }));
      if (store.getState().heldout.phase !== 'busy') set('heldout', { result: null, resultRunName: null, error: null, cancelled: null });
    }
    void refresh();
  });
  const unsubChanges = deps.changes?.subscribe(() => {
    if (store.getState().context.selection) void refresh();
  });
  if (store.getState().context.selection) void refresh();

  /** Makes sure the context is read and usable, loads the selected checkpoint as the active adapter. */
  async function prepare(): Promise<{ run: RunContext; adapter: AdapterInfo }> {
    await refresh();
    const blocker = compareBlocker(store.getState());
    if (blocker) throw blocker;
    const { run, selection } = store.getState().context as { run: RunContext; selection: Selection };
    const { adapter } = await client.request('load-adapter', { runId: run.runId, step: stepFor(run, selection) });
    if (!adapter) throw pageError('NO_ADAPTER', 'The worker did not load the checkpoint.', 'Pick the checkpoint again.');
    return { run, adapter };
  }

  // ---- the prompt box
  let promptHandles: RequestHandle<'generate'>[] = [];
  let promptToken = 0;

  async function runPrompt(): Promise<void> {
    if (store.getState().prompt.phase === 'busy') return;
    const token = ++promptToken;
    const settings = clampSettings(store.getState().settings, store.getState().context.model?.contextLength);
    if (!settings.prompt.trim()) {
      set('prompt', { phase: 'error', error: pageError('BAD_REQUEST', 'The prompt is empty.', 'Type a prompt, e.g. one of your validation examples.') });
      return;
    }
    set('prompt', {
      phase: 'busy',
      error: null,
      stopped: false,
      runs: store.getState().prompt.runs + 1,
      base: { phase: 'waiting', outcome: null, error: null },
      tuned: { phase: 'waiting', outcome: null, error: null },
    });
    store.setState({ stream: { base: '', tuned: '', baseTokens: 0, tunedTokens: 0 } });
    let run: RunContext;
    let adapter: AdapterInfo;
    try {
      ({ run, adapter } = await prepare());
    } catch (e) {
      if (token === promptToken) set('prompt', { phase: 'error', error: protocolError(e), base: idleSide(), tuned: idleSide() });
      return;
    }
    if (token !== promptToken || store.getState().prompt.stopped) {
      if (token === promptToken) set('prompt', { phase: 'ready', base: idleSide(), tuned: idleSide() });
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
    set('prompt', {
      sentPrompt,
      adapter,
      strength: settings.strength,
      used: { maxNewTokens: settings.maxNewTokens, temperature: settings.temperature, topK: settings.topK, topP: settings.topP, seed: settings.seed },
    });

    const side = (which: 'base' | 'tuned', params: GenerateParams) => {
      const textKey = which;
      const countKey = which === 'base' ? 'baseTokens' : 'tunedTokens';
      const handle = client.send('generate', params, {
        token: (t) => {
          if (token !== promptToken) return;
          const st = store.getState();
          if (st.prompt[which].phase !== 'streaming') set('prompt', { [which]: { ...st.prompt[which], phase: 'streaming' } } as Partial<PromptSlice>);
          store.setState((s) => ({ stream: { ...s.stream, [textKey]: s.stream[textKey] + t.text, [countKey]: s.stream[countKey] + 1 } }));
        },
      });
      const done = handle.result.then(
        (outcome) => {
          if (token !== promptToken) return;
          // The outcome's text is the whole continuation (the streamed pieces, decoded together).
          store.setState((s) => ({ stream: { ...s.stream, [textKey]: outcome.text, [countKey]: outcome.tokens.length } }));
          set('prompt', { [which]: { phase: 'done', outcome, error: null } } as Partial<PromptSlice>);
        },
        (e) => {
          if (token !== promptToken) return;
          set('prompt', { [which]: { phase: 'error', outcome: null, error: protocolError(e) } } as Partial<PromptSlice>);
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
    const p = store.getState().prompt;
    const error = p.base.error ?? p.tuned.error;
    set('prompt', { phase: error ? 'error' : 'ready', error });
  }

  async function stopPrompt(): Promise<void> {
    if (store.getState().prompt.phase !== 'busy') return;
    set('prompt', { stopped: true });
    await Promise.all(promptHandles.map((h) => client.cancel(h.id).catch(() => false)));
  }

  // ---- the held-out table
  let heldoutHandle: RequestHandle<'compare-heldout'> | null = null;
  let heldoutToken = 0;

  async function runHeldout(): Promise<void> {
    if (store.getState().heldout.phase === 'busy') return;
    const token = ++heldoutToken;
    const startedAt = now();
    set('heldout', { phase: 'busy', startedAt, progress: { stage: 'preparing', fraction: 0, done: 0, total: null, etaMs: null }, error: null, cancelled: null });
    let run: RunContext;
    let adapter: AdapterInfo;
    try {
      ({ run, adapter } = await prepare());
    } catch (e) {
      if (token === heldoutToken) set('heldout', { phase: 'error', error: protocolError(e), progress: null, startedAt: null });
      return;
    }
    if (token !== heldoutToken) return;
    /** First held-out progress point: the ETA is measured from here (reading the data is not part of the rate). */
    let first: { t: number; f: number } | null = null;
    heldoutHandle = client.send(
      'compare-heldout',
      { runId: adapter.runId, step: adapter.training ? undefined : adapter.step },
      {
        progress: (p) => {
          if (token !== heldoutToken) return;
          const t = now();
          const f = Math.min(1, Math.max(0, p.fraction));
          let etaMs: number | null = null;
          if (!first) {
            first = { t, f };
            // One point: the rate since the start (includes reading the data, so errs on the long side).
            if (f > 0) etaMs = ((t - startedAt) * (1 - f)) / f;
          } else if (f > first.f) etaMs = ((t - first.t) * (1 - f)) / (f - first.f);
          // `loaded` counts the base pass, then the tuned pass, over `total` = twice the examples.
          const pass = p.total ? p.total / 2 : null;
          const inTuned = pass !== null && p.loaded >= pass;
          set('heldout', {
            progress: {
              stage: inTuned ? 'tuned' : 'base',
              fraction: f,
              done: inTuned ? p.loaded - pass : p.loaded,
              total: pass,
              etaMs: f >= 1 ? 0 : etaMs,
            },
          });
        },
      },
    );
    try {
      const result = await heldoutHandle.result;
      if (token !== heldoutToken) return;
      set('heldout', { phase: 'ready', result, resultRunName: run.runName, progress: null, startedAt: null });
    } catch (e) {
      if (token !== heldoutToken) return;
      set('heldout', { phase: 'error', error: protocolError(e), progress: null, startedAt: null });
    } finally {
      if (token === heldoutToken) heldoutHandle = null;
    }
  }

  async function cancelHeldout(): Promise<void> {
    if (store.getState().heldout.phase !== 'busy') return;
    const handle = heldoutHandle;
    heldoutToken++;
    heldoutHandle = null;
    const stopped = handle ? await client.cancel(handle.id).catch(() => false) : true;
    set('heldout', {
      phase: store.getState().heldout.result ? 'ready' : 'idle',
      progress: null,
      startedAt: null,
      cancelled: stopped
        ? 'Cancelled.'
        : 'Cancelled. The worker finishes the comparison it had started before it runs the next request (generation waits until then).',
    });
  }

  return {
    store,
    actions: {
      setSettings: (update) => set('settings', update),
      runPrompt,
      stopPrompt,
      runHeldout,
      cancelHeldout,
      refresh,
    },
    dispose() {
      disposed = true;
      unsubSelection();
      unsubModel();
      unsubChanges?.();
      void stopPrompt();
      void cancelHeldout();
    },
  };
}
