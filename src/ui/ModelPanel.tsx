import { useId, useState, type FormEvent } from 'react';
import { estimateSeqLen, noModelAvailable, type LoadProgress } from '../store/store';
import { formatBytes } from '../storage/errors';
import { estimateMemory } from '../store/training';
import { BackendPanel, describeBackend } from './BackendPanel';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';
import { modelWords } from './model-words';

const NO_MODEL_HINT =
  'nothing is served under /models/. Put a Hugging Face model folder (config.json, tokenizer.json, model.safetensors) under models/<name>/, or load one from a URL below.';

const numberFormat = new Intl.NumberFormat('en-US');

function ProgressLine({ progress, label }: { progress: LoadProgress | null; label: string }) {
  const pct = progress ? Math.round(progress.fraction * 100) : 0;
  return (
    <div className="progress" data-testid="model-progress">
      <progress aria-label={`Loading ${label}`} max={100} value={progress ? pct : undefined} />
      <span>
        Loading {label}…{' '}
        {progress
          ? `${pct}% · ${progress.file} ${formatBytes(progress.loaded)}${progress.total !== null ? ` of ${formatBytes(progress.total)}` : ''}`
          : 'Starting…'}
      </span>
    </div>
  );
}

/**
 * The engine, folded away under the model (open on demand): the backend picker and why not faster, the
 * memory training with the current settings needs. Its summary line says the backend in a few words.
 */
function EngineDetails() {
  const status = useAppState((s) => s.backend.status);
  const phase = useAppState((s) => s.backend.phase);
  return (
    <details className="engine" aria-label="Engine" data-testid="engine-details">
      <summary>
        Engine <span className="help inline">{phase === 'busy' ? 'starting…' : status ? describeBackend(status) : phase === 'error' ? 'failed to start' : ''}</span>
      </summary>
      <BackendPanel />
      <RuntimeFacts />
    </details>
  );
}

/** Where the model runs and why not faster; the memory training with the current settings needs. */
function RuntimeFacts() {
  const summary = useAppState((s) => s.model.summary);
  const status = useAppState((s) => s.backend.status);
  const config = useAppState((s) => s.train.config);
  const seqLen = useAppState(estimateSeqLen);
  if (!summary) return null;
  const mem = estimateMemory(summary, config, seqLen);
  return (
    <>
      {status && (
        <p className="facts-line" data-testid="model-backend">
          Runs on <strong>{describeBackend(status)}</strong>
          {status.reasons.length ? `. Not faster because: ${status.reasons.join('; ')}` : ' (the fastest backend this browser offers)'}.
        </p>
      )}
      <p className="facts-line" data-testid="memory-estimate">
        Training with the current settings ({config.mode === 'lora' ? `LoRA rank ${config.lora.r}` : config.mode === 'oft' ? `OFT, blocks of ${config.oft.oft_block_size}` : config.mode === 'prompt' ? `prompt tuning, ${config.prompt.num_virtual_tokens} virtual tokens` : 'every weight'}, batch {config.batchSize}, {seqLen} tokens) needs about{' '}
        <strong>{formatBytes(mem.total)}</strong>: weights {formatBytes(mem.weights)}, trained parameters with optimizer state {formatBytes(mem.trainable)}, activations{' '}
        {formatBytes(mem.activations)} (an estimate; the measured memory shows while training).
      </p>
    </>
  );
}

