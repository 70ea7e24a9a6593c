//! Support library for tokenkeeper's integration tests against a real
//! authorization server.
//!
//! The server side lives in `tests/harness/` (node-oidc-provider 9.13.3 plus a
//! small DPoP-aware resource server and a control API, see
//! `tests/harness/server.mjs`). This crate starts it ([`Harness::start`]),
//! talks to it over plain HTTP on 127.0.0.1 with `ureq`, and offers bootstrap
//! helpers that do not depend on the `tokenkeeper` crate itself:
//!
//! * [`pkce_login`]: a complete authorization code + PKCE login (the browser
//!   part is driven by the harness, the code exchange is done here) returning
//!   the raw token response,
//! * [`token_request`] / [`resource_request`]: raw calls with client
//!   authentication for the five [`TestClient`]s,
//! * [`DpopKey`]: a tiny DPoP (RFC 9449) proof builder,
//! * [`jwt::claims`]: unverified JWT claim decoding for assertions.
//!
//! ```no_run
//! use tokenkeeper_integration::{pkce_login, Harness, HarnessOptions, API1, API2, PUBLIC_PKCE};
//!
//! let harness = Harness::start(HarnessOptions::default());
//! let tokens = pkce_login(&harness, &PUBLIC_PKCE, "openid offline_access read:data", &[API1, API2]);
//! assert!(tokens["refresh_token"].is_string());
//! ```

#[allow(missing_docs)]
pub mod adapter_support;
pub mod example_runs;

/// The workspace README's code examples, compiled (and, unless marked
/// `no_run`, run) by `cargo test` as doctests: the README's examples work
/// as written.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct WorkspaceReadme;
mod clients;
mod dpop;
mod harness;
mod http;
pub mod jwt;
mod pkce;
pub mod tls_server;
pub mod util;

pub use clients::{
    API1, API2, CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, ClientAuth, M2M, PKJWT, PKJWT_KID,
    PKJWT_PRIVATE_JWK_PATH, PKJWT_PRIVATE_PEM_PATH, PUBLIC_PKCE, REDIRECT_URI, RESOURCE_SCOPES,
    TOKEN_EXCHANGE_GRANT, TestClient, client_assertion,
};
pub use dpop::DpopKey;
pub use harness::{CannedResponse, HARNESS_DIR, Harness, HarnessOptions, Stats};
pub use http::{HttpResponse, resource_request, token_request};
pub use pkce::{AuthorizationRequest, pkce_login};

/// `cli-native`: the command-line tool's public native client (PKCE, code +
/// refresh, device code). Registered with `http://127.0.0.1/callback`; being `native`,
/// any loopback port matches (RFC 8252 §7.3), so a CLI can listen on a
/// port of its own choosing.
pub const CLI_NATIVE: TestClient = TestClient {
    id: "cli-native",
    secret: None,
    auth: ClientAuth::None,
};
