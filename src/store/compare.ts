// The Compare slice: base vs tuned (the selected checkpoint) on a prompt, streamed side by side, and on
// every held-out example of the run. Actions: src/app/compare.ts. Streamed text goes into `stream`,
// which the panel reads through `subscribe` (no React render per token).
import { PLAIN_SEPARATOR } from '../data/encode';
import type { AdapterInfo, CompareResult, CompareRow, GenerateOutcome, ProtocolError } from '../protocol/messages';
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

export interface CompareSlice {
  settings: CompareSettings;
  prompt: PromptState;
  stream: StreamState;
  heldout: HeldoutState;
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
  };
}

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
export function formatTotals(t: CompareResult['totals']): { exact: string; overlap: string; loss: string | null } {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const loss = (x: number | null) => (x === null ? '–' : x.toFixed(3));
  return {
    exact: `exact match: base ${pct(t.base.exact)} → tuned ${pct(t.tuned.exact)}`,
    overlap: `token overlap: base ${t.base.overlap.toFixed(2)} → tuned ${t.tuned.overlap.toFixed(2)}`,
    loss: t.base.loss === null && t.tuned.loss === null ? null : `mean loss: base ${loss(t.base.loss)} → tuned ${loss(t.tuned.loss)}`,
  };
}
