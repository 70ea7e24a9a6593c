//! What the platform supplies to the core: the clock and the random source.

use std::time::SystemTime;

use tokenkeeper::{Entropy, UnixTime};

/// The clock: wall time in whole seconds.
pub(crate) fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

/// Entropy from the operating system (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    /// # Panics
    /// If the operating system has no random source (a broken platform:
    /// nothing secure can be done without one).
    fn fill(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).expect("the operating system's random source failed");
    }
}
