// Trade-off: the selected run's checkpoints placed by how much general skill they cost (x: the forgetting
// probe's loss rise) against the run's criterion (y), the Pareto front joined, the recommended point
// highlighted, best and final labelled, and the recommendation's sentence. "Rewind to recommended" selects
// that checkpoint for Compare and Export; "Explore path" measures points between the base model and the
// run's checkpoints, each of which can be applied (stored as a checkpoint of a branch run) and selected.
// Other runs trained on the same data and judged by the same criterion can join the chart (a checkbox
// each): each its own colour and marker, the Pareto front then over every run's points, and a sentence
// saying whose points make it (LoRA against OFT, with and without replay).
// An SVG chart: every point is a focusable button; the table below lists the same points.
import { useId, useMemo, useState, type ReactNode } from 'react';
import { isTraining, type AppState } from '../store/store';
import { formatDuration } from '../store/time';
import {
  appliedBranch,
  byCriterion,
  chartY,
  comparableRuns,
  comparisonView,
  criterionAxis,
  criterionText,
  exploredFor,
  niceTicks,
  overlayStyle,
  pointText,
  runSeriesLabel,
  sameRecipe,
  tradeoffCheckpoints,
  tradeoffRunId,
  tradeoffView,
  type ChartPoint,
  type ComparisonView,
  type MarkerShape,
  type OverlayPoint,
  type OverlaySeries,
  type TradeoffView,
} from '../store/tradeoff';
import type { RunSummary } from '../protocol/messages';
import { formatSkillChange } from '../train/quality/decisions';
import { useNow } from './compare/hooks';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';
import './stop.css';

const W = 640;
const H = 300;
const M = { l: 64, r: 20, t: 18, b: 46 };

/** Path points already stored as a branch run (Apply), by point id: the run's name. */
type Stored = ReadonlyMap<string, string>;

function flags(p: ChartPoint, stored: Stored): string[] {
  const out: string[] = [];
  if (p.recommended) out.push('recommended');
  if (p.best) out.push('best');
  if (p.final) out.push('final');
  if (p.onFront) out.push('on the Pareto front');
  if (p.kind === 'path') out.push(stored.has(p.id) ? `path point, stored as run “${stored.get(p.id)}”` : 'path point, not stored yet');
  return out;
}

function describe(p: ChartPoint, v: TradeoffView, selected: boolean, stored: Stored): string {
  const f = flags(p, stored);
  if (selected) f.push('selected for Compare and Export');
  return `${pointText(p, v.criterion)}${f.length ? ` (${f.join(', ')})` : ''}`;
}

function scale(d0: number, d1: number, r0: number, r1: number): (x: number) => number {
  return (x) => (d1 === d0 ? (r0 + r1) / 2 : r0 + ((x - d0) / (d1 - d0)) * (r1 - r0));
}

/** Pads a domain by `f` of its width (a point domain gets ±1, or ±10% of its value). */
function pad([a, b]: [number, number], f = 0.08): [number, number] {
  if (a === b) {
    const d = Math.abs(a) * 0.1 || 1;
    return [a - d, b + d];
  }
  const d = (b - a) * f;
  return [a - d, b + d];
}

const tick = (v: number) => String(Number(v.toPrecision(3)));

/** An other run's marker centred on (x, y): its shape tells the runs apart without their colours. */
function Marker({ shape, x, y, className }: { shape: MarkerShape; x: number; y: number; className?: string }) {
  if (shape === 'square') return <rect x={x - 4.5} y={y - 4.5} width={9} height={9} className={className} />;
  const poly = (pts: [number, number][]) => <polygon points={pts.map(([dx, dy]) => `${x + dx},${y + dy}`).join(' ')} className={className} />;
  if (shape === 'triangle') return poly([[0, -6.5], [6, 4.5], [-6, 4.5]]);
  if (shape === 'triangle-down') return poly([[0, 6.5], [6, -4.5], [-6, -4.5]]);
  if (shape === 'cross') return poly([[-2, -6], [2, -6], [2, -2], [6, -2], [6, 2], [2, 2], [2, 6], [-2, 6], [-2, 2], [-6, 2], [-6, -2], [-2, -2]]);
  const star: [number, number][] = [];
  for (let i = 0; i < 10; i++) {
    const r = i % 2 ? 3 : 7;
    const a = (Math.PI / 5) * i - Math.PI / 2;
    star.push([r * Math.cos(a), r * Math.sin(a)]);
  }
  return poly(star);
}

