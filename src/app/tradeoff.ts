// The Trade-off section's actions (state: the `tradeoff` slice, src/store/tradeoff.ts): reads the shown
// run's checkpoints when the Checkpoints panel shows another run, explores the path from the base model to
// the run's checkpoints (explore-path, with progress, ETA and cancel), stores a path point as a checkpoint
// of its own (apply-recipe) and selects it, and rewinds to the recommended point: selects that checkpoint
// for Compare and Export (the one selection, src/store/run-context.ts), after storing it first when it is
// a path point. Other runs trained on the same data can share the chart (setOverlayRun): their
// checkpoints are read when ticked and again when their listing changes.
import type { RequestHandle } from '../protocol/client';
import { asProtocolError, pageError } from '../store/errors';
import { patch, patchPart, watch, type AppStore } from '../store/store';
import { etaMeter } from '../store/time';
import { appliedBranch, exploredFor, overlayKey, rewindTarget, tradeoffRunId, tradeoffView, type ApplyState, type ExploreState, type OverlayRead, type TradeoffView } from '../store/tradeoff';
import type { WorkerClient } from '../protocol/client';
import type { StudioActions, TradeoffActions } from '../ui/context';

export interface TradeoffDeps {
  client: WorkerClient;
  store: AppStore;
  /** The studio's own actions: opening a run (its chart and checkpoints), selecting a checkpoint, listing runs. */
  studio: Pick<StudioActions, 'openRun' | 'selectCheckpoint' | 'refreshRuns'>;
  /** Clock for elapsed times and ETAs (default Date.now). */
  now?: () => number;
}

export interface Tradeoff extends TradeoffActions {
  dispose(): void;
}

