// Record shapes: recognizes what one JSON object is (prompt/completion, input/output, Alpaca, OpenAI
// chat, ShareGPT, preference/DPO) and normalizes it into a DataRecord, listing every problem with it.
//
//   prompt-completion  {prompt, completion}                          -> pair
//   input-output       {input, output}                               -> pair
//   alpaca             {instruction, input?, output, system?, history?} -> pair (chat when system/history)
//   openai-chat        {messages: [{role, content}]}                 -> chat
//   sharegpt           {conversations: [{from, value}], system?}     -> chat
//   preference         {prompt?, chosen, rejected} in any of the common layouts (plain strings, HH-RLHF
//                      transcripts, message lists, ShareGPT context + {from, value} replies) -> preference
import type { RecordProblem } from './issues';
import { CONTAINERS, SCHEMAS, type Container, type DataRecord, type Message, type Role, type Schema } from './types';

type Obj = Record<string, unknown>;

export const SCHEMA_LABELS: Record<Schema, string> = {
  'prompt-completion': '{prompt, completion}',
  'input-output': '{input, output}',
  alpaca: 'Alpaca {instruction, input, output}',
  'openai-chat': 'OpenAI chat {messages: [{role, content}]}',
  sharegpt: 'ShareGPT {conversations: [{from, value}]}',
  preference: 'preference {prompt, chosen, rejected}',
  table: 'CSV/TSV columns',
};

/** Keys each schema reads; anything else (except ids) is reported once per file as ignored. */
export const SCHEMA_KEYS: Record<Schema, readonly string[]> = {
  'prompt-completion': ['prompt', 'completion'],
  'input-output': ['input', 'output'],
  alpaca: ['instruction', 'input', 'output', 'system', 'history'],
  'openai-chat': ['messages'],
  sharegpt: ['conversations', 'conversation', 'system'],
  preference: ['prompt', 'chosen', 'rejected', 'messages', 'conversations', 'system'],
  table: [],
};
export const SILENT_KEYS: ReadonlySet<string> = new Set(['id', 'idx', 'index', 'uuid', '_id']);

/** Which schema one record has, from its keys; null when it is none of them. */
export function classify(obj: Obj): Schema | null {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(obj, k);
  if (has('chosen') && has('rejected')) return 'preference';
  if (has('messages')) return 'openai-chat';
  if (has('conversations') || has('conversation')) return 'sharegpt';
  if (has('instruction')) return 'alpaca';
  if (has('prompt') || has('completion')) return 'prompt-completion';
  if (has('input') || has('output')) return 'input-output';
  return null;
}

/** `jsonl`, `alpaca`, `alpaca-json`, `chat`, `dpo`, ... -> the parts of a format the user forces. */
export function parseFormatOverride(s: string): { container?: Container; schema?: Schema } {
  const v = s.trim().toLowerCase();
  const aliases: Record<string, Schema> = {
    chat: 'openai-chat',
    openai: 'openai-chat',
    messages: 'openai-chat',
    dpo: 'preference',
    pair: 'prompt-completion',
    'prompt-completion': 'prompt-completion',
    completion: 'prompt-completion',
    csv: 'table',
    tsv: 'table',
  };
  if ((CONTAINERS as readonly string[]).includes(v)) return { container: v as Container, ...(v === 'csv' || v === 'tsv' ? { schema: 'table' as Schema } : {}) };
  if ((SCHEMAS as readonly string[]).includes(v)) return { schema: v as Schema };
  if (aliases[v]) return { schema: aliases[v] };
  const m = /^(.*)-(jsonl|json|ndjson)$/.exec(v);
  if (m) {
    const inner = parseFormatOverride(m[1]!);
    if (inner.schema) return { schema: inner.schema, container: m[2] === 'ndjson' ? 'jsonl' : (m[2] as Container) };
  }
  throw new Error(`unknown format "${s}": use one of ${[...CONTAINERS, ...SCHEMAS.filter((x) => x !== 'table'), 'chat', 'dpo'].join(', ')} (or SCHEMA-json / SCHEMA-jsonl)`);
}

/** The name reported for a format: `alpaca-json`, `openai-chat-jsonl`, `csv`, ... */
export function formatName(container: Container, schema: Schema | null): string {
  if (container === 'csv' || container === 'tsv') return container;
  return schema ? `${schema}-${container}` : container;
}

