// Preferences in the compare view: the marking bar under a prompt's two replies (base vs tuned, two tuned
// samples, or an edited reply), and the selected run's Preferences list (count, each pair readable,
// editable, deletable, Export JSONL, Train with DPO). Components only: the work is in src/app/preferences.ts,
// the state in compare.preferences. Every control is a button, a text box or a form: keyboard-usable;
// in the edit boxes Ctrl+Enter saves and Escape cancels.
import { useId, useRef, useState, type KeyboardEvent } from 'react';
import { promptText, SOURCE_LABELS, type PreferenceChoice, type PreferenceItem } from '../../store/compare';
import { useActions, useAppState, useStoreApi } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import { downloadBytes } from '../export/download';

const CHOICE_LABELS: Record<PreferenceChoice, string> = {
  base: 'base reply preferred',
  tuned: 'tuned reply preferred',
  edited: 'edited reply preferred over the tuned one',
  'sample-1': 'sample 1 preferred',
  'sample-2': 'sample 2 preferred',
};

/** Ctrl+Enter / Escape in an edit box. */
function editKeys(save: () => void, cancel: () => void) {
  return (e: KeyboardEvent) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      save();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      cancel();
    }
  };
}

/** "Which reply is better?" for one shown prompt: base, tuned, or an edit of the tuned reply. */
export function MarkBar({ item, compact = false, label }: { item: PreferenceItem; compact?: boolean; label: string }) {
  const id = useId();
  const mark = useAppState((s) => s.compare.preferences.marks[item.key] ?? null);
  const actions = useActions();
  const store = useStoreApi();
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState('');
  const editButton = useRef<HTMLButtonElement>(null);
  // Closing the editor puts the focus back on the button that opened it.
  const closeEdit = () => {
    setEditing(false);
    editButton.current?.focus();
  };
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<void>) => {
    setBusy(true);
    try {
      await fn();
    } finally {
      setBusy(false);
    }
  };
  const same = item.base === item.tuned;
  // Compact bars (one per table row) stay quiet until a choice is made.
  const tone = (pressed: boolean) => (compact && !pressed ? 'secondary' : undefined);
  const startEdit = () => {
    setText(mark?.choice === 'edited' && mark.edited !== undefined ? mark.edited : item.tuned);
    setEditing(true);
  };
  const saveEdit = () =>
    void run(async () => {
      await actions.markPreference(item, 'edited', text);
      // Stays open when the pair was refused (the Preferences list says why).
      const saved = store.getState().compare.preferences.marks[item.key];
      if (saved?.choice === 'edited' && saved.edited === text) closeEdit();
    });
  const choose = (choice: PreferenceChoice) => () => void run(() => actions.markPreference(item, choice));

  return (
    <div className={`pref-mark${compact ? ' compact' : ''}${editing ? ' editing' : ''}`} role="group" aria-label={label} data-testid="pref-mark" data-key={item.key} data-marked={mark?.choice ?? ''}>
      {!compact && <span className="pref-question">Which reply is better?</span>}
      {/* In a table row the visible labels are short; the accessible names are the whole question's answers. */}
      <button type="button" className={tone(mark?.choice === 'base')} aria-label="Base is better" aria-pressed={mark?.choice === 'base'} disabled={busy || same} onClick={choose('base')}>
        {compact ? 'Base' : 'Base is better'}
      </button>
      <button type="button" className={tone(mark?.choice === 'tuned')} aria-label="Tuned is better" aria-pressed={mark?.choice === 'tuned'} disabled={busy || same} onClick={choose('tuned')}>
        {compact ? 'Tuned' : 'Tuned is better'}
      </button>
      <button
        type="button"
        className={tone(mark?.choice === 'edited')}
        aria-label="Edit the tuned reply…"
        aria-pressed={mark?.choice === 'edited'}
        aria-expanded={editing}
        aria-controls={`${id}-edit`}
        disabled={busy}
        ref={editButton}
        onClick={() => (editing ? setEditing(false) : startEdit())}
      >
        {compact ? 'Edit…' : 'Edit the tuned reply…'}
      </button>
      {mark && (
        <button type="button" className="secondary" disabled={busy} onClick={() => void run(() => actions.unmarkPreference(item.key))}>
          Unmark
        </button>
      )}
      <span className="pref-status" role="status" data-testid="pref-status">
        {busy ? 'Saving…' : mark ? `Saved: ${CHOICE_LABELS[mark.choice]}.` : same ? 'Both replies are the same: edit one, or try two tuned samples.' : ''}
      </span>
      {editing && (
        <div className="pref-edit" id={`${id}-edit`}>
          <label htmlFor={`${id}-text`}>Better reply</label>
          <textarea id={`${id}-text`} rows={3} value={text} autoFocus onChange={(e) => setText(e.target.value)} onKeyDown={editKeys(saveEdit, closeEdit)} aria-describedby={`${id}-help`} />
          <small id={`${id}-help`} className="help">
            Your reply becomes the chosen one, the tuned reply the rejected one. Ctrl+Enter saves, Escape cancels.
          </small>
          <div className="row buttons">
            <button type="button" disabled={busy || text === item.tuned} onClick={saveEdit}>
              Save edited reply
            </button>
            <button type="button" className="secondary" onClick={closeEdit}>
              Cancel
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

/** Two samples of the tuned model on the prompt box's prompt, at two seeds, and which one is better. */
export function TwoSamples({ item }: { item: PreferenceItem | null }) {
  const id = useId();
  const samples = useAppState((s) => s.compare.preferences.samples);
  const runs = useAppState((s) => s.compare.prompt.runs);
  const used = useAppState((s) => s.compare.prompt.used);
  const mark = useAppState((s) => (item ? (s.compare.preferences.marks[item.key] ?? null) : null));
  const actions = useActions();
  const current = samples.forRun === runs;
  const busy = current && samples.phase === 'busy';
  const texts = current && samples.phase === 'ready' ? samples.texts : null;
  const seedNote = used ? `seeds ${used.seed} and ${used.seed + 1}` : 'two seeds';

  return (
    <div className="pref-samples" role="group" aria-labelledby={`${id}-h`} data-testid="pref-samples">
      <h4 id={`${id}-h`}>Two tuned samples</h4>
      <p className="help">
        {`Samples the tuned model twice on this prompt (${seedNote}; temperature ${used && used.temperature > 0 ? used.temperature : '0.8, since greedy decoding gives one reply twice'}), then you pick the better one.`}
      </p>
      <div className="row buttons">
        <button type="button" disabled={!item || busy} onClick={() => void actions.sampleTwo()}>
          {texts ? 'Sample two again' : 'Sample two tuned replies'}
        </button>
        <span role="status">{busy ? 'Sampling…' : ''}</span>
      </div>
      {current && samples.phase === 'error' && samples.error && <ErrorNotice title="Sampling failed" error={samples.error} />}
      {texts && item && (
        <div className="compare-sides">
          {texts.map((t, i) => {
            const choice = (i === 0 ? 'sample-1' : 'sample-2') as PreferenceChoice;
            return (
              <div key={i} className="compare-side" role="group" aria-labelledby={`${id}-s${i}`}>
                <h4 id={`${id}-s${i}`}>{`Sample ${i + 1} (seed ${samples.seeds?.[i] ?? '?'})`}</h4>
                <pre className="output" data-testid={`sample-${i + 1}`}>
                  {t}
                </pre>
                <button type="button" aria-pressed={mark?.choice === choice} disabled={texts[0] === texts[1]} onClick={() => void actions.markPreference(item, choice)}>
                  {`Sample ${i + 1} is better`}
                </button>
              </div>
            );
          })}
          {texts[0] === texts[1] && <p className="help">Both samples are the same: sample again with a higher temperature, or edit a reply.</p>}
        </div>
      )}
    </div>
  );
}

function PairEditor({ id, prompt, chosen, rejected, onDone }: { id: string; prompt: string | null; chosen: string; rejected: string; onDone: () => void }) {
  const actions = useActions();
  const fid = useId();
  const [p, setP] = useState(prompt ?? '');
  const [c, setC] = useState(chosen);
  const [r, setR] = useState(rejected);
  const save = () =>
    void (async () => {
      const ok = await actions.updatePreference(id, { ...(prompt !== null ? { prompt: p } : {}), chosen: c, rejected: r });
      if (ok) onDone();
    })();
  const keys = editKeys(save, onDone);
  return (
    <form
      className="pref-editor"
      aria-label="Edit the pair"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      {prompt !== null && (
        <>
          <label htmlFor={`${fid}-p`}>Prompt</label>
          <textarea id={`${fid}-p`} rows={2} value={p} onChange={(e) => setP(e.target.value)} onKeyDown={keys} />
        </>
      )}
      <label htmlFor={`${fid}-c`}>Chosen</label>
      <textarea id={`${fid}-c`} rows={2} value={c} autoFocus onChange={(e) => setC(e.target.value)} onKeyDown={keys} />
      <label htmlFor={`${fid}-r`}>Rejected</label>
      <textarea id={`${fid}-r`} rows={2} value={r} onChange={(e) => setR(e.target.value)} onKeyDown={keys} />
      <div className="row buttons">
        <button type="submit">Save</button>
        <button type="button" className="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The selected run's stored preference pairs, their export and DPO on them. */
export function PreferencesList() {
  const id = useId();
  const prefs = useAppState((s) => s.compare.preferences);
  const runName = useAppState((s) => (s.selectedRun.run?.runId === s.compare.preferences.runId ? s.selectedRun.run.runName : null));
  const trainConfig = useAppState((s) => s.train.config);
  const training = useAppState((s) => ['starting', 'running', 'pausing', 'paused', 'stopping'].includes(s.train.phase));
  const actions = useActions();
  const [editing, setEditing] = useState<string | null>(null);
  const [exported, setExported] = useState<string | null>(null);
  const n = prefs.list.length;
  const dpoBusy = prefs.dpo.phase === 'busy';

  const exportJsonl = () => {
    const out = actions.preferencesJsonl();
    if (!out) return;
    downloadBytes(new TextEncoder().encode(out.text), out.filename, 'application/jsonl');
    setExported(`Exported ${out.count} pair${out.count === 1 ? '' : 's'} as ${out.filename}.`);
  };

  if (!prefs.runId) return null;
  return (
    <div className="compare-preferences" role="region" aria-labelledby={`${id}-h`}>
      <h3 id={`${id}-h`}>Preferences</h3>
      <p className="help" data-testid="pref-count" role="status">
        {prefs.phase === 'busy'
          ? 'Reading the preferences…'
          : `${n} preference pair${n === 1 ? '' : 's'} stored with ${runName ? `run "${runName}"` : 'this run'}${n ? '' : ': mark the better reply of a prompt above (or edit one) to add some'}.`}
      </p>
      <p className="help">Kept in this browser with the run (deleting the run deletes them); each pair names the checkpoint its replies came from.</p>
      {prefs.error && <ErrorNotice title="The preference was not saved" error={prefs.error} />}
      {n > 0 && (
        <ol className="pref-list" data-testid="pref-list">
          {prefs.list.map((p) => (
            <li key={p.id} data-testid="pref-item" data-source={p.source}>
              {editing === p.id ? (
                <PairEditor id={p.id} prompt={typeof p.prompt === 'string' ? p.prompt : null} chosen={p.chosen} rejected={p.rejected} onDone={() => setEditing(null)} />
              ) : (
                <>
                  <dl>
                    <dt>Prompt</dt>
                    <dd className="text">{promptText(p.prompt)}</dd>
                    <dt>Chosen</dt>
                    <dd className="text chosen" data-testid="pref-chosen">
                      {p.chosen || '(empty)'}
                    </dd>
                    <dt>Rejected</dt>
                    <dd className="text rejected" data-testid="pref-rejected">
                      {p.rejected || '(empty)'}
                    </dd>
                  </dl>
                  <p className="help">{`${SOURCE_LABELS[p.source]} · step ${p.step} · ${new Date(p.createdAt).toLocaleString()}`}</p>
                  <div className="row buttons">
                    <button type="button" className="secondary" onClick={() => setEditing(p.id)} aria-label={`Edit pair ${prefs.list.indexOf(p) + 1}`}>
                      Edit
                    </button>
                    <button type="button" className="secondary" onClick={() => void actions.deletePreference(p.id)} aria-label={`Delete pair ${prefs.list.indexOf(p) + 1}`}>
                      Delete
                    </button>
                  </div>
                </>
              )}
            </li>
          ))}
        </ol>
      )}
      <div className="row buttons">
        <button type="button" disabled={n === 0} onClick={exportJsonl}>
          Export JSONL
        </button>
        <button type="button" disabled={n === 0 || dpoBusy || training} onClick={() => void actions.trainDpoOnPreferences()} aria-describedby={`${id}-dpo-help`}>
          {`Train with DPO on these ${n} preference${n === 1 ? '' : 's'}`}
        </button>
      </div>
      {exported && (
        <p className="help" role="status" data-testid="pref-exported">
          {exported}
        </p>
      )}
      <small id={`${id}-dpo-help`} className="help">
        {`Starts a new run, "${runName ?? 'this run'} + DPO", from the selected checkpoint (frozen as DPO's reference), with the Train panel's settings (β ${trainConfig.dpoBeta}, learning rate ${trainConfig.lr}, ${trainConfig.steps > 0 ? `${trainConfig.steps} steps` : `${trainConfig.epochs} epochs`}). The pairs are checked by the dataset doctor first and kept in this browser.`}
      </small>
      <p className="help" role="status" data-testid="pref-dpo-status">
        {prefs.dpo.step === 'dataset' ? 'Checking the preferences as a dataset…' : prefs.dpo.step === 'training' ? 'The DPO run is training: follow it in the Train panel.' : ''}
      </p>
      {prefs.dpo.phase === 'error' && prefs.dpo.error && <ErrorNotice title="DPO could not start" error={prefs.dpo.error} />}
    </div>
  );
}
