// The studio's wiring: datasets (the doctor), training (start / pause / resume / cancel and the live
// series), checkpoints, runs and the selection. User intents -> protocol requests -> store updates.
import type { WorkerClient } from '../protocol/client';
import type { DatasetInput, InspectDataOptions, ResumeRunPayload, RunMetricPoint, RunSummary, TrainPayload } from '../protocol/messages';
import { asProtocolError } from '../store/errors';
import { addEval, addStep, seriesFromPoints } from '../store/series';
import {
  cannotStart,
  emptyLive,
  isTraining,
  patch,
  type AppStore,
  type DataOptions,
  type ExampleEntry,
} from '../store/store';
import { defaultStartStep, keepMethod, objectiveDataProblem, presetConfig, toOverrides, withStartAdapter, type PresetName } from '../store/training';
import { medianTokensPerSec, stepTimingKey } from '../store/guide';
import { BROWSER_TRAINING, validateConfig } from '../train/config';
import { evalPoint, stepPoint } from '../train/metrics';
import type { StudioActions } from '../ui/context';

export interface StudioDeps {
  client: WorkerClient;
  store: AppStore;
  /** Reads /examples/index.json. */
  fetchExamples(): Promise<ExampleEntry[]>;
  absoluteUrl(path: string): string;
  /** Resolves when a model is loaded (rejects when loading failed). */
  whenModelReady(): Promise<void>;
}

export function inspectOptions(o: DataOptions): InspectDataOptions {
  const out: InspectDataOptions = { valFraction: o.valFraction, lossOn: o.lossOn };
  if (o.format) out.format = o.format;
  if (o.maxSeqLen) out.maxSeqLen = o.maxSeqLen;
  if (o.columns) out.columns = o.columns;
  return out;
}

export interface Studio extends StudioActions {
  /** After the model is ready: the runs list (and the interrupted-run banner), the newest run opened. */
  afterModelReady(): Promise<void>;
  /** Starts a training made elsewhere (DPO on the compare view's preferences) as Start does: chart, checkpoints, runs and selection follow it. */
  train(payload: TrainPayload): Promise<void>;
}

