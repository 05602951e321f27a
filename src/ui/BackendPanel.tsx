import { useId } from 'react';
import type { BackendName, BackendPreference, BackendStatus, BackendTiming } from '../protocol/messages';
import { backendLabel, formatRate } from '../model/backend-timing';
import { isTraining, type BackendTimingSlice } from '../store/store';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';

const choices: Array<{ value: BackendPreference; label: string }> = [
  { value: 'auto', label: 'Auto (fastest that works)' },
  { value: 'webgpu', label: 'WebGPU' },
  { value: 'wasm', label: 'WASM' },
  { value: 'cpu', label: 'CPU (plain JavaScript)' },
];

/** "WebGPU", "WASM with 2 threads, SIMD", "WASM, single-threaded", "CPU". */
export function describeBackend(s: BackendStatus): string {
  switch (s.name) {
    case 'webgpu':
      return 'WebGPU';
    case 'wasm': {
      const threads = s.threads && s.threads > 1 ? `with ${s.threads} threads` : 'single-threaded';
      return `WASM ${threads}${s.simd ? ', SIMD' : ', no SIMD'}`;
    }
    case 'cpu':
      return 'CPU (plain JavaScript)';
  }
}

/** "812 tokens/s", "< 3.2 tokens/s" (stopped: slower than that), "—" (no figure): the figure of one row. */
function rateText(r: BackendTiming): string {
  if (r.status === 'measured' && r.tokensPerS !== null) return `${formatRate(r.tokensPerS)} tokens/s`;
  if (r.status === 'stopped' && r.slowerThan !== null) return `< ${formatRate(r.slowerThan)} tokens/s`;
  return '—'; // not timed, stopped while warming up, or failed: the row's details say which
}

/** What a row's figure rests on ("3 timed steps of 64 tokens, 210 ms each; warm-up step 0.4 s"), or its note when it has no figure. */
function details(r: BackendTiming): string {
  const warm = r.warmupMs !== null ? `; warm-up step ${(r.warmupMs / 1000).toFixed(1)} s` : '';
  if (r.status !== 'measured' || r.steps === 0) return `${r.note}${warm}`;
  return `${r.steps} timed step${r.steps === 1 ? '' : 's'} of ${r.tokens / r.steps} tokens, ${Math.round(r.ms / r.steps)} ms each${warm}`;
}

/** "14:03" today, else "3 Dec, 14:03". */
function when(ms: number): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })}, ${time}`;
}

/** The measured training speed of the loaded model on each backend, which was picked, "Measure again". */
function BackendTimings({ timing, inUse, canMeasure }: { timing: BackendTimingSlice; inUse: BackendName | null; canMeasure: boolean }) {
  const actions = useActions();
  const report = timing.report;
  const busy = timing.phase === 'busy';
  const softwareSkipped = report?.rows.some((r) => r.backend === 'webgpu' && r.status === 'skipped' && r.note.startsWith('skipped: software adapter')) ?? false;
  const progress = timing.progress;
  return (
    <div className="backend-timing" data-testid="backend-timing">
      <h4>Measured training speed on this model</h4>
      {busy && (
        <p role="status" aria-live="polite" data-testid="backend-timing-progress">
          Measuring backends…{progress?.measuring ? ` ${backendLabel(progress.measuring)} (${progress.done + 1} of ${progress.total})` : ''}{' '}
          <progress max={progress?.total ?? 1} value={progress?.done ?? 0} aria-label="Backends measured" />
        </p>
      )}
      {report && (
        <>
          <table>
            <thead>
              <tr>
                <th scope="col">Backend</th>
                <th scope="col">LoRA step</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {report.rows.map((r) => (
                <tr key={r.backend} data-backend={r.backend} data-status={r.status}>
                  <th scope="row">
                    {backendLabel(r.backend)}
                    {r.backend === report.picked ? ' (picked)' : ''}
                  </th>
                  <td className="rate" data-testid="timing-rate" data-tokens-per-s={r.tokensPerS ?? undefined}>
                    {rateText(r)}
                  </td>
                  <td>{details(r)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="timing-summary" data-testid="backend-timing-summary">
            {report.picked ? `Faster here: ${backendLabel(report.picked)}` : 'No backend could be measured'}
            {report.switchedTo ? ` (now in use)` : report.picked && inUse === report.picked ? ' (in use)' : ''}
            {report.kept ? `; kept ${inUse ? backendLabel(inUse) : 'the current backend'}: ${report.kept}` : ''}. Measured {when(report.measuredAt)}
            {report.fromCache ? ' (stored for this model and device)' : ''} on {report.model}, {report.batch.windows} × {report.batch.seq} tokens, warm-up step not counted.
          </p>
        </>
      )}
      {timing.error && <ErrorNotice title="The backends could not be measured" error={timing.error} />}
      <div className="row">
        <button type="button" className="secondary" disabled={busy || !canMeasure} onClick={() => void actions.measureBackends({ force: true })}>
          {report ? 'Measure again' : 'Measure backends'}
        </button>
        {(softwareSkipped || timing.allowSoftware) && (
          <label>
            <input type="checkbox" checked={timing.allowSoftware} disabled={busy} onChange={(e) => actions.setTimeSoftwareGpu(e.target.checked)} /> Also time the software GPU (slow)
          </label>
        )}
      </div>
    </div>
  );
}

export function BackendPanel() {
  const backend = useAppState((s) => s.backend);
  const busy = useAppState((s) => s.backend.phase === 'busy' || s.model.phase === 'busy');
  const modelReady = useAppState((s) => s.model.phase === 'ready');
  const training = useAppState(isTraining);
  const actions = useActions();
  const selectId = useId();
  const status = backend.status;

  return (
    <section className="backend" aria-labelledby={`${selectId}-h`}>
      <h3 id={`${selectId}-h`}>Backend</h3>
      <div className="row">
        <label htmlFor={selectId}>Compute backend</label>
        <select
          id={selectId}
          value={backend.preference}
          disabled={busy}
          onChange={(e) => void actions.selectBackend(e.target.value as BackendPreference)}
        >
          {choices.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </div>
      <p className="backend-status" role="status" aria-live="polite" data-testid="backend-status">
        {backend.phase === 'busy' && 'Starting the backend…'}
        {backend.phase === 'ready' && status && (
          <>
            In use: <strong data-testid="backend-name">{describeBackend(status)}</strong>
            {status.tfBackend !== status.name ? ` (TF.js reports "${status.tfBackend}")` : null}
          </>
        )}
      </p>
      {backend.phase === 'ready' && status && (status.reasons.length > 0 || modelReady) && (
        <details className="reasons">
          <summary>Why not a faster backend?</summary>
          {status.reasons.length > 0 && (
            <ul>
              {status.reasons.map((r) => (
                <li key={r}>{r}</li>
              ))}
            </ul>
          )}
          {modelReady && <BackendTimings timing={backend.timing} inUse={status.name} canMeasure={!training} />}
        </details>
      )}
      {backend.phase === 'error' && backend.error && <ErrorNotice title="The backend could not start" error={backend.error} />}
    </section>
  );
}