/** Each container in plain words, for people (formatName is the id for tools and --format). */
export const CONTAINER_WORDS: Record<Container, string> = {
  jsonl: 'JSON Lines',
  json: 'JSON array',
  csv: 'CSV table (comma-separated columns)',
  tsv: 'TSV table (tab-separated columns)',
  text: 'Plain text',
};

/** Each schema in plain words (what one record holds). */
export const SCHEMA_WORDS: Record<Schema, string> = {
  'prompt-completion': 'prompt/completion pairs',
  'input-output': 'input/output pairs',
  alpaca: 'Alpaca instructions (instruction, input, output)',
  'openai-chat': 'chat conversations (OpenAI "messages")',
  sharegpt: 'chat conversations (ShareGPT "conversations")',
  preference: 'preference pairs (a chosen and a rejected reply)',
  table: 'columns',
};

/** A format in plain words: `JSON Lines, prompt/completion pairs`, `CSV table (comma-separated columns)`, `Plain text`. */
export function formatWords(container: Container | null, schema: Schema | null): string {
  if (container === null) return 'not recognized';
  if (container === 'csv' || container === 'tsv' || container === 'text' || schema === null || schema === 'table') return CONTAINER_WORDS[container];
  return `${CONTAINER_WORDS[container]}, ${SCHEMA_WORDS[schema]}`;
}

// ---------------------------------------------------------------------------------------------------

export interface Normalized {
  record: DataRecord | null;
  problems: RecordProblem[];
}

const err = (code: RecordProblem['code'], message: string): RecordProblem => ({ severity: 'error', code, message });
const warn = (code: RecordProblem['code'], message: string): RecordProblem => ({ severity: 'warning', code, message });

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** A required non-empty string field; pushes a problem and returns null when it is not one. */
function reqString(obj: Obj, key: string, problems: RecordProblem[], opts: { allowEmpty?: boolean } = {}): string | null {
  if (!(key in obj) || obj[key] === undefined) {
    problems.push(err('missing-field', `missing field "${key}"`));
    return null;
  }
  const v = obj[key];
  if (typeof v !== 'string') {
    problems.push(err('wrong-type', `"${key}" must be a string, got ${typeName(v)}`));
    return null;
  }
  if (!opts.allowEmpty && v.trim() === '') {
    problems.push(err('empty-field', `"${key}" is empty`));
    return null;
  }
  return v;
}

/** An optional string field: undefined/null -> '', a non-string -> problem. */
function optString(obj: Obj, key: string, problems: RecordProblem[]): string | null {
  const v = obj[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') {
    problems.push(err('wrong-type', `"${key}" must be a string, got ${typeName(v)}`));
    return null;
  }
  return v;
}

const ROLE_ALIASES: Record<string, Role> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  human: 'user',
  assistant: 'assistant',
  gpt: 'assistant',
  chatgpt: 'assistant',
  bard: 'assistant',
  bing: 'assistant',
  model: 'assistant',
  function_call: 'assistant', // LLaMA-Factory: the assistant's tool call (trained like any reply)
  tool: 'tool',
  function: 'tool',
  observation: 'tool', // LLaMA-Factory: the tool's answer
  ipython: 'tool',
};
export const KNOWN_ROLES = Object.keys(ROLE_ALIASES);

/** Content of a message: a string, null with tool calls, or OpenAI content parts ({type: 'text', text}). */
function messageContent(m: Obj, key: string, where: string, problems: RecordProblem[]): string | null {
  const v = m[key];
  if (typeof v === 'string') return v;
  if ((v === null || v === undefined) && Array.isArray(m.tool_calls)) return JSON.stringify(m.tool_calls);
  if (v === undefined) {
    problems.push(err('missing-field', `${where} has no "${key}"`));
    return null;
  }
  if (Array.isArray(v)) {
    const texts: string[] = [];
    for (const part of v) {
      if (part && typeof part === 'object' && (part as Obj).type === 'text' && typeof (part as Obj).text === 'string') texts.push((part as Obj).text as string);
      else {
        const t = part && typeof part === 'object' ? String((part as Obj).type ?? 'unknown') : typeName(part);
        problems.push(err('unsupported-content', `${where}: content part of type "${t}" is not supported (text only)`));
        return null;
      }
    }
    return texts.join('');
  }
  problems.push(err('wrong-type', `${where}: "${key}" must be a string, got ${typeName(v)}`));
  return null;
}

