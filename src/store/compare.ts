// The Compare slice: base vs tuned (the selected checkpoint) on a prompt, streamed side by side, and on
// every held-out example of the run. Actions: src/app/compare.ts. Streamed text goes into `stream`,
// which the panel reads through `subscribe` (no React render per token).
import { PLAIN_SEPARATOR } from '../data/encode';
import type { AdapterInfo, CompareResult, CompareRow, GenerateOutcome, PreferencePair, PreferencePrompt, PreferenceSource, ProtocolError } from '../protocol/messages';
import { pageError } from './errors';
import { selectedCheckpoint, unusable, type BlockerInput, type RunContext } from './run-context';
import type { Phase } from './store';

export interface CompareSettings {
  prompt: string;
  /** Write the prompt as the run was trained: `{prompt}\nAnswer:` (plain-format runs). */
  trainingFormat: boolean;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
  /** 0 = base model .. 1 = fully tuned. */
  strength: number;
}

export type SidePhase = 'idle' | 'waiting' | 'streaming' | 'done' | 'error';

export interface SideState {
  phase: SidePhase;
  outcome: GenerateOutcome | null;
  error: ProtocolError | null;
}

export interface PromptState {
  phase: Phase;
  /** Exactly what was sent to both models. */
  sentPrompt: string;
  /** The adapter the tuned side ran with (run, step) and the strength asked for. */
  adapter: AdapterInfo | null;
  strength: number;
  /** The settings both sides used (for the caption under the outputs). */
  used: Omit<CompareSettings, 'prompt' | 'trainingFormat' | 'strength'> | null;
  base: SideState;
  tuned: SideState;
  /** Stop was pressed. */
  stopped: boolean;
  error: ProtocolError | null;
  /** How many comparisons were started (tells a finished run from the one before). */
  runs: number;
}

/** Streamed text: read it with `store.subscribe` (changes once per token). */
export interface StreamState {
  base: string;
  tuned: string;
  baseTokens: number;
  tunedTokens: number;
}

export interface HeldoutProgress {
  /** 'preparing': reading / encoding the validation records; then the base pass, then the tuned pass. */
  stage: 'preparing' | 'base' | 'tuned';
  /** Over both passes, in [0, 1]. */
  fraction: number;
  /** Examples done in the current pass, and the pass size. */
  done: number;
  total: number | null;
  /** Measured from the progress so far (null until there is some). */
  etaMs: number | null;
}

/** One held-out example: outputs, matches and per-example losses of both sides. */
export type HeldoutRow = CompareRow;

export interface HeldoutState {
  phase: Phase;
  /** Date.now()-style time the comparison started (for elapsed time), null when idle. */
  startedAt: number | null;
  progress: HeldoutProgress | null;
  result: (CompareResult & { rows: HeldoutRow[] }) | null;
  /** The run name the result belongs to. */
  resultRunName: string | null;
  error: ProtocolError | null;
  /** Set when the user cancelled; says whether the worker stopped or finishes in the background. */
  cancelled: string | null;
}

/** Which reply the user preferred for one shown prompt (or that they edited one into a better reply). */
export type PreferenceChoice = 'base' | 'tuned' | 'edited' | 'sample-1' | 'sample-2';

/**
 * One prompt shown with two replies, as the marking buttons offer it: the prompt box's latest comparison
 * (key "prompt:<runs>") or a held-out row (key "heldout:<runId>:<step>:<line>").
 */
export interface PreferenceItem {
  key: string;
  runId: string;
  /** The checkpoint the tuned replies came from. */
  step: number;
  /** The prompt as the user typed it (or the held-out record's prompt): the pair is encoded as its run was trained. */
  prompt: PreferencePrompt;
  base: string;
  tuned: string;
}

/** A stored pair made from a shown item, and what the user chose. */
export interface PreferenceMark {
  pairId: string;
  choice: PreferenceChoice;
  /** The reply as the user edited it (choice 'edited'). */
  edited?: string;
}

