import { useEffect, useId, useRef, useState, type RefObject } from 'react';
import type { ColumnMapping, DataReport } from '../protocol/messages';
import type { TableInfo } from '../data/csv';
import { datasetProblem, FORMAT_CHOICES, pageOf, textSummary } from '../store/data';
import { formatBytes } from '../storage/errors';
import { joinTextFiles } from '../data/text';
import { formatWords } from '../data/formats';
import { promptFormatNote, stopDetails, stopWords } from '../data/words';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';
import { dataReady, nextStep } from './journey';
import { stepAnchor } from './StepNav';
import { FixRecordButton } from './iterate/DataFixPanel';

/** The id of the Data panel's "Choose a file…" button (the page's skip link focuses it). */
export const CHOOSE_FILE_ID = 'choose-file';

const nf = new Intl.NumberFormat('en-US');
const ISSUES_PER_PAGE = 25;

function hasFiles(e: { dataTransfer: DataTransfer | null }): boolean {
  return !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
}

/** The whole window takes dropped files while the studio is open; an overlay says so while dragging. */
function WindowDrop({ onFile }: { onFile(file: File): void }) {
  const [over, setOver] = useState(false);
  const onFileRef = useRef(onFile);
  onFileRef.current = onFile;
  useEffect(() => {
    let depth = 0;
    const enter = (e: globalThis.DragEvent) => {
      if (!hasFiles(e)) return;
      depth++;
      setOver(true);
    };
    const leave = (e: globalThis.DragEvent) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) setOver(false);
    };
    const overFn = (e: globalThis.DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const drop = (e: globalThis.DragEvent) => {
      depth = 0;
      setOver(false);
      if (!hasFiles(e)) return;
      e.preventDefault();
      // A drop on a control with its own handling (the model folder picker) is left to it.
      if ((e.target as Element | null)?.closest?.('input[type=file]')) return;
      // Several plain-text files: one dataset, a document each.
      const files = Array.from(e.dataTransfer?.files ?? []);
      const file = joinTextFiles(files) ?? files[0];
      if (file) onFileRef.current(file);
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragleave', leave);
    window.addEventListener('dragover', overFn);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('dragover', overFn);
      window.removeEventListener('drop', drop);
    };
  }, []);
  if (!over) return null;
  return (
    <div className="drop-overlay" aria-hidden="true">
      <div>Drop the file to check it as a training dataset</div>
    </div>
  );
}

function IssueList({ kind, issues, total, omitted }: { kind: 'Errors' | 'Warnings' | 'Validation file errors'; issues: DataReport['errors']; total: number; omitted: number }) {
  const [page, setPage] = useState(0);
  const id = useId();
  const p = pageOf(issues, page, ISSUES_PER_PAGE);
  if (!total) return null;
  return (
    <section className={`issues ${kind === 'Warnings' ? 'warnings' : 'errors'}`} aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>
        {kind} ({nf.format(total)})
      </h3>
      <ol className="issue-list" aria-label={kind}>
        {p.items.map((e, i) => (
          <li key={`${e.line}-${e.code}-${i}`} data-testid="issue" data-line={e.line}>
            <span className="issue-line">{e.line > 0 ? `Line ${e.line}` : 'File'}</span>
            <span className="issue-code">{e.reasons ? [...new Set(e.reasons.map((r) => r.code))].join(', ') : e.code}</span>
            <span className="issue-message">{e.message}</span>
            {e.snippet ? <code className="issue-snippet">{e.snippet}</code> : null}
            {e.line > 0 && kind !== 'Validation file errors' ? <FixRecordButton line={e.line} origin="doctor" label={`Fix line ${e.line}`} /> : null}
          </li>
        ))}
      </ol>
      {p.pages > 1 && (
        <div className="pager" role="group" aria-label={`${kind} pages`}>
          <button type="button" className="secondary" onClick={() => setPage(p.page - 1)} disabled={p.page === 0}>
            Previous
          </button>
          <span>
            Page {p.page + 1} of {p.pages}
          </span>
          <button type="button" className="secondary" onClick={() => setPage(p.page + 1)} disabled={p.page >= p.pages - 1}>
            Next
          </button>
        </div>
      )}
      {omitted > 0 && <p className="help">{nf.format(omitted)} more not listed (the first {nf.format(issues.length)} are shown).</p>}
    </section>
  );
}

