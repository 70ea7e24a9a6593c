// The Node host of the scenario suite's Wasm driver: loads the bridge
// (wasm-bindgen `--target nodejs` output) and serves the test process.
//
//   node host.cjs <bridge.js> <store-request FIFO> <store-reply FIFO>
//
// stdin: one JSON array of requests per line; all of a line's requests are
// started in the same tick (concurrent tasks in this one event loop, like
// a page's tabs), and each reply is written to stdout as one line when its
// call ends. The keepers' store operations are synchronous calls
// (`SessionStore` is sync): `tokenkeeperStoreOp` writes the operation to
// one FIFO and blocks reading the answer from the other, while the test
// process runs it on its own store. stdin closing (the test process ended)
// ends the host.
'use strict';

const fs = require('node:fs');
const readline = require('node:readline');

const [bridgePath, storeRequestPath, storeReplyPath] = process.argv.slice(2);
if (!bridgePath || !storeRequestPath || !storeReplyPath) {
  console.error('usage: node host.cjs <bridge.js> <store-request FIFO> <store-reply FIFO>');
  process.exit(2);
}

// Opened in the order the test process opens its ends (each open waits
// for the other side).
const storeRequests = fs.openSync(storeRequestPath, 'w');
const storeReplies = fs.openSync(storeReplyPath, 'r');
let unread = Buffer.alloc(0);

function writeAll(fd, text) {
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  while (written < bytes.length) {
    written += fs.writeSync(fd, bytes, written, bytes.length - written);
  }
}

function readLine(fd) {
  for (;;) {
    const end = unread.indexOf(10);
    if (end >= 0) {
      const line = unread.subarray(0, end).toString('utf8');
      unread = unread.subarray(end + 1);
      return line;
    }
    const chunk = Buffer.alloc(64 * 1024);
    const n = fs.readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) throw new Error('the store channel closed');
    unread = Buffer.concat([unread, chunk.subarray(0, n)]);
  }
}

globalThis.tokenkeeperStoreOp = (request) => {
  writeAll(storeRequests, request + '\n');
  return readLine(storeReplies);
};

const bridge = require(bridgePath);

function reply(line) {
  process.stdout.write(line + '\n');
}

function failed(id, error) {
  reply(JSON.stringify({
    id,
    outcome: {
      Err: {
        code: 'bridge_error',
        requires_login: false,
        message: `the bridge threw: ${error && error.stack ? error.stack : error}`,
        core: null,
      },
    },
  }));
}

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on('line', (line) => {
  if (!line.trim()) return;
  let requests;
  try {
    requests = JSON.parse(line);
  } catch (error) {
    console.error(`[wasm host] unreadable line: ${error}`);
    return;
  }
  for (const request of requests) {
    let pending;
    try {
      pending = bridge.command(JSON.stringify(request));
    } catch (error) {
      failed(request.id, error);
      continue;
    }
    pending.then(reply, (error) => failed(request.id, error));
  }
});
input.on('close', () => process.exit(0));