/** Two samples of the tuned model on the prompt box's prompt, at two seeds (temperature > 0). */
export interface TwoSamplesState {
  phase: Phase;
  /** The prompt-box comparison they belong to (PromptState.runs). */
  forRun: number;
  seeds: [number, number] | null;
  temperature: number | null;
  texts: [string, string] | null;
  error: ProtocolError | null;
}

export interface PreferencesState {
  /** The run whose stored pairs `list` holds (the selected run). */
  runId: string | null;
  phase: Phase;
  list: PreferencePair[];
  /** The last marking / editing / deleting that failed (the list is unchanged). */
  error: ProtocolError | null;
  /** What the user marked on the items shown, by item key (a pair per item; marking again replaces it). */
  marks: Record<string, PreferenceMark>;
  samples: TwoSamplesState;
  /** "Train with DPO on these preferences": building the dataset, then the run starts in the Train panel. */
  dpo: { phase: Phase; step: 'dataset' | 'training' | null; error: ProtocolError | null };
}

export interface CompareSlice {
  settings: CompareSettings;
  prompt: PromptState;
  stream: StreamState;
  heldout: HeldoutState;
  preferences: PreferencesState;
}

export const DEFAULT_COMPARE_SETTINGS: CompareSettings = {
  prompt: '',
  trainingFormat: true,
  maxNewTokens: 48,
  temperature: 0,
  topK: 0,
  topP: 1,
  seed: 1,
  strength: 1,
};

export const idleSide = (): SideState => ({ phase: 'idle', outcome: null, error: null });

export const emptyStream = (): StreamState => ({ base: '', tuned: '', baseTokens: 0, tunedTokens: 0 });

export function idlePrompt(runs = 0): PromptState {
  return { phase: 'idle', sentPrompt: '', adapter: null, strength: 1, used: null, base: idleSide(), tuned: idleSide(), stopped: false, error: null, runs };
}

export function initialCompare(): CompareSlice {
  return {
    settings: { ...DEFAULT_COMPARE_SETTINGS },
    prompt: idlePrompt(),
    stream: emptyStream(),
    heldout: { phase: 'idle', startedAt: null, progress: null, result: null, resultRunName: null, error: null, cancelled: null },
    preferences: initialPreferences(),
  };
}

export const idleSamples = (forRun = 0): TwoSamplesState => ({ phase: 'idle', forRun, seeds: null, temperature: null, texts: null, error: null });

export function initialPreferences(): PreferencesState {
  return { runId: null, phase: 'idle', list: [], error: null, marks: {}, samples: idleSamples(), dpo: { phase: 'idle', step: null, error: null } };
}

/** Temperature of the two tuned samples: the prompt box's when it samples, else this (greedy decoding gives one reply twice). */
export const TWO_SAMPLES_TEMPERATURE = 0.8;

/** The stored pair a choice makes of an item: the preferred reply is chosen, the other rejected; an edit is chosen over the tuned reply it started from. */
export function pairFor(
  item: Pick<PreferenceItem, 'base' | 'tuned'>,
  choice: PreferenceChoice,
  extra: { edited?: string; samples?: [string, string] | null } = {},
): { chosen: string; rejected: string; source: PreferenceSource } {
  switch (choice) {
    case 'base':
      return { chosen: item.base, rejected: item.tuned, source: 'base-vs-tuned' };
    case 'tuned':
      return { chosen: item.tuned, rejected: item.base, source: 'base-vs-tuned' };
    case 'edited':
      return { chosen: extra.edited ?? '', rejected: item.tuned, source: 'edited' };
    case 'sample-1':
    case 'sample-2': {
      const s = extra.samples;
      if (!s) throw new Error('no samples to choose from');
      return choice === 'sample-1' ? { chosen: s[0], rejected: s[1], source: 'two-samples' } : { chosen: s[1], rejected: s[0], source: 'two-samples' };
    }
  }
}