function Histogram({ report }: { report: DataReport }) {
  const t = report.tokens;
  if (!t) return null;
  const h = t.total.histogram;
  const max = Math.max(1, ...h.counts);
  return (
    <figure className="histogram" aria-label="Token lengths of the examples">
      <div className="bars" role="img" aria-label={`Histogram of example lengths in tokens: from ${t.total.min} to ${t.total.max}, median ${t.total.p50}`}>
        {h.counts.map((c, i) => (
          <div
            key={i}
            className="bar"
            style={{ height: `${(c / max) * 100}%` }}
            title={`${h.edges[i]}–${h.edges[i + 1]! - 1} tokens: ${c} example${c === 1 ? '' : 's'}`}
          />
        ))}
      </div>
      <figcaption>
        Example length in tokens ({h.edges[0]} to {h.edges[h.edges.length - 1]}): min {t.total.min}, median {t.total.p50}, 95% under {t.total.p95}, max {t.total.max}
        {t.sampled ? ` (a sample of ${nf.format(t.examples)} of ${nf.format(t.sampleOf)})` : ''}. Max sequence length {t.maxSeqLen}.
      </figcaption>
    </figure>
  );
}

function visible(text: string): string {
  return text.replace(/\n/g, '⏎\n').replace(/\t/g, '→');
}

function TokenExample({ report }: { report: DataReport }) {
  const t = report.tokens;
  if (!t?.example) return null;
  const trained = t.example.filter((x) => x.trained).length;
  const formatNote = promptFormatNote(t.example);
  return (
    <section aria-label="One example, token by token">
      <h3>One example as the model sees it (line {t.exampleLine})</h3>
      <p className="help">
        <span className="tok trained legend">trained</span> tokens are what the model learns to write ({trained} of {t.example.length});{' '}
        <span className="tok masked legend">masked</span> tokens are context only (loss on the {t.lossOn === 'all' ? 'whole text' : 'completion'}).
      </p>
      {formatNote && (
        <p className="help" data-testid="prompt-format-note">
          {formatNote}
        </p>
      )}
      <p className="tokens" data-testid="token-example">
        {t.example.map((x, i) => (
          <span key={i} className={`tok ${x.trained ? 'trained' : 'masked'}`} title={`token ${x.id}${x.trained ? ', trained' : ', masked'}`}>
            {visible(x.text) || '∅'}
          </span>
        ))}
      </p>
    </section>
  );
}

/** A hidden file input for dataset files, opened by a visible button (so it is reachable from the keyboard). */
function DatasetFileInput({ inputRef, label, onFile }: { inputRef: RefObject<HTMLInputElement | null>; label: string; onFile(file: File): void }) {
  return (
    <input
      ref={inputRef}
      className="visually-hidden"
      type="file"
      tabIndex={-1}
      aria-label={label}
      accept=".jsonl,.json,.ndjson,.csv,.tsv,.txt,.md,.markdown,application/json,text/csv,text/plain,text/markdown"
      multiple
      onChange={(e) => {
        const picked = Array.from(e.target.files ?? []);
        const f = joinTextFiles(picked) ?? picked[0];
        if (f) onFile(f);
        e.target.value = '';
      }}
    />
  );
}

/** Whether a column mapping can be applied: a prompt, a completion, and no column in two roles. */
export function mappingProblem(m: ColumnMapping): string | null {
  if (!m.prompt.length) return 'Tick at least one prompt column.';
  if (!m.completion) return 'Choose the completion column.';
  if (m.prompt.includes(m.completion)) return 'The completion column cannot also be a prompt column.';
  if (m.system && (m.prompt.includes(m.system) || m.system === m.completion)) return 'The system column must be another column.';
  return null;
}

