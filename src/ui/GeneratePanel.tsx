import { useEffect, useId, useRef, type KeyboardEvent } from 'react';
import { availableAdapter, describeSource, generationSource } from '../store/generation';
import { canGenerate } from '../store/store';
import { useActions, useAppState, useStoreApi } from './context';
import { ErrorNotice } from './ErrorNotice';

/** The streamed continuation, written with textContent from a store subscription (no re-render per token, never HTML). */
function Continuation() {
  const store = useStoreApi();
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const write = (text: string) => {
      if (ref.current && ref.current.textContent !== text) ref.current.textContent = text;
    };
    write(store.getState().generation.text);
    return store.subscribe((s) => write(s.generation.text));
  }, [store]);
  return <span ref={ref} className="continuation" data-testid="continuation" />;
}

export function GeneratePanel() {
  const settings = useAppState((s) => s.settings);
  const generation = useAppState((s) => s.generation);
  const ready = useAppState(canGenerate);
  const contextLength = useAppState((s) => s.model.summary?.contextLength ?? 4096);
  const hasModel = useAppState((s) => s.model.phase === 'ready');
  const actions = useActions();
  const id = useId();
  const running = generation.phase === 'busy';
  // What the next generation uses, said before it runs (and kept with the output it made).
  const canApply = useAppState((s) => availableAdapter(s) !== null);
  const source = useAppState((s) => {
    const g = generationSource(s);
    return g ? describeSource(g) : null;
  });

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void actions.generate();
    } else if (e.key === 'Escape' && running) {
      e.preventDefault();
      void actions.stop();
    }
  };

  return (
    <section className="panel generate" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Generate</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void actions.generate();
        }}
        onKeyDown={onKeyDown}
      >
        <label htmlFor={`${id}-prompt`}>Prompt</label>
        <textarea
          id={`${id}-prompt`}
          rows={3}
          value={settings.prompt}
          onChange={(e) => actions.setSettings({ prompt: e.target.value })}
          aria-describedby={`${id}-keys`}
        />
        <small id={`${id}-keys`} className="help">
          Ctrl+Enter generates, Escape stops.
        </small>
        <div className="row controls">
          <label htmlFor={`${id}-max`}>Max new tokens</label>
          <input
            id={`${id}-max`}
            type="number"
            min={1}
            max={contextLength}
            step={1}
            value={settings.maxNewTokens}
            onChange={(e) => actions.setSettings({ maxNewTokens: Math.max(1, Math.min(contextLength, Math.floor(Number(e.target.value) || 1))) })}
          />
          <label htmlFor={`${id}-temp`}>Temperature</label>
          <input
            id={`${id}-temp`}
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={settings.temperature}
            aria-describedby={`${id}-temp-help`}
            onChange={(e) => actions.setSettings({ temperature: Math.max(0, Math.min(2, Number(e.target.value) || 0)) })}
          />
          <small id={`${id}-temp-help`} className="help">
            0 = greedy (always the most likely token).
          </small>
        </div>
        {source && (
          <div className="row generate-source">
            <p className="help inline" data-testid="generate-source" aria-live="polite">
              Uses <strong>{source}</strong>
              {!canApply && ' — train a run or select one (Runs, Checkpoints) to apply its adapter.'}
            </p>
            {canApply && (
              <label className="check">
                <input type="checkbox" checked={settings.useAdapter} disabled={running} onChange={(e) => actions.setSettings({ useAdapter: e.target.checked })} /> Apply the adapter
              </label>
            )}
          </div>
        )}
        <div className="row buttons">
          <button type="submit" disabled={!ready} aria-describedby={!hasModel ? `${id}-nomodel` : undefined}>
            Generate
          </button>
          <button type="button" onClick={() => void actions.stop()} disabled={!running}>
            Stop
          </button>
        </div>
      </form>
      {!hasModel && (
        <p className="help" id={`${id}-nomodel`}>
          Load a model to generate text.
        </p>
      )}

      <div className="output-wrap">
        <h3 id={`${id}-out`}>Output</h3>
        <pre className="output" aria-labelledby={`${id}-out`} aria-live="polite" aria-busy={running} data-testid="output">
          {generation.phase !== 'idle' && <span className="prompt">{generation.prompt}</span>}
          <Continuation />
        </pre>
        {generation.madeWith && generation.phase !== 'idle' && (
          <p className="help" data-testid="generation-made-with">
            {running ? 'Generating with' : 'Made with'} {describeSource(generation.madeWith)}.
          </p>
        )}
        <p className="stats" role="status" data-testid="generation-stats">
          {running && `Generating… ${generation.tokenCount} token${generation.tokenCount === 1 ? '' : 's'}`}
          {generation.phase === 'ready' &&
            generation.outcome &&
            `${generation.outcome.tokens.length} tokens in ${(generation.outcome.ms / 1000).toFixed(2)} s · ${generation.outcome.tokensPerSecond.toFixed(1)} tokens/s · finished: ${generation.outcome.finishReason}`}
        </p>
      </div>
      {generation.phase === 'error' && generation.error && <ErrorNotice title="Generation failed" error={generation.error} />}
    </section>
  );
}
