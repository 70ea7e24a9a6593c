//! # tokenkeeper-native
//!
//! The part of the native [`tokenkeeper`] adapters that does not depend on
//! the HTTP library: [`tokenkeeper-ureq`] (blocking) and
//! [`tokenkeeper-reqwest`] (async) are each a [`Transport`] — how a request
//! is sent and how a caller waits — around one [`Handle`]. Use one of
//! those; this crate is for writing another native adapter.
//!
//! What lives here, once:
//! - [`Handle`]: the core's [`Driver`](tokenkeeper::driver::Driver) behind
//!   a mutex, the store (blocking or [`AsyncSessionStore`]), the deferred
//!   DPoP signer, the wake-up for waiting callers, and the effect loop that
//!   every operation runs (token, machine token, login, exchange, logout,
//!   store calls);
//! - [`Sessions`]: the same for any number of sessions by id (a web
//!   backend's users) on one core, bounded in memory, loaded on demand;
//! - [`ResourceCall`]: a resource request's headers, nonce and
//!   `invalid_token` retries;
//! - [`Error`], generic over the HTTP library's error, with stable codes;
//! - [`OsEntropy`], the clock, the lease budget of a token request;
//! - [`block_on`], for blocking adapters.
//!
//! # Call order
//!
//! ```text
//! adapter builder ─> Settings ─ build(transport) ─> Handle ─ (Arc) ─> TokenKeeper
//!
//! TokenKeeper::get_access_token(request)
//!   └─ Handle::get_access_token ─> drive(Call): the one effect loop, also
//!      Sessions's (by id), lock held per step only:
//!        driver.poll(call, now) ─> Effect
//!          Send  ─> Transport::send (budget: the flight's lease - 250 ms)
//!                   ─> handle_response | handle_transport_error, notify
//!          Store ─> the store, awaited          ─> handle_store, notify
//!          Sign  ─> the deferred signer, awaited ─> handle_signature, notify
//!          Wait  ─> Transport::wait(listener, until the deadline; 50 ms
//!                   when another process refreshes)
//!          Done  ─> the result (the adapter's transport error kept)
//! ```
//!
//! A blocking adapter's `send` and `wait` block inside futures that finish
//! on their first poll, and its methods run the handle's futures with
//! [`block_on`]; an async adapter awaits them. Dropping a call's future
//! (a cancelled task, a panicking thread) abandons its flight, and a
//! waiting caller takes over.
//!
//! [`tokenkeeper-ureq`]: https://docs.rs/tokenkeeper-ureq
//! [`tokenkeeper-reqwest`]: https://docs.rs/tokenkeeper-reqwest
//! [`AsyncSessionStore`]: tokenkeeper::AsyncSessionStore
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::time::Duration;

mod block_on;
mod discover;
mod drive;
mod error;
mod handle;
mod last_url;
mod platform;
mod resource;
mod sessions;
mod store;
mod transport;

pub use block_on::block_on;
pub use discover::discover;
pub use error::{BoxError, Error, is_tls};
pub use event_listener;
pub use handle::{DeferredSigner, Handle, Settings, SignFuture};
pub use last_url::LastUrl;
pub use platform::{OsEntropy, now, until};
pub use resource::{ResourceCall, apply_headers};
pub use sessions::{DEFAULT_CAPACITY, Sessions, SessionsSettings};
pub use tokenkeeper;
pub use transport::Transport;

/// The default transport timeout for a whole request (10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The README's examples, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The handle is shared by threads and tasks. Checked when the crate
// compiles.
const _: fn() = || {
    fn shareable<T: Send + Sync + 'static>() {}
    struct Never;
    impl Transport for Never {
        type Error = std::io::Error;
        async fn send(
            &self,
            _: tokenkeeper::HttpRequest,
            _: usize,
            _: Option<Duration>,
        ) -> Result<tokenkeeper::HttpResponse, Error<std::io::Error>> {
            Err(Error::Timeout(None))
        }
        async fn wait(&self, _: event_listener::EventListener, _: Duration) {}
    }
    shareable::<Handle<Never>>();
    shareable::<Sessions<Never>>();
};
