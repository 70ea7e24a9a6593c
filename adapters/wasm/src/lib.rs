//! # tokenkeeper-wasm
//!
//! A driver for the [`tokenkeeper`] core on `wasm32-unknown-unknown`, over
//! the JavaScript `fetch`: in browsers, workers and Node 20+. One
//! `TokenKeeper` handle per application (`Clone`, not `Send`: JavaScript is
//! single-threaded), shared by every task. The core decides everything
//! (when to refresh, what to send, what a response means); this crate only
//! sends its requests with `fetch`, reads the clock (`Date.now()`) and Web
//! Crypto's random source, makes callers wait while another task's refresh
//! is in flight, and saves every change to a
//! [`SessionStore`](tokenkeeper::SessionStore).
//!
//! ```ignore
//! use tokenkeeper::{Config, TokenRequest};
//! use tokenkeeper_wasm::TokenKeeper;
//!
//! # async fn run(session: tokenkeeper::Session) -> Result<(), tokenkeeper_wasm::Error> {
//! let config = Config::builder("https://tenant.example.com/oauth/token", "my-spa")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let keeper = TokenKeeper::new(config, session)?;
//! let token = keeper.get_access_token(&TokenRequest::new()).await?;
//!
//! // Or let the handle authorize, send and retry an API call:
//! let request = tokenkeeper::HttpRequest {
//!     method: tokenkeeper::Method::GET,
//!     url: "https://api.example.com/me".into(),
//!     headers: Default::default(),
//!     body: Vec::new(),
//! };
//! let response = keeper.send_authorized(&TokenRequest::new(), request).await?;
//! # Ok(()) }
//! ```
//!
//! # Targets
//!
//! Everything that talks to JavaScript is compiled for `target_arch =
//! "wasm32"` only. On other targets this crate is its documentation, the
//! [`Error`] type and the target-independent state logic (tested there),
//! so a workspace that builds and tests natively builds it too.
//!
//! # What the adapter does
//!
//! - **HTTP**: each core `HttpRequest` becomes a `fetch` `Request` with its
//!   method, every header, its body and `redirect: "manual"`; the
//!   `Response` comes back as an `HttpResponse` with every header and any
//!   status (a 400 or 401 is data for the core). Only a rejected `fetch`
//!   promise is a transport error (`handle_transport_error`). The body is
//!   read chunk by chunk from its `ReadableStream` and never beyond the
//!   configuration's `Limits::max_body_bytes`: past it (or when
//!   `Content-Length` announces more) the request is aborted with
//!   `Error::TooLarge`, as the native adapters stop reading at the limit.
//!   Each request is aborted after a timeout (default 10 s) through an
//!   `AbortController` and the global `setTimeout`.
//! - **The lease outlasts the transport**: the timeout must end a second
//!   before the configuration's lease (`ConfigBuilder::lease`, default 60 s;
//!   `Builder::build` refuses a longer one with `invalid_configuration`,
//!   and without an explicit timeout derives one from the lease), and each
//!   request of a flight (a `use_dpop_nonce` retry too) is aborted before
//!   the flight's lease deadline. So no answer arrives after the core
//!   released its flight and let a waiting caller take the refresh over.
//! - **Clock and entropy**: `js_sys::Date::now()`, and
//!   `crypto.getRandomValues` through web-sys on the global scope
//!   (`WebCryptoEntropy`). No `getrandom` backend is forced on the
//!   application.
//! - **One loop on the core's driver**: every operation is a
//!   `tokenkeeper::driver::Call` polled on the core's `Driver`, whose
//!   effects this adapter carries out and nothing more: `Send` over
//!   `fetch`, `Store` on the store (one step of the event loop; the store
//!   need not be `Send`), `Sign` in Web Crypto, `Wait` on a `setTimeout` or
//!   another caller's progress. The driver owns the rest — single flight,
//!   DPoP nonce resends, compare-and-swap saves and their conflicts
//!   (another tab saved first), refresh claims with
//!   `ConfigBuilder::shared_store(true)`, revoking orphaned refresh tokens —
//!   as it does for the native adapters. A caller's future dropped
//!   mid-flight abandons its flight, and a waiting caller takes over.
//! - **Resource requests**: `TokenKeeper::send_authorized` adds the core's
//!   `Authorization` header, sends, calls `handle_resource_response`,
//!   retries once on `RetryWithNonce` and refreshes once on
//!   `TokenRejected`.
//! - **DPoP**: `WebCryptoKey::generate` makes an ECDSA P-256 key with
//!   `extractable: false` in Web Crypto (only the public JWK is exported);
//!   `Builder::dpop` turns DPoP on in the core with a deferred signer, and
//!   the handle signs each proof's signing input with
//!   `crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, …)` (the raw
//!   64-byte `r || s`) and hands it back (`TokenManager::handle_signature`,
//!   `PendingAuthorization::finish`). The private key never enters Rust.
//!
//! # Public items (wasm32)
//!
//! | item | what |
//! |---|---|
//! | `TokenKeeper`, `Builder` | the handle: `get_access_token`, `get_client_credentials_token`, `login`, `logout`, `exchange_token`, `send_authorized`, `send_request`, `with_manager`, `session`, `set_session`, `clear_session` |
//! | `fetch(&HttpRequest, timeout)`, `fetch_with_limit(…, max_body)` | one core request over `fetch`, its body bounded (default: the core's default limit) |
//! | `discover(issuer, timeout)` | OpenID Connect discovery |
//! | `route_client::get_access_token_from_route` (feature `route`; to JavaScript: `getAccessTokenFromRoute(routeUrl, options)`) | a token from the app's own `/auth/access-token` route, or its typed error |
//! | `WebCryptoKey` | the non-extractable DPoP key |
//! | `WebCryptoEntropy`, `now()`, `sleep()` | entropy, clock, timer from the global scope |
//! | `WebStorageStore` (feature `web-storage`) | a `SessionStore` on `localStorage` / `sessionStorage` |
//! | `DEFAULT_TIMEOUT` | 10 s per request (less when the lease is shorter than 11 s) |
//!
//! # Features
//!
//! - `url`, `float-roundtrip`, `verify-signatures` (default): the core's
//!   features of those names (any URL, exact floats, Web Crypto signatures
//!   checked before they leave).
//! - `login` (default): `TokenKeeper::login`, with the core's login, ID
//!   token and JWKS code. Without it an ID token a refresh returns is only
//!   checked for the same `sub` (the core's feature `login`).
//! - `discovery` (default): `discover`.
//! - `exchange` (default): `TokenKeeper::exchange_token` (RFC 8693).
//! - `route` (default): `route_client`, the browser's call to the app's own
//!   `/auth/access-token` route (the core's `route`).
//! - `web-storage`: `WebStorageStore`.
//! - `tracing`: the core's decisions as `tracing` events.
//!
//! An app that only refreshes a stored session (and signs DPoP proofs)
//! builds with `default-features = false`: about half the wasm
//! (`examples/size.sh`).
//!
//! The library does not choose a `getrandom` backend: it draws randomness
//! from Web Crypto itself. An application whose other dependencies need
//! `getrandom` on `wasm32-unknown-unknown` selects its `wasm_js` backend in
//! its own build.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The timeout logic is used by the wasm driver only; elsewhere it is built
// and tested, not called.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod error;
#[cfg(feature = "route")]
#[cfg_attr(docsrs, doc(cfg(feature = "route")))]
pub mod route_client;
mod timeout;

#[cfg(target_arch = "wasm32")]
mod dpop;
#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod keeper;
#[cfg(all(target_arch = "wasm32", feature = "web-storage"))]
mod storage;

pub use error::Error;
pub use tokenkeeper;

#[cfg(target_arch = "wasm32")]
pub use dpop::WebCryptoKey;
#[cfg(target_arch = "wasm32")]
pub use fetch::{fetch, fetch_with_limit};
#[cfg(target_arch = "wasm32")]
pub use js::{WebCryptoEntropy, now, sleep};
#[cfg(all(target_arch = "wasm32", feature = "discovery"))]
#[cfg_attr(docsrs, doc(cfg(feature = "discovery")))]
pub use keeper::discover;
#[cfg(target_arch = "wasm32")]
pub use keeper::{Builder, DEFAULT_TIMEOUT, TokenKeeper};
#[cfg(all(target_arch = "wasm32", feature = "web-storage"))]
#[cfg_attr(docsrs, doc(cfg(feature = "web-storage")))]
pub use storage::WebStorageStore;
