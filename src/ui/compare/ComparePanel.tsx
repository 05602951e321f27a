// Compare: base model vs the selected checkpoint, on a prompt (streamed side by side) and on every
// held-out example of the run. Components only: the state is the store's `compare` slice, the work
// is in src/app/compare.ts.
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { ProtocolError } from '../../protocol/messages';
import { compareBlocker, formatTotals, heldoutKey, typedPrompt, type HeldoutRow, type PreferenceItem, type SideState } from '../../store/compare';
import { describeCheckpoint, selectedCheckpoint } from '../../store/run-context';
import { compareSource, heldoutCount, madeWithOf, staleResultLine } from '../../store/compare-source';
import { describeSource } from '../../store/generation';
import { formatDuration } from '../../store/time';
import { runMethodLabel } from '../../store/training';
import { useActions, useAppState, useStoreApi } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import { DiffText } from './DiffText';
import { useNow } from './hooks';
import { MarkBar, PreferencesList, TwoSamples } from './Preferences';
import './compare.css';
import { FixRecordButton } from '../iterate/DataFixPanel';

/** Why nothing can be compared yet, as an empty state (or an error notice when something failed). */
function Blocker({ error }: { error: ProtocolError }) {
  if (error.code === 'NO_MODEL' || error.code === 'NO_ADAPTER' || (error.code === 'NOT_FOUND' && /no checkpoint yet/.test(error.message))) {
    return (
      <div className="notice empty" role="status" data-testid="compare-empty">
        <strong>{error.message}</strong>
        {error.hint && <p>{error.hint}</p>}
      </div>
    );
  }
  return <ErrorNotice title="Cannot compare this checkpoint" error={error} />;
}

/** The streamed text of one side, written with textContent from a store subscription (no render per token, never HTML). */
function StreamedText({ side }: { side: 'base' | 'tuned' }) {
  const store = useStoreApi();
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const write = (text: string) => {
      if (ref.current && ref.current.textContent !== text) ref.current.textContent = text;
    };
    write(store.getState().compare.stream[side]);
    return store.subscribe((s) => write(s.compare.stream[side]));
  }, [store, side]);
  return <span ref={ref} className="continuation" data-testid={`${side}-continuation`} />;
}

/** Token count while streaming (transient too). */
function StreamedCount({ side }: { side: 'base' | 'tuned' }) {
  const store = useStoreApi();
  const ref = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    const key = side === 'base' ? 'baseTokens' : 'tunedTokens';
    const write = (n: number) => {
      if (ref.current) ref.current.textContent = `${n} token${n === 1 ? '' : 's'}`;
    };
    write(store.getState().compare.stream[key]);
    return store.subscribe((s) => write(s.compare.stream[key]));
  }, [store, side]);
  return <span ref={ref} />;
}

function SideStats({ side, state }: { side: 'base' | 'tuned'; state: SideState }) {
  if (state.phase === 'waiting') return <>{side === 'tuned' ? 'Waiting for the base model to finish…' : 'Starting…'}</>;
  if (state.phase === 'streaming')
    return (
      <>
        Generating… <StreamedCount side={side} />
      </>
    );
  if (state.phase === 'done' && state.outcome) {
    const o = state.outcome;
    return <>{`${o.tokens.length} tokens in ${(o.ms / 1000).toFixed(2)} s · ${o.tokensPerSecond.toFixed(1)} tokens/s · finished: ${o.finishReason}`}</>;
  }
  if (state.phase === 'error' && state.error) return <>{`Failed: ${state.error.message}`}</>;
  return null;
}

