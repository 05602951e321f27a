// Export: the selected checkpoint as a PEFT adapter or a merged model, the run's metrics as CSV and
// its TRL / Axolotl recipe, each a download. Components only: the state is the store's `export`
// slice, src/app/export.ts asks the worker for the bytes; this file turns them into a file.
import { useId } from 'react';
import type { ExportKind } from '../../protocol/messages';
import { formatBytes } from '../../storage/errors';
import { EXPORT_KINDS, describeExportStage, exportBlocker, type ExportItemState } from '../../store/export';
import { describeCheckpoint, selectedCheckpoint } from '../../store/run-context';
import { compareSource } from '../../store/compare-source';
import { describeSource } from '../../store/generation';
import { formatDuration } from '../../store/time';
import { useActions, useAppState } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import { useNow } from '../compare/hooks';
import { downloadBytes } from './download';
import './export.css';

const ITEMS: Record<ExportKind, { title: string; button: string; what: string }> = {
  peft: {
    title: 'LoRA adapter (PEFT)',
    button: 'Download the adapter (.zip)',
    what: 'adapter_config.json and adapter_model.safetensors of the selected checkpoint, loadable with PEFT on top of the base model, with the run report (README.md model card, loss_curve.png).',
  },
  merged: {
    title: 'Merged model',
    button: 'Download the merged model (.zip)',
    what: 'The base model with the adapter folded into its weights: a Hugging Face model folder (config, tokenizer, safetensors) with the run report (README.md, loss_curve.png).',
  },
  'metrics-csv': {
    title: 'Metrics',
    button: 'Download the metrics (.csv)',
    what: 'Every training step and evaluation of the run: loss, learning rate, gradient norm, tokens, validation loss.',
  },
  recipe: {
    title: 'Training recipe',
    button: 'Download the recipe (.zip)',
    what: 'The same job for TRL and Axolotl, with the training data, to reproduce or scale the run elsewhere.',
  },
};

function ExportItem({ kind, item, blocker }: { kind: ExportKind; item: ExportItemState; blocker: ReturnType<typeof exportBlocker> }) {
  const id = useId();
  const actions = useActions();
  const busy = item.phase === 'busy';
  const now = useNow(busy, 500);
  const meta = ITEMS[kind];
  const onClick = async () => {
    const r = await actions.exportFile(kind);
    if (r) downloadBytes(r.bytes, r.filename, r.mimeType);
  };
  return (
    <li className="export-item" aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>{meta.title}</h3>
      <p id={`${id}-what`} className="help">
        {meta.what}
      </p>
      <div className="row buttons">
        {/* The adapter is the export most people want: its button is the loud one, the others secondary. */}
        <button
          type="button"
          className={kind === 'peft' ? undefined : 'secondary'}
          onClick={() => void onClick()}
          disabled={busy || !!blocker}
          aria-describedby={blocker ? `${id}-why` : `${id}-what`}
        >
          {meta.button}
        </button>
        {blocker && !busy && (
          <small id={`${id}-why`} className="help">
            {blocker.hint ? `${blocker.message} ${blocker.hint}` : blocker.message}
          </small>
        )}
      </div>
      {busy && (
        <div className="progress" data-testid={`export-${kind}-progress`}>
          {/* Indeterminate only until the worker reports something to measure. */}
          <progress aria-label={`Exporting: ${meta.title}`} max={1} value={item.progress ? item.progress.fraction : undefined} />
          <span role="status">
            {item.progress
              ? `${describeExportStage(item.progress)} · ${Math.round(item.progress.fraction * 100)}%${item.startedAt !== null ? ` · ${formatDuration(now - item.startedAt)} elapsed` : ''}${item.progress.etaMs !== null ? ` · about ${formatDuration(item.progress.etaMs)} left` : ''}`
              : `Preparing the file in the worker… ${item.startedAt !== null ? `${formatDuration(now - item.startedAt)} elapsed` : ''}`}
          </span>
        </div>
      )}
      {item.phase === 'ready' && item.last && (
        <p className="stats" role="status" data-testid={`export-${kind}-done`}>
          {`Saved ${item.last.filename} · ${formatBytes(item.last.size)}${item.last.step !== null ? ` · step ${item.last.step}` : ''} · ${item.last.files.join(', ')} · made in ${(item.last.ms / 1000).toFixed(1)} s`}
        </p>
      )}
      {item.phase === 'error' && item.error && <ErrorNotice title={`${meta.title}: export failed`} error={item.error} />}
    </li>
  );
}

export function ExportPanel() {
  const id = useId();
  const summary = useAppState((s) => s.model.summary);
  const selection = useAppState((s) => s.selection);
  const selectedRun = useAppState((s) => s.selectedRun);
  const items = useAppState((s) => s.export);
  const picked = selectedCheckpoint({ selection });
  const contextError = selectedRun.phase === 'error' ? selectedRun.error : null;
  // What the downloads are made from, in the same words as Generate and Compare (one source of truth):
  // the selected checkpoint (the newest saved one of a run still training, not the adapter as it trains).
  const source = useAppState((s) => {
    const src = compareSource(s);
    const run = s.selectedRun.run;
    if (!src?.adapter || !run) return null;
    return describeSource({ model: src.model, adapter: { ...src.adapter, step: run.checkpoint?.step ?? null, training: false } });
  });

  return (
    <section className="panel studio-export" role="region" aria-label="Export" aria-describedby={`${id}-what`}>
      <h2>Export</h2>
      <p id={`${id}-what`} className="help" data-testid="export-target">
        {selectedRun.run && picked ? `Run ${selectedRun.run.runName}: ${describeCheckpoint(selectedRun.run, picked)}.` : 'Files to take the run elsewhere.'}
      </p>
      {source && (
        <p className="help" data-testid="export-source">
          Exports <strong>{source}</strong>
        </p>
      )}
      {!picked && (
        <div className="notice empty" role="status" data-testid="export-empty">
          <strong>No run is selected.</strong>
          <p>Train a run, or pick one under Runs or a checkpoint in the timeline; its files can then be downloaded here.</p>
        </div>
      )}
      {contextError && <ErrorNotice title="Cannot read the selected run" error={contextError} />}
      {picked && !contextError && (
        <ul className="export-list">
          {EXPORT_KINDS.map((kind) => (
            <ExportItem key={kind} kind={kind} item={items[kind]} blocker={selectedRun.phase === 'busy' && !selectedRun.run ? null : exportBlocker({ model: { summary }, selection, selectedRun }, kind)} />
          ))}
        </ul>
      )}
    </section>
  );
}
