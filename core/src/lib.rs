//! # tokenkeeper
//!
//! OAuth 2.0 / OpenID Connect access tokens kept fresh, as a **sans-IO state
//! machine**: the core never touches the network, a clock or a random
//! source. It is told the time, given entropy, and *describes* the HTTP
//! requests it wants sent; adapters (`tokenkeeper-ureq`,
//! `tokenkeeper-reqwest`, `tokenkeeper-wasm`) run them.
//!
//! It follows the token lifecycle of the Auth0 Next.js SDK's
//! `getAccessToken` (refresh buffer, forced refresh, rotation, per-audience
//! tokens), and fixes what the JavaScript SDKs lose: one refresh at a time
//! per refresh token across every audience, every change announced for
//! persistence, nothing stored on a failed exchange.
//!
//! # Call order
//!
//! ```text
//!  host                                   TokenManager
//!   │ get_access_token(request, now) ───────►│
//!   │◄── Action::Ready(token)                │  cached, no I/O
//!   │◄── Action::Send { id, request }        │  refresh needed
//!   │ …send it…                              │
//!   │ handle_response(id, response, now) ───►│
//!   │◄── Completion::Ready(token)            │
//!   │ poll_event() ─────────────────────────►│
//!   │◄── Event::SessionChanged { .. }        │  persist the session!
//!   │ poll_revocation(now) ─────────────────►│
//!   │◄── Some(Ok(dispatch))                  │  send it: a proven refresh token
//!   │                                        │  that could not be stored
//!   │ poll_timeout() / handle_timeout(now) ─►│  lease deadlines
//! ```
//!
//! # States of one refresh
//!
//! ```text
//!   Fresh ──(expiresAt <= now + buffer, or forced)──► Refreshing ──ok──► Fresh
//!     ▲                                                 │  │
//!     │                          transport error/cancel │  │ invalid_grant
//!     └─────────────── (token unchanged) ◄──────────────┘  ▼
//!                                              ReauthenticationRequired
//! ```
//!
//! # Example: one refresh by hand
//!
//! ```
//! use tokenkeeper::{
//!     Action, Completion, Config, HttpResponse, SeededEntropy, Session, TokenManager,
//!     TokenRequest, UnixTime,
//! };
//! use tokenkeeper::grant::ClientAuth;
//! use tokenkeeper::ClientSecret;
//!
//! let config = Config::builder("https://tenant.example.com/oauth/token", "my-client")
//!     .client_auth(ClientAuth::SecretPost(ClientSecret::new("my-secret")))
//!     .build()?;
//! let mut manager = TokenManager::new(config, SeededEntropy::new(1));
//!
//! // A stored session whose access token expired at t=1000.
//! let stored = br#"{"tokenSet":{"accessToken":"old","refreshToken":"rt-1","expiresAt":1000}}"#;
//! manager.set_session(Session::from_json(stored, &Default::default())?);
//!
//! let now = UnixTime::from_secs(2000);
//! let outgoing = match manager.get_access_token(&TokenRequest::new(), now) {
//!     Action::Send(outgoing) => outgoing,
//!     other => panic!("expected a refresh, got {other:?}"),
//! };
//! assert_eq!(outgoing.request.url, "https://tenant.example.com/oauth/token");
//! let body = String::from_utf8(outgoing.request.body.clone()).unwrap();
//! assert!(body.starts_with("grant_type=refresh_token&refresh_token=rt-1"));
//!
//! // The host sends it; here is the server's answer, with a rotated refresh token.
//! let response = HttpResponse::new(
//!     200,
//!     r#"{"access_token":"new","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#,
//! );
//! match manager.handle_response(outgoing.id, response, now) {
//!     Completion::Ready(token) => {
//!         assert_eq!(token.token.secret(), "new");
//!         assert_eq!(token.expires_at, UnixTime::from_secs(5600));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // The rotated refresh token must be persisted.
//! assert!(manager.poll_event().is_some());
//! let session = manager.session().unwrap();
//! assert_eq!(session.token_set().refresh_token.as_ref().unwrap().secret(), "rt-2");
//! # Ok::<(), tokenkeeper::Error>(())
//! ```
//!
//! # Invariants
//!
//! 1. No clock reads, no randomness drawn, no I/O: the time is a parameter
//!    of every call, entropy (`jti`s, PKCE verifiers, `state` and `nonce`,
//!    key generation) comes from the host's [`Entropy`], and requests are
//!    described for the host to send. Signing is a host-supplied effect
//!    like HTTP: the core hands a signing input to the [`Signer`](dpop::Signer)
//!    the host installed, and what that signer does is the signer's. The
//!    built-in [`P256Signer`](dpop::P256Signer) draws nothing (RFC 6979
//!    deterministic signatures); `RingSigner` (feature `ring`) draws from
//!    ring's own `SystemRandom`, the operating system's generator, when it is
//!    created and for every signature's ECDSA nonce, not from the host's
//!    [`Entropy`]. That is the only randomness drawn inside this crate
//!    without the host handing it over, and only when the host chooses that
//!    signer.
//! 2. A token expired at `now` is never returned as ready.
//! 3. At most one refresh per refresh token in flight, across audiences.
//! 4. The newest refresh token is never lost.
//! 5. A DPoP-bound token is never sent as `Bearer`.
//! 6. No input makes the core panic; bad input leaves the state as it was.
//! 7. Secrets never appear in `Debug` or `Display` output.
//! 8. Every refresh token a successful answer carried is the stored one,
//!    or was replaced by a later rotation, or is handed out for revocation
//!    (`poll_revocation`): none is orphaned.
//! 9. A stored session's generation only grows, and a logged-out or
//!    cleared session never comes back through a late save (the keeper's
//!    conflict table in `keeper`).
//!
//! These are checked after every step against a reference model of the
//! session, in lockstep with real managers and keepers (`core/tests/model.rs`
//! and the `manager_ops` fuzz target).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `std` | yes | `std::error::Error` impls, `SystemTime` conversions |
//! | `url` | yes | any `http`/`https` URL, parsed by the WHATWG URL Standard (the `url` crate and its IDNA tables); without it only URLs already in canonical form ([`dpop::htu`]) |
//! | `float-roundtrip` | yes | exact float parsing in kept unknown JSON members |
//! | `verify-signatures` | yes | a deferred signer's DPoP signature verified before the request leaves (`TokenManager::handle_signature`) |
//! | `login` | yes | `login`, `id_token`, `jws`, `jwks`, `logout_token`, `grant::code`, `TokenManager::exchange_code`; without it an ID token a refresh returns is only checked for the same `sub` |
//! | `discovery` | yes | `discovery`, `ConfigBuilder::metadata` |
//! | `exchange` | yes | `grant::token_exchange`, `TokenManager::exchange_token` (RFC 8693) |
//! | `route` | yes | `route`, the `/auth/access-token` contract |
//! | `http`, `time`, `ring`, `tracing`, `p256-tables` | no | see `Cargo.toml` |
//!
//! An app that only refreshes a stored session and signs DPoP proofs needs
//! none of the optional protocol parts: `default-features = false,
//! features = ["std"]` (the wasm adapter's `examples/size.sh` app).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

