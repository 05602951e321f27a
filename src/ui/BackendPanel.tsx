import { useId } from 'react';
import type { BackendPreference, BackendStatus } from '../protocol/messages';
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

export function BackendPanel() {
  const backend = useAppState((s) => s.backend);
  const busy = useAppState((s) => s.backend.phase === 'busy' || s.model.phase === 'busy');
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
      {backend.phase === 'ready' && status && status.reasons.length > 0 && (
        <details className="reasons">
          <summary>Why not a faster backend?</summary>
          <ul>
            {status.reasons.map((r) => (
              <li key={r}>{r}</li>
            ))}
          </ul>
        </details>
      )}
      {backend.phase === 'error' && backend.error && <ErrorNotice title="The backend could not start" error={backend.error} />}
    </section>
  );
}