/** CSV/TSV: which columns are the prompt (one or more, joined in header order) and the completion. */
function ColumnsForm({ table }: { table: TableInfo }) {
  const actions = useActions();
  const busy = useAppState((s) => s.data.phase === 'busy');
  const id = useId();
  const start = table.mapping ?? table.suggested ?? { prompt: [], completion: '' };
  const [draft, setDraft] = useState<ColumnMapping>(start);
  const problem = mappingProblem(draft);
  const applied = table.mapping !== null && JSON.stringify(table.mapping) === JSON.stringify(draft);
  const columnOptions = table.columns.map((c) => (
    <option key={c} value={c}>
      {c}
    </option>
  ));
  const togglePrompt = (c: string, on: boolean) =>
    setDraft((d) => ({ ...d, prompt: table.columns.filter((x) => (x === c ? on : d.prompt.includes(x))) }));
  return (
    <fieldset className="columns-form" data-testid="columns-form">
      <legend>Columns</legend>
      <p className="help">
        {table.mapping === null
          ? 'Which columns are the prompt and the completion? The best guess from the header is preselected; nothing is trained until you confirm.'
          : table.mappingSource === 'auto'
            ? 'Read from the header names. Change them if they are wrong.'
            : 'As you chose.'}
      </p>
      <div className="row" role="group" aria-label="Prompt columns">
        <span>Prompt:</span>
        {table.columns.map((c) => (
          <label key={c} className="check">
            <input type="checkbox" checked={draft.prompt.includes(c)} disabled={busy} onChange={(e) => togglePrompt(c, e.target.checked)} /> {c}
          </label>
        ))}
      </div>
      <div className="row">
        <label htmlFor={`${id}-completion`}>Completion</label>
        <select id={`${id}-completion`} value={draft.completion} disabled={busy} onChange={(e) => setDraft((d) => ({ ...d, completion: e.target.value }))}>
          <option value="">(choose)</option>
          {columnOptions}
        </select>
        <label htmlFor={`${id}-system`}>System (optional)</label>
        <select
          id={`${id}-system`}
          value={draft.system ?? ''}
          disabled={busy}
          onChange={(e) => setDraft((d) => ({ prompt: d.prompt, completion: d.completion, ...(e.target.value ? { system: e.target.value } : {}) }))}
        >
          <option value="">(none)</option>
          {columnOptions}
        </select>
        <button type="button" disabled={busy || problem !== null || applied} onClick={() => void actions.setDataOptions({ columns: draft })}>
          Use these columns
        </button>
      </div>
      {problem && <p className="help" role="status">{problem}</p>}
    </fieldset>
  );
}

/** Max sequence lengths to offer below the model's context: powers of two from 32. */
export function seqLenChoices(context: number): number[] {
  const out: number[] = [];
  for (let n = 32; n < context; n *= 2) out.push(n);
  return out;
}