/** A prompt as one line of the Preferences list ("system: …  user: …" for messages). */
export function promptText(prompt: PreferencePrompt): string {
  return typeof prompt === 'string' ? prompt : prompt.map((m) => `${m.role}: ${m.content}`).join('\n');
}

/** The prompt as the user typed it, from what the prompt box sent (the training separator taken off: the pair is encoded as its run was trained). */
export function typedPrompt(sentPrompt: string): string {
  return sentPrompt.endsWith(PLAIN_SEPARATOR) ? sentPrompt.slice(0, -PLAIN_SEPARATOR.length) : sentPrompt;
}

/** The item key of a held-out row of a comparison (one pair per row, checkpoint and run). */
export function heldoutKey(runId: string, step: number, line: number): string {
  return `heldout:${runId}:${step}:${line}`;
}

export const SOURCE_LABELS: Record<PreferenceSource, string> = {
  'base-vs-tuned': 'base vs tuned',
  'two-samples': 'two tuned samples',
  edited: 'edited reply',
};

function clamp(x: number, lo: number, hi: number, fallback: number): number {
  return Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : fallback;
}

/** Settings within the bounds the worker accepts. */
export function clampSettings(s: CompareSettings, contextLength = 4096): CompareSettings {
  return {
    prompt: s.prompt,
    trainingFormat: s.trainingFormat,
    maxNewTokens: Math.floor(clamp(s.maxNewTokens, 1, Math.max(1, contextLength), DEFAULT_COMPARE_SETTINGS.maxNewTokens)),
    temperature: clamp(s.temperature, 0, 2, 0),
    topK: Math.floor(clamp(s.topK, 0, 1000, 0)),
    topP: clamp(s.topP, 0.01, 1, 1),
    seed: Math.floor(clamp(s.seed, 0, 2 ** 31 - 1, 1)),
    strength: clamp(s.strength, 0, 1, 1),
  };
}

/** What the prompt box sends: with `{prompt}\nAnswer:` when asked and the run was trained that way. */
export function promptToSend(settings: Pick<CompareSettings, 'prompt' | 'trainingFormat'>, run: Pick<RunContext, 'template'> | null): string {
  if (!settings.trainingFormat || !run || run.template === 'chat-template') return settings.prompt;
  return settings.prompt + PLAIN_SEPARATOR;
}

/** Whether the prompt box and the held-out table can run now (and if not, why). */
export function compareBlocker(s: BlockerInput): ProtocolError | null {
  const model = s.model.summary;
  const selection = selectedCheckpoint(s);
  const c = s.selectedRun;
  if (!model) return pageError('NO_MODEL', 'No model is loaded.', 'Load a model first (Model panel).');
  if (!selection) return pageError('NO_ADAPTER', 'No run or checkpoint is selected.', 'Train a run, or pick a checkpoint in the timeline (or a run under Runs).');
  if (c.phase === 'error' && c.error) return c.error;
  if (!c.run) return pageError('NO_ADAPTER', 'Reading the selected run…');
  return unusable(c.run, selection, model);
}

/** "exact match: base 3% → tuned 94%"; loss: the mean per-example loss (null when no example could be scored). */
export function formatTotals(t: CompareResult['totals']): { exact: string; overlap: string; loss: string | null; ppl?: string } {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const loss = (x: number | null) => (x === null ? '–' : x.toFixed(3));
  return {
    exact: `exact match: base ${pct(t.base.exact)} → tuned ${pct(t.tuned.exact)}`,
    overlap: `token overlap: base ${t.base.overlap.toFixed(2)} → tuned ${t.tuned.overlap.toFixed(2)}`,
    loss: t.base.loss === null && t.tuned.loss === null ? null : `mean loss: base ${loss(t.base.loss)} → tuned ${loss(t.tuned.loss)}`,
    // Plain text only: the held-out perplexity.
    ...(t.ppl ? { ppl: `held-out perplexity: base ${t.ppl.base.toFixed(2)} → tuned ${t.ppl.tuned.toFixed(2)}` } : {}),
  };
}
