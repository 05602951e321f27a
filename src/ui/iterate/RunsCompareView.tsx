// Runs compared side by side (the runs ticked in the Runs panel): their losses overlaid on one chart (by
// step or by training tokens seen), every setting that differs and their final and best figures in one
// table, and the held-out examples with each run's output in a column. Logic: src/store/runs-compare.ts.
import { useEffect, useId, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RunSummary } from '../../protocol/messages';
import {
  bestOf,
  curveOffset,
  exampleRows,
  overlayColumns,
  runCurves,
  runFigures,
  runSettings,
  settingsTable,
  type ComparedRun,
  type CompareAxis,
  type RunCurves,
} from '../../store/runs-compare';
import { DiffText } from '../compare/DiffText';
import { useActions, useAppState } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import './iterate.css';

/** One colour per compared run (training loss solid, validation loss dashed with points). */
const COLORS = ['#2458c9', '#c05a00', '#2e7d32', '#8e24aa', '#c62828', '#00838f'];
const colorOf = (i: number) => COLORS[i % COLORS.length]!;

/** "#1 name" labels: runs are often named after the same dataset. */
function runLabel(i: number, r: RunSummary | undefined): string {
  return `#${i + 1} ${r?.name ?? 'deleted run'}`;
}

function OverlayChart({ runs, labels, axis }: { runs: { runId: string; curves: RunCurves; offset: { step: number; tokens: number } }[]; labels: string[]; axis: CompareAxis }) {
  const box = useRef<HTMLDivElement>(null);
  const data = useMemo(() => overlayColumns(runs.map((r, i) => ({ ...r, label: labels[i]! })), axis), [runs, labels, axis]);
  useEffect(() => {
    const el = box.current!;
    const fg = getComputedStyle(el).getPropertyValue('--muted').trim() || '#666';
    const grid = getComputedStyle(el).getPropertyValue('--border').trim() || '#ddd';
    const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toPrecision(4));
    const opts: uPlot.Options = {
      width: Math.max(240, el.clientWidth),
      height: 280,
      scales: { x: { time: false } },
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, label: axis === 'step' ? 'step' : 'training tokens seen', labelSize: 18 },
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, label: 'loss', labelSize: 18, size: 56 },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: axis === 'step' ? 'step' : 'tokens', value: (_u, v) => (v === null || v === undefined ? '–' : String(v)) },
        ...data.series.map((s) => {
          const i = runs.findIndex((r) => r.runId === s.runId);
          const c = colorOf(i);
          return {
            label: s.label,
            stroke: c,
            width: s.kind === 'train' ? 1.5 : 2,
            dash: s.kind === 'val' ? [5, 4] : undefined,
            spanGaps: true,
            points: { show: s.kind === 'val', size: 6, fill: c },
            value: (_u: uPlot, v: number | null) => fmt(v),
          };
        }),
      ],
    };
    const u = new uPlot(opts, [data.x, ...data.series.map((s) => s.values)] as uPlot.AlignedData, el);
    const ro = new ResizeObserver(() => {
      const w = Math.max(240, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: 280 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [data, axis, runs]);
  const described = data.series.filter((s) => s.values.some((v) => v !== null)).length;
  return (
    <figure className="runs-overlay" data-testid="runs-overlay" data-series={described}>
      <div ref={box} role="img" aria-label={`Training and validation loss of ${runs.length} runs by ${axis === 'step' ? 'step' : 'training tokens seen'}: ${described} curves`} />
      <figcaption className="help">Solid: training loss (smoothed); dashed with points: validation loss. A run continued from another starts where its parent&rsquo;s checkpoint was.</figcaption>
    </figure>
  );
}

const f4 = (v: number | null) => (v === null ? '–' : v.toFixed(4));
const pct = (v: number | null) => (v === null ? '–' : `${Math.round(v * 100)}%`);

function FiguresRows({ compared }: { compared: ComparedRun[] }) {
  const figs = compared.map((c) => runFigures(c.metrics.points, c.heldout.result));
  const row = (name: string, values: (number | null)[], show: (v: number | null) => string, lower: boolean | null, note?: (i: number) => string) => {
    const best = lower === null ? null : bestOf(values, lower);
    return (
      <tr key={name} className="figure-row">
        <th scope="row">{name}</th>
        {values.map((v, i) => (
          <td key={i} className={`num${best === i ? ' best' : ''}`} data-testid="figure-cell">
            {show(v)}
            {note && v !== null ? <small> {note(i)}</small> : null}
            {best === i ? <span className="visually-hidden"> (best)</span> : null}
          </td>
        ))}
      </tr>
    );
  };
  return (
    <>
      {row('final step', figs.map((f) => f.finalStep), (v) => (v === null ? '–' : String(v)), null)}
      {row('training tokens seen', figs.map((f) => f.tokensSeen), (v) => (v === null ? '–' : v.toLocaleString('en-US')), null)}
      {row('final training loss', figs.map((f) => f.finalTrainLoss), f4, true)}
      {row('final validation loss', figs.map((f) => f.finalValLoss), f4, true)}
      {row('best validation loss', figs.map((f) => f.bestValLoss), f4, true, (i) => `at step ${figs[i]!.bestValStep}`)}
      {figs.some((f) => f.bestExact !== null) ? row('best exact match (evaluations)', figs.map((f) => f.bestExact), pct, false) : null}
      {row('held-out exact match', figs.map((f) => f.heldout?.exact ?? null), pct, false, (i) => `step ${figs[i]!.heldout!.step}`)}
      {row('held-out token overlap', figs.map((f) => f.heldout?.overlap ?? null), (v) => (v === null ? '–' : v.toFixed(2)), false)}
      {row('held-out loss', figs.map((f) => f.heldout?.loss ?? null), f4, true)}
    </>
  );
}

function SettingsTable({ compared, summaries, labels, all }: { compared: ComparedRun[]; summaries: (RunSummary | undefined)[]; labels: string[]; all: boolean }) {
  const list = useAppState((s) => s.runs.list);
  const actions = useActions();
  const rows = useMemo(() => settingsTable(summaries.map((r) => (r ? runSettings(r, list) : {})), all), [summaries, list, all]);
  const id = useId();
  return (
    <section aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>Settings and figures</h3>
      <label className="row">
        <input type="checkbox" checked={all} onChange={(e) => actions.showAllSettings(e.target.checked)} /> Show the settings they share too
      </label>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Settings and figures of the compared runs (scrollable)">
        <table className="runs-settings" data-testid="runs-settings">
          <caption className="visually-hidden">Every setting that differs between the compared runs (highlighted), then their final and best figures; the best figure of each row is marked</caption>
          <thead>
            <tr>
              <th scope="col">Setting</th>
              {labels.map((l, i) => (
                <th key={compared[i]!.runId} scope="col">
                  <span className="run-swatch" style={{ background: colorOf(i) }} aria-hidden="true" />
                  {l}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 && (
              <tr>
                <td colSpan={labels.length + 1} className="help">
                  The runs have the same settings.
                </td>
              </tr>
            )}
            {rows.map((r) => (
              <tr key={r.name} className={r.differs ? 'differs' : 'same'} data-testid="setting-row" data-setting={r.name}>
                <th scope="row">
                  {r.name}
                  {r.differs ? <span className="visually-hidden"> (differs)</span> : null}
                </th>
                {r.values.map((v, i) => (
                  <td key={i}>{v}</td>
                ))}
              </tr>
            ))}
            <FiguresRows compared={compared} />
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Examples({ compared, labels }: { compared: ComparedRun[]; labels: string[] }) {
  const rows = useMemo(() => exampleRows(compared.map((c) => c.heldout.result)), [compared]);
  const id = useId();
  const busy = compared.filter((c) => c.heldout.phase === 'busy').length;
  const waiting = compared.filter((c) => c.heldout.phase === 'idle').length;
  return (
    <section aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>Held-out examples</h3>
      {busy + waiting > 0 && (
        <p className="help" role="status" data-testid="runs-heldout-busy">
          Making the held-out outputs: {compared.length - busy - waiting} of {compared.length} runs done…
        </p>
      )}
      {compared.map((c, i) =>
        c.heldout.error ? <ErrorNotice key={c.runId} title={`The held-out outputs of ${labels[i]} could not be made`} error={c.heldout.error} /> : null,
      )}
      {rows.length > 0 && (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Held-out outputs of the compared runs (scrollable)">
          <table className="runs-examples" data-testid="runs-examples">
            <caption className="visually-hidden">Each held-out example with every run&rsquo;s output; rows where the outputs differ are marked, and each output shows its difference from the expected one</caption>
            <thead>
              <tr>
                <th scope="col">Prompt</th>
                <th scope="col">Expected</th>
                {labels.map((l, i) => (
                  <th key={compared[i]!.runId} scope="col">
                    <span className="run-swatch" style={{ background: colorOf(i) }} aria-hidden="true" />
                    {l}
                    {compared[i]!.heldout.result ? <small> step {compared[i]!.heldout.result!.step}</small> : null}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.prompt} className={r.differ ? 'differs' : 'same'} data-testid="example-row" data-differs={r.differ}>
                  <td className="text">
                    {r.prompt}
                    {r.differ ? <span className="badge differ-badge">outputs differ</span> : null}
                  </td>
                  <td className="text">
                    {r.expected}
                    {r.expectedDiffers ? (
                      <small className="fixed-note" data-testid="expected-fixed">
                        {' '}
                        (fixed between runs: {r.cells.map((c) => (c ? `“${c.expected}”` : '–')).join(' → ')})
                      </small>
                    ) : null}
                  </td>
                  {r.cells.map((c, i) => (
                    <td key={i} className={`text ${c?.exact ? 'match' : 'mismatch'}`} data-testid="example-output">
                      {c ? (
                        <>
                          <DiffText actual={c.output} expected={c.expected} exact={c.exact} />
                          <small className="cell-meta">
                            {c.exact ? ' exact' : ''} · loss {c.loss === null ? '–' : c.loss.toFixed(3)}
                          </small>
                        </>
                      ) : compared[i]!.heldout.result ? (
                        <span className="help">not in this run&rsquo;s held-out set</span>
                      ) : (
                        <span className="help">{compared[i]!.heldout.phase === 'error' ? 'no outputs (see above)' : 'not made yet'}</span>
                      )}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {rows.length > 0 && (
        <p className="help diff-legend">
          Each output against its run&rsquo;s expected output: <ins>inserted words</ins> are not expected, <del>struck words</del> are expected but missing. Rows where the runs&rsquo;
          outputs differ are marked &ldquo;outputs differ&rdquo;.
        </p>
      )}
    </section>
  );
}

export function RunsComparePanel() {
  const view = useAppState((s) => s.runsCompare.view);
  const list = useAppState((s) => s.runs.list);
  const actions = useActions();
  const id = useId();
  const compared = view?.runs ?? [];
  const summaries = useMemo(() => compared.map((c) => list.find((r) => r.id === c.runId)), [compared, list]);
  const labels = useMemo(() => summaries.map((r, i) => runLabel(i, r)), [summaries]);
  const curves = useMemo(() => {
    const byRun = new Map(compared.map((c) => [c.runId, runCurves(c.metrics.points)] as const));
    return compared.map((c, i) => ({ runId: c.runId, curves: byRun.get(c.runId)!, offset: curveOffset(summaries[i] ?? { job: null }, byRun) }));
  }, [compared, summaries]);
  const panel = useRef<HTMLElement>(null);
  const shown = !!view;
  useEffect(() => {
    if (shown) panel.current?.scrollIntoView({ block: 'start' });
  }, [shown]);
  if (!view) return null;
  const loading = compared.some((c) => c.metrics.phase === 'busy');
  return (
    // Named "Side-by-side comparison", not after its heading: the e2e page objects find the Runs panel as the region named "Runs".
    <section ref={panel} className="panel runs-compare" aria-label={`Side-by-side comparison of ${compared.length}`} aria-busy={loading} data-testid="runs-compare">
      <div className="row">
        <h2>Runs compared ({compared.length})</h2>
        <button type="button" className="secondary" onClick={() => actions.closeRunsCompare()}>
          Close
        </button>
      </div>
      <ul className="compared-runs">
        {compared.map((c, i) => (
          <li key={c.runId}>
            <span className="run-swatch" style={{ background: colorOf(i) }} aria-hidden="true" />
            <strong>{labels[i]}</strong>
            {c.steps.length > 0 && (
              <label>
                {' '}
                outputs at checkpoint{' '}
                <select
                  value={c.step ?? ''}
                  aria-label={`Checkpoint of ${labels[i]} for the held-out outputs`}
                  onChange={(e) => void actions.setComparedStep(c.runId, Number(e.target.value))}
                  disabled={c.heldout.phase === 'busy'}
                >
                  {c.steps.map((s) => (
                    <option key={s} value={s}>
                      step {s}
                    </option>
                  ))}
                </select>
              </label>
            )}
            {c.metrics.error ? <ErrorNotice title={`The metrics of ${labels[i]} could not be read`} error={c.metrics.error} /> : null}
          </li>
        ))}
      </ul>
      <section aria-label="Losses overlaid">
        <div className="row" role="radiogroup" aria-label="Curves by">
          <strong>Curves by</strong>
          {(['step', 'tokens'] as const).map((a) => (
            <label key={a}>
              <input type="radio" name={`${id}-axis`} checked={view.axis === a} onChange={() => actions.setCompareAxis(a)} /> {a === 'step' ? 'step' : 'training tokens seen'}
            </label>
          ))}
        </div>
        {loading ? <p className="help">Reading the runs&rsquo; metrics…</p> : <OverlayChart runs={curves} labels={labels} axis={view.axis} />}
      </section>
      <SettingsTable compared={compared} summaries={summaries} labels={labels} all={view.allSettings} />
      <Examples compared={compared} labels={labels} />
    </section>
  );
}
