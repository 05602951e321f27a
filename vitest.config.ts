import { defineConfig } from 'vitest/config';

// Unit tests run in Node: the engine (everything outside src/ui and src/app) is written to run
// there unchanged. Browser tests live in e2e/ and run under Playwright.
export default defineConfig({
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'bench/**/*.test.ts'],
    exclude: ['e2e/**', 'node_modules/**', 'dist/**', '.cache/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
