// The training charts (uPlot on a canvas). They read the live series with the store's transient
// `subscribe` and redraw at most once per animation frame: React renders them once, not per step.
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { extraColumn, type Series } from '../store/series';
import type { AppState } from '../store/store';
import { useStoreApi } from './context';

interface ChartSpec {
  title: string;
  height: number;
  logScale: boolean;
  series: { label: string; color: string; width?: number; dash?: number[]; points?: boolean; scale?: string; fmt?: (v: number) => string }[];
  columns(s: Series): (number | null)[][];
  scales?: string[];
  /** The y axis's title (first scale). */
  yLabel?: string;
  /** The y range (first scale): fixed, e.g. [0, 100] for percentages, or from the data's min and max. */
  yRange?: [number, number] | ((min: number, max: number) => [number, number]);
}

function cssColor(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

const fmtLoss = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));

function useUplot(spec: ChartSpec, select: (s: AppState) => Series) {
  const store = useStoreApi();
  const box = useRef<HTMLDivElement>(null);
  const [dark, setDark] = useState(() => typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches);

  useEffect(() => {
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const on = () => setDark(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);

  useEffect(() => {
    const el = box.current!;
    const fg = cssColor(el, '--muted', '#666');
    const grid = cssColor(el, '--border', '#ddd');
    const axis = (scale: string, side = 3): uPlot.Axis => ({
      scale,
      side,
      ...(side === 3 && spec.yLabel ? { label: spec.yLabel, labelSize: 18 } : {}),
      stroke: fg,
      grid: { stroke: grid, width: 1, show: side === 3 },
      ticks: { stroke: grid, width: 1 },
      size: 56,
      values: (_u, vals) => vals.map((v) => (v === null ? '' : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(0) : String(+v.toPrecision(3)))),
    });
    const scaleNames = spec.scales ?? ['y'];
    const scales: uPlot.Scales = { x: { time: false } };
    for (const n of scaleNames) scales[n] = spec.logScale ? { distr: 3, log: 10 } : {};
    const yRange = spec.yRange;
    if (yRange) scales[scaleNames[0]!] = { range: typeof yRange === 'function' ? (_u, min, max) => yRange(min, max) : yRange };
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: spec.height,
      scales,
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, label: 'step', labelSize: 18, values: (_u, vals) => vals.map((v) => String(v)) },
        ...scaleNames.map((n, i) => axis(n, i === 0 ? 3 : 1)),
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      series: [
        { label: 'step', value: (_u, v) => (v === null || v === undefined ? '–' : String(v)) },
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          dash: s.dash,
          scale: s.scale ?? 'y',
          spanGaps: true,
          points: { show: s.points ?? false, size: 6, fill: s.color },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : (s.fmt ?? fmtLoss)(v)),
        })),
      ],
    };
    const toData = (series: Series): uPlot.AlignedData => {
      const cols = spec.columns(series);
      // Log scale: non-positive values cannot be drawn.
      const safe = spec.logScale ? cols.map((c) => c.map((v) => (v !== null && v > 0 ? v : null))) : cols;
      return [series.step, ...safe] as uPlot.AlignedData;
    };
    const u = new uPlot(opts, toData(select(store.getState())), el);
    let frame = 0;
    const unsubscribe = store.subscribe((s, prev) => {
      if (s.live === prev.live) return;
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        u.setData(toData(select(store.getState())));
      });
    });
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: spec.height });
    });
    ro.observe(el);
    return () => {
      unsubscribe();
      ro.disconnect();
      if (frame) cancelAnimationFrame(frame);
      u.destroy();
    };
    // Rebuilt when the log scale, the title (e.g. the loss chart of a DPO run) or the colour scheme changes; new data comes through `subscribe`.
  }, [spec.logScale, spec.title, dark]);
  return box;
}

/** The run's loss: next-token loss (SFT) or DPO's loss (a DPO run's loss is the DPO loss, held-out pairs' as validation). */
const lossSpec = (logScale: boolean, dark: boolean, dpo = false): ChartSpec => ({
  title: dpo ? 'DPO loss' : 'Loss',
  height: 260,
  logScale,
  series: [
    { label: dpo ? 'DPO loss' : 'train loss', color: dark ? 'rgba(122,162,255,0.45)' : 'rgba(36,88,201,0.35)', width: 1 },
    { label: 'smoothed', color: dark ? '#7aa2ff' : '#2458c9', width: 2 },
    { label: dpo ? 'eval DPO loss' : 'validation loss', color: dark ? '#ffb454' : '#c05a00', width: 2, points: true },
  ],
  columns: (s) => [s.loss, s.smooth, s.val],
});

