// Preference pairs collected in the compare view, stored with their run (pref/<runId>/<id>, one JSON record
// each): the prompt, the preferred (chosen) and the other (rejected) reply, the checkpoint the replies came
// from and how the pair was made. Listed oldest first, edited, deleted; deleting the run deletes them
// (TabtuneStore.deleteRun), and garbage collection removes those of runs that are gone. A run's pairs
// change only under its "prefs:<runId>" lock.
//
// preferencesToJsonl writes them as DPO data, one {"prompt","chosen","rejected"} object a line: exactly
// what the dataset doctor reads as preference-jsonl (src/data/formats.ts).

import type { Message } from '../data/types';
import type { JsonValue } from './backend';
import type { GcResult, StoreContext } from './context';
import { StorageError } from './errors';
import { checkId, checkStep, keyId, storageKeys } from './keys';
import type { RunsRepository } from './runs';

/** How a pair was made: base vs tuned marked, one of two tuned samples (different seeds) marked, or a reply edited into a better one. */
export type PreferenceSource = 'base-vs-tuned' | 'two-samples' | 'edited';
export const PREFERENCE_SOURCES: readonly PreferenceSource[] = ['base-vs-tuned', 'two-samples', 'edited'];

/** A prompt as typed (one user turn), or the conversation before the reply. */
export type PreferencePrompt = string | Pick<Message, 'role' | 'content'>[];

export interface PreferencePair {
  id: string;
  runId: string;
  /** The checkpoint of the run the replies were generated with. */
  step: number;
  prompt: PreferencePrompt;
  chosen: string;
  rejected: string;
  source: PreferenceSource;
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
}

export type NewPreference = Pick<PreferencePair, 'runId' | 'step' | 'prompt' | 'chosen' | 'rejected' | 'source'>;
export type PreferencePatch = Partial<Pick<PreferencePair, 'prompt' | 'chosen' | 'rejected'>>;

const ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];
const MAX_TEXT = 100_000;

function invalid(message: string): StorageError {
  return new StorageError('INVALID_INPUT', message);
}

/** The prompt, checked: non-empty text, or a non-empty list of {role, content} with a user turn. */
export function checkPreferencePrompt(prompt: unknown): PreferencePrompt {
  if (typeof prompt === 'string') {
    if (!prompt.trim()) throw invalid('the prompt of a preference is empty');
    if (prompt.length > MAX_TEXT) throw invalid(`the prompt of a preference is longer than ${MAX_TEXT} characters`);
    return prompt;
  }
  if (!Array.isArray(prompt) || prompt.length === 0) throw invalid('the prompt of a preference must be text or a non-empty list of messages');
  const out = prompt.map((m, i) => {
    const msg = m as { role?: unknown; content?: unknown } | null;
    if (!msg || typeof msg !== 'object' || typeof msg.role !== 'string' || !ROLES.includes(msg.role) || typeof msg.content !== 'string') {
      throw invalid(`prompt message ${i + 1} must be {role: system|user|assistant|tool, content: text}`);
    }
    return { role: msg.role as Message['role'], content: msg.content };
  });
  if (!out.some((m) => m.role === 'user')) throw invalid('the prompt of a preference has no user message');
  return out;
}

function checkReply(v: unknown, which: 'chosen' | 'rejected'): string {
  if (typeof v !== 'string') throw invalid(`the ${which} reply must be text`);
  if (v.length > MAX_TEXT) throw invalid(`the ${which} reply is longer than ${MAX_TEXT} characters`);
  return v;
}

/** Checks a pair's replies together: a pair whose two replies are the same teaches nothing (the doctor refuses it too). */
function checkReplies(chosen: unknown, rejected: unknown): { chosen: string; rejected: string } {
  const c = checkReply(chosen, 'chosen');
  const r = checkReply(rejected, 'rejected');
  if (c === r) throw invalid('the chosen and the rejected reply are identical: nothing to prefer');
  return { chosen: c, rejected: r };
}

export class PreferencesRepository {
  /** createdAt of the last pair this store added: pairs added within one millisecond still list in the order they were made. */
  private lastCreatedAt = 0;

  constructor(
    private readonly ctx: StoreContext,
    private readonly runs: RunsRepository,
  ) {}

