//! [`MemoryStore`]: sessions in memory, keyed, with compare-and-swap.

use alloc::collections::BTreeMap;
use alloc::string::String;

use super::{DEFAULT_KEY, SessionKey, SessionStore, StoreError};
use crate::session::Session;

/// A store in memory, with compare-and-swap on each key's generation.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    slots: BTreeMap<String, Slot>,
    saves: u64,
}

/// What one key holds.
#[derive(Debug, Clone, Default)]
struct Slot {
    session: Option<Session>,
    /// The highest generation held, kept across clears.
    floor: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store holding `session` under [`DEFAULT_KEY`] (the key of a handle
    /// that serves one session).
    #[must_use]
    pub fn with_session(session: Session) -> Self {
        MemoryStore::default().with(DEFAULT_KEY, session)
    }

    /// This store, also holding `session` under `key`.
    #[must_use]
    pub fn with(mut self, key: &SessionKey, session: Session) -> Self {
        self.slots.insert(
            key.into(),
            Slot {
                floor: session.generation(),
                session: Some(session),
            },
        );
        self
    }

    /// The session stored under [`DEFAULT_KEY`].
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.get(DEFAULT_KEY)
    }

    /// The session stored under `key`.
    #[must_use]
    pub fn get(&self, key: &SessionKey) -> Option<&Session> {
        self.slots.get(key).and_then(|slot| slot.session.as_ref())
    }

    /// How many sessions are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.values().filter(|s| s.session.is_some()).count()
    }

    /// Whether no session is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many saves succeeded (all keys).
    #[must_use]
    pub fn saves(&self) -> u64 {
        self.saves
    }
}

impl SessionStore for MemoryStore {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.get(key).cloned())
    }

    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let slot = match self.slots.get_mut(key) {
            Some(slot) => slot,
            None if expected.is_none() => self.slots.entry(key.into()).or_default(),
            None => return Err(StoreError::Conflict { found: None }),
        };
        let found = slot.session.as_ref().map(Session::generation);
        if found != expected {
            return Err(StoreError::Conflict { found });
        }
        slot.floor = slot.floor.max(session.generation());
        slot.session = Some(session.clone());
        self.saves += 1;
        Ok(())
    }

    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        Ok(self.get(key).map(Session::generation))
    }

    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.session = None;
        }
        Ok(())
    }

    fn floor(&mut self, key: &SessionKey) -> Result<u64, StoreError> {
        Ok(self.slots.get(key).map_or(0, |slot| slot.floor))
    }
}