/** A legend's sample of a series: the marker in its colour. */
function Swatch({ shape, colour }: { shape: MarkerShape | 'circle'; colour: string }) {
  return (
    <svg className="swatch" width={16} height={16} viewBox="0 0 16 16" aria-hidden="true" style={{ color: colour }}>
      {shape === 'circle' ? <circle cx={8} cy={8} r={5} className="dot" /> : <Marker shape={shape} x={8} y={8} className="dot" />}
    </svg>
  );
}

/** The other runs' points: the label a screen reader reads. */
/** A point of the chart the keyboard reaches: Tab focuses it, Enter or Space picks it (as a click does); its label is also its tooltip. */
function PointButton(props: { className: string; label: string; pressed: boolean; testId: string; pointId: string; runId?: string; onChoose(): void; children: ReactNode }) {
  const { className, label, pressed, testId, pointId, runId, onChoose, children } = props;
  return (
    <g
      className={className}
      role="button"
      tabIndex={0}
      aria-label={label}
      aria-pressed={pressed}
      data-testid={testId}
      data-run-id={runId}
      data-point-id={pointId}
      onClick={onChoose}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onChoose();
        }
      }}
    >
      <title>{label}</title>
      {children}
    </g>
  );
}

function overlayText(p: OverlayPoint, s: OverlaySeries, v: TradeoffView): string {
  return `${s.label}, ${pointText(p, v.criterion)}${p.onFront ? ' (on the Pareto front of the runs shown)' : ''}`;
}

