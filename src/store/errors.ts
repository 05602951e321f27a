// The page's one way to hold a failure: everything a request or a page check throws becomes a
// ProtocolError (code, message, hint), what the panels' error notices show.
import { RequestError } from '../protocol/client';
import type { ProtocolError } from '../protocol/messages';

/** Any failure as a ProtocolError: a worker's answer, an error made on the page (`pageError`), or anything else. */
export function asProtocolError(e: unknown): ProtocolError {
  if (e instanceof RequestError) return { code: e.code, message: e.message, hint: e.hint, details: e.details };
  const p = e as Partial<ProtocolError> | null;
  if (p && typeof p === 'object' && typeof p.code === 'string' && typeof p.message === 'string') return { code: p.code, message: p.message, hint: p.hint, details: p.details };
  return { code: 'INTERNAL', message: (e as Error)?.message ?? String(e), hint: 'Reload the page and try again. If it happens again, try another backend.' };
}

/** An error made on the page (not by the worker). */
export function pageError(code: ProtocolError['code'], message: string, hint?: string): ProtocolError {
  return hint ? { code, message, hint } : { code, message };
}
