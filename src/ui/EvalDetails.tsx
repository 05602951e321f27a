// The latest evaluation's measurements and their detail (EvalMetrics.extra / details, streamed as `eval`
// events or read back with a stored run's metrics): the figures, the confusion table of label answers,
// the memorisation warning, the per-layer activation similarity to the base model (CKA) as a heat strip,
// and a few generated answers. Details are read defensively: they are whatever the plugged-in metrics sent.
import { useId } from 'react';
import type { EvalMetrics } from '../protocol/messages';
import { num, readCka, readConfusion, readMemorised, readSamples, type Confusion, type Memorised } from '../store/evaluation';
import { formatSkillChange } from '../train/quality/decisions';
import { useAppState } from './context';
import './stop.css';

/** CKA 1 -> green, 0.5 and below -> red (hue 130 .. 0). */
function ckaColor(v: number): string {
  const t = Math.min(1, Math.max(0, (v - 0.5) / 0.5));
  return `hsl(${Math.round(130 * t)} 65% 45%)`;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function Figures({ e }: { e: EvalMetrics }) {
  const x = e.extra ?? {};
  const parts: string[] = [`validation loss ${e.valLoss.toFixed(4)}`];
  if (num(x.exact_match)) parts.push(`exact match ${pct(x.exact_match)}`);
  if (num(x.token_f1)) parts.push(`token F1 ${pct(x.token_f1)}`);
  if (num(x.label_accuracy)) parts.push(`label accuracy ${pct(x.label_accuracy)}`);
  if (num(x.gen_examples)) parts.push(`on ${x.gen_examples} generated answers`);
  if (num(x.probe_nll_delta_pct)) parts.push(`general skill ${formatSkillChange(x.probe_nll_delta_pct)} (probe loss ${x.probe_nll_delta_pct >= 0 ? '+' : ''}${x.probe_nll_delta_pct.toFixed(2)}%)`);
  if (num(x.cka_min)) parts.push(`CKA min ${x.cka_min.toFixed(3)}`);
  return <p data-testid="eval-figures">{parts.join(' · ')}</p>;
}

function ConfusionTable({ c }: { c: Confusion }) {
  const id = useId();
  return (
    <div className="confusion" data-testid="confusion">
      <table aria-describedby={`${id}-cap`}>
        <caption id={`${id}-cap`}>Labels: rows are the expected label, columns the generated one</caption>
        <thead>
          <tr>
            <th scope="col">expected ↓ / generated →</th>
            {c.labels.map((l) => (
              <th key={l} scope="col">
                {l}
              </th>
            ))}
            <th scope="col">other</th>
          </tr>
        </thead>
        <tbody>
          {c.counts.map((row, i) => (
            <tr key={c.labels[i]}>
              <th scope="row">{c.labels[i]}</th>
              {row.map((n, j) => (
                <td key={j} className={j === i ? 'diag' : n > 0 ? 'off' : ''}>
                  {n}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function MemorisedWarning({ m }: { m: Memorised }) {
  if (m.count === 0) return null;
  const text = m.sentence ?? `${m.count} of ${m.of} generated held-out answers are exactly a training answer that is not theirs: the model may be recalling answers instead of doing the task.`;
  return (
    <div className={`notice ${m.sentence ? 'warn' : 'empty'}`} data-testid="memorised">
      <strong>Memorisation: </strong>
      {text}
      {m.examples.length > 0 && (
        <details>
          <summary>Examples</summary>
          <ul className="answers">
            {m.examples.map((a, i) => (
              <li key={i}>
                <span className="prompt-text">{a.prompt}</span> → <strong>{a.output}</strong> (expected {a.expected})
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function CkaStrip({ layers }: { layers: number[] }) {
  const min = Math.min(...layers);
  return (
    <div className="cka" data-testid="cka-strip">
      <span className="help">Activation similarity to the base model per layer (linear CKA, 1 = unchanged); lowest {min.toFixed(3)}:</span>
      <ol className="cka-strip" aria-label="CKA per layer">
        {layers.map((v, i) => (
          <li key={i} style={{ background: ckaColor(v) }} title={`layer ${i}: CKA ${v.toFixed(4)}`} aria-label={`layer ${i}: CKA ${v.toFixed(4)}`}>
            {v.toFixed(2)}
          </li>
        ))}
      </ol>
    </div>
  );
}

export function EvalDetails() {
  const e = useAppState((s) => s.live.lastEval);
  const id = useId();
  if (!e) return null;
  const confusion = readConfusion(e.details);
  const memorised = readMemorised(e.details);
  const cka = readCka(e.details);
  const samples = readSamples(e.details);
  return (
    <section className="eval-details" aria-labelledby={`${id}-h`} data-testid="eval-details">
      <h3 id={`${id}-h`}>Latest evaluation (step {e.step})</h3>
      <Figures e={e} />
      {memorised && <MemorisedWarning m={memorised} />}
      {confusion && <ConfusionTable c={confusion} />}
      {cka && <CkaStrip layers={cka} />}
      {samples.length > 0 && (
        <details>
          <summary>Generated answers ({samples.length})</summary>
          <ul className="answers">
            {samples.map((a, i) => (
              <li key={i}>
                <span className="prompt-text">{a.prompt}</span> → <strong>{a.output || '(nothing)'}</strong>
                {a.exact ? ' ✓' : ` (expected ${a.expected})`}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
