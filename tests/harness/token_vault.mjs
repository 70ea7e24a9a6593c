// Auth0 Token Vault for the harness provider: the exchange of a user's
// refresh token for the access token of a federated connection, as the
// Auth0 Next.js SDK's `getAccessTokenForConnection` sends it:
//
//   grant_type           urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token
//   subject_token_type   urn:ietf:params:oauth:token-type:refresh_token
//   subject_token        the refresh token
//   requested_token_type http://auth0.com/oauth/token-type/federated-connection-access-token
//   connection           the connection's name
//   login_hint           (optional) which account on the connection
//
// What is checked, as Auth0 does:
//   * client authentication and the grant type allow-list are the
//     provider's (a client without the grant: `unauthorized_client`); the
//     client must be confidential (`unauthorized_client` otherwise);
//   * `subject_token_type` and `requested_token_type` exactly as above,
//     `connection` present (`invalid_request` otherwise);
//   * the subject token is a refresh token this provider issued to THIS
//     client, not expired, not consumed (rotated away), its grant not
//     revoked (`invalid_grant` otherwise), found with `RefreshToken.find`;
//   * `connection` is a configured upstream connection (`invalid_request`
//     otherwise). The upstream tokens are opaque strings naming the
//     connection, with the connection's `expires_in` and scope.
//
// Every exchange answered with a token is counted per connection in the
// harness stats (`connection_tokens_issued`), beside the per-grant request
// count every token request gets.

import * as crypto from 'node:crypto';
import { errors } from 'oidc-provider';

export const FEDERATED_CONNECTION_GRANT = 'urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token';
const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token';
const FEDERATED_CONNECTION_TOKEN_TYPE = 'http://auth0.com/oauth/token-type/federated-connection-access-token';

// The fake upstream connections: what their access tokens carry.
export const CONNECTIONS = {
  'google-oauth2': { scope: 'openid email https://www.googleapis.com/auth/calendar.readonly', expiresIn: 3600 },
  github: { scope: 'read:user repo', expiresIn: 28800 },
};

const PARAMS = [
  'subject_token',
  'subject_token_type',
  'requested_token_type',
  'connection',
  'login_hint',
];

/**
 * @param {import('oidc-provider').default} provider
 * @param {object} stats the harness counters (mutated in place)
 */
export function registerTokenVault(provider, stats) {
  async function federatedConnectionHandler(ctx) {
    const { params, client } = ctx.oidc;

    if (client.clientAuthMethod === 'none') {
      throw new errors.UnauthorizedClient('the client must authenticate to exchange a refresh token');
    }
    if (params.subject_token_type !== REFRESH_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${REFRESH_TOKEN_TYPE}`);
    }
    if (params.requested_token_type !== FEDERATED_CONNECTION_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${FEDERATED_CONNECTION_TOKEN_TYPE}`);
    }
    if (!params.subject_token) {
      throw new errors.InvalidRequest('missing required parameter \'subject_token\'');
    }
    if (!params.connection) {
      throw new errors.InvalidRequest('missing required parameter \'connection\'');
    }

    const refreshToken = await provider.RefreshToken.find(params.subject_token, { ignoreExpiration: true });
    if (!refreshToken) {
      throw new errors.InvalidGrant('invalid refresh token');
    }
    if (refreshToken.clientId !== client.clientId) {
      throw new errors.InvalidGrant('the refresh token was issued to another client');
    }
    if (refreshToken.isExpired) {
      throw new errors.InvalidGrant('the refresh token has expired');
    }
    if (refreshToken.consumed) {
      throw new errors.InvalidGrant('the refresh token was already used (rotated)');
    }
    const grant = await provider.Grant.find(refreshToken.grantId);
    if (!grant || grant.clientId !== client.clientId) {
      throw new errors.InvalidGrant('the grant of the refresh token was revoked');
    }

    const connection = CONNECTIONS[params.connection];
    if (!Object.hasOwn(CONNECTIONS, params.connection) || !connection) {
      throw new errors.InvalidRequest(`unknown connection ${params.connection}`);
    }

    stats.connection_tokens_issued ??= {};
    stats.connection_tokens_issued[params.connection] = (stats.connection_tokens_issued[params.connection] ?? 0) + 1;

    const hint = params.login_hint ? `${params.login_hint}-` : '';
    ctx.body = {
      access_token: `${params.connection}-${hint}${crypto.randomBytes(16).toString('base64url')}`,
      issued_token_type: FEDERATED_CONNECTION_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: connection.expiresIn,
      scope: connection.scope,
    };
  }

  provider.registerGrantType(FEDERATED_CONNECTION_GRANT, federatedConnectionHandler, PARAMS);
}
