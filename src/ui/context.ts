// What components get from the app: the store (read with selectors) and the actions they may call.
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { BackendPreference, ExportKind, ExportResult, PreferencePatch, ProtocolError, RunSummary, TrainConfig } from '../protocol/messages';
import type { CompareSettings, PreferenceChoice, PreferenceItem } from '../store/compare';
import type { AppState, AppStore, DataOptions, SettingsSlice } from '../store/store';
import type { PresetName } from '../store/training';
import type { DataFixActions } from '../app/data-fix';
import type { RunsCompareActions } from '../app/runs-compare';

export interface UiActions {
  selectBackend(preference: BackendPreference): Promise<void>;
  /**
   * Times a training step of the loaded model on each backend (time-backends); with 'auto' the faster one is
   * used. Runs by itself once per model and device after a load; `force` measures again.
   */
  measureBackends(opts?: { force?: boolean }): Promise<void>;
  /** Whether "measure again" also times a software WebGPU adapter. */
  setTimeSoftwareGpu(allow: boolean): void;
  loadCatalogModel(name: string): Promise<void>;
  /** A URL, a same-origin path or a Hugging Face id typed by the user. */
  loadFromInput(text: string): Promise<void>;
  loadFromFiles(files: File[]): Promise<void>;
  setSettings(update: Partial<SettingsSlice>): void;
  generate(): Promise<void>;
  stop(): Promise<void>;
}

/** The studio: data, training, checkpoints, runs. */
export interface StudioActions {
  loadExamples(): Promise<void>;
  /** A dropped or picked file: the dataset doctor checks it in the worker. */
  inspectFile(file: File): Promise<void>;
  /** An example dataset, with its own validation file when it has one. */
  inspectExample(id: string): Promise<void>;
  /** A separate validation file for the current dataset (null: split the validation share off again). */
  setValidationFile(file: File | null): Promise<void>;
  /** Changes how the doctor reads the dataset (format, split, length) and checks it again. */
  setDataOptions(update: Partial<DataOptions>): Promise<void>;
  choosePreset(name: PresetName): void;
  setTrainConfig(config: TrainConfig): void;
  /** General text for the forgetting probe (read from a file the user picked), or null to remove it. */
  setProbeText(file: { name: string; text: string } | null): void;
  /**
   * Where the next DPO run starts: null = the base model; a run (its checkpoints are read; without `step`, its
   * recommended, best or newest one is picked) whose adapter the run continues.
   */
  setStartFrom(runId: string | null, step?: number): Promise<void>;
  startTraining(): Promise<void>;
  /** Times one training step of the current settings on the loaded model and dataset (the estimate next to Start); once per settings that change its speed. */
  measureStep(): Promise<void>;
  pauseTraining(): Promise<void>;
  resumeTraining(): Promise<void>;
  cancelTraining(): Promise<void>;
  refreshRuns(): Promise<void>;
  /** Shows a stored run: its chart, its checkpoints; selects it. */
  openRun(runId: string): Promise<void>;
  selectCheckpoint(runId: string, step: number | null): void;
  pinCheckpoint(runId: string, step: number, pinned: boolean): Promise<void>;
  deleteCheckpoint(runId: string, step: number): Promise<void>;
  /** Continues training from an older checkpoint as a new branch (the old run stays as it is). */
  rewindTo(runId: string, step: number, name?: string): Promise<void>;
  /** Continues a stored run from its newest checkpoint (after a reload or a pause). */
  resumeRun(runId: string): Promise<void>;
  renameRun(runId: string, name: string): Promise<void>;
  deleteRun(runId: string): Promise<void>;
  /** Imports a PEFT adapter (a zip, or a picked folder's files) as a run of its own, then opens it; resolves with the worker's answer or its error. */
  importAdapter(pick: { zip?: File; files?: File[]; name?: string }): Promise<{ run: RunSummary; warnings: string[] } | { error: ProtocolError }>;
  dismissBanner(): void;
}

/** Compare: base vs the selected checkpoint. */
export interface CompareActions {
  setCompareSettings(update: Partial<CompareSettings>): void;
  /** Generates with the base model and with the selected checkpoint. Resolves when both end. */
  comparePrompt(): Promise<void>;
  /** Stops both generations. */
  stopComparePrompt(): Promise<void>;
  /** Base and tuned on every held-out example of the run. */
  compareHeldout(): Promise<void>;
  cancelHeldout(): Promise<void>;
}

/** Export: files of the selected run. */
export interface ExportActions {
  /** Asks the worker for the file; resolves with it (null on failure: the error is in the store). */
  exportFile(kind: ExportKind): Promise<ExportResult | null>;
}

/** Trade-off: the selected run's checkpoints as task vs forgetting, the path from base, what to keep. */
export interface TradeoffActions {
  /** Measures points along the path from the base model to the run's final and best checkpoints (progress, cancellable). */
  explorePath(): Promise<void>;
  cancelExplore(): Promise<void>;
  /** Stores a point of the explored path as a checkpoint of its own (a branch run), lists it and selects it. */
  applyPoint(pointId: string): Promise<void>;
  /** Selects the recommended checkpoint for Compare and Export (storing it first when it is a path point). */
  rewindToRecommended(): Promise<void>;
  /** Shows (or hides) another run trained on the same data on the chart; its checkpoints are read when it is shown. */
  setOverlayRun(runId: string, shown: boolean): Promise<void>;
}

/** Preferences from the compare view: marked pairs stored with the run, listed, exported, trained on with DPO. */
export interface PreferenceActions {
  /** Reads the selected run's stored pairs. */
  refreshPreferences(): Promise<void>;
  /** Stores the pair a choice makes of a shown prompt (replacing the item's earlier pair); `edited`: the improved reply. */
  markPreference(item: PreferenceItem, choice: PreferenceChoice, edited?: string): Promise<void>;
  /** Deletes the pair marked on a shown prompt. */
  unmarkPreference(key: string): Promise<void>;
  /** Edits a stored pair of the listed run; resolves false when it was refused (the error is in the store). */
  updatePreference(id: string, patch: PreferencePatch): Promise<boolean>;
  deletePreference(id: string): Promise<void>;
  /** Two samples of the tuned model on the prompt box's last prompt, at its seed and the next (temperature > 0). */
  sampleTwo(): Promise<void>;
  /** The listed pairs as preference JSONL (null when there are none). */
  preferencesJsonl(): { filename: string; text: string; count: number } | null;
  /** Builds a dataset of the pairs and starts a DPO run from the selected checkpoint. */
  trainDpoOnPreferences(): Promise<void>;
}

/** Report: the run report (model card) of the selected run or checkpoint. */
export interface ReportActions {
  /** Shows the report and reads it from the worker (again when the selection changes while it is shown). */
  showReport(): Promise<void>;
  hideReport(): void;
}

export interface AllActions extends UiActions, StudioActions, CompareActions, ExportActions, TradeoffActions, PreferenceActions, ReportActions, RunsCompareActions, DataFixActions {}

export interface UiContextValue {
  store: AppStore;
  actions: AllActions;
}

export const UiContext = createContext<UiContextValue | null>(null);

function useUi(): UiContextValue {
  const ui = useContext(UiContext);
  if (!ui) throw new Error('UiContext is missing: render components inside <UiContext.Provider>');
  return ui;
}

export function useActions(): AllActions {
  return useUi().actions;
}

export function useStoreApi(): AppStore {
  return useUi().store;
}

/** Reads a slice (or anything derived) of the app state; re-renders when it changes. */
export function useAppState<T>(selector: (s: AppState) => T): T {
  return useStore(useUi().store, selector);
}