function Chart({ v, selectedId, chosenId, onChoose, stored, others = [] }: { v: TradeoffView; selectedId: string | null; chosenId: string | null; onChoose(id: string): void; stored: Stored; others?: OverlaySeries[] }) {
  const pts = v.points.filter((p) => p.forgetPct !== null);
  const more = others.flatMap((s) => s.points);
  const xs = [...pts, ...more].map((p) => p.forgetPct!);
  const ys = [...pts, ...more].map((p) => chartY(v.criterion, p.task));
  const [x0, x1] = pad([Math.min(0, ...xs), Math.max(...xs)]);
  const [y0, y1] = pad([Math.min(...ys), Math.max(...ys)], 0.12);
  const sx = scale(x0, x1, M.l, W - M.r);
  const sy = scale(y0, y1, H - M.b, M.t);
  // With other runs shown, the front is the one over every run's points (onFront says so for all of them).
  const front = [...pts, ...more].filter((p) => p.onFront).sort((a, b) => a.forgetPct! - b.forgetPct! || chartY(v.criterion, a.task) - chartY(v.criterion, b.task));
  const at = (p: Pick<ChartPoint, 'forgetPct' | 'task'>) => ({ x: sx(p.forgetPct!), y: sy(chartY(v.criterion, p.task)) });
  // Drawn last: the points that matter (chosen, selected, recommended) stay on top.
  const order = [...pts].sort((a, b) => rank(a) - rank(b));
  function rank(p: ChartPoint): number {
    return (p.id === chosenId ? 4 : 0) + (p.id === selectedId ? 2 : 0) + (p.recommended ? 1 : 0);
  }
  return (
    <svg className="tradeoff-chart" viewBox={`0 0 ${W} ${H}`} role="group" aria-label={`Checkpoints by ${criterionAxis(v.criterion)} against probe loss change`} data-testid="tradeoff-chart">
      <g className="axes" aria-hidden="true">
        {niceTicks(x0, x1, 6).map((t) => (
          <g key={`x${t}`}>
            <line x1={sx(t)} x2={sx(t)} y1={M.t} y2={H - M.b} className={t === 0 ? 'zero' : 'grid'} />
            <text x={sx(t)} y={H - M.b + 16} textAnchor="middle">
              {tick(t)}
            </text>
          </g>
        ))}
        {niceTicks(y0, y1, 5).map((t) => (
          <g key={`y${t}`}>
            <line x1={M.l} x2={W - M.r} y1={sy(t)} y2={sy(t)} className="grid" />
            <text x={M.l - 6} y={sy(t) + 4} textAnchor="end">
              {tick(t)}
            </text>
          </g>
        ))}
        <line x1={M.l} x2={W - M.r} y1={H - M.b} y2={H - M.b} className="axis" />
        <line x1={M.l} x2={M.l} y1={M.t} y2={H - M.b} className="axis" />
        <text x={(M.l + W - M.r) / 2} y={H - 8} textAnchor="middle" className="title">
          probe loss change, % (right: more forgetting)
        </text>
        <text transform={`translate(14 ${(M.t + H - M.b) / 2}) rotate(-90)`} textAnchor="middle" className="title">
          {criterionAxis(v.criterion)}
        </text>
        {v.budgetPct > x0 && v.budgetPct < x1 && (
          <g className="budget">
            <line x1={sx(v.budgetPct)} x2={sx(v.budgetPct)} y1={M.t} y2={H - M.b} />
            <text x={sx(v.budgetPct) + 4} y={M.t + 10}>
              forgetting budget {v.budgetPct}%
            </text>
          </g>
        )}
        {front.length > 1 && <polyline className="front-line" points={front.map((p) => `${at(p).x},${at(p).y}`).join(' ')} />}
      </g>
      {/* The other runs' points first: the shown run's stay on top. */}
      {others.map((s) => (
        <g key={s.runId} className="series" style={{ color: s.colour }} data-run-id={s.runId}>
          {s.points.map((p) => {
            const { x, y } = at(p);
            const label = overlayText(p, s, v);
            const choose = () => onChoose(p.key);
            return (
              <PointButton
                key={p.key}
                className={`pt other${p.onFront ? ' front' : ''}${p.key === chosenId ? ' chosen' : ''}`}
                label={label}
                pressed={p.key === chosenId}
                testId="tradeoff-overlay-point"
                pointId={p.id}
                runId={s.runId}
                onChoose={choose}
              >
                <Marker shape={s.marker} x={x} y={y} className="dot" />
                <circle cx={x} cy={y} r={12} className="hit" />
              </PointButton>
            );
          })}
        </g>
      ))}
      {order.map((p) => {
        const { x, y } = at(p);
        const names = [p.best && 'best', p.final && 'final', p.recommended && 'recommended'].filter(Boolean).join(', ');
        const selected = p.id === selectedId;
        const label = describe(p, v, selected, stored);
        const choose = () => onChoose(p.id);
        return (
          <PointButton
            key={p.id}
            className={`pt ${p.kind}${p.onFront ? ' front' : ''}${p.recommended ? ' rec' : ''}${selected ? ' selected' : ''}${p.id === chosenId ? ' chosen' : ''}`}
            label={label}
            pressed={p.id === chosenId}
            testId="tradeoff-point"
            pointId={p.id}
            onChoose={choose}
          >
            {p.recommended && <circle cx={x} cy={y} r={11} className="halo" />}
            {selected && <rect x={x - 9} y={y - 9} width={18} height={18} className="sel" />}
            {p.kind === 'checkpoint' ? <circle cx={x} cy={y} r={5.5} className="dot" /> : <rect x={x - 5} y={y - 5} width={10} height={10} transform={`rotate(45 ${x} ${y})`} className="dot" />}
            {/* A larger invisible target for the pointer. */}
            <circle cx={x} cy={y} r={12} className="hit" />
            {names && (
              // Right of the point, or left of it near the right edge.
              <text x={x > W * 0.7 ? x - 10 : x + 10} y={y - 9} textAnchor={x > W * 0.7 ? 'end' : 'start'} className="pt-label">
                {names}
              </text>
            )}
          </PointButton>
        );
      })}
    </svg>
  );
}

