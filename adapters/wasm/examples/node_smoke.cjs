// Runs the login, custom_store and dpop examples in Node 20+ against the
// test harness (tests/harness/server.mjs started by hand with
// HARNESS_IGNORE_STDIN=1; it prints its issuer and control URLs), the
// harness playing the browser as alice:
//
//   cargo build -p tokenkeeper-wasm --target wasm32-unknown-unknown --examples
//   for e in login dpop custom_store; do
//     wasm-bindgen --target nodejs --out-dir /tmp/wasm-ex/$e \
//       target/wasm32-unknown-unknown/debug/examples/$e.wasm
//   done
//   cp adapters/wasm/examples/node_smoke.cjs /tmp/wasm-ex/ && node /tmp/wasm-ex/node_smoke.cjs ISSUER CONTROL
//
// scripts/wasm-tests.sh run (and so scripts/test.sh) runs it after the wasm
// tests, against its own harness.
const assert = require('node:assert/strict');
const { beginLogin, finishLogin } = require('./login/login.js');
const { StoredApp } = require('./custom_store/custom_store.js');
const { newKey, DpopApp } = require('./dpop/dpop.js');
const [issuer, control] = process.argv.slice(2);
(async () => {
  // login: the harness plays the browser as alice
  const [url, tx] = await beginLogin(issuer, 'cli-native', 'http://127.0.0.1:4000/callback', 'openid offline_access');
  const r = await fetch(control + '/__harness/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ authorization_url: url }) });
  const { callback_url } = await r.json();
  const result = await finishLogin(issuer, 'cli-native', tx, callback_url);
  assert.equal(result.user, 'alice'); assert.equal(result.tokenType, 'Bearer');
  assert.ok(JSON.parse(result.session).tokenSet.refreshToken, 'offline_access: a refresh token');
  console.log('login:', result.user, result.tokenType, JSON.parse(result.session).tokenSet.refreshToken ? 'with refresh token' : 'no refresh token');
  // custom store: expire the session so the first call refreshes
  const s = JSON.parse(result.session); s.tokenSet.expiresAt = 1;
  const mem = new Map(); let saves = 0;
  const store = { load: (k) => mem.get(k) ?? null, save: (k, j) => { saves++; mem.set(k, j); }, clear: (k) => mem.delete(k) };
  const app = new StoredApp(issuer + '/token', 'cli-native', store, JSON.stringify(s));
  const t1 = await app.accessToken();
  const stored = JSON.parse([...mem.values()][0]);
  console.log('custom_store: saves', saves, 'rotated', stored.tokenSet.refreshToken !== s.tokenSet.refreshToken, 'stored token is served', stored.tokenSet.accessToken === t1);
  assert.ok(saves >= 1, 'the refresh was saved in the page\'s store');
  assert.notEqual(stored.tokenSet.refreshToken, s.tokenSet.refreshToken, 'the rotated refresh token is stored');
  assert.equal(stored.tokenSet.accessToken, t1, 'the stored token is the one served');
  // dpop: a non-extractable key, then a DPoP refresh with the stored session
  const pair = await newKey();
  assert.equal(pair.privateKey.extractable, false);
  console.log('dpop key extractable:', pair.privateKey.extractable);
  const cloned = structuredClone(pair);   // what IndexedDB stores
  const st = JSON.parse([...mem.values()][0]); st.tokenSet.expiresAt = 1;
  const dapp = await DpopApp.create(issuer + '/token', 'cli-native', JSON.stringify(st), cloned.privateKey, cloned.publicKey);
  const type = await dapp.tokenType();
  assert.equal(type, 'DPoP');
  assert.match(dapp.thumbprint, /^[A-Za-z0-9_-]{43}$/);
  console.log('dpop:', dapp.thumbprint, type);
})().catch((e) => { console.error('FAILED', e); process.exit(1); });