  /** Stores a new pair of an existing run; returns it with its id and times. */
  async add(input: NewPreference): Promise<PreferencePair> {
    const runId = checkId(input.runId, 'run');
    const step = checkStep(input.step);
    const prompt = checkPreferencePrompt(input.prompt);
    const { chosen, rejected } = checkReplies(input.chosen, input.rejected);
    if (!PREFERENCE_SOURCES.includes(input.source)) throw invalid(`unknown preference source ${JSON.stringify(input.source)}`);
    const run = await this.runs.get(runId);
    if (!run) throw new StorageError('NOT_FOUND', `no run ${runId}`);
    return this.ctx.withLock(`prefs:${runId}`, async () => {
      const now = Math.max(this.ctx.now(), this.lastCreatedAt + 1);
      this.lastCreatedAt = now;
      const pair: PreferencePair = { id: this.ctx.newId(), runId, step, prompt, chosen, rejected, source: input.source, createdAt: now, updatedAt: now };
      await this.ctx.guardWrite(`a preference of run "${run.name}"`, 0, runId, () => this.ctx.backend.set(storageKeys.preference(runId, pair.id), pair as unknown as JsonValue));
      return pair;
    });
  }

  async get(runId: string, id: string): Promise<PreferencePair | null> {
    return ((await this.ctx.backend.get(storageKeys.preference(checkId(runId, 'run'), checkId(id, 'preference')))) as unknown as PreferencePair | undefined) ?? null;
  }

  /** The run's pairs, oldest first (by createdAt, which this store keeps increasing). */
  async list(runId: string): Promise<PreferencePair[]> {
    const { backend } = this.ctx;
    const ks = await backend.keys(storageKeys.preferencePrefix(checkId(runId, 'run')));
    const pairs = (await backend.getMany(ks)).filter(Boolean) as unknown as PreferencePair[];
    return pairs.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** How many pairs each run has (runs without any are absent). */
  async counts(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const k of await this.ctx.backend.keys(storageKeys.allPreferencesPrefix)) out.set(keyId(k), (out.get(keyId(k)) ?? 0) + 1);
    return out;
  }

  /** Changes a pair's prompt or replies (the checks of `add` apply to the result). */
  async update(runId: string, id: string, patch: PreferencePatch): Promise<PreferencePair> {
    return this.ctx.withLock(`prefs:${runId}`, async () => {
      const was = await this.get(runId, id);
      if (!was) throw new StorageError('NOT_FOUND', `no preference ${id} in run ${runId}`);
      const prompt = patch.prompt !== undefined ? checkPreferencePrompt(patch.prompt) : was.prompt;
      const { chosen, rejected } = checkReplies(patch.chosen ?? was.chosen, patch.rejected ?? was.rejected);
      const next: PreferencePair = { ...was, prompt, chosen, rejected, updatedAt: this.ctx.now() };
      await this.ctx.guardWrite('a preference', 0, runId, () => this.ctx.backend.set(storageKeys.preference(runId, id), next as unknown as JsonValue));
      return next;
    });
  }

  /** Deletes one pair; false when there was none. */
  async delete(runId: string, id: string): Promise<boolean> {
    return this.ctx.withLock(`prefs:${runId}`, async () => {
      const existed = !!(await this.get(runId, id));
      await this.ctx.backend.del(storageKeys.preference(runId, id));
      return existed;
    });
  }

  /** Deletes every pair of a run (the run is being deleted). */
  async deleteAllOf(runId: string): Promise<number> {
    return this.ctx.withLock(`prefs:${runId}`, async () => {
      const ks = await this.ctx.backend.keys(storageKeys.preferencePrefix(checkId(runId, 'run')));
      await this.ctx.backend.delMany(ks);
      return ks.length;
    });
  }

  /** Deletes the pairs of runs that no longer exist (a deleteRun interrupted half way). */
  async collectGarbage(): Promise<GcResult> {
    const { backend } = this.ctx;
    const runIds = new Set((await backend.keys(storageKeys.runPrefix)).map(keyId));
    const orphans = (await backend.keys(storageKeys.allPreferencesPrefix)).filter((k) => !runIds.has(keyId(k)));
    if (orphans.length) await backend.delMany(orphans);
    return { removedKeys: orphans.length };
  }
}

/** One line of DPO data: the prompt (text, or the messages before the reply) and the two replies. */
export function preferenceJsonLine(p: Pick<PreferencePair, 'prompt' | 'chosen' | 'rejected'>): string {
  return JSON.stringify({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected });
}

/** Pairs as preference JSONL (one {"prompt","chosen","rejected"} a line, a newline after each). */
export function preferencesToJsonl(pairs: readonly Pick<PreferencePair, 'prompt' | 'chosen' | 'rejected'>[]): string {
  return pairs.map((p) => preferenceJsonLine(p) + '\n').join('');
}
