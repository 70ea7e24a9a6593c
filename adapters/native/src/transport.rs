//! What an adapter supplies: how it sends and how it waits. Everything else
//! — the effect loop, the store, signing, the handle's operations — is
//! [`Handle`](crate::Handle)'s, once for every native adapter.
//!
//! A blocking adapter (ureq) implements both methods as futures that finish
//! on their first poll (the work done inside, blocking the thread) and runs
//! the handle's futures with [`block_on`](crate::block_on); an async one
//! (reqwest) awaits its client and a timer.

use std::future::Future;
use std::time::Duration;

use event_listener::EventListener;
use tokenkeeper::{HttpRequest, HttpResponse};

use crate::Error;

/// How requests are sent and how a caller waits, for one HTTP library.
pub trait Transport: Send + Sync + 'static {
    /// The HTTP library's error ([`Error::Transport`]'s source).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sends a request the core described and returns the response whatever
    /// its status (a 400 or 401 is data for the core), with every header and
    /// at most a little more than `max_body` bytes of body (the core refuses
    /// a longer one itself), following no redirect. With a `budget`, the
    /// whole exchange, body included, is given up when it runs out
    /// ([`Error::Timeout`]): a token request must not outlive its flight's
    /// lease.
    fn send(
        &self,
        request: HttpRequest,
        max_body: usize,
        budget: Option<Duration>,
    ) -> impl Future<Output = Result<HttpResponse, Error<Self::Error>>> + Send;

    /// Waits until `listener` fires (another caller made progress) or
    /// `pause` (at least 1 ms) has passed.
    fn wait(&self, listener: EventListener, pause: Duration) -> impl Future<Output = ()> + Send;
}
