import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { TrainConfig } from '../protocol/messages';
import { cannotStart, estimateSeqLen, isTraining } from '../store/store';
import { formatBytes } from '../storage/errors';
import { outcomeRunNote, outcomeWord, storedRunLine } from '../store/status-lines';
import {
  adapterTargets,
  dpoOffer,
  methodChoices,
  methodLabel,
  objectiveDataProblem,
  PRESETS,
  runMethodLabel,
  startFromRuns,
  withTarget,
} from '../store/training';
import {
  BEST_METRIC_OPTION,
  BEST_METRICS,
  BROWSER_TRAINING,
  getOption,
  MODE_OPTION,
  RECOMPUTE_OPTION,
  MODES,
  NUMERIC_OPTIONS,
  OBJECTIVE_OPTION,
  OBJECTIVES,
  PROMPT_INIT_OPTION,
  PROMPT_INITS,
  SCHEDULE_OPTION,
  SCHEDULES,
  setOption,
  TARGETS_OPTION,
  targetsFor,
  totalSteps,
  validateConfig,
  withMode,
  type PromptTuningInit,
} from '../train/config';
import { chosenLogpsTrend, logpsWarning } from '../train/dpo-stats';
import { DpoAccuracyChart, DpoLogpsChart, DpoRewardsChart, LossChart, LrChart, PerplexityChart, SkillChart, TaskChart } from './Charts';
import { useActions, useAppState, useStoreApi } from './context';
import { ErrorNotice } from './ErrorNotice';
import { DataSizeWarning, RunVerdict, TimeEstimate, trainControlReasons, useVerdictKind } from './TrainGuide';
import { EvalDetails } from './EvalDetails';
import { stepAnchor } from './StepNav';
import { trainSource } from './train-source';
import { limitsFor, memoryLine, planMemory } from '../train/memory-plan';
import './methods.css';

const nf = new Intl.NumberFormat('en-US');

