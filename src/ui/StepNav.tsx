// The journey at a glance: five numbered steps (model → data → train → compare → export), each a link
// to its section and saying whether it is done, the one to do now, or later. Sticky at the top, so any
// section is one click away at any scroll. Derived from the page state (src/ui/journey.ts).
import { useEffect, useMemo, useState } from 'react';
import { journeySteps, stateWords, type JourneyStep } from './journey';
import { useAppState } from './context';

/** The section a step's link jumps to (App wraps each step's panels in an element with this id). */
export const stepAnchor = (id: JourneyStep['id']) => `step-${id}`;

export function StepNav() {
  // One string per change of a step's state or words, so per-step training updates do not re-render the nav.
  const key = useAppState((s) => JSON.stringify(journeySteps(s)));
  const steps = useMemo(() => JSON.parse(key) as JourneyStep[], [key]);
  return (
    <nav className="steps" aria-label="Steps">
      <ol>
        {steps.map((step, i) => (
          <li key={step.id} className={`step ${step.state}`}>
            <a href={`#${stepAnchor(step.id)}`} aria-current={step.state === 'current' ? 'step' : undefined}>
              <span className="step-num">{i + 1}</span>{' '}
              <span className="step-label">
                {step.label}
                {step.state === 'done' && (
                  <span className="step-check" aria-hidden="true">
                    ✓
                  </span>
                )}
              </span>{' '}
              <span className="visually-hidden">({stateWords(step.state)})</span> <span className="step-detail">{step.detail}</span>
            </a>
          </li>
        ))}
      </ol>
    </nav>
  );
}

const HINT_KEY = 'tabtune.firstVisitDone';

function readFlag(): boolean {
  try {
    return localStorage.getItem(HINT_KEY) === '1';
  } catch {
    return false;
  }
}

function writeFlag(): void {
  try {
    localStorage.setItem(HINT_KEY, '1');
  } catch {
    // Storage blocked: the hint shows again on the next visit.
  }
}

/** Where to start, on a first visit only: gone for good once dismissed, once a dataset was read, or when runs are stored. */
export function FirstVisitHint() {
  // A dataset read, or runs stored from an earlier visit: not a first visit (any more).
  const dataTouched = useAppState((s) => s.data.phase !== 'idle' || s.runs.list.length > 0);
  const model = useAppState((s) => s.model.summary?.name ?? null);
  const hasExamples = useAppState((s) => s.data.examples.entries.length > 0);
  const [dismissed, setDismissed] = useState(readFlag);
  useEffect(() => {
    // The first dataset (or a stored run) ends the first visit.
    if (dataTouched && !dismissed) {
      writeFlag();
      setDismissed(true);
    }
  }, [dataTouched, dismissed]);
  if (dismissed || dataTouched) return null;
  return (
    <section className="first-visit" aria-label="Getting started">
      <p>
        <strong>New here?</strong> Fine-tune a small language model in this tab, nothing is uploaded. Go through the steps above in order:{' '}
        {model ? (
          <>
            the model <strong>{model}</strong> is loaded,
          </>
        ) : (
          <>a model loads by itself,</>
        )}{' '}
        so start with <strong>Data</strong>: choose a file{hasExamples ? ' or try an example dataset' : ''} (prompt/completion JSONL or JSON, Alpaca, OpenAI chat,
        ShareGPT, CSV/TSV or plain text), then{' '}
        <strong>Train</strong>, <strong>Compare</strong> the tuned model with the base one, and <strong>Export</strong> the adapter.
      </p>
      <button
        type="button"
        className="secondary"
        onClick={() => {
          writeFlag();
          setDismissed(true);
        }}
      >
        Got it
      </button>
    </section>
  );
}