// DPO's statistics, named as TRL logs them (src/train/dpo-stats.ts): thin lines per step, points per evaluation.
const step = (s: Series, name: string) => extraColumn(s, 'stepExtra', name);
const evaluated = (s: Series, name: string) => extraColumn(s, 'evalExtra', name);
const fmt3 = (v: number) => v.toPrecision(3);

const dpoRewardsSpec = (dark: boolean): ChartSpec => ({
  title: 'DPO rewards',
  height: 170,
  logScale: false,
  yLabel: 'reward',
  series: [
    { label: 'rewards/chosen', color: dark ? '#8fd18f' : '#2e7d32', width: 1, fmt: fmt3 },
    { label: 'rewards/rejected', color: dark ? '#ff8a80' : '#c62828', width: 1, fmt: fmt3 },
    { label: 'rewards/margins', color: dark ? '#7aa2ff' : '#2458c9', width: 2, fmt: fmt3 },
    { label: 'eval_rewards/margins', color: dark ? '#ffb454' : '#c05a00', width: 2, points: true, fmt: fmt3 },
  ],
  columns: (s) => [step(s, 'rewards/chosen'), step(s, 'rewards/rejected'), step(s, 'rewards/margins'), evaluated(s, 'eval_rewards/margins')],
});

const dpoAccuracySpec = (dark: boolean): ChartSpec => ({
  title: 'DPO preference accuracy',
  height: 150,
  logScale: false,
  yLabel: 'accuracy, %',
  yRange: [0, 100],
  series: [
    { label: 'rewards/accuracies', color: dark ? '#7aa2ff' : '#2458c9', width: 1.5, fmt: pct },
    { label: 'eval_rewards/accuracies', color: dark ? '#ffb454' : '#c05a00', width: 2, points: true, fmt: pct },
  ],
  columns: (s) => [step(s, 'rewards/accuracies'), evaluated(s, 'eval_rewards/accuracies')].map((c) => c.map((v) => (v === null ? null : v * 100))),
});

const dpoLogpsSpec = (dark: boolean): ChartSpec => ({
  title: 'DPO log-probabilities',
  height: 170,
  logScale: false,
  yLabel: 'log-probability',
  series: [
    { label: 'logps/chosen', color: dark ? '#8fd18f' : '#2e7d32', width: 1.5, fmt: fmt3 },
    { label: 'logps/rejected', color: dark ? '#ff8a80' : '#c62828', width: 1.5, fmt: fmt3 },
    { label: 'eval_logps/chosen', color: dark ? '#8fd18f' : '#2e7d32', width: 2, points: true, dash: [4, 3], fmt: fmt3 },
    { label: 'eval_logps/rejected', color: dark ? '#ff8a80' : '#c62828', width: 2, points: true, dash: [4, 3], fmt: fmt3 },
  ],
  columns: (s) => [step(s, 'logps/chosen'), step(s, 'logps/rejected'), evaluated(s, 'eval_logps/chosen'), evaluated(s, 'eval_logps/rejected')],
});

const lrSpec = (dark: boolean): ChartSpec => ({
  title: 'Learning rate and gradient norm',
  height: 130,
  logScale: false,
  scales: ['lr', 'grad'],
  series: [
    { label: 'learning rate', color: dark ? '#8fd18f' : '#2e7d32', scale: 'lr', fmt: (v) => v.toExponential(2) },
    { label: 'grad norm', color: dark ? '#e09ae0' : '#8e24aa', scale: 'grad', width: 1, fmt: (v) => v.toPrecision(3) },
  ],
  columns: (s) => [s.lr, s.grad],
});

/** General skill = the negative of the forgetting probe's loss rise (decisions.ts formatSkillChange's sign): 0 = as the base model, below 0 = forgetting. */
const pct = (v: number) => `${v.toFixed(1)}%`;

const skillSpec = (dark: boolean): ChartSpec => ({
  title: 'General skill',
  height: 150,
  logScale: false,
  yLabel: 'skill change, %',
  // Always with 0 (the base model's skill) in view, so a small change does not fill the chart.
  yRange: (min, max) => {
    const lo = Math.min(0, Number.isFinite(min) ? min : 0);
    const hi = Math.max(0, Number.isFinite(max) ? max : 0);
    const pad = Math.max(0.5, (hi - lo) * 0.15);
    return [lo - pad, hi + pad];
  },
  series: [{ label: 'general skill change (−probe loss rise)', color: dark ? '#8fd18f' : '#2e7d32', width: 2, points: true, fmt: (v) => `${v > 0 ? '+' : ''}${v.toFixed(2)}%` }],
  columns: (s) => [s.probe.map((v) => (v === null ? null : -v))],
});


