// Minimal protected resource ("resource server") for the integration tests.
//
// Routes (on its own origin):
//   GET|POST /api1/data   expects aud = https://api1.example.com
//   GET|POST /api2/data   expects aud = https://api2.example.com
//
// Access tokens are JWTs issued by the provider (accessTokenFormat 'jwt'),
// verified with jose against the provider's JWKS (fetched over HTTP from the
// provider's jwks_uri). Bearer and DPoP (RFC 9449) token presentation are
// supported; see README-like comments in server.mjs for the full contract.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeProtectedHeader,
  EmbeddedJWK,
  jwtVerify,
} from 'jose';

import { log } from './log.mjs';

const PROOF_MAX_AGE_SECS = 60;

function b64urlSha256(value) {
  return crypto.createHash('sha256').update(value).digest('base64url');
}

function quote(value) {
  return String(value).replaceAll('\\', '\\\\').replaceAll('"', '\\"');
}

class HttpError extends Error {
  constructor(status, scheme, error, description, extraHeaders = {}) {
    super(description);
    this.status = status;
    this.scheme = scheme;
    this.error = error;
    this.description = description;
    this.extraHeaders = extraHeaders;
  }
}

/**
 * @param {object} opts
 * @param {string} opts.issuer
 * @param {string} opts.jwksUri
 * @param {Record<string, string>} opts.audiences path prefix -> expected aud
 * @param {boolean} opts.nonceRequired
 * @param {object} opts.stats shared counters object
 */
