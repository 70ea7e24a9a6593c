//! [`UnsharedStore`]: no copy at all, for a session only one handle holds.

use alloc::collections::BTreeMap;
use alloc::string::String;

use super::{SessionKey, SessionStore, StoreError};
use crate::session::Session;

/// The store for sessions that only one handle ever holds: it keeps no
/// copy, because the handle's manager already holds each session in memory
/// and no other writer can change it. The adapters use it when the
/// application plugs in no store, so a refresh copies nothing.
///
/// It remembers the generation last saved under each key, so the
/// before-refresh check ([`SessionStore::generation`]) always finds the
/// handle's own; `load` returns `None` (there is no copy to read back, and
/// a handle never needs one). Use [`MemoryStore`](super::MemoryStore) to
/// keep a readable copy, or a store of your own to share sessions between
/// processes.
#[derive(Debug, Clone, Default)]
pub struct UnsharedStore {
    generations: BTreeMap<String, u64>,
}

impl UnsharedStore {
    /// A store for sessions held by one handle.
    #[must_use]
    pub fn new() -> Self {
        UnsharedStore::default()
    }
}

impl SessionStore for UnsharedStore {
    fn load(&mut self, _key: &SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(None)
    }

    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        _expected: Option<u64>,
    ) -> Result<(), StoreError> {
        match self.generations.get_mut(key) {
            Some(generation) => *generation = session.generation(),
            None => drop(self.generations.insert(key.into(), session.generation())),
        }
        Ok(())
    }

    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        Ok(self.generations.get(key).copied())
    }

    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
        self.generations.remove(key);
        Ok(())
    }
}
