// tokenkeeper integration-test harness: a real authorization server
// (node-oidc-provider 9.13.3) plus a DPoP-aware resource server and a control
// API, all on 127.0.0.1, each on its own free port (listen on port 0).
//
// Protocol with the test process
// ------------------------------
// * When ready, exactly ONE line of JSON is written to stdout:
//     {"ready":true,"issuer":"http://127.0.0.1:P1","token_endpoint":"http://127.0.0.1:P1/token",
//      "resource_server":"http://127.0.0.1:P2","control":"http://127.0.0.1:P3","pid":N}
//   Nothing else is ever written to stdout; logs go to stderr, each line
//   prefixed with `[harness]`.
// * The process exits when its stdin closes (the test holds the pipe), on
//   SIGTERM / SIGINT / SIGHUP, and when its parent process dies (process.ppid
//   polled every second). Set HARNESS_IGNORE_STDIN=1 to run it by hand with a
//   closed stdin.
//
// Environment
// -----------
//   HARNESS_DPOP_NONCE=required|off  (default off) token endpoint demands DPoP
//                                    nonces (features.dPoP.nonceSecret +
//                                    features.dPoP.requireNonce)
//   HARNESS_AT_TTL=<seconds>         (default 60) access-token lifetime
//   HARNESS_RS_NONCE=required|off    (default required) resource server
//                                    demands its own DPoP nonce
//
// Strictness: PKCE is required for every client (RFC 9700); a token request
// that names no `resource` gets none filled in (RFC 8707); the resource
// server refuses DPoP proofs whose htu carries a query or fragment (RFC 9449
// §4.2), stale or future iat, wrong htm/ath/key, and tokens for another
// audience or expired; token exchange accepts only subject tokens for one of
// the resource servers, issued to a client the exchanging client may act
// for (see token_exchange.mjs); the Token Vault exchange (Auth0's
// federated connection grant) accepts only this client's live refresh token
// and a known connection (google-oauth2, github; see token_vault.mjs), and
// counts the tokens it issues per connection (stats.connection_tokens_issued).
//
// Provider (issuer origin, P1): standard oidc-provider routes — /auth, /token,
// /token/introspection, /token/revocation, /jwks, /me, /session/end,
// /.well-known/openid-configuration, /interaction/:uid (devInteractions).
//
// Resource server (P2): GET|POST /api1/data (aud https://api1.example.com) and
// GET|POST /api2/data (aud https://api2.example.com). See resource_server.mjs.
//
// Control API (P3, JSON in and out):
//   GET  /__harness/stats          counters (see `newStats()` below)
//   POST /__harness/stats/reset    zero the counters
//   POST /__harness/fail_next      {status, body, content_type, headers?, times?}
//                                  the next `times` (default 1) token endpoint
//                                  requests get this canned response instead
//   POST /__harness/delay_next     {ms, times?}: the next `times` (default 1)
//                                  token endpoint requests wait `ms` first
//   POST /__harness/sleep          {ms} -> {slept}: answers after `ms`
//   POST /__harness/login          {authorization_url, login?, password?}
//                                  -> {callback_url, trail}; drives the
//                                  devInteractions login + consent pages
//   POST /__harness/rs_nonce/rotate -> {nonce}: invalidates the RS DPoP nonce
//   POST /__harness/backchannel/target {url}: where the back-channel
//                                  logout relay (axum-web's
//                                  backchannel_logout_uri) forwards to
//   GET  /__harness/backchannel    {received, answers}: relayed logouts
//   POST /__harness/end_session    {login?} -> {trail, backchannel_answers}:
//                                  the user logs out at the provider (its
//                                  browser session of the last login), which
//                                  sends back-channel logout tokens
//   POST /__harness/keys/rotate    -> {kid, kids}: a new RS256 signing key
//                                  (new kid) signs from now on; old keys
//                                  stay in the JWKS
//   GET  /__harness/config         the effective options

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as querystring from 'node:querystring';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';
// Key rotation (`/__harness/keys/rotate`): the provider's own keystore
// initialisation, re-run with a new signing key first.
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';

