//! Stateful sessions: the cookie holds only the session's id (a JWE of
//! `{"id": …}`, as the SDK's `StatefulSessionStore` writes it) and the
//! session lives in a store shared by every instance of the app.
//!
//! [`SessionBackend`] is the one seam: it hands out the core's
//! [`SessionStore`] for an id (load, compare-and-swap save, clear), which
//! the driver uses as it is. A Redis-backed or database-backed backend
//! implements these two methods; its calls may block
//! ([`SessionBackend::blocks`], the default), so they run on tokio's
//! blocking pool, never on the runtime's worker threads.
//!
//! Back-channel logout (`POST /auth/backchannel-logout`) needs the backend
//! to keep "logged out at" marks by `sid` and `sub` and the seen logout
//! token `jti`s, shared by every instance
//! ([`tokenkeeper::store::logout_marks`]): [`SessionBackend::logout_marks`].
//! Every session the backend loads is checked against them, so a logout
//! one instance receives ends the session on every instance's next
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokenkeeper::store::logout_marks::{self, LogoutMarks, MemoryLogoutMarks};
use tokenkeeper::{MemoryStore, Session, SessionStore, StoreError, UnixTime};

/// Logout marks shared by the instances of an app, behind a lock.
pub type SharedLogoutMarks = Arc<Mutex<dyn LogoutMarks + Send>>;

/// Sessions by id.
pub trait SessionBackend: Send + Sync + 'static {
    /// The store of session `id` (it may hold nothing yet).
    fn store(&self, id: &str) -> Box<dyn SessionStore + Send>;

    /// Forgets session `id` (logout).
    ///
    /// # Errors
    /// When the store cannot be written.
    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.store(id).clear(id)
    }

    /// Where back-channel logout marks and seen `jti`s live, shared by
    /// every instance; `None` (the default): back-channel logout is not
    /// served (the route answers 501).
    fn logout_marks(&self) -> Option<SharedLogoutMarks> {
        None
    }

    /// Whether this backend's calls may wait on I/O (a network store such
    /// as `tokenkeeper_redis::BlockingRedisStore`, a database): the
    /// default, `true`. They then run on tokio's blocking pool
    /// (`spawn_blocking`), never on the runtime's worker threads, so a
    /// slow store call cannot stall the other requests of a worker. A
    /// backend that answers from memory says `false` and is called in
    /// place (a hop to the blocking pool costs more than its answer).
    fn blocks(&self) -> bool {
        true
    }

    /// Whether a back-channel logout ended `session` (a store error counts
    /// as ended: failing closed).
    fn is_ended(&self, session: &Session, now: UnixTime) -> bool {
        let Some(marks) = self.logout_marks() else {
            return false;
        };
        let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner);
        logout_marks::is_ended(&mut *marks, session, now).unwrap_or(true)
    }
}

/// Sessions in this process's memory (tests, single-instance apps).
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    sessions: Arc<Mutex<HashMap<String, Arc<Mutex<MemoryStore>>>>>,
    marks: Arc<Mutex<MemoryLogoutMarks>>,
}

impl MemoryBackend {
    /// An empty backend.
    #[must_use]
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// How many sessions it holds (logged-out ones removed).
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(id, s)| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(id)
                    .is_some()
            })
            .count()
    }

    /// Whether it holds no session.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionBackend for MemoryBackend {
    fn store(&self, id: &str) -> Box<dyn SessionStore + Send> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        Box::new(Arc::clone(sessions.entry(id.to_owned()).or_default()))
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        Ok(())
    }

    fn logout_marks(&self) -> Option<SharedLogoutMarks> {
        Some(self.marks.clone())
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// Runs `work`, a blocking backend's call, on tokio's blocking pool; a
/// panic in it goes on in the caller. `None` when the runtime is shutting
/// down and the work was never run.
pub(crate) async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => None,
    }
}
