//! Bootstrap authorization code + PKCE login with raw HTTP.

use serde_json::Value;

use crate::clients::{REDIRECT_URI, TestClient};
use crate::harness::Harness;
use crate::http::token_request;
use crate::util::{b64url_sha256, form_encode, query_param, random_token};

/// An authorization request (RFC 6749 §4.1.1 + PKCE S256 + RFC 8707
/// `resource`) with its secrets, for tests that need to take the flow apart.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: TestClient,
    /// Space-separated scopes.
    pub scope: String,
    /// `resource` values, in order.
    pub resources: Vec<String>,
    /// `state` (random).
    pub state: String,
    /// `nonce` (random).
    pub nonce: String,
    /// PKCE code verifier (random, 43 characters).
    pub code_verifier: String,
    /// `prompt`; `consent` by default when `offline_access` is requested
    /// (oidc-provider drops `offline_access` otherwise).
    pub prompt: Option<String>,
    /// `redirect_uri` (defaults to [`REDIRECT_URI`]).
    pub redirect_uri: String,
}

impl AuthorizationRequest {
    /// A request with fresh random `state`, `nonce` and code verifier.
    pub fn new(client: &TestClient, scope: &str, resources: &[&str]) -> Self {
        Self {
            client: *client,
            scope: scope.to_owned(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            state: random_token(16),
            nonce: random_token(16),
            code_verifier: random_token(32),
            prompt: scope
                .split(' ')
                .any(|s| s == "offline_access")
                .then(|| "consent".to_owned()),
            redirect_uri: REDIRECT_URI.to_owned(),
        }
    }

    /// The S256 code challenge of [`Self::code_verifier`].
    pub fn code_challenge(&self) -> String {
        b64url_sha256(&self.code_verifier)
    }

    /// The authorization URL at `harness`'s authorization endpoint.
    pub fn url(&self, harness: &Harness) -> String {
        let challenge = self.code_challenge();
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", self.client.id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(prompt) = &self.prompt {
            params.push(("prompt", prompt));
        }
        for resource in &self.resources {
            params.push(("resource", resource));
        }
        format!(
            "{}?{}",
            harness.authorization_endpoint(),
            form_encode(&params)
        )
    }

    /// Extracts the `code` from the callback URL after checking that it is
    /// not an error response, that `state` matches and that `iss` (RFC 9207)
    /// is the harness issuer.
    ///
    /// # Panics
    /// On an error response or a mismatch.
    pub fn code_from_callback(&self, harness: &Harness, callback_url: &str) -> String {
        assert!(
            callback_url.starts_with(&self.redirect_uri),
            "callback {callback_url} is not at {}",
            self.redirect_uri
        );
        if let Some(error) = query_param(callback_url, "error") {
            panic!(
                "authorization error {error}: {:?}",
                query_param(callback_url, "error_description")
            );
        }
        assert_eq!(
            query_param(callback_url, "state").as_deref(),
            Some(self.state.as_str()),
            "state mismatch in {callback_url}"
        );
        assert_eq!(
            query_param(callback_url, "iss").as_deref(),
            Some(harness.issuer()),
            "iss mismatch in {callback_url}"
        );
        query_param(callback_url, "code")
            .unwrap_or_else(|| panic!("no code in callback {callback_url}"))
    }

    /// Exchanges `code` at the token endpoint (authenticating as the client,
    /// with `resource` = the first of [`Self::resources`], if any,
    /// adding `extra_headers`, e.g. `("DPoP", proof)`) and returns the raw
    /// JSON token response.
    ///
    /// # Panics
    /// If the token endpoint does not answer 200 with JSON.
    pub fn exchange_code(
        &self,
        harness: &Harness,
        code: &str,
        extra_headers: &[(&str, &str)],
    ) -> Value {
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &self.code_verifier),
        ];
        // The harness fills in no resource: ask for the first one by name.
        if let Some(resource) = self.resources.first() {
            params.push(("resource", resource));
        }
        let response = token_request(harness, &self.client, &params, extra_headers);
        assert_eq!(
            response.status, 200,
            "code exchange failed: HTTP {} {}",
            response.status, response.body
        );
        response.json()
    }
}

/// Bootstrap login: authorization code flow with PKCE (S256), `state`,
/// `nonce` and one `resource` parameter per entry of `resources`, the browser
/// part driven by [`Harness::login`] (user `alice`), the code exchanged with
/// the client's own authentication method.
///
/// Returns the raw token response JSON (`access_token`, `refresh_token` when
/// `offline_access` is in `scope`, `id_token` with `openid`, `expires_in`,
/// `scope`, `token_type`). With resources, the access token is a JWT for the
/// first resource; the refresh token can be used for any of them.
///
/// # Panics
/// If any step fails (with the provider's answer in the message).
pub fn pkce_login(
    harness: &Harness,
    client: &TestClient,
    scope: &str,
    resources: &[&str],
) -> Value {
    let request = AuthorizationRequest::new(client, scope, resources);
    let callback = harness.login(&request.url(harness));
    let code = request.code_from_callback(harness, &callback);
    request.exchange_code(harness, &code, &[])
}