import { log, redirectConsoleToStderr } from './log.mjs';
import { CookieJar, driveLogin, LoginError } from './login_driver.mjs';
import { endSession } from './end_session.mjs';
import { createResourceServer } from './resource_server.mjs';
import { registerTokenExchange, TOKEN_EXCHANGE, tokenExchangeExtraClaims } from './token_exchange.mjs';
import { FEDERATED_CONNECTION_GRANT, registerTokenVault } from './token_vault.mjs';

redirectConsoleToStderr();

const HOST = '127.0.0.1';

// ---------------------------------------------------------------- options

function envChoice(name, allowed, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  if (!allowed.includes(value)) {
    throw new Error(`${name} must be one of ${allowed.join('|')}, got ${value}`);
  }
  return value;
}

const options = {
  dpopNonce: envChoice('HARNESS_DPOP_NONCE', ['required', 'off'], 'off'),
  rsNonce: envChoice('HARNESS_RS_NONCE', ['required', 'off'], 'required'),
  accessTokenTTL: Number.parseInt(process.env.HARNESS_AT_TTL || '60', 10),
};
if (!Number.isSafeInteger(options.accessTokenTTL) || options.accessTokenTTL <= 0) {
  throw new Error('HARNESS_AT_TTL must be a positive integer (seconds)');
}

// ---------------------------------------------------------------- lifetime

function shutdown(reason, code = 0) {
  log(`exiting: ${reason}`);
  process.exit(code);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => shutdown(signal));
}
if (process.env.HARNESS_IGNORE_STDIN !== '1') {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
{
  const initialPpid = process.ppid;
  setInterval(() => {
    if (process.ppid !== initialPpid || (process.ppid === 1 && initialPpid !== 1)) {
      shutdown(`parent ${initialPpid} went away`);
    }
  }, 1000).unref();
}
process.on('uncaughtException', (err) => {
  log('uncaught exception:', err);
  shutdown('uncaught exception', 1);
});
process.on('unhandledRejection', (err) => {
  log('unhandled rejection:', err);
});

// ---------------------------------------------------------------- helpers

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve(`http://${HOST}:${server.address().port}`);
    });
  });
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

// ---------------------------------------------------------------- constants

export const RESOURCE_SERVERS = {
  'https://api1.example.com': '/api1',
  'https://api2.example.com': '/api2',
};
const RESOURCE_SCOPE = 'read:data write:data';

const REDIRECT_URI = 'http://127.0.0.1/callback';
const pkjwtPublic = (() => {
  const jwk = JSON.parse(readFileSync(new URL('./keys/pkjwt-private.jwk.json', import.meta.url), 'utf8'));
  const {
    d: _d, ...pub
  } = jwk;
  return pub;
})();

const CODE_FLOW_GRANTS = ['authorization_code', 'refresh_token'];

const clients = [
  {
    client_id: 'confidential-basic',
    client_secret: 'secret-basic-1',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [...CODE_FLOW_GRANTS, 'client_credentials', TOKEN_EXCHANGE, FEDERATED_CONNECTION_GRANT],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
  },
  {
    client_id: 'confidential-post',
    client_secret: 'secret-post-1',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: [...CODE_FLOW_GRANTS, 'client_credentials', TOKEN_EXCHANGE, FEDERATED_CONNECTION_GRANT],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
  },
  {
    client_id: 'pkjwt',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [pkjwtPublic] },
    grant_types: [...CODE_FLOW_GRANTS, 'client_credentials', TOKEN_EXCHANGE, FEDERATED_CONNECTION_GRANT],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
  },
  {
    client_id: 'public-pkce',
    token_endpoint_auth_method: 'none',
    // The federated connection grant is registered so its handler refuses
    // a public client as Auth0 does (`unauthorized_client`).
    grant_types: [...CODE_FLOW_GRANTS, FEDERATED_CONNECTION_GRANT],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
  },
  {
    client_id: 'm2m',
    client_secret: 'secret-m2m-1',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
];