function PromptCompare({ blocked, reading }: { blocked: boolean; reading: boolean }) {
  const id = useId();
  const settings = useAppState((s) => s.compare.settings);
  const prompt = useAppState((s) => s.compare.prompt);
  const template = useAppState((s) => s.selectedRun.run?.template ?? null);
  const actions = useActions();
  const running = prompt.phase === 'busy';
  // Made with another step than Compare uses now (same run, newest while it trains): says so (issue 18 #3).
  const stale = useAppState((s) => (s.compare.prompt.phase === 'busy' || !s.compare.prompt.adapter || !s.model.summary ? null : staleResultLine('The prompt outputs', 'compare again to see the current one', madeWithOf(s.compare.prompt.adapter), compareSource(s), s.model.summary.name)));
  const formatApplies = template !== 'chat-template';

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!blocked) void actions.comparePrompt();
    } else if (e.key === 'Escape' && running) {
      e.preventDefault();
      void actions.stopComparePrompt();
    }
  };
  const num = (v: string, fallback: number) => (v.trim() === '' || !Number.isFinite(Number(v)) ? fallback : Number(v));
  // Both replies finished: the user can say which is better (a preference pair stored with the run).
  const promptItem: PreferenceItem | null =
    prompt.phase === 'ready' && prompt.adapter && prompt.base.outcome && prompt.tuned.outcome && !prompt.stopped
      ? { key: `prompt:${prompt.runs}`, runId: prompt.adapter.runId, step: prompt.adapter.step, prompt: typedPrompt(prompt.sentPrompt), base: prompt.base.outcome.text, tuned: prompt.tuned.outcome.text }
      : null;
  const tunedTitle = prompt.adapter ? `Tuned: ${prompt.adapter.runName}, step ${prompt.adapter.step}${prompt.strength < 1 ? `, strength ${prompt.strength.toFixed(2)}` : ''}` : 'Tuned';

  return (
    <div className="compare-prompt">
      <h3 id={`${id}-h`}>Prompt</h3>
      <form
        aria-labelledby={`${id}-h`}
        // The inputs are clamped on change; the browser's step check (e.g. top-p 1 from min 0.01 by 0.05) must not block a submit.
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void actions.comparePrompt();
        }}
        onKeyDown={onKeyDown}
      >
        <label htmlFor={`${id}-prompt`}>Prompt for both models</label>
        <textarea
          id={`${id}-prompt`}
          rows={3}
          value={settings.prompt}
          placeholder="e.g. a prompt from your validation set"
          onChange={(e) => actions.setCompareSettings({ prompt: e.target.value })}
          aria-describedby={`${id}-keys`}
        />
        <small id={`${id}-keys`} className="help">
          Ctrl+Enter compares, Escape stops. Both models get the same prompt, decoding settings and seed.
        </small>
        <div className="row">
          <input
            id={`${id}-fmt`}
            type="checkbox"
            checked={settings.trainingFormat}
            disabled={!formatApplies}
            onChange={(e) => actions.setCompareSettings({ trainingFormat: e.target.checked })}
            aria-describedby={`${id}-fmt-help`}
          />
          <label htmlFor={`${id}-fmt`}>Write the prompt as in training</label>
          <small id={`${id}-fmt-help`} className="help">
            {formatApplies ? 'Adds the separator the run was trained with: your prompt, a new line, then "Answer:".' : 'This run used the model\u2019s chat template; the prompt is sent as typed.'}
          </small>
        </div>
        <div className="row controls decoding">
          <span className="pair">
            <label htmlFor={`${id}-max`}>Max new tokens</label>
            <input id={`${id}-max`} type="number" min={1} step={1} value={settings.maxNewTokens} onChange={(e) => actions.setCompareSettings({ maxNewTokens: Math.max(1, Math.floor(num(e.target.value, 1))) })} />
          </span>
          <span className="pair">
            <label htmlFor={`${id}-temp`}>Temperature</label>
            <input id={`${id}-temp`} type="number" min={0} max={2} step={0.1} value={settings.temperature} aria-describedby={`${id}-dec-help`} onChange={(e) => actions.setCompareSettings({ temperature: Math.max(0, Math.min(2, num(e.target.value, 0))) })} />
          </span>
          <span className="pair">
            <label htmlFor={`${id}-topk`}>Top-k</label>
            <input id={`${id}-topk`} type="number" min={0} step={1} value={settings.topK} aria-describedby={`${id}-dec-help`} onChange={(e) => actions.setCompareSettings({ topK: Math.max(0, Math.floor(num(e.target.value, 0))) })} />
          </span>
          <span className="pair">
            <label htmlFor={`${id}-topp`}>Top-p</label>
            <input id={`${id}-topp`} type="number" min={0} max={1} step={0.05} value={settings.topP} aria-describedby={`${id}-dec-help`} onChange={(e) => actions.setCompareSettings({ topP: Math.max(0.01, Math.min(1, num(e.target.value, 1))) })} />
          </span>
          <span className="pair">
            <label htmlFor={`${id}-seed`}>Seed</label>
            <input id={`${id}-seed`} type="number" min={0} step={1} value={settings.seed} onChange={(e) => actions.setCompareSettings({ seed: Math.max(0, Math.floor(num(e.target.value, 0))) })} />
          </span>
          <small id={`${id}-dec-help`} className="help">
            Temperature 0 = greedy; top-k 0 and top-p 1 = off.
          </small>
        </div>
        <div className="row controls">
          <label htmlFor={`${id}-strength`}>Adapter strength</label>
          <input
            id={`${id}-strength`}
            type="range"
            min={0}
            max={1}
            step={0.05}
            value={settings.strength}
            aria-valuetext={`${settings.strength.toFixed(2)}: ${settings.strength === 0 ? 'base model' : settings.strength === 1 ? 'fully tuned' : 'part of the update'}`}
            aria-describedby={`${id}-strength-help`}
            onChange={(e) => actions.setCompareSettings({ strength: Number(e.target.value) })}
          />
          <output htmlFor={`${id}-strength`} className="strength-value">
            {settings.strength.toFixed(2)}
          </output>
          <small id={`${id}-strength-help`} className="help">
            Scales the tuned side&rsquo;s LoRA update: 0 = the base model, 1 = the checkpoint as trained.
          </small>
        </div>
        <div className="row buttons">
          <button type="submit" disabled={blocked || running}>
            Compare outputs
          </button>
          <button type="button" className="secondary" onClick={() => void actions.stopComparePrompt()} disabled={!running}>
            Stop
          </button>
        </div>
      </form>
      {running && reading && (
        <p className="help" role="status" data-testid="prompt-queued">
          Reading the selected run… the comparison starts as soon as it is read.
        </p>
      )}
      {prompt.phase === 'error' && prompt.error && <ErrorNotice title="The comparison failed" error={prompt.error} />}
      {stale && (
        <p className="notice warn" role="status" data-testid="prompt-stale">
          {stale}
        </p>
      )}
      <div className="compare-sides" data-testid="compare-sides" data-runs={prompt.runs}>
        {(['base', 'tuned'] as const).map((side) => (
          <div key={side} className="compare-side" role="group" aria-labelledby={`${id}-${side}-h`}>
            <h4 id={`${id}-${side}-h`}>{side === 'base' ? 'Base model' : tunedTitle}</h4>
            <pre className="output" aria-labelledby={`${id}-${side}-h`} aria-live="polite" aria-busy={prompt[side].phase === 'streaming' || prompt[side].phase === 'waiting'} data-testid={`${side}-output`}>
              {prompt.phase !== 'idle' && prompt.sentPrompt && <span className="prompt">{prompt.sentPrompt}</span>}
              <StreamedText side={side} />
            </pre>
            <p className="stats" role="status" data-testid={`${side}-stats`}>
              <SideStats side={side} state={prompt[side]} />
            </p>
          </div>
        ))}
      </div>
      {prompt.used && prompt.phase !== 'busy' && (
        <p className="help" data-testid="prompt-settings-used">
          {`Both sides: max ${prompt.used.maxNewTokens} new tokens, temperature ${prompt.used.temperature}, top-k ${prompt.used.topK || 'off'}, top-p ${prompt.used.topP < 1 ? prompt.used.topP : 'off'}, seed ${prompt.used.seed}.`}
          {prompt.stopped ? ' Stopped.' : ''}
        </p>
      )}
      {promptItem && (
        <>
          <MarkBar item={promptItem} label="Which reply to this prompt is better?" />
          <TwoSamples item={promptItem} />
        </>
      )}
    </div>
  );
}