const taskSpec = (dark: boolean): ChartSpec => ({
  title: 'Task',
  height: 150,
  logScale: false,
  yLabel: 'score, %',
  yRange: [0, 100],
  series: [
    { label: 'exact match', color: dark ? '#ffb454' : '#c05a00', width: 2, points: true, fmt: pct },
    { label: 'token F1', color: dark ? '#7aa2ff' : '#2458c9', width: 1.5, points: true, fmt: pct },
    { label: 'label accuracy', color: dark ? '#e09ae0' : '#8e24aa', width: 1.5, points: true, dash: [4, 3], fmt: pct },
  ],
  columns: (s) => [s.exact, s.f1, s.label].map((c) => c.map((v) => (v === null ? null : v * 100))),
});

// Plain text: the held-out perplexity (exp of the validation loss, per token of the held-out windows) against the base model's, measured once.
const perplexitySpec = (dark: boolean): ChartSpec => ({
  title: 'Held-out perplexity',
  height: 150,
  logScale: true,
  yLabel: 'perplexity',
  series: [
    { label: 'tuned (held-out perplexity)', color: dark ? '#ffb454' : '#c05a00', width: 2, points: true, fmt: (v) => v.toFixed(2) },
    { label: 'base model', color: dark ? '#aaaaaa' : '#666666', width: 1.5, points: true, dash: [4, 3], fmt: (v) => v.toFixed(2) },
  ],
  columns: (s) => [s.val.map((v) => (v === null ? null : Math.exp(v))), evaluated(s, 'ppl_base')],
});

const prefersDark = () => typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;

export function LossChart({ logScale, dpo = false }: { logScale: boolean; dpo?: boolean }) {
  const box = useUplot(lossSpec(logScale, prefersDark(), dpo), (s) => s.live.series);
  return <div ref={box} className="chart" role="img" aria-label={`${dpo ? 'DPO loss on training and held-out pairs' : 'Training and validation loss'} over steps${logScale ? ' (log scale)' : ''}`} data-testid="loss-chart" />;
}

/** DPO's rewards over steps: rewards/chosen, rewards/rejected, rewards/margins and the held-out eval_rewards/margins. */
export function DpoRewardsChart() {
  const box = useUplot(dpoRewardsSpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="DPO rewards over steps: rewards/chosen, rewards/rejected, rewards/margins and eval_rewards/margins" data-testid="dpo-rewards-chart" />;
}

/** The share of pairs whose chosen reply gets the higher reward: rewards/accuracies and eval_rewards/accuracies, in percent. */
export function DpoAccuracyChart() {
  const box = useUplot(dpoAccuracySpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="DPO preference accuracy in percent over steps: rewards/accuracies and eval_rewards/accuracies" data-testid="dpo-accuracy-chart" />;
}

/** The tuned model's summed log-probabilities of the chosen and rejected replies (training and held-out pairs). */
export function DpoLogpsChart() {
  const box = useUplot(dpoLogpsSpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="Log-probabilities of the chosen and rejected replies over steps: logps/chosen, logps/rejected and their eval_ values" data-testid="dpo-logps-chart" />;
}

export function LrChart() {
  const box = useUplot(lrSpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="Learning rate and gradient norm over steps" data-testid="lr-chart" />;
}

/** The forgetting probe over steps (same step axis as the loss). */
export function SkillChart() {
  const box = useUplot(skillSpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="General skill change in percent over steps: the negative of the forgetting probe's loss rise" data-testid="skill-chart" />;
}

/** Plain text: the held-out perplexity at each evaluation, with the base model's (measured once, before training) beside it. */
export function PerplexityChart() {
  const box = useUplot(perplexitySpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="Held-out perplexity over steps, tuned and base model (log scale)" data-testid="perplexity-chart" />;
}

/** Generated held-out answers over steps: exact match, token F1, label accuracy (when the answers are labels). */
export function TaskChart() {
  const box = useUplot(taskSpec(prefersDark()), (s) => s.live.series);
  return <div ref={box} className="chart small" role="img" aria-label="Exact match, token F1 and label accuracy of generated held-out answers in percent over steps" data-testid="task-chart" />;
}