export function ModelPanel() {
  const model = useAppState((s) => s.model);
  const none = useAppState(noModelAvailable);
  const backendBusy = useAppState((s) => s.backend.phase === 'busy');
  const actions = useActions();
  const id = useId();
  const [picked, setPicked] = useState<string>('');
  const [input, setInput] = useState('');
  const busy = model.phase === 'busy' || backendBusy;
  const entries = model.catalog.entries;
  const current = picked || model.summary?.name || entries[0]?.name || '';
  // Load is the quiet button when it would load the model already in use.
  const loaded = model.phase === 'ready' && !!model.summary;
  const reload = loaded && current === model.summary?.name;
  const [opened, setMoreOpen] = useState<boolean | null>(null);
  const moreOpen = opened ?? (none || (!!model.error && !model.summary));

  const submitUrl = (e: FormEvent) => {
    e.preventDefault();
    void actions.loadFromInput(input);
  };

  return (
    <section className="panel model" aria-labelledby={`${id}-h`} aria-busy={busy}>
      <h2 id={`${id}-h`}>Model</h2>

      {model.catalog.phase === 'busy' && <p>Looking for models…</p>}
      {model.catalog.error && <ErrorNotice title="The list of models could not be read" error={model.catalog.error} />}
      {none && (
        <div className="notice empty" role="alert" data-testid="no-model">
          <strong>No model available:</strong>{' '}
          {model.catalog.hint ?? NO_MODEL_HINT}
        </div>
      )}

      {entries.length > 0 && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            void actions.loadCatalogModel(current);
          }}
        >
          <label htmlFor={`${id}-catalog`}>Available models</label>
          <select id={`${id}-catalog`} value={current} onChange={(e) => setPicked(e.target.value)} disabled={busy}>
            {entries.map((m) => (
              <option key={m.name} value={m.name}>
                {m.name}
                {m.origin === 'reference' ? ' (reference)' : ''}
              </option>
            ))}
          </select>
          <button type="submit" disabled={busy} className={reload ? 'secondary' : undefined}>
            Load
          </button>
        </form>
      )}

      {/* Other ways to load a model, folded while one is loaded (open when none is available or it failed). */}
      <details className="model-more" aria-label="Another model" open={moreOpen} onToggle={(e) => {
          // The toggle event also fires when React sets `open`; only a change the user made is kept.
          const o = e.currentTarget.open;
          if (o !== moreOpen) setMoreOpen(o);
        }}>
        <summary>Another model: a URL, a Hugging Face id or a folder</summary>
        <form className="row" onSubmit={submitUrl} aria-label="Load a model from a URL">
          <label htmlFor={`${id}-url`}>Model URL or Hugging Face id</label>
          <input
            id={`${id}-url`}
            type="text"
            inputMode="url"
            autoComplete="off"
            spellCheck={false}
            placeholder="https://example.org/my-model/ or org/name"
            value={input}
            onChange={(e) => setInput(e.target.value)}
            aria-describedby={`${id}-url-help`}
          />
          <button type="submit" disabled={busy || !input.trim()} className={loaded ? 'secondary' : undefined}>
            Load from URL
          </button>
          <small id={`${id}-url-help`} className="help">
            A Hugging Face model folder: config.json, tokenizer.json and model.safetensors.
          </small>
        </form>

        <div className="row">
          <label htmlFor={`${id}-files`}>Or pick a model folder</label>
          <input
            id={`${id}-files`}
            type="file"
            multiple
            disabled={busy}
            {...{ webkitdirectory: '' }}
            onChange={(e) => void actions.loadFromFiles(Array.from(e.target.files ?? []))}
          />
        </div>
      </details>

      {model.phase === 'busy' && <ProgressLine progress={model.progress} label={model.locationLabel ?? 'the model'} />}
      {model.phase === 'ready' && model.summary && (
        <div className="summary" role="status" data-testid="model-summary">
          Loaded <strong>{model.summary.name}</strong>: {modelWords(model.summary)}.{' '}
          <details className="inline-details">
            <summary>details</summary>
            {model.summary.arch}, {numberFormat.format(model.summary.numParams)} parameters, vocabulary {numberFormat.format(model.summary.vocabSize)}, context{' '}
            {numberFormat.format(model.summary.contextLength)}, {model.summary.layers} layers × {model.summary.hiddenSize} wide; loaded in{' '}
            {(model.summary.loadMs / 1000).toFixed(1)} s.
          </details>
        </div>
      )}
      {model.phase !== 'busy' && model.error && (
        <ErrorNotice
          title={`The model${model.errorLabel ? ` ${model.errorLabel}` : ''} could not be loaded${model.summary ? ` — ${model.summary.name} is still loaded and in use` : ''}`}
          error={model.error}
        />
      )}
      <EngineDetails />
    </section>
  );
}
