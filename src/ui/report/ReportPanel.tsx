// Report: the run report of the selected run or checkpoint as a page — the same sections as the model card
// (src/report/card.ts: base model, data, method, training, evaluation, this checkpoint, loss curve, how to
// load and reproduce it), the loss curve drawn by the same rasteriser as the exported PNG, and downloads of
// the card alone (README.md) and the curve (loss_curve.png). The PEFT and merged zips (Export) carry both.
// Components only: state in the store's `report` slice, actions in src/app/report.ts.
import { useEffect, useId, useMemo, useState } from 'react';
import { cardSections, frontMatter, LOSS_CURVE_PNG, modelCard, type Block, type CardInput } from '../../report/card';
import { lossCurvePng } from '../../report/png';
import { reportStem } from '../../store/report';
import { selectedCheckpoint } from '../../store/run-context';
import { useActions, useAppState } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import { downloadBytes } from '../export/download';
import './report.css';

/** An object URL for bytes, freed when they change or the component goes. */
function useObjectUrl(bytes: Uint8Array | null, type: string): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!bytes) {
      setUrl(null);
      return;
    }
    const u = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [bytes, type]);
  return url;
}

function BlockView({ block, curveUrl }: { block: Block; curveUrl: string | null }) {
  switch (block.kind) {
    case 'para':
      return <p>{block.text}</p>;
    case 'facts':
      return (
        <dl className="facts">
          {block.rows.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      );
    case 'table':
      return (
        <div className="table-wrap">
          <table className="report-table">
            <thead>
              <tr>
                {block.head.map((h) => (
                  <th key={h} scope="col">
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {block.rows.map((r, i) => (
                <tr key={i}>
                  {r.map((c, j) => (j === 0 ? <th key={j} scope="row">{c}</th> : <td key={j}>{c}</td>))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    case 'code':
      return (
        <details>
          <summary>{block.title ?? (block.lang ? `${block.lang} code` : 'code')}</summary>
          <pre tabIndex={0}>
            <code>{block.text}</code>
          </pre>
        </details>
      );
    case 'image':
      return curveUrl ? <img className="report-curve" src={curveUrl} alt={block.alt} width={640} height={320} data-testid="report-curve" /> : <p>{block.alt}</p>;
  }
}

/** Sections shown first on the page (the card keeps the Hugging Face order: model, data, method, …). */
const PAGE_ORDER = ['loss-curve', 'training', 'evaluation', 'checkpoint'];

function ReportView({ input }: { input: CardInput }) {
  const id = useId();
  const png = useMemo(() => lossCurvePng(input.points), [input]);
  const card = useMemo(() => modelCard({ ...input, lossCurve: png ? LOSS_CURVE_PNG : null }), [input, png]);
  // The page leads with what a reader looks for first: the curve, then how training and evaluation went.
  const sections = useMemo(() => {
    const all = cardSections({ ...input, lossCurve: png ? LOSS_CURVE_PNG : null });
    const rank = (id: string) => PAGE_ORDER.indexOf(id) === -1 ? PAGE_ORDER.length : PAGE_ORDER.indexOf(id);
    return [...all].sort((a, b) => rank(a.id) - rank(b.id));
  }, [input, png]);
  const curveUrl = useObjectUrl(png, 'image/png');
  const front = frontMatter(input);
  const stem = reportStem(input);
  return (
    <article className="report-body" aria-labelledby={`${id}-h`} data-testid="report-body">
      <h3 id={`${id}-h`}>
        {input.run.name}
        {input.checkpoint ? ` · step ${input.checkpoint.step}` : ''}
      </h3>
      <ul className="report-tags" aria-label="Tags">
        {front.tags.map((t) => (
          <li key={t}>{t}</li>
        ))}
      </ul>
      <p className="help">
        base_model {front.base_model} · library {front.library_name} · {front.pipeline_tag}. Every figure comes from the run&apos;s records; what it did not measure says so.
      </p>
      <div className="row buttons">
        <button type="button" onClick={() => downloadBytes(new TextEncoder().encode(card), `${stem}-README.md`, 'text/markdown')}>
          Download the card (README.md)
        </button>
        {png && (
          <button type="button" onClick={() => downloadBytes(png, `${stem}-${LOSS_CURVE_PNG}`, 'image/png')}>
            Download the loss curve (PNG)
          </button>
        )}
      </div>
      <nav aria-label="Report sections">
        <ul className="report-tags">
          {sections.map((s) => (
            <li key={s.id}>
              <a href={`#${id}-${s.id}`}>{s.title}</a>
            </li>
          ))}
        </ul>
      </nav>
      {sections.map((s) => (
        <section key={s.id} id={`${id}-${s.id}`} aria-labelledby={`${id}-${s.id}-h`} data-testid={`report-${s.id}`}>
          <h4 id={`${id}-${s.id}-h`}>{s.title}</h4>
          {s.blocks.map((b, i) => (
            <BlockView key={i} block={b} curveUrl={curveUrl} />
          ))}
        </section>
      ))}
    </article>
  );
}

export function ReportPanel() {
  const id = useId();
  const actions = useActions();
  const report = useAppState((s) => s.report);
  const selection = useAppState((s) => s.selection);
  const picked = selectedCheckpoint({ selection });
  return (
    <section className="panel studio-report" role="region" aria-label="Report" aria-describedby={`${id}-what`}>
      <h2>Report</h2>
      <p id={`${id}-what`} className="help">
        How the selected run or checkpoint was made, from its own records: data, settings, training, evaluation, the loss curve, how to load and reproduce it. The same card (README.md) is in the PEFT and merged downloads.
      </p>
      <div className="row buttons">
        {report.open ? (
          <button type="button" onClick={() => actions.hideReport()} aria-expanded="true">
            Hide the report
          </button>
        ) : (
          <button type="button" onClick={() => void actions.showReport()} disabled={!picked} aria-expanded="false">
            Show the report
          </button>
        )}
        {!picked && <small className="help">Train a run, or pick one under Runs or in the checkpoint timeline.</small>}
      </div>
      {report.open && report.phase === 'busy' && !report.input && (
        <p role="status" className="help">
          Reading the run&apos;s records…
        </p>
      )}
      {report.open && report.phase === 'error' && report.error && <ErrorNotice title="Cannot read the run report" error={report.error} />}
      {report.open && report.input && <ReportView input={report.input} />}
    </section>
  );
}