/** compact: the file cannot be trained on; only what helps fixing it (counts, format, errors) is shown. */
function ReportView({ report, stored, compact }: { report: DataReport; stored: boolean; compact: boolean }) {
  const actions = useActions();
  const options = useAppState((s) => s.data.options);
  const contextLength = useAppState((s) => s.model.summary?.contextLength ?? 512);
  const validationLabel = useAppState((s) => s.data.validationLabel);
  const valInput = useRef<HTMLInputElement>(null);
  const busy = useAppState((s) => s.data.phase === 'busy');
  const id = useId();
  const t = report.tokens;
  return (
    <div className="report" data-testid="data-report">
      <dl className="facts" aria-label="Dataset summary">
        <div>
          <dt>File</dt>
          <dd data-testid="data-name">
            {report.name}
            {report.bytes ? ` (${formatBytes(report.bytes)})` : ''}
            {stored || compact ? '' : ' — not saved in this browser'}
          </dd>
        </div>
        <div>
          <dt>Format</dt>
          <dd>
            <span data-testid="data-format">{formatWords(report.container, report.schema)}</span>{' '}
            <details className="inline-details">
              <summary>format id</summary>
              <code data-testid="data-format-id">{report.format}</code>
            </details>
          </dd>
        </div>
        <div>
          <dt>Records</dt>
          <dd data-testid="data-counts">
            {nf.format(report.total)} read, {nf.format(report.records)} valid, {nf.format(report.errorCount)} error{report.errorCount === 1 ? '' : 's'},{' '}
            {nf.format(report.warningCount)} warning{report.warningCount === 1 ? '' : 's'}
          </dd>
        </div>
        <div>
          <dt>Split</dt>
          <dd data-testid="data-split">
            {nf.format(report.split.train)} training, {nf.format(report.split.val)} validation
            {report.split.source === 'split' ? ` (${Math.round(report.split.valFraction * 100)}% held out, seed ${report.split.seed})` : report.split.source === 'file' ? ' (validation file)' : ''}
          </dd>
        </div>
        {report.text && (
          <div>
            <dt>Plain text</dt>
            <dd data-testid="data-text">
              {textSummary(report.text)}
            </dd>
          </div>
        )}
        {report.validation && (
          <div>
            <dt>Validation file</dt>
            <dd data-testid="data-validation">
              {report.validation.name}: {nf.format(report.validation.total)} read, {nf.format(report.validation.records)} valid, {nf.format(report.validation.errorCount)} error
              {report.validation.errorCount === 1 ? '' : 's'}
              {report.validation.overlap > 0 ? `; ${nf.format(report.validation.overlap)} also in the training file (they measure memory, not generalisation)` : '; none of them in the training file'}
            </dd>
          </div>
        )}
        {t && !compact && (
          <div>
            <dt>Tokens</dt>
            <dd>
              {nf.format(t.tokensPerEpoch)} per epoch, {nf.format(t.trainedTokensPerEpoch)} of them trained
              {t.truncated ? `; ${t.truncated} example${t.truncated === 1 ? '' : 's'} truncated` : ''}
            </dd>
          </div>
        )}
        {report.stop && !compact && (
          <div>
            <dt>End of text</dt>
            <dd data-testid="data-stop">
              <span data-testid="data-stop-words">{stopWords(report.stop, { plainText: !!report.text })}</span>{' '}
              <details className="inline-details" data-testid="data-stop-details">
                <summary>details</summary>
                {stopDetails(report.stop).map((line, i) => (
                  <span key={i} className="detail-line">
                    {line}
                  </span>
                ))}
              </details>
            </dd>
          </div>
        )}
      </dl>

      <form className="row data-options" aria-label="How to read the dataset" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor={`${id}-format`}>Format</label>
        <select
          id={`${id}-format`}
          value={options.format ?? ''}
          disabled={busy}
          onChange={(e) => void actions.setDataOptions({ format: e.target.value || null })}
          aria-describedby={`${id}-format-help`}
        >
          <option value="">Detected ({formatWords(report.detected.container, report.detected.schema)})</option>
          {FORMAT_CHOICES.map((f) => (
            <option key={f.value} value={f.value}>
              {f.label}
            </option>
          ))}
        </select>
        {validationLabel === null ? (
          <>
            <label htmlFor={`${id}-val`}>Validation share</label>
            <select
              id={`${id}-val`}
              value={String(options.valFraction)}
              disabled={busy}
              onChange={(e) => void actions.setDataOptions({ valFraction: Number(e.target.value) })}
            >
              {[0.05, 0.1, 0.2].map((v) => (
                <option key={v} value={v}>
                  {v * 100}%
                </option>
              ))}
            </select>
            <button type="button" className="secondary" disabled={busy} onClick={() => valInput.current?.click()}>
              Use a validation file…
            </button>
          </>
        ) : (
          <>
            <span data-testid="validation-file">
              Validation file: <strong>{validationLabel}</strong>
            </span>
            <button type="button" className="secondary" disabled={busy} onClick={() => void actions.setValidationFile(null)}>
              Split off a share instead
            </button>
          </>
        )}
        <DatasetFileInput inputRef={valInput} label="Validation file" onFile={(f) => void actions.setValidationFile(f)} />
        <label htmlFor={`${id}-len`}>Max length</label>
        <select
          id={`${id}-len`}
          value={options.maxSeqLen === null ? '' : String(options.maxSeqLen)}
          disabled={busy}
          onChange={(e) => void actions.setDataOptions({ maxSeqLen: e.target.value ? Number(e.target.value) : null })}
          aria-describedby={`${id}-len-help`}
        >
          <option value="">the model&apos;s context ({nf.format(contextLength)} tokens)</option>
          {seqLenChoices(contextLength).map((n) => (
            <option key={n} value={n}>
              {nf.format(n)} tokens
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-loss`}>Train on</label>
        <select id={`${id}-loss`} value={options.lossOn} disabled={busy} onChange={(e) => void actions.setDataOptions({ lossOn: e.target.value as 'completion' | 'all' })}>
          <option value="completion">the completion only</option>
          <option value="all">the whole text</option>
        </select>
        <small id={`${id}-format-help`} className="help">
          Changing one checks the file again. The validation share is held out to measure the validation loss.
        </small>
        <small id={`${id}-len-help`} className="help">
          Longer examples lose the start of their prompt (listed under Warnings); shorter sequences train faster and use less memory.
        </small>
      </form>

      {report.table && <ColumnsForm key={`${report.name}|${report.table.columns.join('|')}|${JSON.stringify(report.table.mapping)}`} table={report.table} />}
      {!compact && <Histogram report={report} />}
      {!compact && <TokenExample report={report} />}
      <IssueList kind="Errors" issues={report.errors} total={report.errorCount} omitted={report.errorsOmitted} />
      {report.validation && (
        <IssueList kind="Validation file errors" issues={report.validation.errors} total={report.validation.errorCount} omitted={report.validation.errorsOmitted} />
      )}
      <details className="warnings-box">
        <summary>
          Warnings ({nf.format(report.warningCount)})
        </summary>
        {report.warningCount ? (
          <IssueList kind="Warnings" issues={report.warnings} total={report.warningCount} omitted={report.warningsOmitted} />
        ) : (
          <p className="help">No warnings.</p>
        )}
      </details>
    </div>
  );
}

export function DataPanel() {
  const data = useAppState((s) => s.data);
  const modelReady = useAppState((s) => s.model.phase === 'ready');
  const actions = useActions();
  const id = useId();
  const fileInput = useRef<HTMLInputElement>(null);
  const report = data.result?.report ?? null;
  const problem = report ? datasetProblem(report) : null;
  const hasData = useAppState(dataReady);
  const trainIsNext = useAppState((s) => nextStep(s) === 'train');

  return (
    <section className="panel data" aria-labelledby={`${id}-h`} aria-busy={data.phase === 'busy'}>
      <WindowDrop onFile={(f) => void actions.inspectFile(f)} />
      <h2 id={`${id}-h`}>Data</h2>
      {/* Drops anywhere (this zone included) are taken by WindowDrop. */}
      <div className="dropzone" data-testid="drop-zone">
        <p>
          <strong>Drop a dataset file anywhere on this page</strong>, or{' '}
          {/* The loud button until a dataset is read (then Start is); the skip link at the top of the page focuses it. */}
          <button type="button" id={CHOOSE_FILE_ID} className={hasData ? 'secondary' : undefined} onClick={() => fileInput.current?.click()}>
            Choose a file…
          </button>
        </p>
        <DatasetFileInput inputRef={fileInput} label="Dataset file" onFile={(f) => void actions.inspectFile(f)} />
        <p className="help">
          JSONL or JSON ({'{"prompt", "completion"}'}, Alpaca, OpenAI chat, ShareGPT) or CSV/TSV. It stays in this browser: nothing is uploaded.
        </p>
        {data.examples.entries.length > 0 && (
          <div className="examples" role="group" aria-label="Example datasets">
            <span className="help">No file at hand? Try an example:</span>
            {data.examples.entries.map((x) => (
              <button key={x.id} type="button" className="secondary" title={x.description} onClick={() => void actions.inspectExample(x.id)}>
                {x.title}
              </button>
            ))}
          </div>
        )}
        {data.examples.error && <p className="help">{data.examples.error.message}</p>}
      </div>

      {!modelReady && data.phase === 'idle' && <p className="help">The model is loading; a dataset can be added already (its tokens are counted once the model is ready).</p>}

      <div role="status" aria-live="polite" className="data-status" data-testid="data-status">
        {data.phase === 'busy' && (
          <div className="progress">
            <progress aria-label={`Checking ${data.label ?? 'the dataset'}`} max={100} value={data.progress ? Math.round(data.progress.fraction * 100) : undefined} />
            <span>
              Checking {data.label}…{' '}
              {data.progress ? `${data.progress.phase === 'read' ? 'reading' : 'counting tokens'} ${Math.round(data.progress.fraction * 100)}%` : ''}
            </span>
          </div>
        )}
        {data.phase === 'ready' && report && !problem?.blocking && (
          <p>
            <strong>{data.label}</strong>:{' '}
            {report.text?.windows
              ? `plain text in ${nf.format(report.text.windows.train)} training windows of ${report.text.seqLen} tokens, ${nf.format(report.text.windows.val)} held out.`
              : `${nf.format(report.split.train)} examples ready to train, ${nf.format(report.split.val)} for validation.`}
          </p>
        )}
      </div>

      {hasData && trainIsNext && (
        <p className="next-step">
          <a href={`#${stepAnchor('train')}`}>Next: Train ↓</a> <span className="help inline">pick a preset and Start; the doctor&apos;s report below stays here.</span>
        </p>
      )}
      {data.phase === 'error' && data.error && <ErrorNotice title={`${data.label ?? 'The dataset'} could not be checked`} error={data.error} />}
      {problem && (
        <div className={`notice ${problem.blocking ? 'error' : 'empty'}`} role={problem.blocking ? 'alert' : 'note'} data-testid="data-problem">
          <strong>{problem.title}</strong>
          <p className="message">{problem.message}</p>
          <p className="hint">{problem.hint}</p>
        </div>
      )}
      {report && data.result && <ReportView report={report} stored={data.result.stored} compact={!!problem?.blocking} />}
      {data.result?.storageError && (
        <ErrorNotice title="The dataset could not be saved in this browser (training still works until the page is closed)" error={data.result.storageError} />
      )}
    </section>
  );
}