/** The point under the chart the user picked: its figures and what can be done with it. */
function PointCard({ p, v, selected, busy, stored }: { p: ChartPoint; v: TradeoffView; selected: boolean; busy: boolean; stored: Stored }) {
  const actions = useActions();
  const applying = useAppState((s) => s.tradeoff.apply.phase === 'busy' && s.tradeoff.apply.pointId === p.id);
  const helpId = useId();
  return (
    <div className="point-card" data-testid="tradeoff-point-card" aria-live="polite">
      <p>
        <strong>{pointText(p, v.criterion)}</strong>
        {flags(p, stored).length ? ` — ${flags(p, stored).join(', ')}` : ''}
        {selected ? ' — selected for Compare and Export' : ''}
      </p>
      {p.kind === 'checkpoint' || stored.has(p.id) ? (
        <button type="button" className="secondary" disabled={selected} onClick={() => void actions.applyPoint(p.id)}>
          {p.kind === 'checkpoint' ? `Use step ${p.step} for Compare and Export` : 'Use it for Compare and Export'}
        </button>
      ) : (
        <>
          <button type="button" disabled={busy || applying || selected} onClick={() => void actions.applyPoint(p.id)} aria-describedby={helpId}>
            {applying ? 'Applying…' : 'Apply'}
          </button>
          <small id={helpId} className="help">
            Stores these weights as the checkpoint of a new branch run (the run itself stays as it is), then selects it for Compare and Export.
          </small>
        </>
      )}
    </div>
  );
}