export function createTradeoff({ client, store, studio, now = () => Date.now() }: TradeoffDeps): Tradeoff {
  const state = () => store.getState();
  const setExplore = (update: Partial<ExploreState>) => patchPart(store, 'tradeoff', 'explore', update);
  const setApply = (update: Partial<ApplyState>) => patchPart(store, 'tradeoff', 'apply', update);

  // ---- the shown run's checkpoints, when the Checkpoints panel lists another run's
  let readToken = 0;
  async function readCheckpoints(): Promise<void> {
    const s = state();
    const id = tradeoffRunId(s);
    if (!id || s.checkpoints.runId === id) return;
    const mine = ++readToken;
    patch(store, 'tradeoff', { runId: id, phase: 'busy', checkpoints: [], error: null });
    try {
      const { checkpoints } = await client.request('list-checkpoints', { runId: id });
      if (mine === readToken) patch(store, 'tradeoff', { phase: 'ready', checkpoints: [...checkpoints].sort((a, b) => a.step - b.step), error: null });
    } catch (e) {
      if (mine === readToken) patch(store, 'tradeoff', { phase: 'error', checkpoints: [], error: asProtocolError(e) });
    }
  }
  const unwatch = watch(
    store,
    (s) => ({ id: tradeoffRunId(s), listed: s.checkpoints.runId }),
    () => void readCheckpoints(),
    (a, b) => a.id === b.id && a.listed === b.listed,
  );

  /** The chart as it stands (null: no run shown, or the run is not listed yet). */
  function view(): TradeoffView | null {
    const s = state();
    const id = tradeoffRunId(s);
    const run = s.runs.list.find((r) => r.id === id);
    if (!id || !run) return null;
    const list = s.checkpoints.runId === id ? s.checkpoints.list : s.tradeoff.runId === id ? s.tradeoff.checkpoints : [];
    return tradeoffView(run, list, exploredFor(s, run));
  }

  /** Makes `runId` the opened run (its chart and checkpoints) and selects its checkpoint at `step`. */
  async function select(runId: string, step: number): Promise<void> {
    if (state().selection.runId !== runId || state().checkpoints.runId !== runId) await studio.openRun(runId);
    studio.selectCheckpoint(runId, step);
  }

  // ---- explore-path
  let exploreHandle: RequestHandle<'explore-path'> | null = null;
  let exploreToken = 0;

  async function explorePath(): Promise<void> {
    if (state().tradeoff.explore.phase === 'busy') return;
    const runId = tradeoffRunId(state());
    if (!runId) return;
    const token = ++exploreToken;
    const startedAt = now();
    const eta = etaMeter(startedAt);
    setExplore({ phase: 'busy', runId, startedAt, progress: null, error: null, cancelled: null });
    exploreHandle = client.send(
      'explore-path',
      { runId },
      {
        progress: (p) => {
          if (token !== exploreToken) return;
          const fraction = Math.min(1, Math.max(0, p.fraction));
          setExplore({ progress: { label: p.file, done: p.loaded, total: p.total, fraction, etaMs: eta(now(), fraction) } });
        },
      },
    );
    try {
      const result = await exploreHandle.result;
      if (token !== exploreToken) return;
      setExplore({ phase: 'ready', result, progress: null, startedAt: null });
      // The worker stored the path with the run (RunQuality.path): it is there after a reload too.
      await studio.refreshRuns();
    } catch (e) {
      if (token !== exploreToken) return;
      setExplore({ phase: 'error', error: asProtocolError(e), progress: null, startedAt: null });
    } finally {
      if (token === exploreToken) exploreHandle = null;
    }
  }

  async function cancelExplore(): Promise<void> {
    if (state().tradeoff.explore.phase !== 'busy') return;
    const handle = exploreHandle;
    exploreToken++;
    exploreHandle = null;
    const stopped = handle ? await client.cancel(handle.id).catch(() => false) : true;
    const e = state().tradeoff.explore;
    setExplore({
      phase: e.result ? 'ready' : 'idle',
      progress: null,
      startedAt: null,
      cancelled: stopped ? 'Cancelled: no point of the path was kept.' : 'Cancelled. The worker finishes the point it is measuring before it runs the next request.',
    });
  }

  // ---- apply-recipe
  async function applyPoint(pointId: string): Promise<void> {
    if (state().tradeoff.apply.phase === 'busy') return;
    const v = view();
    const point = v?.points.find((p) => p.id === pointId);
    if (!v || !point) return;
    if (point.kind === 'checkpoint' || !point.recipe) {
      // A stored checkpoint needs no recipe applied: select it.
      await select(v.runId, point.step);
      return;
    }
    // Applied before: its branch holds it already.
    const made = appliedBranch(state().runs.list, v.runId, point);
    if (made) {
      await select(made.id, made.latestCheckpoint!.step);
      setApply({ phase: 'ready', pointId, error: null, made: { runId: made.id, runName: made.name, step: made.latestCheckpoint!.step } });
      return;
    }
    setApply({ phase: 'busy', pointId, error: null });
    try {
      const { run, checkpoint } = await client.request('apply-recipe', { runId: v.runId, recipe: point.recipe });
      await studio.refreshRuns();
      await select(run.id, checkpoint.step);
      setApply({ phase: 'ready', made: { runId: run.id, runName: run.name, step: checkpoint.step } });
    } catch (e) {
      setApply({ phase: 'error', error: asProtocolError(e) });
    }
  }

  async function rewindToRecommended(): Promise<void> {
    const v = view();
    const target = v && rewindTarget(v);
    if (!v || !target) {
      setApply({ phase: 'error', pointId: null, error: pageError('NOT_FOUND', 'There is no recommended checkpoint yet.', 'Train until a checkpoint is saved at an evaluation step, or explore the path.') });
      return;
    }
    if (target.kind === 'apply') return applyPoint(target.point.id);
    setApply({ phase: 'idle', pointId: v.recommended!.id, error: null });
    await select(v.runId, target.step);
  }

  // ---- other runs on the same chart: their checkpoints, read when ticked and again when they change
  const overlayReads = new Map<string, { key: string; done: Promise<void> }>();
  const setRead = (runId: string, read: OverlayRead) => patchPart(store, 'tradeoff', 'overlay', { reads: { ...state().tradeoff.overlay.reads, [runId]: read } });

  /** Reads a ticked run's checkpoints unless the read held is of its current listing (`retry`: also after an error). */
  function readOverlay(runId: string, retry = false): Promise<void> {
    const s = state();
    const run = s.runs.list.find((r) => r.id === runId);
    if (!run || !s.tradeoff.overlay.runIds.includes(runId)) return Promise.resolve();
    const key = overlayKey(run);
    const pending = overlayReads.get(runId);
    if (pending?.key === key) return pending.done;
    const held = s.tradeoff.overlay.reads[runId];
    if (held?.key === key && (held.phase === 'ready' || (held.phase === 'error' && !retry))) return Promise.resolve();
    // Until the new listing arrives the chart keeps the points it has.
    setRead(runId, { phase: 'busy', list: held?.list ?? [], error: null, key });
    const done = (async () => {
      try {
        const { checkpoints } = await client.request('list-checkpoints', { runId });
        if (overlayReads.get(runId)?.key === key) setRead(runId, { phase: 'ready', list: [...checkpoints].sort((a, b) => a.step - b.step), error: null, key });
      } catch (e) {
        if (overlayReads.get(runId)?.key === key) setRead(runId, { phase: 'error', list: [], error: asProtocolError(e), key });
      } finally {
        if (overlayReads.get(runId)?.key === key) overlayReads.delete(runId);
      }
    })();
    overlayReads.set(runId, { key, done });
    return done;
  }

  const unwatchOverlay = watch(
    store,
    (s) =>
      s.tradeoff.overlay.runIds
        .map((id) => {
          const r = s.runs.list.find((x) => x.id === id);
          return `${id}=${r ? overlayKey(r) : ''}`;
        })
        .join(','),
    () => {
      for (const id of state().tradeoff.overlay.runIds) void readOverlay(id);
    },
  );

  async function setOverlayRun(runId: string, shown: boolean): Promise<void> {
    const ids = state().tradeoff.overlay.runIds;
    if (!shown) {
      if (ids.includes(runId)) patchPart(store, 'tradeoff', 'overlay', { runIds: ids.filter((x) => x !== runId) });
      return;
    }
    if (!ids.includes(runId)) patchPart(store, 'tradeoff', 'overlay', { runIds: [...ids, runId] });
    await readOverlay(runId, true);
  }

  if (tradeoffRunId(state())) void readCheckpoints();

  return {
    explorePath,
    cancelExplore,
    applyPoint,
    rewindToRecommended,
    setOverlayRun,
    dispose() {
      unwatch();
      unwatchOverlay();
      void cancelExplore();
    },
  };
}