/** One message object ({role, content} or {from, value}); null + problems when it is not usable. */
function toMessage(raw: unknown, index: number, problems: RecordProblem[]): Message | null {
  const where = `message ${index + 1}`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(err('wrong-type', `${where} must be an object, got ${typeName(raw)}`));
    return null;
  }
  const m = raw as Obj;
  const roleKey = 'role' in m ? 'role' : 'from' in m ? 'from' : null;
  const contentKey = 'content' in m || !('value' in m) ? 'content' : 'value';
  if (roleKey === null) {
    problems.push(err('missing-field', `${where} has no "role" (or "from")`));
    return null;
  }
  const rawRole = m[roleKey];
  if (typeof rawRole !== 'string') {
    problems.push(err('wrong-type', `${where}: "${roleKey}" must be a string, got ${typeName(rawRole)}`));
    return null;
  }
  const role = ROLE_ALIASES[rawRole.trim().toLowerCase()];
  if (!role) {
    problems.push(err('unknown-role', `${where} has unknown role "${rawRole}" (known: system, user, assistant, tool; ShareGPT human, gpt, function_call, observation)`));
    return null;
  }
  const content = messageContent(m, contentKey, `${where} (${rawRole})`, problems);
  if (content === null) return null;
  const msg: Message = { role, content };
  if (m.weight === 0 || m.weight === 1) msg.train = m.weight === 1;
  return msg;
}

/**
 * Checks a conversation: content present, at least one user and one assistant turn, and something to
 * learn at the end. Trailing non-assistant turns are dropped (warning); empty system messages too.
 */
function checkConversation(input: Message[], problems: RecordProblem[]): Message[] | null {
  if (input.length === 0) {
    problems.push(err('empty-field', 'the conversation has no messages'));
    return null;
  }
  const messages: Message[] = [];
  let bad = false;
  input.forEach((m, i) => {
    if (m.content.trim() === '') {
      if (m.role === 'system') problems.push(warn('empty-field', `message ${i + 1} (system) is empty: dropped`));
      else {
        problems.push(err('empty-field', `message ${i + 1} (${m.role}) is empty`));
        bad = true;
      }
      return;
    }
    messages.push(m);
  });
  if (bad) return null;
  if (!messages.some((m) => m.role === 'assistant')) {
    problems.push(err('no-assistant', 'no assistant message: nothing to learn'));
    return null;
  }
  if (!messages.some((m) => m.role === 'user')) {
    problems.push(err('no-user', 'no user message (only ' + [...new Set(messages.map((m) => m.role))].join(' and ') + ')'));
    return null;
  }
  let last = messages.length - 1;
  while (messages[last]!.role !== 'assistant') last--;
  if (last < messages.length - 1) {
    const dropped = messages.length - 1 - last;
    const endRole = messages[messages.length - 1]!.role;
    problems.push(warn('ends-on-user', `the conversation ends on a ${endRole} turn: nothing to learn after it (${dropped} trailing turn${dropped > 1 ? 's' : ''} dropped)`));
  }
  return messages.slice(0, last + 1);
}

function messageList(v: unknown, key: string, problems: RecordProblem[]): Message[] | null {
  if (v === undefined) {
    problems.push(err('missing-field', `missing field "${key}"`));
    return null;
  }
  if (!Array.isArray(v)) {
    problems.push(err('wrong-type', `"${key}" must be a list of messages, got ${typeName(v)}`));
    return null;
  }
  const out: Message[] = [];
  let ok = true;
  v.forEach((raw, i) => {
    const m = toMessage(raw, i, problems);
    if (m) out.push(m);
    else ok = false;
  });
  return ok ? out : null;
}

function systemPrefix(obj: Obj, problems: RecordProblem[]): Message[] {
  const s = optString(obj, 'system', problems);
  return s ? [{ role: 'system', content: s }] : [];
}

/** HH-RLHF transcript "\n\nHuman: ...\n\nAssistant: ..." -> messages; null when the text is not one. */
export function parseTranscript(text: string): Message[] | null {
  const re = /(?:^|\n\n)(Human|Assistant):[ ]?/g;
  const marks: { role: Role; at: number; body: number }[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) marks.push({ role: m[1] === 'Human' ? 'user' : 'assistant', at: m.index, body: m.index + m[0].length });
  if (marks.length === 0 || text.slice(0, marks[0]!.at).trim() !== '') return null;
  return marks.map((mk, i) => ({ role: mk.role, content: text.slice(mk.body, i + 1 < marks.length ? marks[i + 1]!.at : text.length).trim() }));
}

