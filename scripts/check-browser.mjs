#!/usr/bin/env node
// Checks that the Chromium the browser tests use is installed, and says how to install it if not.
// Playwright's own browser download does not work here; the tests drive Debian's chromium.
import { accessSync, constants } from 'node:fs';

export const CHROMIUM = process.env.TABTUNE_CHROMIUM || '/usr/bin/chromium';

try {
  accessSync(CHROMIUM, constants.X_OK);
  console.log(`[check-browser] using ${CHROMIUM}`);
} catch {
  console.error(`Chromium not found at ${CHROMIUM}. Install it: sudo apt-get install -y chromium`);
  process.exit(1);
}
