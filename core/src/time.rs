//! Wall-clock time as a value. The core never reads a clock: every call that
//! decides anything takes the current [`UnixTime`] as a parameter.

use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch (1970-01-01T00:00:00Z), as the `expiresAt`
/// field of a session stores it.
///
/// The host supplies it; on `std` targets
/// [`UnixTime::from_system_time`] converts a `SystemTime`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The epoch itself.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// A time `secs` seconds after the epoch.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the largest representable time.
    #[must_use]
    pub const fn saturating_add(self, duration: Duration) -> Self {
        UnixTime(self.0.saturating_add(duration.as_secs()))
    }

    /// `self - duration`, saturating at the epoch.
    #[must_use]
    pub const fn saturating_sub(self, duration: Duration) -> Self {
        UnixTime(self.0.saturating_sub(duration.as_secs()))
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: UnixTime) -> Duration {
        Duration::from_secs(self.0.saturating_sub(earlier.0))
    }

    /// Converts a `SystemTime` (whole seconds, rounded down; times before
    /// the epoch become the epoch).
    #[cfg(feature = "std")]
    #[must_use]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        UnixTime(
            time.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixTime({})", self.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(feature = "time")]
#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl From<UnixTime> for time::OffsetDateTime {
    fn from(t: UnixTime) -> Self {
        // i64::MAX seconds is far past what OffsetDateTime holds; clamp to its range.
        let secs = i64::try_from(t.0).unwrap_or(i64::MAX);
        time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
    }
}

#[cfg(feature = "time")]
#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
impl From<time::OffsetDateTime> for UnixTime {
    fn from(t: time::OffsetDateTime) -> Self {
        UnixTime(u64::try_from(t.unix_timestamp()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = UnixTime::from_secs(10);
        assert_eq!(t.saturating_sub(Duration::from_secs(20)), UnixTime::EPOCH);
        assert_eq!(
            UnixTime::from_secs(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixTime::from_secs(u64::MAX)
        );
        assert_eq!(
            t.saturating_duration_since(UnixTime::from_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(
            t.saturating_duration_since(UnixTime::from_secs(40)),
            Duration::ZERO
        );
    }

    #[test]
    fn serializes_as_plain_seconds() {
        let json = serde_json::to_string(&UnixTime::from_secs(1_700_000_000)).unwrap();
        assert_eq!(json, "1700000000");
    }
}
