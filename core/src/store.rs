//! Where sessions are kept between calls and processes.
//!
//! The manager announces every change with
//! [`Event::SessionChanged`](crate::Event::SessionChanged); an adapter then
//! saves the session through a [`SessionStore`]. Stores shared by several
//! processes compare generations: a save names the generation it replaces,
//! and a store that holds another one refuses with
//! [`StoreError::Conflict`], so two processes can never both overwrite a
//! session from the same starting point — the loser reloads instead.

use alloc::string::String;

use crate::session::Session;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored session is not the generation the save expected: another
    /// writer got there first. Reload and retry.
    #[error("the stored session changed meanwhile (generation {found:?})")]
    Conflict {
        /// The generation found in the store, if any.
        found: Option<u64>,
    },
    /// The store itself failed.
    #[error("session store: {0}")]
    Backend(String),
}

/// Persistence for one session.
pub trait SessionStore {
    /// The stored session, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn load(&mut self) -> Result<Option<Session>, StoreError>;

    /// Stores `session`, which was derived from the stored generation
    /// `expected` (`None`: nothing was stored). Stores that can compare
    /// and swap return [`StoreError::Conflict`] when the stored generation
    /// differs; others may ignore `expected`. (A new login is written above
    /// the store's [`floor`](SessionStore::floor), so no handle that saw an
    /// older session can match its generation.)
    ///
    /// # Errors
    /// [`StoreError::Conflict`] or [`StoreError::Backend`].
    fn save(&mut self, session: &Session, expected: Option<u64>) -> Result<(), StoreError>;

    /// The generation of the stored session, if any: asked before every
    /// refresh, so a store that can answer it without reading the whole
    /// session (a column, a version number) should override this.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn generation(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.load()?.as_ref().map(Session::generation))
    }

    /// Removes the stored session (logout).
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be written.
    fn clear(&mut self) -> Result<(), StoreError>;

    /// The highest generation this store has held, kept across
    /// [`clear`](SessionStore::clear) (a tombstone): a new login is written
    /// above it, so no handle that saw an older session can ever match its
    /// generation again. Stores that keep no tombstone answer the stored
    /// generation (0 when empty): after a clear, a handle that saw an
    /// older session could then match a new login's generation.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the store cannot be read.
    fn floor(&mut self) -> Result<u64, StoreError> {
        Ok(self.generation()?.unwrap_or(0))
    }
}

/// A store in memory, with compare-and-swap on the generation.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    session: Option<Session>,
    saves: u64,
    /// The highest generation held, kept across clears.
    floor: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store holding `session`.
    #[must_use]
    pub fn with_session(session: Session) -> Self {
        MemoryStore {
            floor: session.generation(),
            session: Some(session),
            saves: 0,
        }
    }

    /// The stored session.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// How many saves succeeded.
    #[must_use]
    pub fn saves(&self) -> u64 {
        self.saves
    }
}

impl SessionStore for MemoryStore {
    fn load(&mut self) -> Result<Option<Session>, StoreError> {
        Ok(self.session.clone())
    }

    fn save(&mut self, session: &Session, expected: Option<u64>) -> Result<(), StoreError> {
        let found = self.session.as_ref().map(Session::generation);
        if found != expected {
            return Err(StoreError::Conflict { found });
        }
        self.floor = self.floor.max(session.generation());
        self.session = Some(session.clone());
        self.saves += 1;
        Ok(())
    }

    fn generation(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.session.as_ref().map(Session::generation))
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.session = None;
        Ok(())
    }

    fn floor(&mut self) -> Result<u64, StoreError> {
        Ok(self.floor)
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
    fn load(&mut self) -> Result<Option<Session>, StoreError> {
        lock(self).load()
    }

    fn save(&mut self, session: &Session, expected: Option<u64>) -> Result<(), StoreError> {
        lock(self).save(session, expected)
    }

    fn generation(&mut self) -> Result<Option<u64>, StoreError> {
        lock(self).generation()
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        lock(self).clear()
    }

    fn floor(&mut self) -> Result<u64, StoreError> {
        lock(self).floor()
    }
}

#[cfg(feature = "std")]
fn lock<S: ?Sized>(store: &std::sync::Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The store for a session that only one handle ever holds: it keeps no
/// copy, because the handle's manager already holds the session in memory
/// and no other writer can change it. The adapters use it when the
/// application plugs in no store, so a refresh copies nothing.
///
/// It remembers the generation last saved, so the before-refresh check
/// ([`SessionStore::generation`]) always finds the handle's own; `load`
/// returns `None` (there is no copy to read back, and a handle never needs
/// one). Use [`MemoryStore`] to keep a readable copy, or a store of your own
/// to share the session between processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnsharedStore {
    generation: Option<u64>,
}

impl UnsharedStore {
    /// A store for a session held by one handle.
    #[must_use]
    pub fn new() -> Self {
        UnsharedStore::default()
    }
}

impl SessionStore for UnsharedStore {
    fn load(&mut self) -> Result<Option<Session>, StoreError> {
        Ok(None)
    }

    fn save(&mut self, session: &Session, _expected: Option<u64>) -> Result<(), StoreError> {
        self.generation = Some(session.generation());
        Ok(())
    }

    fn generation(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(self.generation)
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.generation = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        first.save(&s0, None).unwrap();
        // The second handle sees the first's save, and compare-and-swap
        // holds across them.
        assert_eq!(second.generation(), Ok(Some(0)));
        assert!(matches!(
            second.save(&s0, None),
            Err(StoreError::Conflict { found: Some(0) })
        ));
        assert_eq!(shared.lock().unwrap().saves(), 1);
        second.clear().unwrap();
        assert!(first.load().unwrap().is_none());
    }

    #[test]
    fn compare_and_swap() {
        let s0 = session(r#"{"tokenSet":{"accessToken":"a"}}"#);
        let s1 = session(r#"{"tokenSet":{"accessToken":"b"},"tokenkeeper":{"generation":1}}"#);
        let mut store = MemoryStore::new();
        assert_eq!(store.save(&s0, None), Ok(()));
        // A writer that started from nothing loses.
        assert_eq!(
            store.save(&s1, None),
            Err(StoreError::Conflict { found: Some(0) })
        );
        assert_eq!(store.save(&s1, Some(0)), Ok(()));
        // A second writer from generation 0 loses too.
        assert!(matches!(
            store.save(&s1, Some(0)),
            Err(StoreError::Conflict { found: Some(1) })
        ));
        assert_eq!(store.saves(), 2);
        assert_eq!(store.generation(), Ok(Some(1)));
        assert_eq!(store.load().unwrap().unwrap().generation(), 1);
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none());
    }
}