export function createResourceServer({
  issuer, jwksUri, audiences, nonceRequired, stats,
}) {
  const jwks = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 0 });
  const seenJti = new Map(); // jti -> expiry (ms)
  let currentNonce = crypto.randomBytes(16).toString('base64url');

  const state = {
    get nonce() { return currentNonce; },
    rotateNonce() {
      currentNonce = crypto.randomBytes(16).toString('base64url');
      return currentNonce;
    },
  };

  function rememberJti(jti) {
    const now = Date.now();
    for (const [key, expiry] of seenJti) {
      if (expiry < now) seenJti.delete(key);
    }
    if (seenJti.has(jti)) return false;
    seenJti.set(jti, now + 2 * PROOF_MAX_AGE_SECS * 1000);
    return true;
  }

  async function verifyAccessToken(token, expectedAud, scheme) {
    try {
      const header = decodeProtectedHeader(token);
      if (header.typ !== 'at+jwt') {
        throw new Error(`unexpected typ ${header.typ}`);
      }
      const { payload } = await jwtVerify(token, jwks, {
        issuer,
        audience: expectedAud,
        typ: 'at+jwt',
      });
      return payload;
    } catch (err) {
      throw new HttpError(401, scheme, 'invalid_token', `access token invalid: ${err.message}`);
    }
  }

  async function verifyProof(proof, { method, htu, token, jkt }) {
    let payload;
    let protectedHeader;
    try {
      ({ payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256'],
      }));
    } catch (err) {
      throw new HttpError(401, 'DPoP', 'invalid_dpop_proof', `DPoP proof invalid: ${err.message}`);
    }
    const fail = (msg) => { throw new HttpError(401, 'DPoP', 'invalid_dpop_proof', msg); };
    if (payload.htm !== method) fail(`htm mismatch (got ${payload.htm}, expected ${method})`);
    if (typeof payload.htu !== 'string') fail('htu missing');
    // RFC 9449 §4.2: the htu is the request URI without query and fragment;
    // a proof that carries either is refused, not trimmed.
    if (payload.htu.includes('?') || payload.htu.includes('#')) {
      fail(`htu carries a query or fragment (${payload.htu})`);
    }
    let proofHtu;
    try {
      proofHtu = new URL(payload.htu);
    } catch {
      fail('htu is not a URL');
    }
    if (proofHtu.href !== htu) fail(`htu mismatch (got ${payload.htu}, expected ${htu})`);
    if (payload.ath !== b64urlSha256(token)) fail('ath mismatch');
    if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > PROOF_MAX_AGE_SECS) {
      fail('iat not within 60 seconds');
    }
    if (typeof payload.jti !== 'string' || !payload.jti) fail('jti missing');
    const thumbprint = await calculateJwkThumbprint(protectedHeader.jwk);
    if (thumbprint !== jkt) {
      throw new HttpError(401, 'DPoP', 'invalid_token', 'DPoP proof key does not match cnf.jkt');
    }
    if (nonceRequired && payload.nonce !== currentNonce) {
      stats.resource_nonce_challenges += 1;
      throw new HttpError(
        401,
        'DPoP',
        'use_dpop_nonce',
        payload.nonce ? 'stale DPoP nonce' : 'resource server requires a DPoP nonce',
        { 'dpop-nonce': currentNonce },
      );
    }
    if (!rememberJti(payload.jti)) fail('DPoP proof jti replayed');
  }

  async function handle(req, res, origin) {
    const url = new URL(req.url, origin);
    const prefix = Object.keys(audiences).find((p) => url.pathname === `${p}/data`);
    if (!prefix || (req.method !== 'GET' && req.method !== 'POST')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found' }));
      return;
    }
    stats.resource_requests += 1;
    const expectedAud = audiences[prefix];

    // Drain the body (not used, but POST requests may carry one).
    for await (const _ of req) { /* discard */ }

    const authorization = req.headers.authorization ?? '';
    const space = authorization.indexOf(' ');
    const scheme = space > 0 ? authorization.slice(0, space) : authorization;
    const token = space > 0 ? authorization.slice(space + 1).trim() : '';

    if (!token || !['bearer', 'dpop'].includes(scheme.toLowerCase())) {
      throw new HttpError(401, 'Bearer', undefined, undefined);
    }

    if (scheme.toLowerCase() === 'bearer') {
      const payload = await verifyAccessToken(token, expectedAud, 'Bearer');
      if (payload.cnf?.jkt) {
        throw new HttpError(401, 'Bearer', 'invalid_token', 'DPoP-bound access token presented as a Bearer token');
      }
      return payload;
    }

    // DPoP
    const payload = await verifyAccessToken(token, expectedAud, 'DPoP');
    if (!payload.cnf?.jkt) {
      throw new HttpError(401, 'DPoP', 'invalid_token', 'access token is not DPoP-bound');
    }
    const proof = req.headers.dpop;
    if (!proof || Array.isArray(proof) || proof.includes(',')) {
      throw new HttpError(401, 'DPoP', 'invalid_dpop_proof', 'exactly one DPoP proof header is required');
    }
    const htu = `${origin}${url.pathname}`;
    await verifyProof(proof, {
      method: req.method, htu, token, jkt: payload.cnf.jkt,
    });
    return payload;
  }

  const server = http.createServer((req, res) => {
    const origin = `http://${req.headers.host}`;
    // CORS for browsers: the axum example's page calls the APIs from its
    // own origin with the token it got from /auth/access-token.
    if (req.headers.origin) {
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('access-control-expose-headers', 'www-authenticate, dpop-nonce');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'authorization, dpop, content-type',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
    }
    handle(req, res, origin).then((payload) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({
        ok: true,
        sub: payload.sub,
        aud: payload.aud,
        scope: payload.scope,
        client_id: payload.client_id,
        method: req.method,
        token_type: payload.cnf?.jkt ? 'DPoP' : 'Bearer',
      }));
    }).catch((err) => {
      if (!(err instanceof HttpError)) {
        log('resource server error:', err);
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'server_error' }));
        return;
      }
      const params = [];
      if (err.error) params.push(`error="${quote(err.error)}"`);
      if (err.description) params.push(`error_description="${quote(err.description)}"`);
      if (err.scheme === 'DPoP') params.push('algs="ES256"');
      const challenge = params.length ? `${err.scheme} ${params.join(', ')}` : err.scheme;
      log(`resource ${req.method} ${req.url} -> ${err.status} ${challenge}`);
      res.writeHead(err.status, {
        'content-type': 'application/json',
        'www-authenticate': challenge,
        ...err.extraHeaders,
      });
      res.end(JSON.stringify({ error: err.error ?? 'unauthorized', error_description: err.description }));
    });
  });

  return { server, state };
}
