//! A bounded map from session id to value that remembers use order: a hash
//! index into a slab of entries linked from newest to oldest. A lookup
//! allocates nothing (hash, probe, relink); only a new id does, once (the
//! index holds slot numbers and compares the entries' own keys).
//!
//! ```text
//! find(id) ──► index ──► touch: unlink, relink as newest
//! insert(id, value) ──► a vacant slot (or a new one) ──► newest
//! evict(keep, may_go) ──► from the oldest: drop entries that may go
//!                         until at most `keep` remain
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;

use core::hash::BuildHasher as _;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

/// No entry (the ends of the use list).
const NIL: usize = usize::MAX;

/// One entry: its key (for unindexing), its value, its neighbours in use
/// order.
#[derive(Debug)]
struct Entry<V> {
    key: Box<str>,
    value: V,
    newer: usize,
    older: usize,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Table<V> {
    /// Slot numbers, hashed by their entry's key.
    index: HashTable<usize>,
    hasher: FixedState,
    slots: Vec<Option<Entry<V>>>,
    vacant: Vec<usize>,
    newest: usize,
    oldest: usize,
}

impl<V> Table<V> {
    /// An empty table hashing with `seed` (drawn from the host's entropy:
    /// ids an attacker chose cannot be aimed at one bucket).
    pub(crate) fn new(seed: u64) -> Self {
        Table {
            index: HashTable::new(),
            hasher: FixedState::with_seed(seed),
            slots: Vec::new(),
            vacant: Vec::new(),
            newest: NIL,
            oldest: NIL,
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The slot of `key`, marked as used just now.
    #[inline]
    pub(crate) fn find(&mut self, key: &str) -> Option<usize> {
        let at = self.slot_of(key)?;
        self.touch(at);
        Some(at)
    }

    /// The slot holding `key`.
    #[inline]
    fn slot_of(&self, key: &str) -> Option<usize> {
        let slots = &self.slots;
        let holds = |at: &usize| slots[*at].as_ref().is_some_and(|e| &*e.key == key);
        self.index.find(self.hasher.hash_one(key), holds).copied()
    }

    /// The value in slot `at` (a slot [`Table::find`] or
    /// [`Table::insert`] gave, not evicted since).
    #[inline]
    pub(crate) fn get_mut(&mut self, at: usize) -> Option<&mut V> {
        self.slots.get_mut(at)?.as_mut().map(|e| &mut e.value)
    }

    /// The value of `key`, without marking it used.
    pub(crate) fn peek(&self, key: &str) -> Option<&V> {
        let at = self.slot_of(key)?;
        self.slots.get(at)?.as_ref().map(|e| &e.value)
    }

    /// Adds `key` (not in the table) as the newest entry; its slot.
    pub(crate) fn insert(&mut self, key: &str, value: V) -> usize {
        let entry = Entry {
            key: key.into(),
            value,
            newer: NIL,
            older: NIL,
        };
        let at = match self.vacant.pop() {
            Some(at) => {
                self.slots[at] = Some(entry);
                at
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        let rehash = |at: &usize| slots[*at].as_ref().map_or(0, |e| hasher.hash_one(&*e.key));
        self.index.insert_unique(hasher.hash_one(key), at, rehash);
        self.link_newest(at);
        at
    }

    /// Drops entries from the oldest on, skipping those `may_go` refuses,
    /// until at most `keep` remain (or none may go). Returns how many went.
    pub(crate) fn evict(&mut self, keep: usize, mut may_go: impl FnMut(&V) -> bool) -> usize {
        let mut gone = 0;
        let mut at = self.oldest;
        while self.len() > keep && at != NIL {
            let Some(entry) = self.slots[at].as_ref() else {
                break;
            };
            let newer = entry.newer;
            if may_go(&entry.value) {
                self.unlink(at);
                let hash = self.slots[at]
                    .as_ref()
                    .map(|e| self.hasher.hash_one(&*e.key));
                if let Some(Ok(found)) = hash.map(|hash| self.index.find_entry(hash, |i| *i == at))
                {
                    found.remove();
                }
                self.slots[at] = None;
                self.vacant.push(at);
                gone += 1;
            }
            at = newer;
        }
        gone
    }

    /// Marks slot `at` used just now.
    #[inline]
    fn touch(&mut self, at: usize) {
        if self.newest != at {
            self.unlink(at);
            self.link_newest(at);
        }
    }

    fn unlink(&mut self, at: usize) {
        let Some(entry) = self.slots[at].as_mut() else {
            return;
        };
        let (newer, older) = (entry.newer, entry.older);
        entry.newer = NIL;
        entry.older = NIL;
        match self.slots.get_mut(newer).and_then(Option::as_mut) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        match self.slots.get_mut(older).and_then(Option::as_mut) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
    }

    fn link_newest(&mut self, at: usize) {
        let previous = self.newest;
        if let Some(entry) = self.slots[at].as_mut() {
            entry.older = previous;
            entry.newer = NIL;
        }
        match self.slots.get_mut(previous).and_then(Option::as_mut) {
            Some(p) => p.newer = at,
            None => self.oldest = at,
        }
        self.newest = at;
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use alloc::format;
    use alloc::vec::Vec;

    fn order(table: &Table<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = table.newest;
        while at != super::NIL {
            let entry = table.slots[at].as_ref().unwrap();
            out.push(entry.value);
            at = entry.older;
        }
        out
    }

    #[test]
    fn keeps_use_order_and_evicts_the_oldest_that_may_go() {
        let mut table = Table::new(7);
        for i in 0..5u32 {
            table.insert(&format!("k{i}"), i);
        }
        assert_eq!(order(&table), [4, 3, 2, 1, 0]);
        assert!(table.find("k1").is_some());
        assert_eq!(order(&table), [1, 4, 3, 2, 0]);
        // 0 may not go: 2 and 3 go instead (the oldest that may).
        assert_eq!(table.evict(3, |v| *v != 0), 2);
        assert_eq!(order(&table), [1, 4, 0]);
        assert!(table.find("k2").is_none() && table.find("k3").is_none());
        assert_eq!(table.len(), 3);
        // A vacant slot is reused.
        let at = table.insert("k9", 9);
        assert!(at < 5);
        assert_eq!(order(&table), [9, 1, 4, 0]);
        assert_eq!(table.peek("k0"), Some(&0));
        // Nothing may go: the table stays over its bound.
        assert_eq!(table.evict(1, |_| false), 0);
        assert_eq!(table.len(), 4);
        assert_eq!(table.evict(0, |_| true), 4);
        assert_eq!(order(&table), [] as [u32; 0]);
    }

    /// The index holds slot numbers and compares the entries' keys: it
    /// finds every key through its growth (rehashing reads the keys from
    /// the slots), forgets evicted ones, and finds reused slots' new keys.
    #[test]
    fn finds_every_key_through_growth_eviction_and_reuse() {
        let mut table = Table::new(11);
        for i in 0..600u32 {
            let at = table.insert(&format!("id-{i}"), i);
            assert_eq!(table.get_mut(at), Some(&mut { i }));
        }
        for i in 0..600u32 {
            assert_eq!(table.peek(&format!("id-{i}")), Some(&i));
        }
        assert_eq!(table.evict(100, |_| true), 500);
        for i in 0..600u32 {
            let kept = table.peek(&format!("id-{i}")).copied();
            assert_eq!(kept, (i >= 500).then_some(i), "{i}");
        }
        for i in 600..1100u32 {
            table.insert(&format!("id-{i}"), i);
        }
        assert_eq!(table.len(), 600);
        for i in (500..1100u32).rev() {
            assert!(table.find(&format!("id-{i}")).is_some(), "{i}");
        }
        assert!(table.find("id-0").is_none() && table.find("id-499").is_none());
        assert_eq!(order(&table).first(), Some(&500));
    }
}
