//! Where sessions are kept between calls and processes.
//!
//! The manager announces every change with
//! [`Event::SessionChanged`](crate::Event::SessionChanged); the
//! [driver](crate::driver) then describes a save ([`StoreOp`](crate::driver::StoreOp))
//! and the adapter runs it on a store: a [`SessionStore`] (blocking) or an
//! [`AsyncSessionStore`] (awaited). Stores key every session on a
//! [`SessionKey`] (a session's id, or the slot a single-session handle
//! uses, [`DEFAULT_KEY`]) and compare generations: a save names the
//! generation it replaces, and a store that holds another one refuses with
//! [`StoreError::Conflict`], so two processes can never both overwrite a
//! session from the same starting point — the loser reloads instead.
//!
//! A store for a remote database maps the five operations onto it
//! directly; for Redis (one key per session, the generation in the value):
//!
//! | operation | Redis |
//! |-----------|-------|
//! | [`load`](AsyncSessionStore::load) | `GET tk:{key}` → parse the JSON ([`Session::from_json`]) |
//! | [`generation`](AsyncSessionStore::generation) | `HGET tk:{key} generation` (or the whole value) |
//! | [`save`](AsyncSessionStore::save) | a Lua script: compare the stored generation with `expected`, then `SET` (else answer the found generation: [`StoreError::Conflict`]) |
//! | [`clear`](AsyncSessionStore::clear) | `DEL tk:{key}`, keeping `tk:{key}:floor` |
//! | [`floor`](AsyncSessionStore::floor) | `GET tk:{key}:floor` (raised by every save) |
//!
//! and its own errors become the [source](core::error::Error::source) of
//! [`StoreError::Backend`] (see the example on [`AsyncSessionStore`]).

use alloc::boxed::Box;

use crate::session::Session;

pub mod logout_marks;
mod memory;
mod nonblocking;
mod unshared;

pub use logout_marks::{LogoutMarks, MemoryLogoutMarks};
pub use memory::MemoryStore;
pub use nonblocking::{AsyncSessionStore, Changed};
pub use unshared::UnsharedStore;

/// The key a session is stored under: its [`Session::id`] in a store of
/// many sessions, or the slot a handle serving one session uses
/// ([`DEFAULT_KEY`] unless the application names one).
pub type SessionKey = str;

/// The key of a handle that serves one session and was given no other.
pub const DEFAULT_KEY: &SessionKey = "default";

/// The error a store backend gave (its own error type), shared: a store
/// error can be cloned (an error handed to several waiters).
pub type BackendError = alloc::sync::Arc<dyn core::error::Error + Send + Sync>;

/// Why a store operation failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored session is not the generation the save expected: another
    /// writer got there first. Reload and retry.
    Conflict {
        /// The generation found in the store, if any.
        found: Option<u64>,
    },
    /// The store itself failed: the backend's own error is the
    /// [`source`](core::error::Error::source).
    Backend(BackendError),
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Conflict { found } => write!(
                f,
                "the stored session changed meanwhile (generation {found:?})"
            ),
            StoreError::Backend(_) => f.write_str("session store failed"),
        }
    }
}

/// The source is the backend's error itself (not the `Arc` around it), so
/// callers can downcast to their database's error type.
impl core::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            StoreError::Backend(error) => Some(&**error),
            StoreError::Conflict { .. } => None,
        }
    }
}

impl StoreError {
    /// A backend failure with `error` (the backend's own error, or a
    /// message) as its source.
    pub fn backend(error: impl Into<Box<dyn core::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(BackendError::from(error.into()))
    }
}

impl Eq for StoreError {}

/// Conflicts compare by the generation found; backend errors by their
/// message (the errors themselves cannot be compared).
impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StoreError::Conflict { found: a }, StoreError::Conflict { found: b }) => a == b,
            (StoreError::Backend(a), StoreError::Backend(b)) => {
                alloc::string::ToString::to_string(a) == alloc::string::ToString::to_string(b)
            }
            _ => false,
        }
    }
}

/// Persistence for sessions, keyed by [`SessionKey`], blocking: for hosts
/// that may block (threads, the command line, the browser's synchronous
/// `localStorage`). Async hosts use [`AsyncSessionStore`]. The driver runs
/// one operation at a time per session; a store for one session (a file)
/// may ignore the key.
pub trait SessionStore {
    /// The session stored under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError>;

    /// Stores `session` under `key`; it was derived from the stored
    /// generation `expected` (`None`: nothing was stored). Stores that can
    /// compare and swap return [`StoreError::Conflict`] when the stored
    /// generation differs; others may ignore `expected`. (A new login is
    /// written above the key's [`floor`](SessionStore::floor), so no handle
    /// that saw an older session can match its generation.)
    ///
    /// # Errors
    /// [`StoreError::Conflict`] or [`StoreError::Backend`].
    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError>;