const sameMessages = (a: Message[], b: Message[]) => a.length === b.length && a.every((m, i) => m.role === b[i]!.role && m.content === b[i]!.content);

/** chosen/rejected in any layout -> [context, final assistant reply]. */
function preferenceSide(v: unknown, key: string, problems: RecordProblem[]): { context: Message[]; reply: string } | null {
  if (typeof v === 'string') {
    const t = parseTranscript(v);
    if (t && t.length > 1) {
      if (t[t.length - 1]!.role !== 'assistant') {
        problems.push(err('structure', `"${key}" transcript does not end with an Assistant turn`));
        return null;
      }
      return { context: t.slice(0, -1), reply: t[t.length - 1]!.content };
    }
    return { context: [], reply: v };
  }
  if (Array.isArray(v)) {
    const list = messageList(v, key, problems);
    if (!list) return null;
    if (list.length === 0 || list[list.length - 1]!.role !== 'assistant') {
      problems.push(err('structure', `"${key}" must end with an assistant message`));
      return null;
    }
    return { context: list.slice(0, -1), reply: list[list.length - 1]!.content };
  }
  if (v && typeof v === 'object') {
    const m = toMessage(v, 0, problems);
    if (!m) return null;
    if (m.role !== 'assistant') {
      problems.push(err('structure', `"${key}" must be an assistant reply, got role ${m.role}`));
      return null;
    }
    return { context: [], reply: m.content };
  }
  problems.push(err(v === undefined ? 'missing-field' : 'wrong-type', v === undefined ? `missing field "${key}"` : `"${key}" must be a string, a message or a list of messages, got ${typeName(v)}`));
  return null;
}

function normalizePreference(obj: Obj, line: number, problems: RecordProblem[]): DataRecord | null {
  const chosen = preferenceSide(obj.chosen, 'chosen', problems);
  const rejected = preferenceSide(obj.rejected, 'rejected', problems);
  let prompt: Message[] | null = null;
  if (obj.prompt !== undefined) {
    if (typeof obj.prompt === 'string') prompt = obj.prompt.trim() ? [{ role: 'user', content: obj.prompt }] : null;
    else prompt = messageList(obj.prompt, 'prompt', problems);
    if (prompt === null && typeof obj.prompt === 'string') problems.push(err('empty-field', '"prompt" is empty'));
  } else if (obj.conversations !== undefined || obj.messages !== undefined) {
    const key = obj.conversations !== undefined ? 'conversations' : 'messages';
    prompt = messageList(obj[key], key, problems);
  }
  if (!chosen || !rejected) return null;
  if (prompt === null && obj.prompt === undefined && obj.conversations === undefined && obj.messages === undefined) {
    // No separate prompt: it is the shared context of chosen and rejected (HH-RLHF layout).
    if (chosen.context.length === 0) {
      problems.push(err('missing-field', 'missing field "prompt" (and chosen/rejected are not transcripts or message lists that carry it)'));
      return null;
    }
    if (!sameMessages(chosen.context, rejected.context)) problems.push(warn('structure', 'chosen and rejected have different contexts: using the one in "chosen"'));
    prompt = chosen.context;
  } else if (prompt !== null) {
    prompt = [...prompt, ...chosen.context];
  }
  if (prompt === null) return null;
  prompt = [...systemPrefix(obj, problems), ...prompt];
  if (prompt.length === 0 || !prompt.some((m) => m.role === 'user')) {
    problems.push(err('no-user', 'the preference prompt has no user message'));
    return null;
  }
  // An empty reply can be a real preference (silence over a harmful answer): a warning, not an error.
  if (chosen.reply.trim() === '') problems.push(warn('empty-field', 'the chosen reply is empty'));
  if (rejected.reply.trim() === '') problems.push(warn('empty-field', 'the rejected reply is empty'));
  if (chosen.reply === rejected.reply) {
    problems.push(err('identical-preference', 'chosen and rejected are identical: nothing to prefer'));
    return null;
  }
  return { kind: 'preference', prompt, chosen: chosen.reply, rejected: rejected.reply, line };
}