function PointsTable({ v, selectedId, stored, busy }: { v: TradeoffView; selectedId: string | null; stored: Stored; busy: boolean }) {
  const actions = useActions();
  const rows = [...v.points].sort(byCriterion(v.criterion));
  return (
    <details className="tradeoff-table">
      <summary>All points as a table ({rows.length})</summary>
      <table data-testid="tradeoff-table">
        <thead>
          <tr>
            <th scope="col">Point</th>
            <th scope="col">{v.criterion === 'exact_match' ? 'Exact match' : 'Validation loss'}</th>
            <th scope="col">General skill</th>
            <th scope="col">Notes</th>
            <th scope="col">
              <span className="visually-hidden">Action</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((p) => (
            <tr key={p.id} className={p.recommended ? 'rec' : ''}>
              <th scope="row">{p.label}</th>
              <td>{criterionText(v.criterion, p.task).replace(/^(val loss|exact match) /, '')}</td>
              <td>{p.forgetPct !== null ? formatSkillChange(p.forgetPct) : '–'}</td>
              <td>{[...flags(p, stored), ...(p.id === selectedId ? ['selected'] : [])].join(', ')}</td>
              <td>
                <button
                  type="button"
                  className="link"
                  disabled={p.id === selectedId || (busy && p.kind === 'path' && !stored.has(p.id))}
                  onClick={() => void actions.applyPoint(p.id)}
                  aria-label={p.kind === 'path' && !stored.has(p.id) ? `Apply ${p.label}` : `Use ${p.label} for Compare and Export`}
                >
                  {p.kind === 'path' && !stored.has(p.id) ? 'Apply' : 'Use'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

/** A point of another run: its figures, and opening that run (its own chart, checkpoints and actions). */
function OverlayCard({ p, s, v }: { p: OverlayPoint; s: OverlaySeries; v: TradeoffView }) {
  const actions = useActions();
  return (
    <div className="point-card" data-testid="tradeoff-point-card" aria-live="polite">
      <p>
        <strong>
          {s.label}, {pointText(p, v.criterion)}
        </strong>
        {p.onFront ? ' — on the Pareto front of the runs shown' : ''}
      </p>
      <button type="button" className="secondary" onClick={() => void actions.openRun(s.runId)}>
        Open run {s.name}
      </button>
    </div>
  );
}

function overlayStatus(s: OverlaySeries | undefined): string {
  if (!s) return '';
  if (s.phase === 'error') return '';
  if (s.phase === 'busy' && !s.points.length) return 'reading its checkpoints…';
  if (!s.checkpointCount) return 'no checkpoint yet';
  const parts = [`${s.points.length} of ${s.checkpointCount} checkpoint${s.checkpointCount === 1 ? '' : 's'} placed`];
  if (s.unplaced) parts.push(`${s.unplaced} without the forgetting probe`);
  if (s.points.length) parts.push(s.onFront ? `${s.onFront} on the front` : 'none on the front');
  return parts.join(', ');
}

/** The runs trained on the same data that can share the chart: a checkbox each, with its colour and marker. */
function CompareRuns({ run, runs, candidates, cmp, criterion }: { run: RunSummary; runs: readonly RunSummary[]; candidates: RunSummary[]; cmp: ComparisonView | null; criterion: string }) {
  const actions = useActions();
  const ticked = useAppState((s) => s.tradeoff.overlay.runIds);
  const id = useId();
  return (
    <fieldset className="compare-runs" data-testid="tradeoff-compare">
      <legend>Compare with other runs on this data</legend>
      {candidates.length === 0 ? (
        <p className="help" data-testid="tradeoff-compare-empty">
          No other run was trained on {run.dataset?.name ? <strong>{run.dataset.name}</strong> : 'this dataset'} and judged by {criterion}. Train another one on it (for
          example an OFT adapter, under Advanced, or with a replay share, under When to stop) to place its checkpoints on this chart with these.
        </p>
      ) : (
        <>
          <p className="help">
            Each ticked run’s checkpoints join the chart with their own colour and marker; the Pareto front is then the one over every run’s points, so the
            method or recipe whose points make it is the one to prefer.
          </p>
          <ul className="compare-list">
            <li>
              <Swatch shape="circle" colour="var(--accent)" /> {runSeriesLabel(run, null, runs)} <span className="help inline">(the run shown)</span>
            </li>
            {candidates.map((r, i) => {
              const on = ticked.includes(r.id);
              const s = cmp?.series.find((x) => x.runId === r.id);
              const style = overlayStyle(i);
              return (
                <li key={r.id} data-testid="tradeoff-compare-run" data-run-id={r.id}>
                  <label className="check">
                    <input type="checkbox" checked={on} onChange={(e) => void actions.setOverlayRun(r.id, e.target.checked)} aria-describedby={`${id}-${i}`} />
                    <Swatch shape={style.marker} colour={style.colour} /> {runSeriesLabel(r, run, runs)}
                  </label>{' '}
                  <small id={`${id}-${i}`} className="help inline">
                    {on ? overlayStatus(s) : `${r.checkpointCount} checkpoint${r.checkpointCount === 1 ? '' : 's'}`}
                  </small>
                  {on && s?.phase === 'error' && s.error && <ErrorNotice title={`The checkpoints of ${r.name} could not be listed`} error={s.error} />}
                </li>
              );
            })}
          </ul>
        </>
      )}
      {cmp?.sentence && (
        <p className="notice ok" role="status" data-testid="tradeoff-compare-summary">
          {cmp.sentence}
        </p>
      )}
    </fieldset>
  );
}

function ExploreProgress() {
  const e = useAppState((s) => s.tradeoff.explore);
  const now = useNow(e.phase === 'busy');
  if (e.phase !== 'busy') return null;
  const p = e.progress;
  const elapsed = e.startedAt !== null ? Math.max(0, now - e.startedAt) : 0;
  return (
    <div className="progress" data-testid="explore-progress">
      <progress aria-label="Exploring the path" max={1} value={p ? p.fraction : undefined} />
      <span>
        {p
          ? `Measured ${p.label} · ${p.done}${p.total !== null ? ` of ${p.total}` : ''} points · ${Math.round(p.fraction * 100)}% · ${formatDuration(elapsed)} elapsed${p.etaMs !== null ? ` · about ${formatDuration(p.etaMs)} left` : ''}`
          : `Preparing (loading the checkpoints, reading the held-out data)… ${formatDuration(elapsed)} elapsed`}
      </span>
    </div>
  );
}

const SOURCE: Record<NonNullable<TradeoffView['source']>, string> = {
  explored: 'over the checkpoints and the explored path',
  run: 'the run’s decision when it ended',
  'so-far': 'over the checkpoints so far',
};

/** The selected checkpoint as a point id of the shown chart (a branch made by Apply is its path point). */
function selectedPointId(s: Pick<AppState, 'selection' | 'runs' | 'checkpoints'>, v: TradeoffView | null): string | null {
  if (!v || !s.selection.runId) return null;
  if (s.selection.runId === v.runId) {
    const step = s.selection.step ?? (s.checkpoints.runId === v.runId ? s.checkpoints.list.at(-1)?.step : undefined);
    return step !== undefined ? `step-${step}` : null;
  }
  const branch = s.runs.list.find((r) => r.id === s.selection.runId);
  if (!branch || branch.parentRunId !== v.runId) return null;
  return v.points.find((p) => p.kind === 'path' && sameRecipe(p.recipe, branch.recipe as never))?.id ?? null;
}

export function TradeoffPanel() {
  const id = useId();
  const actions = useActions();
  const selection = useAppState((s) => s.selection);
  const runs = useAppState((s) => s.runs);
  const checkpoints = useAppState((s) => s.checkpoints);
  const tradeoff = useAppState((s) => s.tradeoff);
  const training = useAppState(isTraining);
  const modelReady = useAppState((s) => s.model.phase === 'ready');
  const [chosen, setChosen] = useState<string | null>(null);
  const now = useMemo(() => ({ selection, runs, checkpoints, tradeoff }), [selection, runs, checkpoints, tradeoff]);
  const runId = tradeoffRunId(now);
  const run = runs.list.find((r) => r.id === runId) ?? null;
  const cps = tradeoffCheckpoints(now);
  const v = useMemo(() => (run ? tradeoffView(run, cps.list, exploredFor(now, run)) : null), [run, cps.list, now]);
  const selectedId = selectedPointId(now, v);
  const stored: Stored = useMemo(() => {
    const m = new Map<string, string>();
    for (const p of v?.points ?? []) {
      const b = p.kind === 'path' && v ? appliedBranch(runs.list, v.runId, p) : null;
      if (b) m.set(p.id, b.name);
    }
    return m;
  }, [v, runs.list]);
  const candidates = useMemo(() => (run ? comparableRuns(runs.list, run) : []), [run, runs.list]);
  const cmp = useMemo(() => (v && run && candidates.length ? comparisonView(v, run, runs.list, tradeoff.overlay) : null), [v, run, candidates, runs.list, tradeoff.overlay]);
  const others = cmp?.series ?? [];
  // With other runs on the chart, "on the Pareto front" is over every run's points.
  const shownV = useMemo(
    () => (v && cmp && others.some((s) => s.points.length) ? { ...v, points: v.points.map((p) => (p.forgetPct !== null ? { ...p, onFront: cmp.mainFront.has(p.id) } : p)) } : v),
    [v, cmp, others],
  );
  const chosenPoint = shownV?.points.find((p) => p.id === chosen) ?? null;
  const chosenOther = chosenPoint ? null : (others.flatMap((s) => s.points.map((p) => ({ p, s }))).find((x) => x.p.key === chosen) ?? null);
  const explore = tradeoff.explore;
  const apply = tradeoff.apply;
  const exploring = explore.phase === 'busy' && explore.runId === runId;
  const applying = apply.phase === 'busy';
  // Measuring a path swaps the worker's adapter: not while any run trains.
  const busyRun = !!run?.active || training;

  let body: React.ReactNode;
  if (!runId) body = <p className="help" data-testid="tradeoff-empty">Train a run or open one under Runs: its checkpoints appear here, each placed by how well it does the task against how much general skill it costs.</p>;
  else if (!run || !v) body = <p>Reading the run…</p>;
  else if (cps.phase === 'error' && cps.error) body = <ErrorNotice title="The checkpoints could not be listed" error={cps.error} />;
  else if (cps.phase === 'busy' && !cps.list.length) body = <p>Reading checkpoints…</p>;
  else if (v.checkpointCount === 0)
    body = (
      <p className="help" data-testid="tradeoff-empty">
        Run <strong>{run.name}</strong> has no checkpoint yet: train it until its first checkpoint (every “Checkpoint every” steps and at the end).
      </p>
    );
  else if (v.measuredCount === 0)
    body = (
      <p className="notice empty" data-testid="tradeoff-empty">
        None of the {v.checkpointCount} checkpoints of <strong>{run.name}</strong> has measurements yet. A checkpoint carries the measurements of an evaluation at its
        step: keep “Checkpoint every” a multiple of “Validate every” (under Advanced) and train until a checkpoint is saved at an evaluation.
      </p>
    );
  else
    body = (
      <>
        {v.hasProbe ? (
          <>
            <Chart v={shownV!} selectedId={selectedId} chosenId={chosen} onChoose={(pid) => setChosen(pid === chosen ? null : pid)} stored={stored} others={others} />
            <p className="legend help" aria-hidden="true">
              <span className="key ckpt">●</span> checkpoint <span className="key path">◆</span> path point (not stored until applied) <span className="key front">—</span> Pareto
              front (nothing else is better on both) <span className="key rec">◎</span> recommended <span className="key sel">□</span> selected for Compare and Export. Click or
              press Enter on a point for its figures and actions.{others.length ? ' Other runs: their markers below; filled ones are on the front.' : ''}
            </p>
            <CompareRuns run={run} runs={runs.list} candidates={candidates} cmp={cmp} criterion={v.criterion === 'exact_match' ? 'exact match' : 'validation loss'} />
            {chosenOther && <OverlayCard p={chosenOther.p} s={chosenOther.s} v={v} />}
          </>
        ) : (
          <p className="notice empty" data-testid="tradeoff-no-probe">
            Run <strong>{run.name}</strong> was trained without the forgetting probe, so its checkpoints cannot be placed by how much general skill they cost; the table
            lists them by {v.criterion === 'exact_match' ? 'exact match' : 'validation loss'}. Train with “Forgetting probe size” above 0 (When to stop) to see the trade-off.
          </p>
        )}
        {chosenPoint && <PointCard p={chosenPoint} v={shownV!} selected={chosenPoint.id === selectedId} busy={busyRun} stored={stored} />}
        <PointsTable v={shownV!} selectedId={selectedId} stored={stored} busy={busyRun} />
      </>
    );

  return (
    <section className="panel tradeoff" aria-labelledby={`${id}-h`} aria-busy={cps.phase === 'busy' || exploring}>
      <h2 id={`${id}-h`}>Trade-off</h2>
      {run && v && (
        <p className="help">
          Run <strong>{run.name}</strong>: {v.measuredCount} checkpoint{v.measuredCount === 1 ? '' : 's'} measured
          {v.explored ? `, ${v.points.filter((p) => p.kind === 'path').length} points of the path from the base model` : ''}. Up is{' '}
          {v.criterion === 'exact_match' ? 'more exact answers' : 'higher validation loss (worse)'}, right is more forgetting (the forgetting probe’s loss rising). Budget:{' '}
          {v.budgetPct}%.
        </p>
      )}
      {v?.sentence && (
        <p className="notice ok recommendation" data-testid="tradeoff-recommendation">
          <strong>Recommended</strong> ({v.source ? SOURCE[v.source] : ''}): {v.sentence}
        </p>
      )}
      {v && (
        <div className="row controls" role="group" aria-label="Trade-off actions">
          {/* Loud only as a real suggestion (the recommended point is not the one selected); else Compare leads. */}
          <button
            type="button"
            className={v.recommended && v.recommended.id !== selectedId ? undefined : 'secondary'}
            onClick={() => void actions.rewindToRecommended()}
            disabled={!v.recommended || applying || (v.recommended.kind === 'path' && !stored.has(v.recommended.id) && busyRun)}
            aria-describedby={`${id}-rewind`}
          >
            Rewind to recommended
          </button>
          <button type="button" className="secondary" onClick={() => void actions.explorePath()} disabled={exploring || explore.phase === 'busy' || busyRun || !modelReady || v.measuredCount === 0} aria-describedby={`${id}-explore`}>
            {v.explored ? 'Explore path again' : 'Explore path'}
          </button>
          <button type="button" className="secondary danger" onClick={() => void actions.cancelExplore()} disabled={!exploring}>
            Cancel
          </button>
          <small id={`${id}-rewind`} className="help inline">
            Rewind selects the recommended checkpoint for Compare and Export{v.recommended?.kind === 'path' ? ' (stored first as a branch, since it is a path point)' : ''}.
          </small>
          <small id={`${id}-explore`} className="help inline">
            {busyRun
              ? 'The path can be explored, and its points applied, once training stops.'
              : 'Explore measures the update scaled down and half of the layers rewound, between the base model and the final and best checkpoints.'}
          </small>
        </div>
      )}
      {exploring && <ExploreProgress />}
      {explore.cancelled && explore.runId === runId && (
        <p className="help" data-testid="explore-cancelled">
          {explore.cancelled}
        </p>
      )}
      {explore.phase === 'error' && explore.error && explore.runId === runId && <ErrorNotice title="The path could not be explored" error={explore.error} />}
      {apply.phase === 'error' && apply.error && <ErrorNotice title="That did not work" error={apply.error} />}
      {apply.phase === 'ready' && apply.made && selection.runId === apply.made.runId && (
        <p className="notice ok" role="status" data-testid="apply-made">
          Stored as run <strong>{apply.made.runName}</strong>, step {apply.made.step}, and selected for Compare and Export.
        </p>
      )}
      {body}
    </section>
  );
}
