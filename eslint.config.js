// Flat ESLint config. Besides the recommended JS and TypeScript rules it holds one architectural
// rule: everything under src/ except the page (src/ui, src/app, src/main.tsx) must run in Node and
// in a Web Worker unchanged, so it may not import React/zustand or touch DOM-only globals.
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
    ignores: ['src/ui/**', 'src/app/**', 'src/main.tsx'],
    rules: {
      'no-restricted-globals': ['error', ...domOnlyGlobals],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSTypeReference > Identifier[name=/^(HTML\\w*Element|Element|Document|Window|Storage)$/]',
          message: 'DOM types belong to src/ui and src/app: code outside them must run in a Web Worker and in Node.',
        },
      ],
      'no-restricted-imports': ['error', { patterns: [uiOnlyImports, pageModules] }],
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
