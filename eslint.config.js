// Flat ESLint config. Besides the recommended JS and TypeScript rules it holds the architectural rules:
// - everything under src/ except the page (src/ui, src/app, src/main.tsx) must run in Node and in a Web
//   Worker unchanged, so it may not import React/zustand, touch DOM-only globals or import the page's
//   store (src/store);
// - the engine (all of src/ except the page, src/store, the Node-only room src/node, src/cli, the
//   test-only room src/testing and *.test.ts) must also run in a browser worker, so it may not import
//   Node builtins (node:fs, 'path', …) nor src/node;
// - the model room (src/model) builds models from already-read files: it may not import src/io, which
//   reads them (src/io imports src/model, never the other way round).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const uiOnlyImports = {
  group: ['react', 'react/*', 'react-dom', 'react-dom/*', 'react-*', '@vitejs/*', 'zustand', 'zustand/*'],
  message: 'React and zustand belong to src/ui and src/app (src/store may use zustand/vanilla): the engine must run in Node and in a worker.',
};
const pageModules = {
  group: ['**/ui', '**/ui/**', '**/app', '**/app/**'],
  message: 'Engine code must not depend on the page (src/ui, src/app).',
};
// Relative paths only: '**/store' would also catch src/storage/store.ts.
const pageStore = {
  regex: '^(\\.\\./)+store(/.*)?$',
  message: 'src/store is the page\'s state: code outside the page must not depend on it (what the worker needs belongs in the engine, e.g. src/train, src/protocol).',
};
const nodeMessage = 'Node-only: the engine must run in a browser worker. Node code (files, folders, sockets) belongs in src/node, src/cli, src/testing or a *.test.ts.';
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_')).map((name) => ({ name, message: nodeMessage }));
const nodeImports = { regex: '^node:', message: nodeMessage };
// Dynamic imports too (no-restricted-imports sees only static ones).
const nodeDynamicImport = {
  selector: `ImportExpression[source.value=/^(node:|(${nodeBuiltins.map((b) => b.name).filter((n) => !n.includes('/')).join('|')})($|\\W))/]`,
  message: nodeMessage,
};
const nodeRoom = { regex: '^(\\.\\./)+node(/.*)?$', message: nodeMessage };
const ioFromModel = {
  regex: '^(\\.\\./)+io(/.*)?$',
  message: 'src/model builds a model from already-read files (languageModel, buildCausalLM); reading them from a source is src/io\'s job (src/io/load-model.ts), and src/io imports src/model, not the other way round.',
};

/** The page and its store: they run in a tab only. */
const pageFiles = ['src/ui/**', 'src/app/**', 'src/main.tsx', 'src/store/**', 'src/testing/page.ts'];
/** Code that may use Node: its own room, the CLI, the test-only room (helpers, fakes) and tests. */
const nodeOnly = ['src/node/**', 'src/cli/**', 'src/testing/**', 'src/**/*.test.ts'];

// Globals that exist on a page but not in a Web Worker or in Node. Worker-safe ones (self, fetch,
// caches, File, Blob, navigator, location, indexedDB, OffscreenCanvas) stay allowed.
const domOnlyGlobals = [
  'document',
  'window',
  'localStorage',
  'sessionStorage',
  'history',
  'alert',
  'confirm',
  'prompt',
  'HTMLElement',
  'HTMLInputElement',
  'HTMLCanvasElement',
  'Element',
  'Document',
  'Window',
  'DOMParser',
  'MutationObserver',
  'ResizeObserver',
  'IntersectionObserver',
  'getComputedStyle',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'customElements',
].map((name) => ({
  name,
  message: `"${name}" is DOM-only: code outside src/ui and src/app must run in a Web Worker and in Node.`,
}));

const domTypes = {
  selector: 'TSTypeReference > Identifier[name=/^(HTML\\w*Element|Element|Document|Window|Storage)$/]',
  message: 'DOM types belong to src/ui and src/app: code outside them must run in a Web Worker and in Node.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'test-results/**', 'playwright-report/**', 'e2e-artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.es2021, ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['src/**/*.{ts,tsx}', 'e2e/**/*.ts', 'bench/**/*.{ts,js,mjs}'],
    languageOptions: { globals: { ...globals.browser, ...globals.worker } },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    // src/testing/page.ts: the page without React for tests (its store and actions on a worker client).
    ignores: ['src/ui/**', 'src/app/**', 'src/main.tsx', 'src/testing/page.ts'],
    rules: {
      'no-restricted-globals': ['error', ...domOnlyGlobals],
      'no-restricted-syntax': ['error', domTypes],
      'no-restricted-imports': ['error', { patterns: [uiOnlyImports, pageModules, pageStore] }],
    },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    ignores: [...pageFiles, ...nodeOnly],
    rules: {
      'no-restricted-syntax': ['error', domTypes, nodeDynamicImport],
      'no-restricted-imports': ['error', { paths: nodeBuiltins, patterns: [uiOnlyImports, pageModules, pageStore, nodeImports, nodeRoom] }],
    },
  },
  {
    files: ['src/model/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: nodeBuiltins, patterns: [uiOnlyImports, pageModules, pageStore, nodeImports, nodeRoom, ioFromModel] }],
    },
  },
  {
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'zustand', message: uiOnlyImports.message }],
          patterns: [
            { ...uiOnlyImports, group: uiOnlyImports.group.filter((g) => !g.startsWith('zustand')) },
            { regex: '^zustand/(?!vanilla$)', message: uiOnlyImports.message },
            pageModules,
          ],
        },
      ],
    },
  },
);