const PAGE = 200;

function HeldoutRows({ rows, onlyMismatches, runId, step }: { rows: HeldoutRow[]; onlyMismatches: boolean; runId: string; step: number }) {
  const [limit, setLimit] = useState(PAGE);
  const shown = useMemo(() => (onlyMismatches ? rows.filter((r) => !r.tunedExact) : rows), [rows, onlyMismatches]);
  const fmtLoss = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(3) : '–');
  return (
    <>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Held-out examples (scrollable)">
        <table className="heldout-table" data-testid="heldout-table">
          <caption className="visually-hidden">Every held-out example: prompt, expected output, the base model&rsquo;s and the tuned model&rsquo;s outputs, and how well each matches</caption>
          <thead>
            <tr>
              <th scope="col">Line</th>
              <th scope="col">Prompt</th>
              <th scope="col">Expected</th>
              <th scope="col">Base output</th>
              <th scope="col">Tuned output</th>
              <th scope="col" aria-label="Loss (base → tuned)">
                Loss<small>base → tuned</small>
              </th>
              <th scope="col" aria-label="Exact (base → tuned)">
                Exact<small>base → tuned</small>
              </th>
              <th scope="col" aria-label="Overlap (base → tuned)">
                Overlap<small>base → tuned</small>
              </th>
              <th scope="col">Preference</th>
            </tr>
          </thead>
          <tbody>
            {shown.slice(0, limit).map((r) => (
              <tr key={r.line} className={r.tunedExact ? 'match' : 'mismatch'}>
                <td className="num">{r.line}</td>
                <td className="text">{r.prompt}</td>
                <td className="text">
                  {r.expected}
                  {/* A wrong expected answer is fixed in the record (src/ui/iterate): a new version of the dataset. */}
                  <div>
                    <FixRecordButton line={r.line} origin="heldout" from={{ runId, step }} label={`Fix the record on line ${r.line}`} />
                  </div>
                </td>
                <td className="text">
                  <DiffText actual={r.base} expected={r.expected} exact={r.baseExact} />
                </td>
                <td className="text">
                  <DiffText actual={r.tuned} expected={r.expected} exact={r.tunedExact} />
                </td>
                <td className="num">{`${fmtLoss(r.baseLoss)} → ${fmtLoss(r.tunedLoss)}`}</td>
                <td className="num">
                  {r.baseExact ? 'yes' : 'no'} → <strong>{r.tunedExact ? 'yes' : 'no'}</strong>
                </td>
                <td className="num">{`${r.baseOverlap.toFixed(2)} → ${r.tunedOverlap.toFixed(2)}`}</td>
                <td>
                  <MarkBar compact item={{ key: heldoutKey(runId, step, r.line), runId, step, prompt: r.prompt, base: r.base, tuned: r.tuned }} label={`Which reply is better on line ${r.line}?`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {shown.length === 0 && <p className="help">Every tuned output matches its expected output exactly.</p>}
      {shown.length > limit && (
        <button type="button" className="secondary" onClick={() => setLimit(shown.length)}>
          {`Show all ${shown.length} rows`}
        </button>
      )}
      <p className="help diff-legend">
        In the outputs, <ins>inserted words</ins> are not in the expected output and <del>struck words</del> are expected but missing. Loss is the example&rsquo;s
        training loss (mean negative log-likelihood of the expected answer, nats; lower is better; – when the example is too long to score).
      </p>
    </>
  );
}

function HeldoutCompare({ blocked }: { blocked: boolean }) {
  const id = useId();
  const h = useAppState((s) => s.compare.heldout);
  const valExamples = useAppState((s) => s.selectedRun.run?.valExamples ?? null);
  const stale = useAppState((s) => {
    const r = s.compare.heldout.result;
    if (s.compare.heldout.phase === 'busy' || !r || !s.model.summary) return null;
    return staleResultLine('The held-out table', 'run it again to measure the current one', { runId: r.runId, runName: s.compare.heldout.resultRunName ?? r.runId, step: r.step, training: false }, compareSource(s), s.model.summary.name);
  });
  const actions = useActions();
  const running = h.phase === 'busy';
  const now = useNow(running);
  const [onlyMismatches, setOnlyMismatches] = useState(false);
  const p = h.progress;
  const elapsed = h.startedAt !== null ? Math.max(0, now - h.startedAt) : 0;
  const totals = h.result ? formatTotals(h.result.totals) : null;

  return (
    <div className="compare-heldout">
      <h3 id={`${id}-h`}>Held-out examples</h3>
      <p className="help">
        Greedy base and tuned outputs for every validation example of the run{heldoutCount(h.result ? h.result.rows.length : null, valExamples)}, scored against the expected output.
      </p>
      <div className="row buttons">
        {/* "Compare outputs" above is the step's loud button; the held-out run is the second action. */}
        <button type="button" className="secondary" onClick={() => void actions.compareHeldout()} disabled={blocked || running} aria-describedby={`${id}-h`}>
          {h.result ? 'Run the held-out comparison again' : 'Run the held-out comparison'}
        </button>
        <button type="button" className="secondary" onClick={() => void actions.cancelHeldout()} disabled={!running}>
          Cancel
        </button>
      </div>
      {running && p && (
        <div className="progress" data-testid="heldout-progress">
          <progress aria-label="Held-out comparison progress" max={1} value={p.stage === 'preparing' ? undefined : p.fraction} />
          <span role="status">
            {p.stage === 'preparing'
              ? `Preparing the validation examples… ${formatDuration(elapsed)} elapsed`
              : `${p.stage === 'base' ? 'Base model' : 'Tuned model'}: ${p.done}${p.total !== null ? ` / ${p.total}` : ''} examples · ${Math.round(p.fraction * 100)}% · ${formatDuration(elapsed)} elapsed${p.etaMs !== null ? ` · about ${formatDuration(p.etaMs)} left` : ''}`}
          </span>
        </div>
      )}
      {h.cancelled && (
        <p className="help" role="status" data-testid="heldout-cancelled">
          {h.cancelled}
        </p>
      )}
      {h.phase === 'error' && h.error && <ErrorNotice title="The held-out comparison failed" error={h.error} />}
      {stale && (
        <p className="notice warn" role="status" data-testid="heldout-stale">
          {stale}
        </p>
      )}
      {h.result && totals && (
        <>
          <div className="heldout-totals" data-testid="heldout-totals" role="status">
            {totals.ppl ? (
              <>
                <strong data-testid="heldout-ppl">{totals.ppl}</strong>{' '}
              </>
            ) : (
              <>
                <strong>{totals.exact}</strong>{' '}
              </>
            )}
            <span>{totals.overlap}</span>{' '}
            {totals.loss && (
              <>
                <span>{totals.loss}</span>{' '}
              </>
            )}
            <span className="help">{`${h.result.totals.n} examples · ${h.resultRunName ?? h.result.runId}, step ${h.result.step} · measured in ${formatDuration(h.result.ms)}`}</span>
          </div>
          <div className="row">
            <input id={`${id}-only`} type="checkbox" checked={onlyMismatches} onChange={(e) => setOnlyMismatches(e.target.checked)} />
            <label htmlFor={`${id}-only`}>Only rows where the tuned output is not an exact match</label>
          </div>
          <HeldoutRows rows={h.result.rows} onlyMismatches={onlyMismatches} runId={h.result.runId} step={h.result.step} />
        </>
      )}
    </div>
  );
}

export function ComparePanel() {
  const id = useId();
  const summary = useAppState((s) => s.model.summary);
  const selection = useAppState((s) => s.selection);
  const selectedRun = useAppState((s) => s.selectedRun);
  const method = useAppState((s) => { const t = s.runs.list.find((r) => r.id === s.selection.runId)?.job?.train; return t?.mode ? runMethodLabel(t) : null; });
  const blocker = useMemo(() => compareBlocker({ model: { summary }, selection, selectedRun }), [summary, selection, selectedRun]);
  const picked = selectedCheckpoint({ selection });
  const loading = selectedRun.phase === 'busy' && !selectedRun.run;
  const source = useAppState((s) => {
    const src = compareSource(s);
    return src ? `The tuned side uses ${describeSource(src)}.` : null;
  });
  const blocked = !!blocker;

  return (
    <section className="panel studio-compare" role="region" aria-label="Compare" aria-describedby={`${id}-what`}>
      <h2>Compare</h2>
      <p id={`${id}-what`} className="help" data-testid="compare-target">
        {selectedRun.run && picked
          ? // The newest of a run being trained: the tuned side uses the adapter as it trains, not its newest checkpoint (issue 18 #3).
            `Base model vs ${selectedRun.run.runName}: ${selectedRun.run.training && picked.step === null ? `the adapter being trained (its newest checkpoint: ${describeCheckpoint(selectedRun.run, picked)})` : describeCheckpoint(selectedRun.run, picked)}.${method ? ` Trained with ${method}.` : ''}`
          : 'Base model vs a trained checkpoint, on your prompt and on the held-out examples.'}
      </p>
      {source && (
        <p className="help" data-testid="compare-source">
          {source}
        </p>
      )}
      {loading ? (
        <p className="help" role="status">
          Reading the selected run…
        </p>
      ) : (
        blocker && <Blocker error={blocker} />
      )}
      <PromptCompare blocked={blocked && !loading} reading={loading} />
      <HeldoutCompare blocked={blocked} />
      <PreferencesList />
    </section>
  );
}