function duration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '–';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/** Step, epoch, speed, ETA and memory: written into the DOM from `subscribe`, not through React state. */
function LiveStats() {
  const store = useStoreApi();
  const text = useRef<HTMLParagraphElement>(null);
  const bar = useRef<HTMLProgressElement>(null);
  useEffect(() => {
    let frame = 0;
    const draw = () => {
      frame = 0;
      const { live, train } = store.getState();
      const m = live.last;
      const parts: string[] = [];
      let fraction: number | null = null;
      if (m) {
        fraction = m.totalSteps ? m.step / m.totalSteps : null;
        parts.push(`Step ${nf.format(m.step)} of ${nf.format(m.totalSteps)}`, `epoch ${m.epoch.toFixed(2)}`, `loss ${m.loss.toFixed(4)}`);
        if (live.lastEval) parts.push(`validation loss ${live.lastEval.valLoss.toFixed(4)} (step ${live.lastEval.step})`);
        parts.push(`${nf.format(Math.round(m.tokensPerSec))} tokens/s`);
        if (isTraining(store.getState()) && m.step < m.totalSteps) parts.push(`ETA ${duration(m.etaSec)}`);
        parts.push(`memory ${formatBytes(m.memory.numBytes)} in ${nf.format(m.memory.numTensors)} tensors (${m.backend})`);
        if (m.skipped) parts.push(`step skipped: ${m.skipped}`);
      } else if (live.series.step.length) {
        const n = live.series.step.length;
        const lastLoss = [...live.series.loss].reverse().find((v) => v !== null);
        const vals = live.series.val.filter((v): v is number => v !== null);
        // Names the run the charts show: the end-of-run notice below may describe another one (issue 18 #5).
        const shownName = store.getState().runs.list.find((r) => r.id === live.runId)?.name ?? null;
        parts.push(storedRunLine(shownName, live.series.step[n - 1]!, lastLoss ?? null, vals.length ? Math.min(...vals) : null, nf));
      } else if (train.phase === 'starting') {
        parts.push('Preparing the run (encoding the data, building the adapter)…');
      }
      if (text.current) text.current.textContent = parts.join(' · ');
      if (bar.current) {
        bar.current.hidden = fraction === null;
        if (fraction !== null) bar.current.value = Math.round(fraction * 1000);
      }
    };
    draw();
    const unsubscribe = store.subscribe((s, prev) => {
      if (s.live === prev.live && s.train.phase === prev.train.phase) return;
      if (!frame) frame = requestAnimationFrame(draw);
    });
    return () => {
      unsubscribe();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [store]);
  return (
    <div className="live-stats">
      <progress ref={bar} max={1000} aria-label="Training progress" hidden />
      <p ref={text} role="status" data-testid="train-stats" />
    </div>
  );
}

function NumberField({ config, o, disabled }: { config: TrainConfig; o: (typeof NUMERIC_OPTIONS)[number]; disabled: boolean }) {
  const actions = useActions();
  const id = useId();
  const v = getOption(config, o.key);
  const bad = !Number.isFinite(v) || v < o.min || v > o.max || (o.integer && !Number.isInteger(v));
  return (
    <div className="field">
      <label htmlFor={id}>{o.label}</label>
      <input
        id={id}
        type="number"
        min={o.min}
        max={o.max}
        step={o.step}
        value={Number.isFinite(v) ? v : ''}
        disabled={disabled}
        aria-invalid={bad}
        aria-describedby={`${id}-help`}
        onChange={(e) => actions.setTrainConfig(setOption(config, o.key, e.target.value === '' ? NaN : Number(e.target.value)))}
      />
      <small id={`${id}-help`} className="help">
        {o.help} ({o.min}–{o.max})
      </small>
    </div>
  );
}

/** OFT's targets, as the configuration's check names them ("OFT targets: pick at least one layer type."). */
const OFT_TARGETS = {
  label: 'OFT targets',
  help: 'Layers whose inputs get a trained rotation: attention (q, k, v, o) and MLP (gate, up, down). More layers learn more.',
} as const;

/** A numeric setting of one adapter is shown only while that adapter is trained (LoRA's also for full, disabled). */
function shownFor(key: string, mode: TrainConfig['mode']): boolean {
  if (key.startsWith('oft.')) return mode === 'oft';
  if (key.startsWith('lora.')) return mode === 'lora' || mode === 'full';
  if (key.startsWith('prompt.')) return mode === 'prompt';
  return true;
}

/** Under Advanced: the optimizer's and the adapter's numbers (prompt tuning's and DPO's sit with their pickers, When to stop's under it). */
function inAdvanced(o: (typeof NUMERIC_OPTIONS)[number]): boolean {
  return o.group === undefined && !o.key.startsWith('prompt.');
}

/**
 * What to train (LoRA / OFT / prompt tuning; full where it runs) with the picked one's trade-off and why the
 * others cannot train here; prompt tuning's settings when it is picked. A DPO run that starts from another
 * run trains that run's adapter: the picker then says so and is locked.
 */
function MethodPicker({ disabled }: { disabled: boolean }) {
  const config = useAppState((s) => s.train.config);
  const caps = useAppState((s) => s.model.summary?.training ?? BROWSER_TRAINING);
  const fromRun = useAppState((s) => (s.train.config.objective === 'dpo' && s.train.startFrom ? s.runs.list.find((r) => r.id === s.train.startFrom!.runId) : undefined));
  const actions = useActions();
  const id = useId();
  const set = (c: TrainConfig) => actions.setTrainConfig(c);
  const choices = methodChoices(caps, config.mode);
  // Why each method the worker cannot train is missing, also those not offered at all (full fine-tuning: the CLI).
  const reasons = MODES.filter((m) => !caps.modes.includes(m)).map((m) => caps.unavailable?.[m] ?? `${MODE_OPTION.choices[m]} is not available here.`);
  const picked = choices.find((m) => m.mode === config.mode);
  const locked = !!fromRun;
  const textOption = config.prompt.prompt_tuning_init === 'TEXT';
  return (
    <div className="method">
      <div className="field">
        <label htmlFor={`${id}-mode`}>{MODE_OPTION.label}</label>
        <select
          id={`${id}-mode`}
          value={config.mode}
          disabled={disabled || locked}
          aria-describedby={reasons.length ? `${id}-tradeoff ${id}-mode-help` : `${id}-tradeoff`}
          onChange={(e) => set(withMode(config, e.target.value as TrainConfig['mode']))}
        >
          {choices.map((m) => (
            <option key={m.mode} value={m.mode} disabled={!!m.unavailable}>
              {m.unavailable ? `${m.label} (not available here)` : m.label}
            </option>
          ))}
        </select>
        <small id={`${id}-tradeoff`} className="help" data-testid="method-tradeoff">
          {locked ? `Continues the adapter of ${fromRun.name} (${fromRun.job ? methodLabel(fromRun.job.train) : 'its method'}). ` : ''}
          {picked?.tradeoff}
        </small>
        {reasons.length > 0 && (
          <small id={`${id}-mode-help`} className="help" data-testid="method-unavailable">
            {reasons.join(' ')}
          </small>
        )}
      </div>
      {config.mode === 'prompt' && (
        <fieldset className="fields prompt-fields" disabled={disabled || locked}>
          <legend>Prompt tuning</legend>
          <NumberField config={config} o={NUMERIC_OPTIONS.find((o) => o.key === 'prompt.num_virtual_tokens')!} disabled={disabled || locked} />
          <div className="field">
            <label htmlFor={`${id}-init`}>{PROMPT_INIT_OPTION.label}</label>
            <select
              id={`${id}-init`}
              value={config.prompt.prompt_tuning_init}
              aria-describedby={`${id}-init-help`}
              onChange={(e) => set({ ...config, prompt: { ...config.prompt, prompt_tuning_init: e.target.value as PromptTuningInit } })}
            >
              {PROMPT_INITS.map((k) => (
                <option key={k} value={k}>
                  {PROMPT_INIT_OPTION.choices[k]}
                </option>
              ))}
            </select>
            <small id={`${id}-init-help`} className="help">
              {PROMPT_INIT_OPTION.help}
            </small>
          </div>
          {textOption && (
            <div className="field">
              <label htmlFor={`${id}-init-text`}>Text to start from</label>
              <input
                id={`${id}-init-text`}
                type="text"
                value={config.prompt.prompt_tuning_init_text}
                maxLength={2000}
                aria-invalid={!config.prompt.prompt_tuning_init_text.trim()}
                aria-describedby={`${id}-init-text-help`}
                onChange={(e) => set({ ...config, prompt: { ...config.prompt, prompt_tuning_init_text: e.target.value } })}
              />
              <small id={`${id}-init-text-help`} className="help">
                E.g. a description of the task (&quot;Classify the sentiment of the review:&quot;): its tokens&apos; embeddings, cut or repeated to the number of virtual tokens, are where training starts.
              </small>
            </div>
          )}
        </fieldset>
      )}
    </div>
  );
}

/**
 * SFT or DPO; for DPO its settings (beta, the SFT weight on chosen) and where it starts (the base model or a
 * stored run's checkpoint). Says when the dataset is made for DPO, and what is missing when it is not.
 */
function ObjectivePicker({ disabled }: { disabled: boolean }) {
  const config = useAppState((s) => s.train.config);
  const report = useAppState((s) => s.data.result?.report ?? null);
  const list = useAppState((s) => s.runs.list);
  const model = useAppState((s) => s.model.summary);
  const startFrom = useAppState((s) => s.train.startFrom);
  const startCheckpoints = useAppState((s) => s.train.startCheckpoints);
  const actions = useActions();
  const id = useId();
  const runs = useMemo(() => startFromRuns(list, model), [list, model]);
  const dpo = config.objective === 'dpo';
  const offer = dpo ? null : dpoOffer(report);
  const problem = objectiveDataProblem(config.objective, report);
  const steps = startFrom && startCheckpoints?.runId === startFrom.runId ? startCheckpoints.steps : [];
  const pickedRun = startCheckpoints?.runId ?? '';
  return (
    <div className="objective">
      <fieldset className="field objective-choice" disabled={disabled} aria-describedby={`${id}-help`}>
        <legend>{OBJECTIVE_OPTION.label}</legend>
        {OBJECTIVES.map((o) => (
          <label key={o} className="check">
            <input type="radio" name={`${id}-objective`} value={o} checked={config.objective === o} onChange={() => actions.setTrainConfig({ ...config, objective: o })} />
            {OBJECTIVE_OPTION.choices[o]}
          </label>
        ))}
        <small id={`${id}-help`} className="help">
          {OBJECTIVE_OPTION.help}
        </small>
      </fieldset>
      {offer && (
        <p className="notice" role="status" data-testid="dpo-offer">
          {offer}{' '}
          <button type="button" disabled={disabled} onClick={() => actions.setTrainConfig({ ...config, objective: 'dpo' })}>
            Train with DPO
          </button>
        </p>
      )}
      {problem && (
        <p className="notice warn" role="alert" data-testid="objective-problem">
          {problem}
        </p>
      )}
      {dpo && (
        <fieldset className="fields dpo-fields" disabled={disabled}>
          <legend>DPO</legend>
          {NUMERIC_OPTIONS.filter((o) => o.group === 'dpo').map((o) => (
            <NumberField key={o.key} config={config} o={o} disabled={disabled} />
          ))}
          <div className="field">
            <label htmlFor={`${id}-from`}>Start from</label>
            <select id={`${id}-from`} value={pickedRun} aria-describedby={`${id}-from-help`} onChange={(e) => void actions.setStartFrom(e.target.value || null)}>
              <option value="">Base model</option>
              {runs.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name} ({runMethodLabel(r.job!.train)})
                </option>
              ))}
            </select>
            <small id={`${id}-from-help`} className="help">
              The model DPO starts from is also its reference. The base model: a new adapter, the reference is the base model. A run (e.g. your SFT run): its
              adapter continues from the checkpoint picked, frozen as the reference.
              {runs.length === 0 ? ' No stored run on this model has a checkpoint yet.' : ''}
            </small>
          </div>
          {pickedRun && (
            <div className="field">
              <label htmlFor={`${id}-step`}>Checkpoint to start from</label>
              <select
                id={`${id}-step`}
                value={startFrom?.step ?? ''}
                disabled={startCheckpoints?.phase !== 'ready' || steps.length === 0}
                aria-describedby={`${id}-step-help`}
                onChange={(e) => void actions.setStartFrom(pickedRun, Number(e.target.value))}
              >
                {steps.length === 0 && <option value="">{startCheckpoints?.phase === 'busy' ? 'Reading its checkpoints…' : 'No checkpoint'}</option>}
                {steps.map((s) => (
                  <option key={s} value={s}>
                    step {s}
                  </option>
                ))}
              </select>
              <small id={`${id}-step-help`} className="help" data-testid="start-from">
                {startCheckpoints?.phase === 'error'
                  ? `Its checkpoints could not be read: ${startCheckpoints.error?.message ?? 'unknown error'}`
                  : startFrom
                    ? `DPO continues ${runs.find((r) => r.id === startFrom.runId)?.name ?? 'the run'}'s adapter from step ${startFrom.step}.`
                    : 'The run\'s recommended checkpoint is picked first.'}
              </small>
            </div>
          )}
        </fieldset>
      )}
    </div>
  );
}

