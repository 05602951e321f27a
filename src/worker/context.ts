// What the worker's services share (handler.ts makes it): the channel to the page, the store, the
// loaded base model and the model queue, plus the few helpers every service needs of them.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelSource } from '../io/source';
import type { LanguageModel } from '../model/load';
import type { TabtuneStore } from '../storage/index';
import type { EventMessage, ModelLocation } from '../protocol/messages';
import { fail } from './errors';

/** The loaded base model and where it came from. */
export interface ModelContext {
  model: LanguageModel;
  source: ModelSource;
  location: ModelLocation;
}

export interface WorkerContext {
  /** Sends an event (progress, metrics…) to the page. */
  post(m: EventMessage): void;
  /** The store (IndexedDB in the browser), created on first use. */
  store(): Promise<TabtuneStore>;
  /** The loaded model, or null. */
  model(): ModelContext | null;
  /** Runs a task on the handler's model queue (one at a time, in order; training steps are such tasks). */
  serialModel<T>(task: () => Promise<T>): Promise<T>;
}

/** The loaded model, or NO_MODEL. */
export function requireModel(ctx: Pick<WorkerContext, 'model'>): ModelContext {
  const m = ctx.model();
  if (!m) throw fail('NO_MODEL', 'No model is loaded.', 'Load a model first.');
  return m;
}

/**
 * WebGPU reads asynchronously (see Trainer.trainStepAsync): its synchronous reads destroy the device in
 * Chromium after a few dozen. Elsewhere the synchronous methods run.
 */
export function asyncReads(): boolean {
  return tf.getBackend() === 'webgpu';
}