// A public client whose ID tokens are signed with ES256 (the provider's
// P-256 key) instead of the default RS256: issue 18's second algorithm.
clients.push({
  client_id: 'public-es256',
  token_endpoint_auth_method: 'none',
  id_token_signed_response_alg: 'ES256',
  grant_types: CODE_FLOW_GRANTS,
  response_types: ['code'],
  redirect_uris: [REDIRECT_URI],
});

// The command-line tool's client (`cli/`): a public native client, so a
// loopback redirect URI with any port matches the registered one
// (RFC 8252 §7.3; oidc-provider ignores the port for `native` clients),
// also allowed the device authorization grant (RFC 8628).
clients.push({
  client_id: 'cli-native',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: [...CODE_FLOW_GRANTS, 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  redirect_uris: [REDIRECT_URI],
});

// The axum integration's web app (adapters/axum): a confidential client
// on a loopback origin whose port each test picks, so `native` (the
// provider then ignores the loopback port of redirect and post-logout
// URIs, RFC 8252 §7.3), with client_secret_post as the Next.js SDK.
clients.push({
  client_id: 'axum-web',
  client_secret: 'axum-web-secret-1',
  application_type: 'native',
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: [...CODE_FLOW_GRANTS, FEDERATED_CONNECTION_GRANT],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/auth/callback'],
  post_logout_redirect_uris: ['http://127.0.0.1/'],
});

// ---------------------------------------------------------------- stats

function newStats() {
  return {
    token_requests_total: 0,
    token_requests_by_grant: {},
    token_responses_by_status: {},
    dpop_nonce_challenges: 0,
    resource_requests: 0,
    resource_nonce_challenges: 0,
    logins: 0,
    // GET requests for the provider's JWKS
    jwks_requests: 0,
    // last 100 token endpoint requests (secrets redacted)
    recent_token_requests: [],
  };
}
const stats = newStats();
// The resource server holds a reference; keep the same object and mutate it.
function resetStats() {
  const fresh = newStats();
  for (const key of Object.keys(stats)) delete stats[key];
  Object.assign(stats, fresh);
}

const REDACT = new Set(['client_secret', 'client_assertion', 'code_verifier', 'password']);

const backchannel = { target: null, received: [], answers: [] };
// The browser cookies of the last login of each user, for end_session.
const browserJars = new Map();
let failNext = null; // { status, body, contentType, headers, times }
let delayNext = null; // { ms, times }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- provider

async function main() {
  const providerServer = http.createServer();
  const resourceHttp = { server: null };
  const issuer = await listen(providerServer);

  // Fixed TEST signing keys of the provider (RS256 for ID tokens, ES256 for
  // JWT access tokens), committed to save the ~300 ms of RSA key generation
  // per harness start. Tokens of one harness never verify at another one
  // anyway: the issuer (with its random port) differs.
  const signingJwks = JSON.parse(readFileSync(new URL('./keys/provider-signing.jwks.json', import.meta.url), 'utf8'));
  const publicJwks = {
    keys: signingJwks.keys.map(({
      d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub
    }) => pub),
  };

  async function getResourceServerInfo(_ctx, resourceIndicator, _client) {
    if (!Object.hasOwn(RESOURCE_SERVERS, resourceIndicator)) {
      throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
    }
    return {
      scope: RESOURCE_SCOPE,
      audience: resourceIndicator,
      accessTokenTTL: options.accessTokenTTL,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'ES256' } },
    };
  }

  const configuration = {
    clients,
    jwks: signingJwks,
    cookies: { keys: ['harness-cookie-key-1', 'harness-cookie-key-2'] },
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.com`,
            email_verified: true,
            name: `Test User ${id}`,
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // RFC 8628, for the command-line tool's `login --device` (cli-native).
      deviceFlow: { enabled: true },
      // OIDC Back-Channel Logout 1.0: on logout the provider POSTs a
      // logout token to each client's backchannel_logout_uri (axum-web's
      // goes through the relay below to the app under test), and ID tokens
      // carry the session's `sid`.
      backchannelLogout: { enabled: true },
      dPoP: {
        enabled: true,
        // nonces are only available when a nonceSecret is configured; then
        // requireNonce decides whether a proof without nonce is rejected with
        // `use_dpop_nonce` (+ DPoP-Nonce header).
        ...(options.dpopNonce === 'required'
          ? {
            nonceSecret: crypto.randomBytes(32),
            requireNonce: (ctx) => ctx.oidc?.route === 'token',
          }
          : {}),
      },
      resourceIndicators: {
        enabled: true,
        // oidc-provider's own defaults (no defaultResource, no
        // useGrantedResource): a token request that names no `resource`
        // gets none filled in (for an `openid` grant, an opaque token for
        // userinfo), so a client that forgets `resource` on a code exchange
        // or a refresh is caught, as a strict RFC 8707 server would.
        getResourceServerInfo,
      },
    },
    pkce: {
      // PKCE for every client, confidential ones included (RFC 9700 §2.1.1).
      required: () => true,
    },
    extraTokenClaims: tokenExchangeExtraClaims,
    rotateRefreshToken: true,
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? options.accessTokenTTL,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? options.accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Grant: 24 * 3600,
      Session: 24 * 3600,
      Interaction: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
    },
    // oidc-provider's outgoing requests refuse loopback addresses (SSRF
    // protection, by a dispatcher it adds); the back-channel logout relay
    // lives on the provider's own loopback origin, so for that one URL the
    // plain fetch is used. Every other outgoing request keeps the check.
    fetch(url, fetchOptions) {
      if (String(url).startsWith(`${issuer}/__harness/backchannel`)) {
        const { dispatcher: _dispatcher, ...plain } = fetchOptions;
        return globalThis.fetch(url, plain);
      }
      return globalThis.fetch(url, fetchOptions);
    },
    async renderError(ctx, out, _error) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1><pre>${JSON.stringify(out)
        .replaceAll('<', '&lt;')}</pre></body></html>`;
    },
  };

  // axum-web's back-channel logout URI: a relay on the provider's origin
  // (fixed when the provider starts) to the app of the running test
  // (its port is known only then: POST /__harness/backchannel/target).
  const axumWeb = clients.find((c) => c.client_id === 'axum-web');
  axumWeb.backchannel_logout_uri = `${issuer}/__harness/backchannel`;
  axumWeb.backchannel_logout_session_required = true;
  const provider = new Provider(issuer, configuration);
  let currentJwks = signingJwks;
  let rotations = 0;
  registerTokenExchange(provider, publicJwks, getResourceServerInfo, Object.keys(RESOURCE_SERVERS));
  registerTokenVault(provider, stats);

  for (const event of [
    'grant.error', 'server_error', 'authorization.error', 'introspection.error',
    'revocation.error', 'userinfo.error', 'jwks.error', 'discovery.error',
    'end_session.error', 'registration.error', 'pushed_authorization_request.error',
  ]) {
    provider.on(event, (ctx, err) => {
      log(`${event}: ${ctx?.method} ${ctx?.path} ${err?.error ?? err?.name}: ${err?.error_description ?? err?.message}`
        + `${err?.error_detail ? ` (detail: ${err.error_detail})` : ''}`);
      if (event === 'server_error') log(err?.stack);
    });
  }
  provider.on('grant.revoked', (_ctx, grantId) => log(`grant revoked: ${grantId}`));
  provider.on('backchannel.error', (_ctx, err, client) => log(`backchannel logout to ${client.clientId} failed: ${err?.message}`));

  const tokenPath = new URL(provider.urlFor('token')).pathname;

  const jwksPath = new URL(provider.urlFor('jwks')).pathname;
  provider.use(async (ctx, next) => {
    if (ctx.path === jwksPath && ctx.method === 'GET') stats.jwks_requests += 1;
    await next();
  });

  // The back-channel logout relay: forwards the provider's logout POST to
  // the app (the target set by the test), answering with the app's answer.
  provider.use(async (ctx, next) => {
    if (ctx.path !== '/__harness/backchannel' || ctx.method !== 'POST') {
      await next();
      return;
    }
    const raw = await readBody(ctx.req);
    backchannel.received.push(raw);
    if (!backchannel.target) {
      ctx.status = 200;
      return;
    }
    const answer = await fetch(backchannel.target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: raw,
    });
    backchannel.answers.push(answer.status);
    log(`backchannel logout relayed to ${backchannel.target} -> ${answer.status}`);
    ctx.status = answer.status;
    ctx.body = await answer.text();
  });

  // Counting / fault-injection middleware, runs before the provider itself.
  provider.use(async (ctx, next) => {
    if (ctx.path !== tokenPath || ctx.method !== 'POST') {
      await next();
      return;
    }
    // Read the raw body ourselves to count the grant type; oidc-provider's
    // body parser falls back to `req.body` (a string is re-parsed) when the
    // stream has already been consumed.
    const raw = await readBody(ctx.req);
    ctx.req.body = raw;
    const form = querystring.parse(raw);
    const grantType = typeof form.grant_type === 'string' ? form.grant_type : '(none)';

    stats.token_requests_total += 1;
    stats.token_requests_by_grant[grantType] = (stats.token_requests_by_grant[grantType] ?? 0) + 1;
    const entry = { grant_type: grantType, dpop: !!ctx.get('dpop'), params: {} };
    for (const [key, value] of Object.entries(form)) {
      entry.params[key] = REDACT.has(key) ? '[redacted]' : value;
    }
    const authz = ctx.get('authorization');
    if (authz) entry.authorization_scheme = authz.split(' ')[0];
    stats.recent_token_requests.push(entry);
    if (stats.recent_token_requests.length > 100) stats.recent_token_requests.shift();

    if (delayNext) {
      const delay = delayNext;
      delay.times -= 1;
      if (delay.times <= 0) delayNext = null;
      await sleep(delay.ms);
    }
    if (failNext) {
      const canned = failNext;
      canned.times -= 1;
      if (canned.times <= 0) failNext = null;
      ctx.status = canned.status;
      ctx.type = canned.contentType;
      ctx.body = canned.body;
      for (const [k, v] of Object.entries(canned.headers)) ctx.set(k, v);
      entry.status = canned.status;
      entry.canned = true;
    } else {
      await next();
      entry.status = ctx.status;
      if (ctx.body && typeof ctx.body === 'object' && ctx.body.error) {
        entry.error = ctx.body.error;
        if (ctx.body.error === 'use_dpop_nonce') stats.dpop_nonce_challenges += 1;
      }
    }
    const statusKey = String(ctx.status);
    stats.token_responses_by_status[statusKey] = (stats.token_responses_by_status[statusKey] ?? 0) + 1;
    log(`token ${grantType} client=${form.client_id ?? entry.authorization_scheme ?? '?'}`
      + ` resource=${JSON.stringify(form.resource ?? null)} dpop=${entry.dpop} -> ${ctx.status}`
      + `${entry.error ? ` ${entry.error}` : ''}${entry.canned ? ' (canned)' : ''}`);
  });

  providerServer.on('request', provider.callback());

  // ------------------------------------------------------------ resource server
  const audiences = Object.fromEntries(
    Object.entries(RESOURCE_SERVERS).map(([aud, prefix]) => [prefix, aud]),
  );
  const rs = createResourceServer({
    issuer,
    jwksUri: provider.urlFor('jwks'),
    audiences,
    nonceRequired: options.rsNonce === 'required',
    stats,
  });
  resourceHttp.server = rs.server;
  const resourceServer = await listen(rs.server);

  // ------------------------------------------------------------ control API
  const control = http.createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url, 'http://control');
      const body = req.method === 'POST' ? await readBody(req) : '';
      const json = body ? JSON.parse(body) : {};

      if (req.method === 'GET' && pathname === '/__harness/stats') {
        sendJson(res, 200, stats);
      } else if (req.method === 'POST' && pathname === '/__harness/stats/reset') {
        resetStats();
        sendJson(res, 200, stats);
      } else if (req.method === 'POST' && pathname === '/__harness/fail_next') {
        failNext = {
          status: Number(json.status ?? 500),
          body: json.body ?? '',
          contentType: json.content_type ?? 'text/html; charset=utf-8',
          headers: json.headers ?? {},
          times: Number(json.times ?? 1),
        };
        sendJson(res, 200, { armed: true, times: failNext.times });
      } else if (req.method === 'POST' && pathname === '/__harness/delay_next') {
        delayNext = { ms: Number(json.ms ?? 0), times: Number(json.times ?? 1) };
        sendJson(res, 200, { armed: true, ms: delayNext.ms, times: delayNext.times });
      } else if (req.method === 'POST' && pathname === '/__harness/sleep') {
        const ms = Number(json.ms ?? 0);
        await sleep(ms);
        sendJson(res, 200, { slept: ms });
      } else if (req.method === 'POST' && pathname === '/__harness/login') {
        if (typeof json.authorization_url !== 'string') {
          sendJson(res, 400, { error: 'authorization_url (string) is required' });
          return;
        }
        try {
          const jar = new CookieJar();
          const { callbackUrl, trail } = await driveLogin({
            authorizationUrl: json.authorization_url,
            issuer,
            login: json.login ?? 'alice',
            password: json.password,
            jar,
          });
          browserJars.set(json.login ?? 'alice', jar);
          stats.logins += 1;
          log(`login ok: ${trail.join(' | ')}`);
          sendJson(res, 200, { callback_url: callbackUrl, trail });
        } catch (err) {
          log(`login failed: ${err.message}; trail: ${(err.trail ?? []).join(' | ')}`);
          sendJson(res, 502, {
            error: err.message,
            trail: err instanceof LoginError ? err.trail : [],
          });
        }
      } else if (req.method === 'POST' && pathname === '/__harness/end_session') {
        const jar = browserJars.get(json.login ?? 'alice');
        if (!jar) {
          sendJson(res, 404, { error: 'no login of that user to end' });
          return;
        }
        const before = backchannel.answers.length;
        const trail = await endSession({ issuer, jar });
        sendJson(res, 200, { trail, backchannel_answers: backchannel.answers.slice(before) });
      } else if (req.method === 'POST' && pathname === '/__harness/backchannel/target') {
        backchannel.target = json.url ?? null;
        sendJson(res, 200, { target: backchannel.target });
      } else if (req.method === 'GET' && pathname === '/__harness/backchannel') {
        sendJson(res, 200, { received: backchannel.received.length, answers: backchannel.answers });
      } else if (req.method === 'POST' && pathname === '/__harness/keys/rotate') {
        // A new RS256 signing key with a new kid, put first (the provider
        // signs with the first matching key); the old keys stay published
        // for tokens already issued, as a real rotation does.
        const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
        rotations += 1;
        const kid = `harness-rs256-rotated-${rotations}`;
        const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
        currentJwks = { keys: [jwk, ...currentJwks.keys] };
        initializeKeystore.call(provider, currentJwks);
        log(`signing keys rotated: ${kid} first`);
        sendJson(res, 200, { kid, kids: currentJwks.keys.map((k) => k.kid) });
      } else if (req.method === 'POST' && pathname === '/__harness/rs_nonce/rotate') {
        sendJson(res, 200, { nonce: rs.state.rotateNonce() });
      } else if (req.method === 'GET' && pathname === '/__harness/config') {
        sendJson(res, 200, {
          issuer,
          resource_server: resourceServer,
          resources: RESOURCE_SERVERS,
          options,
        });
      } else {
        sendJson(res, 404, { error: 'not_found', path: pathname });
      }
    } catch (err) {
      log('control error:', err);
      sendJson(res, 500, { error: String(err?.message ?? err) });
    }
  });
  const controlUrl = await listen(control);

  log(`provider ${issuer}, resource server ${resourceServer}, control ${controlUrl}, options ${JSON.stringify(options)}`);
  process.stdout.write(`${JSON.stringify({
    ready: true,
    issuer,
    token_endpoint: provider.urlFor('token'),
    resource_server: resourceServer,
    control: controlUrl,
    pid: process.pid,
  })}\n`);
}

main().catch((err) => {
  log('startup failed:', err);
  shutdown('startup failure', 1);
});