/**
 * Recompute activations (gradient checkpointing): beside the memory line when memory is what the run is short of
 * (the plan made micro-batches, or the run fits only with it) or when it is on; otherwise under Advanced settings.
 */
function RecomputeOption({ disabled, fitsOnlyWithIt }: { disabled: boolean; fitsOnlyWithIt: boolean }) {
  const config = useAppState((s) => s.train.config);
  const actions = useActions();
  const id = useId();
  return (
    <div className="field recompute">
      <label className="check">
        <input
          type="checkbox"
          checked={!!config.recompute}
          disabled={disabled}
          aria-describedby={`${id}-recompute-help`}
          onChange={(e) => actions.setTrainConfig({ ...config, recompute: e.target.checked })}
        />
        {RECOMPUTE_OPTION.label}
      </label>
      <small id={`${id}-recompute-help`} className="help">
        {RECOMPUTE_OPTION.help}
        {fitsOnlyWithIt ? ' This run fits in memory only with it.' : ''}
      </small>
    </div>
  );
}

function Advanced({ disabled, open, onToggle, recomputeBeside }: { disabled: boolean; open: boolean; onToggle(open: boolean): void; recomputeBeside: boolean }) {
  const config = useAppState((s) => s.train.config);
  const arch = useAppState((s) => s.model.summary?.arch);
  const actions = useActions();
  const id = useId();
  const set = (c: TrainConfig) => actions.setTrainConfig(c);
  // The targets fieldset edits the adapter being trained: OFT's targets for OFT, LoRA's otherwise.
  const oft = config.mode === 'oft';
  const targets = adapterTargets(config);
  // The adapter's targets: LoRA's or OFT's (prompt tuning has none; a run DPO starts from keeps its own).
  const startsFromRun = useAppState((s) => s.train.config.objective === 'dpo' && s.train.startFrom !== null);
  return (
    <details className="advanced" open={open} onToggle={(e) => onToggle(e.currentTarget.open)}>
      <summary>Advanced settings</summary>
      <div className="fields">
        {!recomputeBeside && <RecomputeOption disabled={disabled} fitsOnlyWithIt={false} />}
        <div className="field">
          <label htmlFor={`${id}-sched`}>{SCHEDULE_OPTION.label}</label>
          <select id={`${id}-sched`} value={config.schedule} disabled={disabled} onChange={(e) => set({ ...config, schedule: e.target.value as TrainConfig['schedule'] })} aria-describedby={`${id}-sched-help`}>
            {SCHEDULES.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
          <small id={`${id}-sched-help`} className="help">
            {SCHEDULE_OPTION.help}
          </small>
        </div>
        {NUMERIC_OPTIONS.filter((o) => inAdvanced(o) && shownFor(o.key, config.mode)).map((o) => (
          <NumberField key={o.key} config={config} o={o} disabled={disabled || (config.mode === 'full' && o.key.startsWith('lora.')) || (startsFromRun && /^(lora|oft)\./.test(o.key))} />
        ))}
        {config.mode !== 'prompt' && (
          <fieldset className="field targets" disabled={disabled || config.mode === 'full' || startsFromRun}>
            <legend>{oft ? OFT_TARGETS.label : TARGETS_OPTION.label}</legend>
            {targetsFor(arch).map((t) => (
              <label key={t} className="check">
                <input
                  type="checkbox"
                  checked={targets.includes(t)}
                  onChange={(e) => set(withTarget(config, t, e.target.checked))}
                />
                {t}
              </label>
            ))}
            <small className="help">{oft ? OFT_TARGETS.help : TARGETS_OPTION.help}</small>
          </fieldset>
        )}
      </div>
    </details>
  );
}

/** What "When to stop" is set to, in one line (shown while it is folded). */
function stopSummary(c: TrainConfig): string {
  const parts = [c.earlyStopPatience > 0 ? `stops after ${c.earlyStopPatience} evaluation${c.earlyStopPatience === 1 ? '' : 's'} without improvement` : 'never stops early'];
  parts.push(`best by ${c.bestMetric === 'exact_match' ? 'exact match' : 'validation loss'}`);
  parts.push(c.probeSamples > 0 ? `forgetting probe of ${c.probeSamples} texts, budget ${c.forgetBudgetPct}%` : 'no forgetting probe');
  if (c.genEvalExamples > 0) parts.push(`${c.genEvalExamples} answers generated per evaluation`);
  return parts.join(' · ');
}

/** The settings that decide when a run stops and which checkpoint to keep (NumericOption.group 'quality'). */
function WhenToStop({ disabled, open, onToggle }: { disabled: boolean; open: boolean; onToggle(open: boolean): void }) {
  const config = useAppState((s) => s.train.config);
  const actions = useActions();
  const id = useId();
  const needsAnswers = config.bestMetric === 'exact_match' && config.genEvalExamples === 0;
  return (
    <details className="when-to-stop" open={open} onToggle={(e) => onToggle(e.currentTarget.open)}>
      <summary>
        When to stop <span className="help inline">{stopSummary(config)}</span>
      </summary>
      <fieldset className="stop-fields" disabled={disabled}>
        <legend>When to stop</legend>
        <p className="help">
          Every evaluation measures the validation loss, generated held-out answers and, with the forgetting probe, how much general skill the model
          loses. Early stopping ends the run when the criterion stops improving; the run then recommends the best checkpoint within the forgetting budget.
        </p>
        <div className="fields">
          <div className="field">
            <label htmlFor={`${id}-best`}>{BEST_METRIC_OPTION.label}</label>
            <select
              id={`${id}-best`}
              value={config.bestMetric}
              aria-describedby={`${id}-best-help`}
              aria-invalid={needsAnswers}
              onChange={(e) => actions.setTrainConfig({ ...config, bestMetric: e.target.value as TrainConfig['bestMetric'] })}
            >
              {BEST_METRICS.map((m) => (
                <option key={m} value={m}>
                  {BEST_METRIC_OPTION.choices[m]}
                </option>
              ))}
            </select>
            <small id={`${id}-best-help`} className="help">
              {BEST_METRIC_OPTION.help}
            </small>
          </div>
          {NUMERIC_OPTIONS.filter((o) => o.group === 'quality').map((o) => (
            <NumberField key={o.key} config={config} o={o} disabled={disabled || (o.key === 'probeTokens' && config.probeSamples === 0)} />
          ))}
          <ProbeTextField disabled={disabled} probeOff={config.probeSamples === 0} />
        </div>
      </fieldset>
    </details>
  );
}

/** A general-text file added to the forgetting probe (its chunks are scored beside the base model's own texts). */
function ProbeTextField({ disabled, probeOff }: { disabled: boolean; probeOff: boolean }) {
  const probeText = useAppState((s) => s.train.probeText);
  const actions = useActions();
  const id = useId();
  const [error, setError] = useState<string | null>(null);
  return (
    <div className="field probe-text">
      <label htmlFor={`${id}-file`}>General text for the probe</label>
      <input
        id={`${id}-file`}
        type="file"
        accept=".txt,.md,text/plain"
        disabled={disabled || probeOff}
        aria-describedby={`${id}-help`}
        onChange={async (e) => {
          const f = e.currentTarget.files?.[0];
          e.currentTarget.value = '';
          if (!f) return;
          try {
            const text = await f.text();
            if (!text.trim()) throw new Error(`"${f.name}" is empty.`);
            setError(null);
            actions.setProbeText({ name: f.name, text });
          } catch (err) {
            setError(`${(err as Error).message} Pick a plain-text file with a few paragraphs of general text.`);
          }
        }}
      />
      {probeText && (
        <span className="row">
          <span data-testid="probe-text-name">{probeText.name}</span>
          <button type="button" disabled={disabled} onClick={() => actions.setProbeText(null)}>
            Remove
          </button>
        </span>
      )}
      {probeText && probeOff && (
        <small role="alert" className="error">
          The forgetting probe is off, so this text cannot be used: set the probe size above 0, or remove the text.
        </small>
      )}
      {error && (
        <small role="alert" className="error">
          {error}
        </small>
      )}
      <small id={`${id}-help`} className="help">
        Optional: plain text of the kind the model should stay good at; its passages are scored at every evaluation beside the base model's own texts.
      </small>
    </div>
  );
}

/** "Stopped early: validation loss did not improve …" from TrainOutcome.stoppedBy (early stopping's sentence). */
function stoppedEarly(stoppedBy: string): string {
  return `Stopped early: ${stoppedBy.replace(/^early stopping:\s*/, '')}.`;
}

export function TrainPanel() {
  const train = useAppState((s) => s.train);
  const why = useAppState(cannotStart);
  const training = useAppState(isTraining);
  const summary = useAppState((s) => s.model.summary);
  const trainExamples = useAppState((s) => s.data.result?.report.split.train ?? null);
  const seqLen = useAppState(estimateSeqLen);
  const hasSeries = useAppState((s) => s.live.runId !== null);
  const actions = useActions();
  const id = useId();
  const [logScale, setLogScale] = useState(false);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [stopOpen, setStopOpen] = useState(false);
  const hasProbe = useAppState((s) => typeof s.live.lastEval?.extra?.probe_nll_delta_pct === 'number');
  const hasAnswers = useAppState((s) => ['exact_match', 'token_f1', 'label_accuracy'].some((k) => typeof s.live.lastEval?.extra?.[k] === 'number'));
  // Plain text (domain adaptation): the held-out perplexity, tuned and base, at each evaluation.
  const lastEval = useAppState((s) => s.live.lastEval);
  const perplexity = lastEval && typeof lastEval.extra?.ppl_base === 'number' ? { base: lastEval.extra.ppl_base, tuned: Math.exp(lastEval.valLoss), step: lastEval.step } : null;
  // A run with DPO's statistics (streamed or stored) gets DPO's charts, and the warning when logps/chosen falls.
  const hasDpo = useAppState((s) => 'rewards/margins' in s.live.series.stepExtra || 'eval_rewards/margins' in s.live.series.evalExtra);
  const logpsFalling = useAppState((s) => logpsWarning(chosenLogpsTrend(s.live.series.stepExtra['logps/chosen'] ?? [], s.live.series.evalExtra['eval_logps/chosen'] ?? [])));
  const report = useAppState((s) => s.data.result?.report ?? null);
  const dataProblem = objectiveDataProblem(train.config.objective, report);
  const problems = [...validateConfig(train.config, summary?.training ?? BROWSER_TRAINING), ...(dataProblem ? [dataProblem] : [])];
  // The memory plan with this backend's limits (src/train/memory-plan.ts): the worker applies the same plan at the start.
  const backendStatus = useAppState((s) => s.backend.status);
  const memPlan = summary ? planMemory(summary, train.config, seqLen, backendStatus?.memory ?? limitsFor(backendStatus?.tfBackend ?? 'unknown')) : null;
  // Memory is what this run is short of, or the switch is on: Recompute activations shows beside the memory line.
  const recomputeBeside = !!train.config.recompute || !!memPlan?.changed || !!memPlan?.withRecompute;
  const mem = memPlan?.requested ?? null;
  if (memPlan && !memPlan.fits) problems.push(memPlan.message!);
  const steps = trainExamples !== null ? totalSteps(train.config, trainExamples) : null;
  const startLabel = train.phase === 'done' || train.phase === 'error' ? 'Train again' : 'Start training';
  // After a finished run the next step is Compare: Train again steps back (secondary), a link leads on.
  const finished = train.phase === 'done' && !!train.outcome;
  const source = useAppState(trainSource);
  const off = trainControlReasons(train.phase, train.requestId !== null);
  const verdictKind = useVerdictKind(train.outcome?.runId ?? null);
  // Every finished run leads on to Compare (whether it learned shows there, side by side).
  const leadOn = finished;
  const outcomeNote = useAppState((s) => (s.train.outcome ? outcomeRunNote(s.train.outcome, { runId: s.live.runId, name: s.runs.list.find((r) => r.id === s.live.runId)?.name ?? null }) : null));

  return (
    <section className="panel train" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Train</h2>
      <div className="presets" role="radiogroup" aria-label="Training preset">
        {PRESETS.map((p) => (
          <label key={p.name} className={`preset${train.preset === p.name ? ' chosen' : ''}`}>
            <input type="radio" name={`${id}-preset`} value={p.name} checked={train.preset === p.name} disabled={training} onChange={() => actions.choosePreset(p.name)} />
            <span className="preset-name">{p.label}</span>
            <span className="help">{p.summary}</span>
          </label>
        ))}
        {train.preset === 'custom' && <p className="help">Custom settings (changed under When to stop or Advanced). Pick a preset to go back to it.</p>}
      </div>

      <MethodPicker disabled={training} />
      <ObjectivePicker disabled={training} />

      {source && (
        <p className="help" data-testid="train-source">
          {source}
        </p>
      )}
      <p className="plan" data-testid="train-plan">
        {steps !== null && trainExamples ? `${nf.format(steps)} steps on ${nf.format(trainExamples!)} examples (batch ${train.config.batchSize}${train.config.gradAccum > 1 ? ` × ${train.config.gradAccum}` : ''}, learning rate ${train.config.lr}). ` : ''}
        {mem
          ? `${train.config.mode !== 'full' ? `${nf.format(mem.trainableParams)} trainable parameters (${methodLabel(train.config)}${train.config.objective === 'dpo' ? ', DPO' : ''}). ` : 'Every parameter trained. '}${memoryLine(memPlan!)}, sequences of ${seqLen} tokens.`
          : ''}
      </p>
      {recomputeBeside && <RecomputeOption disabled={training} fitsOnlyWithIt={!!memPlan?.withRecompute} />}
      {memPlan?.changed && (
        <p className="notice warn" role="status" data-testid="memory-plan">
          {memPlan.message}
        </p>
      )}

      <DataSizeWarning />

      <WhenToStop disabled={training} open={stopOpen} onToggle={setStopOpen} />
      <Advanced disabled={training} open={advancedOpen} onToggle={setAdvancedOpen} recomputeBeside={recomputeBeside} />

      <div className="row controls" role="group" aria-label="Training controls">
        <button
          type="button"
          className={leadOn ? 'secondary' : undefined}
          onClick={() => {
            // The settings fold away so the chart is in view while it trains.
            setAdvancedOpen(false);
            setStopOpen(false);
            void actions.startTraining();
          }}
          disabled={!!why || problems.length > 0} aria-describedby={`${id}-why ${id}-eta`}>
          {startLabel}
        </button>
        <button type="button" className="secondary" onClick={() => void actions.pauseTraining()} disabled={!!off.pause} aria-describedby={off.pause ? `${id}-off-pause` : undefined} title={off.pause ?? undefined}>
          Pause
        </button>
        <button type="button" className="secondary" onClick={() => void actions.resumeTraining()} disabled={!!off.resume} aria-describedby={off.resume ? `${id}-off-resume` : undefined} title={off.resume ?? undefined}>
          Resume
        </button>
        <button type="button" className="secondary danger" onClick={() => void actions.cancelTraining()} disabled={!!off.cancel} aria-describedby={off.cancel ? `${id}-off-cancel` : undefined} title={off.cancel ?? undefined}>
          Cancel
        </button>
        <TimeEstimate id={`${id}-eta`} />
        <span className="visually-hidden">
          {off.pause && <span id={`${id}-off-pause`}>{off.pause}</span>}
          {off.resume && <span id={`${id}-off-resume`}>{off.resume}</span>}
          {off.cancel && <span id={`${id}-off-cancel`}>{off.cancel}</span>}
        </span>
        {train.run?.warnings?.map((w) => (
          <p key={w} role="status" className="notice warn" data-testid="run-warning">
            {w}
          </p>
        ))}
        <span id={`${id}-why`} className="help inline" data-testid="train-phase">
          {train.phase === 'starting' && 'Starting…'}
          {train.phase === 'running' && `Training ${train.run?.name ?? ''}`}
          {train.phase === 'pausing' && 'Pausing after this step…'}
          {train.phase === 'paused' && 'Paused (a checkpoint was saved).'}
          {train.phase === 'stopping' && 'Cancelling after this step…'}
          {!training && why && why !== 'A run is training.' ? why : ''}
          {!training && !why && problems.length ? problems.join(' ') : ''}
        </span>
      </div>

      <LiveStats />

      {train.phase === 'done' && train.outcome && (
        <div className={`notice ${verdictKind === 'yes' || verdictKind === 'learning' ? 'ok' : 'warn'}`} role="status" data-testid="train-outcome">
          <RunVerdict runId={train.outcome.runId} />
          {train.outcome.stoppedBy && (
            <p className="stopped-by" data-testid="train-stopped-by">
              <strong>{stoppedEarly(train.outcome.stoppedBy)}</strong>
            </p>
          )}
          <p>
            {outcomeWord(train.outcome)} at step {train.outcome.step} of {train.outcome.totalSteps}
            {outcomeNote ? ` ${outcomeNote}` : ''}
            {train.outcome.finalTrainLoss !== null ? `: training loss ${train.outcome.finalTrainLoss.toFixed(4)}` : ''}
            {train.outcome.finalValLoss !== null ? `, validation loss ${train.outcome.finalValLoss.toFixed(4)}` : ''}, {nf.format(Math.round(train.outcome.tokensPerSecond))} tokens/s
            over {(train.outcome.ms / 1000).toFixed(1)} s. A checkpoint was saved{train.outcome.checkpoint ? ` at step ${train.outcome.checkpoint.step}` : ''}.
          </p>
          {train.outcome.quality?.sentence && (
            <p data-testid="train-recommendation">
              Recommended: {train.outcome.quality.sentence} <span className="help inline">(see Trade-off below)</span>
            </p>
          )}
        </div>
      )}
      {leadOn && (
        <p className="next-step">
          <a href={`#${stepAnchor('compare')}`}>Next: Compare ↓</a> <span className="help inline">the tuned model against the base one, on your prompt and the held-out examples.</span>
        </p>
      )}
      {train.phase === 'error' && train.error && <ErrorNotice title="Training stopped" error={train.error} />}

      <div className="chart-head">
        <h3>{hasDpo ? 'Loss (DPO)' : 'Loss'}</h3>
        <label className="check">
          <input type="checkbox" checked={logScale} onChange={(e) => setLogScale(e.target.checked)} /> Log scale
        </label>
      </div>
      {!hasSeries && <p className="help">The loss appears here step by step once training starts: it should fall. Hover the chart for values.</p>}
      <LossChart logScale={logScale} dpo={hasDpo} />
      {hasDpo && (
        <>
          {logpsFalling && (
            <p className="notice warn" role="status" data-testid="logps-warning">
              {logpsFalling}
            </p>
          )}
          <h3>DPO: rewards</h3>
          <p className="help">
            rewards/chosen and rewards/rejected are β × how much more likely the tuned model makes each reply than the reference; rewards/margins is their
            difference (it should grow), eval_ on the held-out pairs.
          </p>
          <DpoRewardsChart />
          <h3>DPO: preference accuracy</h3>
          <p className="help">rewards/accuracies: the share of pairs whose chosen reply gets the higher reward (50% = chance), on training and held-out pairs.</p>
          <DpoAccuracyChart />
          <h3>DPO: log-probabilities</h3>
          <p className="help">
            logps/chosen and logps/rejected: the tuned model&apos;s summed log-probability of each reply. Rejected should fall; chosen falling too means both are pushed down.
          </p>
          <DpoLogpsChart />
        </>
      )}
      {perplexity && (
        <>
          <h3>Held-out perplexity</h3>
          <p className="help" data-testid="perplexity-summary">
            {`Base model ${perplexity.base.toFixed(2)} → step ${perplexity.step}: ${perplexity.tuned.toFixed(2)}`} (per token of the held-out text; lower is better).
          </p>
          <PerplexityChart />
        </>
      )}
      <h3>General skill</h3>
      {hasProbe ? (
        <SkillChart />
      ) : (
        <p className="help" data-testid="skill-empty">
          How much general skill the model keeps (the forgetting probe: base-model texts whose loss should not rise) appears here at each evaluation when
          “Forgetting probe size” under When to stop is above 0.
        </p>
      )}
      <h3>Task: generated held-out answers</h3>
      {hasAnswers ? (
        <TaskChart />
      ) : (
        <p className="help" data-testid="task-empty">
          Exact match, token F1 and (for label answers) label accuracy of generated held-out answers appear here at each evaluation when “Held-out answers
          generated” under When to stop is above 0.
        </p>
      )}
      <EvalDetails />
      <h3>Learning rate and gradient norm</h3>
      <LrChart />
    </section>
  );
}
