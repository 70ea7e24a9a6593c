//! One request's session, shared by the [`AuthLayer`](crate::AuthLayer)
//! and every extractor of the request.
//!
//! The layer loads the session once (one decryption, or one store read)
//! and puts one [`RequestSession`] into the request's extensions. Every
//! extractor and every [`Api::send`](crate::Api::send) of the request
//! runs its driver call on the cell's *current* session, one at a time
//! (the cell's lock is held across the call): a second refresh in the same
//! request starts from the first one's rotated refresh token instead of
//! the request's old cookie, which holds a refresh token the server has
//! already rotated away (and answers by revoking the whole grant).
//!
//! ```text
//! AuthLayer ─► RequestSession::new(Auth::load(cookies))      (unchanged)
//!   extractor / Api::send ─► run(call) ─► call(source of the current session)
//!                              └─ changed ─► the cell holds the new session    (changed)
//!                              └─ session_expired ─► the cell holds none        (expired)
//! AuthLayer ◄─ set_cookies(): changed ─► Set-Cookie; expired ─► delete;
//!              unchanged + rolling ─► Set-Cookie (the expiry moves forward)
//! ```

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

use crate::Auth;
use crate::auth::Loaded;
use crate::cookies::RequestCookies;
use crate::driver::{DriverError, Outcome, SessionSource};
use crate::error::Error;

/// The per-request session cell (cheap to clone; clones share the cell).
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<tokio::sync::Mutex<State>>);

/// What happened to the request's session so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// As loaded from the request.
    Unchanged,
    /// A refresh or a rotation replaced it: it must go out.
    Changed,
    /// The server ended it (`session_expired`): the cookie must go.
    Expired,
}

struct State {
    loaded: Loaded,
    change: Change,
}

impl RequestSession {
    /// The cell of a request whose session was loaded as `loaded`.
    pub(crate) fn new(loaded: Loaded) -> Self {
        RequestSession(Arc::new(tokio::sync::Mutex::new(State {
            loaded,
            change: Change::Unchanged,
        })))
    }

    /// Whether the request (still) has a session.
    pub(crate) async fn is_logged_in(&self) -> bool {
        self.0.lock().await.loaded.session.is_some()
    }

    /// The session's user claims (`None` without a session).
    pub(crate) async fn user(&self) -> Option<Value> {
        let state = self.0.lock().await;
        let session = state.loaded.session.as_ref()?;
        Some(session.user().cloned().unwrap_or(Value::Null))
    }

    /// Runs one driver call on the current session and keeps what it
    /// changed. Calls of one request are serialised by the cell's lock,
    /// so each starts from the last one's session.
    pub(crate) async fn run<T, F, Fut>(&self, auth: &Auth, call: F) -> Result<T, DriverError>
    where
        F: FnOnce(SessionSource) -> Fut,
        Fut: Future<Output = Outcome<T>>,
    {
        let mut state = self.0.lock().await;
        let outcome = call(auth.source(&state.loaded)).await;
        if let Err(DriverError::Core(e)) = &outcome.result
            && e.code() == "session_expired"
        {
            state.loaded.session = None;
            state.change = Change::Expired;
        } else if let Some(session) = outcome.changed {
            state.loaded.session = Some(session);
            state.change = Change::Changed;
        }
        outcome.result
    }

    /// The `Set-Cookie` values the response needs at `now`: the changed
    /// session, the deletion of an expired one, or (`roll`) the unchanged
    /// session re-set so that its inactivity expiry moves forward, as the
    /// SDK's middleware does on every request.
    ///
    /// # Errors
    /// A changed session that cannot be written (too large, no
    /// randomness): its rotated refresh token would be lost.
    pub(crate) async fn set_cookies(
        &self,
        auth: &Auth,
        cookies: &RequestCookies<'_>,
        now: u64,
        roll: bool,
    ) -> Result<Vec<String>, Error> {
        let state = self.0.lock().await;
        let mut out = Vec::new();
        match (state.change, &state.loaded.session) {
            (Change::Expired, _) => auth.clear(&state.loaded, cookies, &mut out).await,
            (Change::Changed, Some(session)) => {
                auth.persist(session, state.loaded.id.as_deref(), cookies, now, &mut out)?;
            }
            (Change::Unchanged, Some(session)) if roll => {
                let rolled =
                    auth.persist(session, state.loaded.id.as_deref(), cookies, now, &mut out);
                // The session was read from this very cookie, so it fits;
                // a failure here changes nothing the user depends on.
                if rolled.is_err() {
                    out.clear();
                }
            }
            _ => {}
        }
        Ok(out)
    }
}
