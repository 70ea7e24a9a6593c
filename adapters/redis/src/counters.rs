//! [`Counters`]: what a store did, for monitoring and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a store did since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Saves that wrote a refresh claim key (a claim taken or renewed).
    pub claims_written: u64,
    /// Loads that read a live claim key back (another instance refreshes).
    pub claims_read: u64,
    /// Saves refused by compare-and-swap (or another's live claim).
    pub conflicts: u64,
    /// Change messages heard on the channel (async store).
    pub messages: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) claims_written: AtomicU64,
    pub(crate) claims_read: AtomicU64,
    pub(crate) conflicts: AtomicU64,
}

impl Tally {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, messages: u64) -> Counters {
        Counters {
            claims_written: self.claims_written.load(Ordering::Relaxed),
            claims_read: self.claims_read.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            messages,
        }
    }
}