// The public surface (issue 14 part 5): the crate root re-exports what a
// host uses every day; a few modules with clear names group the rest by
// feature. Everything else is private; what only tests, benches and fuzz
// targets reach sits in the hidden `__private` module at the end.
#[cfg(feature = "discovery")]
#[cfg_attr(docsrs, doc(cfg(feature = "discovery")))]
pub mod discovery;
pub mod dpop;
pub mod driver;
pub mod grant;
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub mod id_token;
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub mod login;
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub mod logout_token;
#[cfg(feature = "route")]
#[cfg_attr(docsrs, doc(cfg(feature = "route")))]
pub mod route;
pub mod store;

mod cache;
mod config;
mod entropy;
mod error;
mod flight;
mod form;
mod http;
#[cfg(feature = "login")]
mod jwks;
#[cfg(feature = "login")]
mod jws;
mod jwt;
mod keeper;
mod limits;
mod manager;
mod scope;
mod secret;
mod session;
mod time;
mod token;
mod trace;

pub use config::{Config, ConfigBuilder};
pub use driver::{Driver, Keeper};
pub use entropy::{Entropy, SeededEntropy};
pub use error::{Error, MfaRequired, ResponseError, ServerError};
pub use flight::RequestId;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::ConversionError;
pub use http::{Headers, HttpRequest, HttpResponse, Method};
pub use limits::Limits;
pub use manager::{
    AccessTokenInfo, AccessTokenRef, Action, ChangeReason, Completion, Event, OutgoingRequest,
    ResourceVerdict, TokenManager, TokenRequest,
};
pub use manager::{
    Authorization, Dispatch, PendingAuthorization, ResourceRetries, SignatureRequest,
};
#[cfg(feature = "exchange")]
pub use manager::{
    ConnectionRequest, GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN,
    REQUESTED_TOKEN_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN, SUBJECT_TYPE_REFRESH_TOKEN,
};
pub use scope::DEFAULT_SCOPE;
pub use secret::{AccessToken, ClientSecret, IdToken, MfaToken, RefreshToken};
#[cfg(feature = "exchange")]
pub use session::ConnectionTokenSet;
pub use session::{RefreshClaim, Session};
pub use store::{AsyncSessionStore, MemoryStore, SessionStore, StoreError, UnsharedStore};
pub use time::UnixTime;
pub use token::{AccessTokenSet, TokenResponse, TokenSet, TokenType};

/// Not public API: what the crate's own tests, benches and fuzz targets
/// reach inside the core (parsers, caches, request builders), grouped by the
/// private module they come from. No semver promise; hosts must not use it.
#[doc(hidden)]
pub mod __private {
    /// Scope strings as sets.
    pub mod scope {
        pub use crate::scope::*;
    }
    /// `application/x-www-form-urlencoded` encoding and decoding.
    pub mod form {
        pub use crate::form::*;
    }
    /// Compact JWS headers and signature checks.
    #[cfg(feature = "login")]
    pub mod jws {
        pub use crate::jws::*;
    }
    /// Unverified JWT claims.
    pub mod jwt {
        pub use crate::jwt::*;
    }
    /// The token cache.
    pub mod cache {
        pub use crate::cache::*;
    }
    /// Token responses and freshness.
    pub mod token {
        pub use crate::token::response::parse_mfa_required;
        pub use crate::token::{Decision, Freshness};
    }
    /// JSON limits.
    pub mod limits {
        pub use crate::limits::json_depth_exceeds;
    }
    /// DPoP internals: challenges, nonces, proofs.
    pub mod dpop {
        pub use crate::dpop::internal::*;
    }
    /// Grant request builders the manager drives.
    pub mod grant {
        pub use crate::grant::internal::*;
        #[cfg(feature = "exchange")]
        pub use crate::grant::token_exchange::GRANT_TYPE as TOKEN_EXCHANGE_GRANT_TYPE;
        #[cfg(feature = "exchange")]
        pub use crate::grant::token_exchange::RESERVED as TOKEN_EXCHANGE_RESERVED;
    }
}
