// What components get from the app: the store (read with selectors) and the actions they may call.
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { BackendPreference } from '../protocol/messages';
import type { AppState, AppStore, SettingsSlice } from '../store/store';

export interface UiActions {
  selectBackend(preference: BackendPreference): Promise<void>;
  loadCatalogModel(name: string): Promise<void>;
  /** A URL, a same-origin path or a Hugging Face id typed by the user. */
  loadFromInput(text: string): Promise<void>;
  loadFromFiles(files: File[]): Promise<void>;
  setSettings(update: Partial<SettingsSlice>): void;
  generate(): Promise<void>;
  stop(): Promise<void>;
}

export interface UiContextValue {
  store: AppStore;
  actions: UiActions;
}

export const UiContext = createContext<UiContextValue | null>(null);

function useUi(): UiContextValue {
  const ui = useContext(UiContext);
  if (!ui) throw new Error('UiContext is missing: render components inside <UiContext.Provider>');
  return ui;
}

export function useActions(): UiActions {
  return useUi().actions;
}

export function useStoreApi(): AppStore {
  return useUi().store;
}

/** Reads a slice (or anything derived) of the app state; re-renders when it changes. */
export function useAppState<T>(selector: (s: AppState) => T): T {
  return useStore(useUi().store, selector);
}
