// The page's state: one zustand vanilla store made of slices, created outside React so the protocol
// layer (src/app) can write to it. Components read it with selectors; streamed tokens are read
// through `subscribe` so React does not re-render on every token.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  BackendPreference,
  BackendStatus,
  GenerateOutcome,
  ModelLocation,
  ModelSummary,
  ProtocolError,
} from '../protocol/messages';

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

export interface BackendSlice {
  preference: BackendPreference;
  /** Threads asked for the WASM backend (null: the library's default). */
  wasmThreads: number | null;
  phase: Phase;
  status: BackendStatus | null;
  error: ProtocolError | null;
}

export interface CatalogEntry {
  name: string;
  url: string;
  origin: 'bundled' | 'reference' | string;
}

export interface LoadProgress {
  file: string;
  loaded: number;
  total: number | null;
  fraction: number;
}

export interface ModelSlice {
  /** What the server offers under /models/ (index.json). */
  catalog: { phase: Phase; entries: CatalogEntry[]; hint: string | null; error: ProtocolError | null };
  /** 'idle' with no summary and an empty catalog = no model available. */
  phase: Phase;
  location: ModelLocation | null;
  /** What the user sees for the model being loaded ("stories260K", a URL). */
  locationLabel: string | null;
  progress: LoadProgress | null;
  summary: ModelSummary | null;
  error: ProtocolError | null;
}

export interface GenerationSlice {
  phase: Phase;
  /** Request id of the generation in flight (what Stop cancels). */
  requestId: number | null;
  prompt: string;
  /** Continuation streamed so far (the prompt not included). */
  text: string;
  tokenCount: number;
  outcome: GenerateOutcome | null;
  error: ProtocolError | null;
}

export interface SettingsSlice {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
}

export interface AppState {
  backend: BackendSlice;
  model: ModelSlice;
  generation: GenerationSlice;
  settings: SettingsSlice;
}

export type AppStore = StoreApi<AppState>;

export const DEFAULT_SETTINGS: SettingsSlice = { prompt: 'Once upon a time', maxNewTokens: 64, temperature: 0 };

export function initialState(overrides: { backend?: Partial<BackendSlice>; settings?: Partial<SettingsSlice> } = {}): AppState {
  return {
    backend: { preference: 'auto', wasmThreads: null, phase: 'idle', status: null, error: null, ...overrides.backend },
    model: {
      catalog: { phase: 'idle', entries: [], hint: null, error: null },
      phase: 'idle',
      location: null,
      locationLabel: null,
      progress: null,
      summary: null,
      error: null,
    },
    generation: { phase: 'idle', requestId: null, prompt: '', text: '', tokenCount: 0, outcome: null, error: null },
    settings: { ...DEFAULT_SETTINGS, ...overrides.settings },
  };
}

export function createAppStore(state: AppState = initialState()): AppStore {
  return createStore<AppState>()(() => state);
}

/** Shallow-merges `patch` into one slice. */
export function patch<K extends keyof AppState>(store: AppStore, slice: K, update: Partial<AppState[K]>): void {
  store.setState((s) => ({ [slice]: { ...s[slice], ...update } }) as Pick<AppState, K>);
}

/** True when the catalog is known and offers nothing, and no model was loaded another way. */
export function noModelAvailable(s: AppState): boolean {
  return s.model.catalog.phase === 'ready' && s.model.catalog.entries.length === 0 && !s.model.summary && s.model.phase !== 'busy';
}

export function canGenerate(s: AppState): boolean {
  return s.model.phase === 'ready' && s.generation.phase !== 'busy';
}