    /// The generation of the session stored under `key`, if any: asked
    /// before every refresh, so a store that can answer it without reading
    /// the whole session (a column, a version number) should override this.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        Ok(self.load(key)?.as_ref().map(Session::generation))
    }

    /// Removes the session stored under `key` (logout).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be written.
    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError>;

    /// The highest generation stored under `key`, kept across
    /// [`clear`](SessionStore::clear) (a tombstone): a new login is written
    /// above it, so no handle that saw an older session can ever match its
    /// generation again. Stores that keep no tombstone answer the stored
    /// generation (0 when empty): after a clear, a handle that saw an
    /// older session could then match a new login's generation.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn floor(&mut self, key: &SessionKey) -> Result<u64, StoreError> {
        Ok(self.generation(key)?.unwrap_or(0))
    }
}

impl<S: SessionStore + ?Sized> SessionStore for Box<S> {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        (**self).load(key)
    }

    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        (**self).save(key, session, expected)
    }

    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        (**self).generation(key)
    }

    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
        (**self).clear(key)
    }

    fn floor(&mut self, key: &SessionKey) -> Result<u64, StoreError> {
        (**self).floor(key)
    }
}

/// A store shared by several handles (or read by the application) inside
/// one process: `Arc<Mutex<MemoryStore>>`, or any store behind the same.
/// The lock is held for one store call at a time. A lock poisoned by a
/// panic elsewhere is used as it is: a store call either happened whole or
/// not at all.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<std::sync::Mutex<S>> {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        lock(self).load(key)
    }

    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        lock(self).save(key, session, expected)
    }

    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        lock(self).generation(key)
    }

    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
        lock(self).clear(key)
    }

    fn floor(&mut self, key: &SessionKey) -> Result<u64, StoreError> {
        lock(self).floor(key)
    }
}

#[cfg(feature = "std")]
pub(crate) fn lock<S: ?Sized>(store: &std::sync::Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = DEFAULT_KEY;

    fn session(json: &str) -> Session {
        Session::from_json(json.as_bytes(), &Default::default()).unwrap()
    }

    #[cfg(feature = "std")]
    #[test]
    fn a_shared_memory_store_is_one_store() {
        use std::sync::{Arc, Mutex};
        let shared = Arc::new(Mutex::new(MemoryStore::new()));
        let (mut first, mut second) = (shared.clone(), shared.clone());
        let s0 = session(r#"{"tokenSet":{"accessToken":"a"}}"#);
        first.save(K, &s0, None).unwrap();
        // The second handle sees the first's save, and compare-and-swap
        // holds across them.
        assert_eq!(second.generation(K), Ok(Some(0)));
        assert!(matches!(
            second.save(K, &s0, None),
            Err(StoreError::Conflict { found: Some(0) })
        ));
        assert_eq!(shared.lock().unwrap().saves(), 1);
        second.clear(K).unwrap();
        assert!(first.load(K).unwrap().is_none());
    }

    #[test]
    fn compare_and_swap() {
        let s0 = session(r#"{"tokenSet":{"accessToken":"a"}}"#);
        let s1 = session(r#"{"tokenSet":{"accessToken":"b"},"tokenkeeper":{"generation":1}}"#);
        let mut store = MemoryStore::new();
        assert_eq!(store.save(K, &s0, None), Ok(()));
        // A writer that started from nothing loses.
        assert_eq!(
            store.save(K, &s1, None),
            Err(StoreError::Conflict { found: Some(0) })
        );
        assert_eq!(store.save(K, &s1, Some(0)), Ok(()));
        // A second writer from generation 0 loses too.
        assert!(matches!(
            store.save(K, &s1, Some(0)),
            Err(StoreError::Conflict { found: Some(1) })
        ));
        assert_eq!(store.saves(), 2);
        assert_eq!(store.generation(K), Ok(Some(1)));
        assert_eq!(store.load(K).unwrap().unwrap().generation(), 1);
        store.clear(K).unwrap();
        assert!(store.load(K).unwrap().is_none());
    }

    #[test]
    fn keys_keep_sessions_apart() {
        let s0 = session(r#"{"tokenSet":{"accessToken":"a"}}"#);
        let mut store = MemoryStore::new();
        store.save("alice", &s0, None).unwrap();
        assert_eq!(store.generation("bob"), Ok(None));
        // Bob's first save expects nothing stored under his key.
        store.save("bob", &s0, None).unwrap();
        store.clear("alice").unwrap();
        assert!(store.load("alice").unwrap().is_none());
        assert!(store.load("bob").unwrap().is_some());
    }

    #[cfg(feature = "std")]
    #[test]
    fn a_backend_error_is_the_source() {
        use std::error::Error as _;
        use std::string::ToString as _;
        let io = std::io::Error::other("connection reset");
        let error = StoreError::backend(io);
        assert_eq!(error.to_string(), "session store failed");
        let source = error.source().unwrap();
        assert!(source.is::<std::io::Error>());
        assert_eq!(source.to_string(), "connection reset");
    }
}
