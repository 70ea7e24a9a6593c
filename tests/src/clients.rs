//! The statically registered clients of the harness provider and the other
//! fixed identifiers (resources, redirect URI, test keys).

use serde_json::json;

use crate::dpop::DpopKey;
use crate::util::{now_secs, random_token};

/// Resource indicator of the first API (RFC 8707), exact string.
pub const API1: &str = "https://api1.example.com";
/// Resource indicator of the second API (RFC 8707), exact string.
pub const API2: &str = "https://api2.example.com";
/// The scopes each resource server accepts.
pub const RESOURCE_SCOPES: &str = "read:data write:data";
/// The redirect URI registered for every code-flow client. The harness never
/// requests it: [`crate::Harness::login`] returns it with `code`, `state`, `iss`.
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// RFC 8693 token exchange grant type (registered by the harness).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Private JWK (JSON) of the fixed P-256 test key of the [`PKJWT`] client.
pub const PKJWT_PRIVATE_JWK_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/harness/keys/pkjwt-private.jwk.json"
);
/// PKCS#8 PEM copy of the [`PKJWT`] client's private key.
pub const PKJWT_PRIVATE_PEM_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/harness/keys/pkjwt-private.pem"
);
/// `kid` of the [`PKJWT`] client's key.
pub const PKJWT_KID: &str = "pkjwt-test-key-1";

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` + `client_secret` in the form.
    ClientSecretPost,
    /// `private_key_jwt` (RFC 7523) with ES256.
    PrivateKeyJwt,
    /// `none`: public client, `client_id` in the form only.
    None,
}

impl ClientAuth {
    /// The `token_endpoint_auth_method` metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

/// A client registered in the harness provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestClient {
    /// `client_id`.
    pub id: &'static str,
    /// `client_secret`, for the secret-based methods.
    pub secret: Option<&'static str>,
    /// Token endpoint authentication method.
    pub auth: ClientAuth,
}

/// `confidential-basic`: `client_secret_basic`, code + refresh + client
/// credentials + token exchange.
pub const CONFIDENTIAL_BASIC: TestClient = TestClient {
    id: "confidential-basic",
    secret: Some("secret-basic-1"),
    auth: ClientAuth::ClientSecretBasic,
};
/// `confidential-post`: `client_secret_post`, same grants as
/// [`CONFIDENTIAL_BASIC`].
pub const CONFIDENTIAL_POST: TestClient = TestClient {
    id: "confidential-post",
    secret: Some("secret-post-1"),
    auth: ClientAuth::ClientSecretPost,
};
/// `pkjwt`: `private_key_jwt` with ES256 and the key at
/// [`PKJWT_PRIVATE_PEM_PATH`], same grants as [`CONFIDENTIAL_BASIC`].
pub const PKJWT: TestClient = TestClient {
    id: "pkjwt",
    secret: None,
    auth: ClientAuth::PrivateKeyJwt,
};
/// `public-pkce`: public client (`none`), PKCE required, code + refresh.
pub const PUBLIC_PKCE: TestClient = TestClient {
    id: "public-pkce",
    secret: None,
    auth: ClientAuth::None,
};
/// `m2m`: `client_secret_basic`, client credentials only.
pub const M2M: TestClient = TestClient {
    id: "m2m",
    secret: Some("secret-m2m-1"),
    auth: ClientAuth::ClientSecretBasic,
};

/// A `private_key_jwt` client assertion for `client` (signed with the fixed
/// [`PKJWT`] key), audience `audience` (the issuer or the token endpoint).
pub fn client_assertion(client: &TestClient, audience: &str) -> String {
    let key = DpopKey::from_pkcs8_pem_file(PKJWT_PRIVATE_PEM_PATH);
    let now = now_secs();
    key.sign_jws(
        &json!({ "alg": "ES256", "typ": "JWT", "kid": PKJWT_KID }),
        &json!({
            "iss": client.id,
            "sub": client.id,
            "aud": audience,
            "jti": random_token(16),
            "iat": now,
            "exp": now + 60,
        }),
    )
}
