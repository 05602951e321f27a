// Errors the worker answers with: every failure becomes a ProtocolError with a code the UI can act on
// and, where the user can do something about it, a hint written for them.
import { BackendError } from '../model/backend';
import { ModelLoadError } from '../model/types';
import { SourceError } from '../io/source';
import { DataReadError } from '../data/source';
import { LoraError } from '../lora/adapter';
import { isQuotaError, StorageError, StorageFullError } from '../storage/errors';
import { TrainingError } from '../train/loop';
import type { ErrorCode, ErrorDetails, ProtocolError } from '../protocol/messages';

/** A failure that is already a protocol error (code, message, hint, details). */
export class RequestFailure extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

export function fail(code: ErrorCode, message: string, hint?: string, details?: ErrorDetails): RequestFailure {
  return new RequestFailure({ code, message, ...(hint ? { hint } : {}), ...(details ? { details } : {}) });
}

function hintFor(code: ProtocolError['code']): string | undefined {
  switch (code) {
    case 'MISSING_FILE':
      return 'Point at a Hugging Face model folder: it needs config.json, tokenizer.json and model.safetensors.';
    case 'UNSUPPORTED_MODEL':
      return 'tabtune loads Llama-family and GPT-2 models in Hugging Face format.';
    case 'NETWORK':
      return 'Check the address and your connection.';
    default:
      return undefined;
  }
}

function isAbort(e: unknown): boolean {
  return !!e && typeof e === 'object' && (e as { name?: unknown }).name === 'AbortError';
}

/** Turns whatever was thrown into an error the UI can show, with a hint for the user. */
export function toProtocolError(e: unknown, details?: ErrorDetails): ProtocolError {
  const base = baseError(e);
  if (!details) return base;
  return { ...base, details: { ...details, ...base.details } };
}

function baseError(e: unknown): ProtocolError {
  if (e instanceof RequestFailure) return e.error;
  if (e instanceof ModelLoadError) return { code: e.code, message: e.message, hint: e.hint ?? hintFor(e.code) };
  if (e instanceof SourceError) {
    return { code: 'NETWORK', message: e.message, hint: 'Check the address and that the server allows this page to read it (CORS, and Cross-Origin-Resource-Policy for cross-origin files).' };
  }
  if (e instanceof BackendError) {
    return { code: 'BACKEND_UNAVAILABLE', message: e.message, hint: 'Pick another backend ("auto" picks the fastest one that works).' };
  }
  if (e instanceof TrainingError) {
    if (e.code === 'NON_FINITE_LOSS') {
      return { code: 'NON_FINITE_LOSS', message: e.message, hint: e.hint ?? 'Lower the learning rate, then resume from the last good checkpoint.' };
    }
    return { code: 'BAD_DATASET', message: e.message, hint: e.hint ?? 'Add valid records to the dataset.' };
  }
  if (e instanceof StorageFullError) {
    return { code: 'QUOTA_EXCEEDED', message: e.message, hint: e.hint, details: { suggestions: e.suggestions } };
  }
  if (e instanceof StorageError) {
    switch (e.code) {
      case 'QUOTA_EXCEEDED':
        return { code: 'QUOTA_EXCEEDED', message: e.message, hint: e.hint ?? 'Delete old runs, checkpoints or datasets to free space.' };
      case 'CHECKPOINT_CORRUPT':
        return { code: 'CHECKPOINT_CORRUPT', message: e.message, hint: e.hint };
      case 'DATASET_CORRUPT':
        return { code: 'BAD_DATASET', message: e.message, hint: e.hint ?? 'Delete it and add the file again.' };
      case 'NOT_FOUND':
        return { code: 'NOT_FOUND', message: e.message, hint: e.hint };
      case 'INVALID_INPUT':
        return { code: 'BAD_REQUEST', message: e.message, hint: e.hint };
      default:
        return { code: 'STORAGE', message: e.message, hint: e.hint ?? 'Try again; if it keeps failing, reload the page.' };
    }
  }
  if (e instanceof DataReadError) return { code: 'BAD_DATASET', message: e.message, hint: 'Pick the file again: it could not be read (moved, deleted, or not allowed).' };
  if (e instanceof LoraError) return { code: 'BAD_REQUEST', message: e.message, hint: 'Check the LoRA settings (rank, alpha, dropout, target modules).' };
  if (isAbort(e)) return { code: 'CANCELLED', message: 'Cancelled.' };
  if (isQuotaError(e)) {
    return { code: 'QUOTA_EXCEEDED', message: `Storage is full: ${(e as Error).message || 'the browser refused a write'}.`, hint: 'Delete old runs, checkpoints or datasets to free space, then try again.' };
  }
  const err = e as Error;
  return { code: 'INTERNAL', message: err?.message ?? String(e) };
}