/** Normalizes one record as `schema`. Problems of severity error mean the record is not usable. */
export function normalize(value: unknown, schema: Schema, line: number): Normalized {
  const problems: RecordProblem[] = [];
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(err('not-object', `expected a JSON object, got ${typeName(value)}`));
    return { record: null, problems };
  }
  const obj = value as Obj;
  let record: DataRecord | null = null;
  switch (schema) {
    case 'prompt-completion': {
      const prompt = reqString(obj, 'prompt', problems, { allowEmpty: true });
      const completion = reqString(obj, 'completion', problems);
      if (prompt !== null && completion !== null) {
        if (prompt.trim() === '') problems.push(warn('empty-field', '"prompt" is empty: the model learns the completion with no context'));
        record = { kind: 'pair', prompt, completion, line };
      }
      break;
    }
    case 'input-output': {
      const input = reqString(obj, 'input', problems, { allowEmpty: true });
      const output = reqString(obj, 'output', problems);
      if (input !== null && output !== null) {
        if (input.trim() === '') problems.push(warn('empty-field', '"input" is empty: the model learns the output with no context'));
        record = { kind: 'pair', prompt: input, completion: output, line };
      }
      break;
    }
    case 'alpaca': {
      const instruction = reqString(obj, 'instruction', problems, { allowEmpty: true });
      const input = optString(obj, 'input', problems);
      const output = reqString(obj, 'output', problems);
      if (instruction === null || input === null || output === null) break;
      const prompt = [instruction, input].filter((s) => s.trim() !== '').join('\n');
      if (prompt === '') {
        problems.push(err('empty-field', '"instruction" and "input" are both empty'));
        break;
      }
      const system = systemPrefix(obj, problems);
      const history = obj.history;
      if (history !== undefined && history !== null && !Array.isArray(history)) {
        problems.push(err('wrong-type', `"history" must be a list of [instruction, response] pairs, got ${typeName(history)}`));
        break;
      }
      const turns: Message[] = [];
      for (const [i, h] of ((history as unknown[] | null | undefined) ?? []).entries()) {
        if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') {
          problems.push(err('wrong-type', `history[${i}] must be a pair of strings [instruction, response]`));
          return { record: null, problems };
        }
        turns.push({ role: 'user', content: h[0] }, { role: 'assistant', content: h[1] });
      }
      if (system.length || turns.length) {
        const messages = checkConversation([...system, ...turns, { role: 'user', content: prompt }, { role: 'assistant', content: output }], problems);
        if (messages) record = { kind: 'chat', messages, line };
      } else record = { kind: 'pair', prompt, completion: output, line };
      break;
    }
    case 'openai-chat':
    case 'sharegpt': {
      const key = schema === 'openai-chat' ? 'messages' : 'conversations' in obj ? 'conversations' : 'conversation';
      const list = messageList(obj[key], key, problems);
      if (!list) break;
      const messages = checkConversation([...(schema === 'sharegpt' ? systemPrefix(obj, problems) : []), ...list], problems);
      if (messages) record = { kind: 'chat', messages, line };
      break;
    }
    case 'preference':
      record = normalizePreference(obj, line, problems);
      break;
    case 'table':
      problems.push(err('unknown-shape', 'CSV rows are read by the CSV parser'));
      break;
  }
  if (problems.some((p) => p.severity === 'error')) record = null;
  return { record, problems };
}

/** The text that makes two records "the same prompt" (duplicates, overlap, split groups). */
export function promptKey(r: DataRecord): string {
  if (r.kind === 'pair') return r.prompt;
  if (r.kind === 'text') return r.text;
  if (r.kind === 'preference') return JSON.stringify(r.prompt.map((m) => [m.role, m.content]));
  let last = r.messages.length - 1;
  while (last > 0 && r.messages[last]!.role !== 'assistant') last--;
  return JSON.stringify(r.messages.slice(0, last).map((m) => [m.role, m.content]));
}

/** The whole content of a record (line excluded). */
export function recordKey(r: DataRecord): string {
  if (r.kind === 'pair') return JSON.stringify([r.prompt, r.completion]);
  if (r.kind === 'text') return JSON.stringify(['text', r.text]);
  if (r.kind === 'preference') return JSON.stringify([promptKey(r), r.chosen, r.rejected]);
  return JSON.stringify(r.messages.map((m) => [m.role, m.content, m.train]));
}
