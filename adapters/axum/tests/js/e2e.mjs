// The headless-Chromium end-to-end test of the tokenkeeper-axum example
// app (run by tests/browser.rs):
//   node e2e.mjs <app base URL> <issuer> <screenshot dir>
// the home page's wasm route client asked for a token with no session ->
// the route's 401 missing_session as a typed error; protected page -> the
// server's login page -> form -> consent -> the app showing the user -> the
// page's wasm route client (getAccessTokenFromRoute) asks /auth/access-token
// and the page calls API 1, then API 2 (multi-resource refresh token) ->
// logout -> the protected page asks for login again. A screenshot per step;
// any console error (but the one 401 of the no-session call), page error or
// failed assertion fails the run (exit code 1).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, issuer, outDir] = process.argv.slice(2);
if (!base || !issuer || !outDir) {
  console.error('usage: node e2e.mjs <app base URL> <issuer> <screenshot dir>');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const problems = [];
const check = (condition, message) => {
  if (!condition) throw new Error(`assertion failed: ${message}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let step = 0;
let page;
const shot = async (name) => {
  step += 1;
  const file = join(outDir, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`step ${step}: ${name} (${page.url()})`);
};

try {
  const context = await browser.newContext();
  // The provider's development login pages link a web font from the
  // internet (unreachable here: ERR_NAME_NOT_RESOLVED) and the browser asks
  // every origin for /favicon.ico (a 404 on the provider): answered empty
  // here so that every console error left is a real one. Anything else
  // goes to the servers on 127.0.0.1 untouched.
  const stubbed = [];
  await context.route((url) => url.hostname !== '127.0.0.1' || url.pathname === '/favicon.ico',
    (route) => {
      stubbed.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'text/plain', body: '' });
    });
  process.on('exit', () => console.log(`stubbed off-host/favicon requests: ${stubbed.length} ${JSON.stringify([...new Set(stubbed.map((u) => new URL(u).origin + new URL(u).pathname))])}`));
  page = await context.newPage();
  // Chromium logs every 4xx as a console error: the one 401 the
  // no-session call must get is expected (and counted), nothing else.
  let expected401 = 0;
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    if (page.url() === `${base}/` && msg.location().url === `${base}/auth/access-token`
        && msg.text().includes('status of 401')) {
      expected401 += 1;
      return;
    }
    problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error on ${page.url()}: ${error.message}`));
  const wasmLoads = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname === '/pkg/tokenkeeper_wasm_bg.wasm') {
      wasmLoads.push(`${response.status()} ${response.headers()['content-type']}`);
    }
  });
  // The route client's request: the query, the cookie, its accept header.
  const tokenRequest = (click) => Promise.all([
    page.waitForRequest((r) => new URL(r.url()).pathname === '/auth/access-token'),
    click(),
  ]).then(async ([request]) => ({ url: new URL(request.url()), headers: await request.allHeaders() }));

  // 0. No session yet: the home page's wasm route client gets the route's
  //    401 missing_session, as a typed error object.
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-wasm="ready"]');
  const noSession = await tokenRequest(() => page.click('#token-without-session'));
  check(noSession.url.search === '', `no query without options: ${noSession.url.search}`);
  check(!(noSession.headers.cookie ?? '').includes('__session'), `no session cookie yet: ${noSession.headers.cookie}`);
  await page.waitForSelector('#no-session[data-state="error"], #no-session[data-state="ok"]');
  const error = JSON.parse(await page.textContent('#no-session'));
  check(error.name === 'RouteTokenError' && error.kind === 'route' && error.code === 'missing_session'
    && error.status === 401, `the typed missing_session error: ${JSON.stringify(error)}`);
  check(await page.getAttribute('#no-session', 'data-source') === 'wasm-route-client', 'the error came from the wasm client');
  // The console event may trail the page's update a little.
  for (let i = 0; i < 20 && expected401 === 0; i += 1) await page.waitForTimeout(100);
  check(expected401 === 1, `the 401 logged once, not ${expected401} times`);
  await shot('no-session-error');

  // 1. The protected page sends the browser to the server's login page.
  await page.goto(`${base}/dashboard`);
  check(page.url().startsWith(issuer), `at the authorization server, not ${page.url()}`);
  await page.waitForSelector('input[name="login"]');
  await shot('login-page');

  // 2. The login form.
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'password');
  await shot('login-filled');
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);

  // 3. Consent.
  check(page.url().startsWith(issuer), `consent at the server, not ${page.url()}`);
  await shot('consent');
  await Promise.all([
    page.waitForURL(`${base}/dashboard`),
    page.click('button[type="submit"]'),
  ]);

  // 4. Back on the app, showing the user.
  const sub = await page.textContent('#sub');
  check(sub === 'alice', `the dashboard shows sub alice, not ${sub}`);
  await shot('dashboard');

  // 5. The page's JavaScript: /auth/access-token, then API 1 with the token.
  await page.waitForSelector('body[data-wasm="ready"]');
  for (const api of ['api1', 'api2']) {
    const audience = api === 'api1' ? 'https://api1.example.com' : 'https://api2.example.com';
    const sent = await tokenRequest(() => page.click(`#call-${api}`));
    check(sent.url.search === `?audience=${encodeURIComponent(audience)}`, `${api}: the query ${sent.url.search}`);
    check(/(^|; )__session(__0)?=/.test(sent.headers.cookie ?? ''), `${api}: the session cookie went with it`);
    check(sent.headers.accept === 'application/json', `${api}: the route client's accept header, not ${sent.headers.accept}`);
    check(!('authorization' in sent.headers), `${api}: no token sent to the route`);
    await page.waitForSelector(`#${api}[data-state="ok"], #${api}[data-state="error"]`);
    const state = await page.getAttribute(`#${api}`, 'data-state');
    const text = await page.textContent(`#${api}`);
    check(state === 'ok', `${api} answered ${text}`);
    check(await page.getAttribute(`#${api}`, 'data-source') === 'wasm-route-client', `${api}: the token came from the wasm client`);
    const body = JSON.parse(text);
    check(body.ok === true && body.sub === 'alice', `${api} saw alice: ${text}`);
    check([body.aud].flat().includes(audience), `${api} token for ${audience}: ${text}`);
    // 6. API 2: a token the login did not get, from the same refresh token.
    await shot(`called-${api}`);
  }
  // The browser keeps no token: only the session cookie (HttpOnly).
  const cookies = await context.cookies(base);
  // Whole or chunked (`__session__0`, … above 3,500 bytes), always HttpOnly.
  const sessionCookies = cookies.filter((c) => /^__session(__\d+)?$/.test(c.name));
  check(sessionCookies.length > 0 && sessionCookies.every((c) => c.httpOnly),
    `an HttpOnly __session cookie: ${JSON.stringify(cookies.map((c) => [c.name, c.value.length, c.httpOnly]))}`);
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  check(stored === '{}{}', `nothing in Web Storage: ${stored}`);
  check(wasmLoads.length >= 2 && wasmLoads.every((l) => l === '200 application/wasm'),
    `the wasm module loaded on both pages: ${JSON.stringify(wasmLoads)}`);

  // 7. Logout: the app clears the session, the server ends its own.
  await page.click('#logout');
  await page.waitForLoadState();
  if (page.url().startsWith(issuer)) {
    await shot('logout-confirm');
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(base)),
      page.click('button[name="logout"], button[value="yes"]'),
    ]);
  }
  await shot('logged-out');
  const after = await context.cookies(base);
  check(!after.some((c) => c.name.startsWith('__session')), 'no session cookie after logout');

  // 8. The protected page asks for a login again.
  await page.goto(`${base}/dashboard`);
  check(page.url().startsWith(issuer), `login again, not ${page.url()}`);
  await page.waitForSelector('input[name="login"]');
  await shot('login-again');
  // No other 401 slipped through the console filter later on.
  check(expected401 === 1, `the one expected 401, not ${expected401}`);
} catch (error) {
  problems.push(String(error.stack ?? error));
  if (page) await page.screenshot({ path: join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`e2e ok: ${step} steps, screenshots in ${outDir}`);