export function createStudio({ client, store, fetchExamples, absoluteUrl, whenModelReady }: StudioDeps): Studio {
  /** The dataset last given, to check it again with other options. */
  let lastInput: { input: DatasetInput; label: string } | null = null;
  /** Its separate validation file, if one was given. */
  let validationInput: DatasetInput | null = null;
  /** Metric points received from the training in flight (merged with stored history when it arrives). */
  let received: RunMetricPoint[] = [];
  /** Follow-up listings while a reloaded tab's run is not yet known to be interrupted. */
  let orphanChecks = 0;

  const state = () => store.getState();

  // --- live series --------------------------------------------------------------------------------

  function pushEval(p: Extract<RunMetricPoint, { type: 'eval' }>): void {
    const live = state().live;
    addEval(live.series, p.step, p.valLoss, p.extra);
    const lastEval = { step: p.step, valLoss: p.valLoss, valPpl: p.valPpl, tokens: p.tokens, ...(p.extra ? { extra: p.extra } : {}), ...(p.details ? { details: p.details } : {}) };
    store.setState({ live: { ...live, version: live.version + 1, lastEval } });
  }

  async function loadHistory(runId: string, upTo: number | null): Promise<void> {
    try {
      const { points } = await client.request('run-metrics', { runId });
      noteSpeed(runId, points);
      if (state().live.runId !== runId) return;
      const past = upTo === null ? points : points.filter((p) => p.step <= upTo);
      const series = seriesFromPoints([...past, ...received.filter((p) => upTo === null || p.step > upTo)]);
      const live = state().live;
      const lastEval = [...past, ...received].reverse().find((p) => p.type === 'eval');
      store.setState({
        live: { ...live, series, version: live.version + 1, lastEval: live.lastEval ?? (lastEval && lastEval.type === 'eval' ? lastEval : null) },
      });
    } catch {
      // The chart stays with what streams in; the run itself is unaffected.
    }
  }

  /** The training speed a run measured on the loaded model (its steps' median tokens/s): the time estimate before Start. */
  function noteSpeed(runId: string, points: readonly RunMetricPoint[]): void {
    const model = state().model.summary;
    const run = state().runs.list.find((r) => r.id === runId);
    const trainedOn = run?.job?.model ?? (state().train.run?.runId === runId ? model : null);
    const m = medianTokensPerSec(points);
    if (!m || !model || !trainedOn || trainedOn.numParams !== model.numParams || trainedOn.arch !== model.arch) return;
    patch(store, 'train', { speed: { runId, runName: run?.name ?? state().train.run?.name ?? runId, model: { name: model.name, numParams: model.numParams, arch: model.arch }, ...m } });
  }

  // --- runs, checkpoints, storage -------------------------------------------------------------------

  async function refreshRuns(): Promise<void> {
    if (state().runs.phase !== 'ready') patch(store, 'runs', { phase: 'busy' });
    try {
      const [{ runs }, storage] = await Promise.all([
        client.request('list-runs', {}),
        client.request('storage-report', {}).catch(() => null),
      ]);
      runs.sort((a, b) => b.updatedAt - a.updatedAt);
      patch(store, 'runs', { phase: 'ready', list: runs, error: null, ...(storage ? { storage } : {}) });
      void readFigures(runs);
      // A run still marked 'running' that no worker trains: its tab was just reloaded or closed. The worker
      // calls it interrupted once the old tab's lock is released (a moment later): look again then.
      const orphan = runs.some((r) => r.status === 'running' && !r.active);
      if (orphan && !isTraining(state()) && orphanChecks < 30) {
        orphanChecks++;
        setTimeout(() => void refreshRuns(), 1000);
      } else if (!orphan) orphanChecks = 0;
    } catch (e) {
      patch(store, 'runs', { phase: 'error', error: asProtocolError(e) });
    }
  }

  /** The checkpoints of each decided run's best and recommended steps (their figures in the runs list). */
  async function readFigures(runs: readonly RunSummary[]): Promise<void> {
    const wanted = runs.filter((r) => !r.active && r.quality && (r.quality.bestStep !== null || r.quality.recommendedStep !== null) && state().runs.figures[r.id]?.updatedAt !== r.updatedAt);
    await Promise.all(
      wanted.map(async (r) => {
        try {
          const { checkpoints } = await client.request('list-checkpoints', { runId: r.id });
          const steps = new Set([r.quality!.bestStep, r.quality!.recommendedStep]);
          const figures = { ...state().runs.figures, [r.id]: { updatedAt: r.updatedAt, checkpoints: checkpoints.filter((c) => steps.has(c.step)) } };
          patch(store, 'runs', { figures });
        } catch {
          // The list shows the steps without their figures.
        }
      }),
    );
  }

  async function refreshCheckpoints(runId: string | null = state().checkpoints.runId): Promise<void> {
    if (!runId) {
      patch(store, 'checkpoints', { runId: null, phase: 'idle', list: [], error: null });
      return;
    }
    if (state().checkpoints.runId !== runId) patch(store, 'checkpoints', { runId, phase: 'busy', list: [], error: null });
    try {
      const { checkpoints } = await client.request('list-checkpoints', { runId });
      if (state().checkpoints.runId !== runId) return;
      patch(store, 'checkpoints', { phase: 'ready', list: checkpoints, error: null });
      const sel = state().selection;
      // A selected checkpoint that retention or the user deleted: back to the newest.
      if (sel.runId === runId && sel.step !== null && !checkpoints.some((c) => c.step === sel.step)) patch(store, 'selection', { step: null });
    } catch (e) {
      if (state().checkpoints.runId !== runId) return;
      patch(store, 'checkpoints', { phase: 'error', list: [], error: asProtocolError(e) });
    }
  }

  async function actionGuard(fn: () => Promise<unknown>): Promise<void> {
    patch(store, 'runs', { actionError: null });
    try {
      await fn();
    } catch (e) {
      patch(store, 'runs', { actionError: asProtocolError(e) });
    }
  }

  // --- training --------------------------------------------------------------------------------------

  async function runTraining(kind: 'train' | 'resume-run', payload: TrainPayload | ResumeRunPayload): Promise<void> {
    received = [];
    patch(store, 'train', { phase: 'starting', error: null, outcome: null, run: null, requestId: null });
    patch(store, 'runs', { actionError: null });
    const handle = client.send(kind as 'train', payload as TrainPayload, {
      run: (r) => {
        patch(store, 'train', { run: r, phase: state().train.phase === 'starting' ? 'running' : state().train.phase });
        store.setState({ live: emptyLive(r.runId) });
        patch(store, 'selection', { runId: r.runId, step: null });
        void refreshCheckpoints(r.runId);
        void refreshRuns();
        if (r.startStep > 0) void loadHistory(r.runId, r.startStep);
      },
      metrics: (m) => {
        const p = stepPoint(m);
        received.push(p);
        const live = state().live;
        addStep(live.series, p);
        store.setState({ live: { ...live, version: live.version + 1, last: m } });
      },
      eval: (e) => {
        const p = evalPoint(e);
        received.push(p);
        pushEval(p);
      },
      checkpoint: (c) => {
        // Retention removed older checkpoints: the Checkpoints panel says which (issue 18 #6).
        if (c.deletedSteps.length) {
          const was = state().checkpoints.removed;
          const steps = was?.runId === c.runId ? [...was.steps, ...c.deletedSteps] : [...c.deletedSteps];
          patch(store, 'checkpoints', { removed: { runId: c.runId, steps } });
        }
        void refreshCheckpoints();
      },
    });
    patch(store, 'train', { requestId: handle.id });
    try {
      const outcome = await handle.result;
      patch(store, 'train', { phase: 'done', outcome, requestId: null });
      noteSpeed(outcome.runId, received);
    } catch (e) {
      patch(store, 'train', { phase: 'error', error: asProtocolError(e), requestId: null });
    } finally {
      await Promise.all([refreshCheckpoints(), refreshRuns()]);
    }
  }

  // --- data -----------------------------------------------------------------------------------------

  /** quiet: a failure leaves the panel empty (for the dataset brought back after a reload). */
  async function inspect(input: DatasetInput, label: string, quiet = false): Promise<void> {
    lastInput = { input, label };
    const validation = validationInput;
    const prev = state().data.requestId;
    if (prev !== null) void client.cancel(prev).catch(() => undefined);
    patch(store, 'data', { phase: 'busy', label, progress: null, error: null, result: null, requestId: null });
    // The doctor measures tokens with the model's tokenizer: wait for a model that is loading.
    if (state().model.phase === 'busy') await whenModelReady().catch(() => undefined);
    if (lastInput?.input !== input) return;
    const handle = client.send(
      'inspect-data',
      { source: input, ...(validation ? { validation } : {}), options: inspectOptions(state().data.options) },
      { 'data-progress': (p) => state().data.requestId === handle.id && patch(store, 'data', { progress: { file: p.file, phase: p.phase, fraction: p.fraction } }) },
    );
    patch(store, 'data', { requestId: handle.id });
    try {
      const result = await handle.result;
      if (state().data.requestId !== handle.id) return;
      patch(store, 'data', { phase: 'ready', result, progress: null, requestId: null });
      // A preset's length follows the dataset's size (PRESET_MIN_STEPS); custom settings stay as they are.
      const preset = state().train.preset;
      if (preset !== 'custom' && !isTraining(state())) studio.choosePreset(preset);
    } catch (e) {
      if (state().data.requestId !== handle.id) return;
      if (quiet) {
        lastInput = null;
        validationInput = null;
        patch(store, 'data', { phase: 'idle', label: null, validationLabel: null, error: null, progress: null, requestId: null });
        return;
      }
      patch(store, 'data', { phase: 'error', error: asProtocolError(e), progress: null, requestId: null });
    }
  }

  /**
   * Another training dataset: the previous one's validation file and CSV columns do not belong to it
   * (`validation`: the new one's own validation file, if it comes with one).
   */
  function newDataset(validation: DatasetInput | null, validationLabel: string | null): void {
    validationInput = validation;
    patch(store, 'data', { validationLabel, options: { ...state().data.options, columns: null } });
  }

  const studio: Studio = {
    async afterModelReady() {
      await refreshRuns();
      const s = state();
      const newest = s.runs.list[0];
      if (!newest) return;
      const jobs: Promise<unknown>[] = [];
      if (!s.selection.runId && !isTraining(s)) jobs.push(studio.openRun(newest.id));
      // After a reload: the dataset of the newest run is back from this browser's storage, ready to train again.
      const ds = newest.job?.data;
      if (s.data.phase === 'idle' && !lastInput && ds && !ds.datasetId.startsWith('mem-')) {
        // With the options the run asked for: the worker keeps one reading per dataset id, and training on
        // it must keep splitting and encoding as before the reload.
        const r = ds.requested ?? {};
        patch(store, 'data', {
          options: { format: r.format ?? null, valFraction: r.valFraction ?? 0.1, maxSeqLen: r.maxSeqLen ?? null, lossOn: r.lossOn ?? 'completion', columns: r.columns ?? null },
          validationLabel: ds.valDatasetId ? 'validation file (kept in this browser)' : null,
        });
        validationInput = ds.valDatasetId ? { kind: 'stored', datasetId: ds.valDatasetId } : null;
        jobs.push(inspect({ kind: 'stored', datasetId: ds.datasetId }, `${ds.name} (kept in this browser)`, true));
      }
      await Promise.all(jobs);
    },

    async loadExamples() {
      patch(store, 'data', { examples: { phase: 'busy', entries: [], error: null } });
      try {
        const entries = await fetchExamples();
        patch(store, 'data', { examples: { phase: 'ready', entries, error: null } });
      } catch (e) {
        patch(store, 'data', {
          examples: {
            phase: 'error',
            entries: [],
            error: { code: 'NETWORK', message: `The example datasets could not be listed: ${(e as Error).message}`, hint: 'Use your own file, or reload the page.' },
          },
        });
      }
    },

    async inspectFile(file) {
      newDataset(null, null);
      await inspect({ kind: 'blob', blob: file, name: file.name }, file.name);
    },

    async setValidationFile(file) {
      validationInput = file ? { kind: 'blob', blob: file, name: file.name } : null;
      patch(store, 'data', { validationLabel: file?.name ?? null });
      if (lastInput) await inspect(lastInput.input, lastInput.label);
    },

    async inspectExample(id) {
      const entry = state().data.examples.entries.find((e) => e.id === id);
      if (!entry) return;
      // With the example's own validation file: the held-out examples the learning test measures on.
      newDataset(entry.val ? { kind: 'url', url: absoluteUrl(`/examples/${entry.val}`), name: entry.val } : null, entry.val ?? null);
      await inspect({ kind: 'url', url: absoluteUrl(`/examples/${entry.train}`), name: entry.train }, `Example: ${entry.title}`);
    },

    async setDataOptions(update) {
      patch(store, 'data', { options: { ...state().data.options, ...update } });
      if (lastInput) await inspect(lastInput.input, lastInput.label);
    },

    choosePreset(name: PresetName) {
      const config = keepMethod(presetConfig(name, state().model.summary?.arch, state().data.result?.report.split.train), state().train.config);
      // A run that continues another's adapter trains that adapter's shape, whatever the preset's.
      const from = state().train.startFrom;
      const parent = from ? state().runs.list.find((r) => r.id === from.runId) : undefined;
      patch(store, 'train', { preset: name, config: parent?.job ? withStartAdapter(config, parent.job.train) : config });
    },

    setTrainConfig(config) {
      // Recompute activations alone changes memory and time, not what the run learns: the preset still applies.
      const prev = state().train;
      const onlyRecompute = JSON.stringify({ ...prev.config, recompute: config.recompute }) === JSON.stringify(config);
      patch(store, 'train', { preset: onlyRecompute ? prev.preset : 'custom', config });
    },

    setProbeText(file) {
      patch(store, 'train', { probeText: file });
    },

    async setStartFrom(runId, step) {
      if (runId === null) {
        patch(store, 'train', { startFrom: null, startCheckpoints: null });
        return;
      }
      const parent = state().runs.list.find((r) => r.id === runId);
      // The run's adapter (method, shape, targets) is what the new run trains: the plan and labels show it.
      const adopt = (s: number) => patch(store, 'train', { startFrom: { runId, step: s }, config: parent?.job ? withStartAdapter(state().train.config, parent.job.train) : state().train.config });
      const known = state().train.startCheckpoints;
      if (known?.runId === runId && known.phase === 'ready' && step !== undefined) {
        adopt(step);
        return;
      }
      patch(store, 'train', { startCheckpoints: { runId, phase: 'busy', steps: [], error: null } });
      try {
        const { checkpoints } = await client.request('list-checkpoints', { runId });
        if (state().train.startCheckpoints?.runId !== runId) return;
        const steps = checkpoints.map((c) => c.step).sort((a, b) => a - b);
        patch(store, 'train', { startCheckpoints: { runId, phase: 'ready', steps, error: null } });
        const pick = step !== undefined && steps.includes(step) ? step : parent ? defaultStartStep(parent, steps) : (steps.at(-1) ?? null);
        if (pick === null) patch(store, 'train', { startFrom: null });
        else adopt(pick);
      } catch (e) {
        if (state().train.startCheckpoints?.runId !== runId) return;
        patch(store, 'train', { startFrom: null, startCheckpoints: { runId, phase: 'error', steps: [], error: asProtocolError(e) } });
      }
    },

    async startTraining() {
      const s = state();
      const why = cannotStart(s);
      if (why) {
        patch(store, 'train', { phase: 'error', error: { code: 'BAD_REQUEST', message: why } });
        return;
      }
      const problems = validateConfig(s.train.config, s.model.summary?.training ?? BROWSER_TRAINING);
      if (problems.length) {
        patch(store, 'train', { phase: 'error', error: { code: 'BAD_REQUEST', message: problems.join(' '), hint: 'Fix the settings under Advanced.' } });
        return;
      }
      const report = s.data.result!.report;
      const dataProblem = objectiveDataProblem(s.train.config.objective, report);
      if (dataProblem) {
        patch(store, 'train', { phase: 'error', error: { code: 'BAD_REQUEST', message: dataProblem } });
        return;
      }
      const probeText = s.train.probeText;
      // Only DPO starts from another run's checkpoint (SFT continues a run by rewinding it).
      const startFrom = s.train.config.objective === 'dpo' ? s.train.startFrom : null;
      await runTraining('train', { datasetId: s.data.result!.datasetId, name: report.name, config: toOverrides(s.train.config), ...(probeText ? { probeText } : {}), ...(startFrom ? { startFrom } : {}) });
    },

    async measureStep() {
      const s = state();
      const model = s.model.summary;
      const result = s.data.result;
      const key = stepTimingKey(model, result?.datasetId ?? null, s.data.options.maxSeqLen, s.train.config);
      if (!key || !model || !result || isTraining(s) || s.model.phase !== 'ready' || s.train.config.objective === 'dpo') return;
      if (s.train.stepTiming?.key === key) return;
      patch(store, 'train', { stepTiming: { key, phase: 'busy', speed: null, error: null } });
      try {
        const r = await client.request('measure-step', { datasetId: result.datasetId, config: toOverrides(s.train.config) });
        if (state().train.stepTiming?.key !== key) return;
        const speed = { runId: '', runName: '', model: { name: model.name, numParams: model.numParams, arch: model.arch }, tokensPerSec: r.tokensPerSec, steps: 1, timed: true };
        patch(store, 'train', { stepTiming: { key, phase: 'ready', speed, error: null } });
      } catch (e) {
        if (state().train.stepTiming?.key !== key) return;
        patch(store, 'train', { stepTiming: { key, phase: 'error', speed: null, error: asProtocolError(e) } });
      }
    },

    async pauseTraining() {
      if (state().train.phase !== 'running') return;
      patch(store, 'train', { phase: 'pausing' });
      try {
        const r = await client.request('pause', {});
        if (state().train.phase === 'pausing') patch(store, 'train', { phase: r.paused ? 'paused' : 'running' });
        void refreshCheckpoints();
      } catch (e) {
        if (state().train.phase === 'pausing') patch(store, 'train', { phase: 'running' });
        patch(store, 'runs', { actionError: asProtocolError(e) });
      }
    },

    async resumeTraining() {
      if (state().train.phase !== 'paused') return;
      try {
        await client.request('resume-train', {});
        if (state().train.phase === 'paused') patch(store, 'train', { phase: 'running' });
      } catch (e) {
        patch(store, 'runs', { actionError: asProtocolError(e) });
      }
    },

    async cancelTraining() {
      const id = state().train.requestId;
      if (id === null) return;
      patch(store, 'train', { phase: 'stopping' });
      await client.cancel(id).catch(() => false);
    },

    refreshRuns,

    async train(payload) {
      if (isTraining(state())) return;
      await runTraining('train', payload);
    },

    async openRun(runId) {
      if (isTraining(state()) && state().train.run?.runId === runId) {
        patch(store, 'selection', { runId, step: null });
        return;
      }
      received = [];
      patch(store, 'selection', { runId, step: null });
      if (!isTraining(state())) store.setState({ live: emptyLive(runId) });
      await Promise.all([refreshCheckpoints(runId), isTraining(state()) ? Promise.resolve() : loadHistory(runId, null)]);
    },

    selectCheckpoint(runId, step) {
      patch(store, 'selection', { runId, step });
    },

    async pinCheckpoint(runId, step, pinned) {
      await actionGuard(() => client.request('pin-checkpoint', { runId, step, pinned }));
      await refreshCheckpoints();
    },

    async deleteCheckpoint(runId, step) {
      await actionGuard(() => client.request('delete-checkpoint', { runId, step }));
      await Promise.all([refreshCheckpoints(), refreshRuns()]);
    },

    async rewindTo(runId, step, name) {
      if (isTraining(state())) return;
      const run = state().runs.list.find((r) => r.id === runId);
      await runTraining('resume-run', { runId, step, name: name ?? `${run?.name ?? 'run'} from step ${step}` });
    },

    async resumeRun(runId) {
      if (isTraining(state())) return;
      patch(store, 'runs', { bannerDismissed: true });
      await runTraining('resume-run', { runId });
    },

    async renameRun(runId, name) {
      await actionGuard(() => client.request('rename-run', { runId, name }));
      await refreshRuns();
    },

    async deleteRun(runId) {
      await actionGuard(() => client.request('delete-run', { runId }));
      if (state().selection.runId === runId) {
        patch(store, 'selection', { runId: null, step: null });
        patch(store, 'checkpoints', { runId: null, phase: 'idle', list: [], error: null });
        if (!isTraining(state())) store.setState({ live: emptyLive() });
      }
      await refreshRuns();
    },

    async importAdapter(pick) {
      try {
        const name = pick.name ?? pick.zip?.name ?? pick.files?.[0]?.webkitRelativePath.split('/')[0] ?? undefined;
        const payload = pick.zip ? { name, zip: new Uint8Array(await pick.zip.arrayBuffer()) } : { name, files: pick.files ?? [] };
        const r = await client.request('import-adapter', payload);
        await refreshRuns();
        if (!isTraining(state())) await studio.openRun(r.run.id);
        return { run: r.run, warnings: r.warnings };
      } catch (e) {
        return { error: asProtocolError(e) };
      }
    },

    dismissBanner() {
      patch(store, 'runs', { bannerDismissed: true });
    },
  };
  return studio;
}
