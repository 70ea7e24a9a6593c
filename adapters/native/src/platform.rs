//! What the platform supplies to the core: the clock and the random source,
//! and the durations derived from the wall clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokenkeeper::{Entropy, UnixTime};

/// How long before the flight's lease deadline a token request is given
/// up: the deadline is when a waiting caller may take the refresh over.
pub(crate) const LEASE_MARGIN: Duration = Duration::from_millis(250);

/// The clock: wall time in whole seconds.
#[must_use]
pub fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

/// The time from now until `deadline` (zero if it passed).
#[must_use]
pub fn until(deadline: UnixTime) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(deadline.as_secs());
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// The time a token request may still take: until [`LEASE_MARGIN`] before
/// the earliest lease deadline in flight; `None` when too little is left.
pub(crate) fn budget(deadline: UnixTime) -> Option<Duration> {
    Some(until(deadline).saturating_sub(LEASE_MARGIN)).filter(|left| !left.is_zero())
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
