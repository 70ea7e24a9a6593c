// Logging helpers shared by the harness modules.
//
// stdout is reserved for the single JSON "ready" line (see server.mjs); every
// other line goes to stderr, prefixed with `[harness]`, so the Rust side can
// collect it and print it when a test fails.

import { format } from 'node:util';

export function log(...args) {
  const text = format(...args);
  for (const line of text.split('\n')) {
    process.stderr.write(`[harness] ${line}\n`);
  }
}

// Some libraries (oidc-provider's `attention.info`) print with console.info /
// console.log, i.e. to stdout. Route everything to stderr so that stdout only
// ever carries the ready line.
export function redirectConsoleToStderr() {
  const toStderr = (...args) => log(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.warn = toStderr;
  console.error = toStderr;
}
