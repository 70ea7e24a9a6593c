// Minimal RFC 8693 (OAuth 2.0 Token Exchange) grant for the harness provider.
//
// oidc-provider 9.13.3 does NOT implement token exchange itself (there is no
// `urn:ietf:params:oauth:grant-type:token-exchange` anywhere in its source),
// but it exposes `provider.registerGrantType(name, handler, params, dupes)`,
// which is enough for a small handler:
//
//   * client authentication, grant_type allow-listing per client, parameter
//     parsing and error rendering are done by the provider's token endpoint;
//   * `subject_token` must be a JWT access token issued by this provider
//     (`subject_token_type` = urn:ietf:params:oauth:token-type:access_token or
//     urn:ietf:params:oauth:token-type:jwt); it is verified with the
//     provider's own public keys (signature, iss, exp, typ at+jwt), its
//     audience must be one of the resource servers (not a token for anyone
//     else), and the client it was issued to (`client_id`) must be one the
//     exchanging client may act for (EXCHANGE_POLICY below); otherwise
//     `invalid_grant`;
//   * the target is `resource` (RFC 8707) or, failing that, `audience`
//     (RFC 8693 §2.1, treated as a resource indicator); it must be one of the
//     configured resource servers, otherwise `invalid_target`;
//   * the issued token is a JWT access token for that resource, `sub` = the
//     subject token's `sub`, scope = requested scope (or the subject token's
//     scope) intersected with the subject token's scope and the resource's
//     scopes, plus an `act` claim `{ sub: <client_id> }`.
//
// Not supported (by choice, to keep it small): actor_token, refresh tokens or
// ID tokens as requested_token_type, DPoP binding of exchanged tokens.

import { createLocalJWKSet, jwtVerify } from 'jose';
import { errors } from 'oidc-provider';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

// Which clients' tokens each client may exchange (its own, and those of the
// clients it acts for). Tokens of `public-pkce` (a browser app) and `m2m`
// (no user) are exchangeable by no one.
export const EXCHANGE_POLICY = {
  'confidential-basic': ['confidential-basic', 'confidential-post', 'pkjwt'],
  'confidential-post': ['confidential-post', 'pkjwt'],
  pkjwt: ['pkjwt', 'confidential-post'],
};

export const TOKEN_EXCHANGE_PARAMS = [
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'actor_token',
  'actor_token_type',
  'resource',
  'audience',
  'scope',
];

/**
 * @param {import('oidc-provider').default} provider
 * @param {{ keys: object[] }} publicJwks the provider's public JWKS
 * @param {(ctx, resource, client) => Promise<object>} getResourceServerInfo
 * @param {string[]} audiences the resource servers a subject token may be for
 */
export function registerTokenExchange(provider, publicJwks, getResourceServerInfo, audiences) {
  const keys = createLocalJWKSet(publicJwks);

  async function tokenExchangeHandler(ctx) {
    const { params, client } = ctx.oidc;

    if (!params.subject_token) {
      throw new errors.InvalidRequest('missing required parameter \'subject_token\'');
    }
    if (!params.subject_token_type) {
      throw new errors.InvalidRequest('missing required parameter \'subject_token_type\'');
    }
    if (![AT_TYPE, JWT_TYPE].includes(params.subject_token_type)) {
      throw new errors.InvalidRequest('unsupported subject_token_type');
    }
    if (params.requested_token_type && params.requested_token_type !== AT_TYPE) {
      throw new errors.InvalidRequest('unsupported requested_token_type');
    }
    if (params.actor_token) {
      throw new errors.InvalidRequest('actor_token is not supported by this server');
    }

    let subject;
    try {
      ({ payload: subject } = await jwtVerify(params.subject_token, keys, {
        issuer: provider.issuer,
        typ: 'at+jwt',
        audience: audiences,
      }));
    } catch (err) {
      throw new errors.InvalidGrant(`subject_token invalid: ${err.message}`);
    }
    const allowed = EXCHANGE_POLICY[client.clientId] ?? [];
    if (typeof subject.client_id !== 'string' || !allowed.includes(subject.client_id)) {
      throw new errors.InvalidGrant(
        `subject_token was issued to ${subject.client_id}, for whom ${client.clientId} may not act`,
      );
    }

    const resource = params.resource ?? params.audience;
    if (!resource || Array.isArray(resource)) {
      throw new errors.InvalidTarget('exactly one resource (or audience) must be requested');
    }
    // throws InvalidTarget for unknown resources
    const info = await getResourceServerInfo(ctx, resource, client);

    const subjectScopes = new Set(String(subject.scope ?? '').split(' ').filter(Boolean));
    const rsScopes = new Set(info.scope.split(' '));
    const requested = params.scope ? params.scope.split(' ') : [...subjectScopes];
    const missing = requested.filter((s) => !subjectScopes.has(s));
    if (params.scope && missing.length) {
      throw new errors.InvalidScope('requested scope exceeds the subject token\'s scope', missing.join(' '));
    }
    const scope = requested.filter((s) => rsScopes.has(s)).join(' ');

    const at = new provider.AccessToken({
      accountId: subject.sub,
      client,
      gty: 'token_exchange',
      scope: scope || undefined,
    });
    at.resourceServer = new provider.ResourceServer(resource, info);

    ctx.oidc.entity('AccessToken', at);
    const accessToken = await at.save();

    ctx.body = {
      access_token: accessToken,
      issued_token_type: AT_TYPE,
      token_type: at.tokenType,
      expires_in: at.expiration,
      scope: at.scope,
    };
  }

  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchangeHandler, TOKEN_EXCHANGE_PARAMS);
}

// For the provider's `extraTokenClaims` configuration: exchanged tokens carry
// an RFC 8693 `act` claim naming the client that performed the exchange
// (oidc-provider overwrites `token.extra` from this hook on save).
export function tokenExchangeExtraClaims(_ctx, token) {
  if (token.gty === 'token_exchange') {
    return { act: { sub: token.clientId } };
  }
  return undefined;
}
