//! The lease must outlast the transport.
//!
//! When a flight's lease runs out, the core releases it and a waiting
//! caller takes the refresh over. An answer that arrives after that must
//! not exist: it would be applied to a session that moved on, beside a
//! second request spending the same refresh token. So every request this
//! adapter sends for a flight is aborted before the flight's lease
//! deadline:
//!
//! - [`transport_timeout`] (at build time): the per-request timeout must end
//!   at least [`LEASE_MARGIN`] before the configuration's lease (the core
//!   counts whole seconds, so a flight started late in a second has up to a
//!   second less); without a timeout of its own, the handle derives one
//!   from the lease.
//! - [`within_lease`] (per request): a request of a flight (the first try,
//!   a `use_dpop_nonce` retry, one sent after a deferred signature) gets
//!   the timeout, cut to end [`ABORT_AHEAD_MS`] before the flight's
//!   deadline; with no time left it is not sent.
//!
//! Pure functions (times are parameters): built and tested on every target.

use core::time::Duration;

use crate::Error;

/// The default timeout of one request, body included (10 s), when the
/// lease leaves room for it (the default lease is 60 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much sooner than the lease a request's timeout must end.
pub(crate) const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// How long before its flight's lease deadline a request is aborted at the
/// latest.
pub(crate) const ABORT_AHEAD_MS: u64 = 100;

/// The per-request timeout for a configuration whose lease is `lease`
/// (counted in whole seconds, as the core does): `timeout` when given,
/// else [`DEFAULT_TIMEOUT`] shortened to fit.
///
/// # Errors
/// [`Error::Core`] with [`tokenkeeper::Error::InvalidConfiguration`] (code
/// `invalid_configuration`) when the timeout is under a millisecond or does
/// not end [`LEASE_MARGIN`] before the lease.
pub(crate) fn transport_timeout(
    timeout: Option<Duration>,
    lease: Duration,
) -> Result<Duration, Error> {
    // The core adds whole seconds of lease to whole-second times.
    let room = Duration::from_secs(lease.as_secs()).saturating_sub(LEASE_MARGIN);
    let invalid = |why: String| Err(Error::Core(tokenkeeper::Error::InvalidConfiguration(why)));
    match timeout {
        None if room < Duration::from_millis(1) => invalid(format!(
            "the lease ({lease:?}) leaves no room for a transport timeout: it must be longer \
             than {LEASE_MARGIN:?}"
        )),
        None => Ok(DEFAULT_TIMEOUT.min(room)),
        Some(timeout) if timeout < Duration::from_millis(1) => invalid(format!(
            "the transport timeout ({timeout:?}) must be at least a millisecond"
        )),
        Some(timeout) if timeout > room => invalid(format!(
            "the transport timeout ({timeout:?}) must end at least {LEASE_MARGIN:?} before the \
             lease ({lease:?}): lengthen the lease or shorten the timeout"
        )),
        Some(timeout) => Ok(timeout),
    }
}

/// The timeout of a request sent at `now_ms` for a flight whose lease
/// ends at `deadline_ms` (both milliseconds since the epoch): `timeout`,
/// cut to end [`ABORT_AHEAD_MS`] before the deadline. `None` when no time
/// is left: the request must not be sent.
pub(crate) fn within_lease(timeout: Duration, deadline_ms: u64, now_ms: u64) -> Option<Duration> {
    let left = deadline_ms
        .saturating_sub(now_ms)
        .saturating_sub(ABORT_AHEAD_MS);
    (left > 0).then(|| timeout.min(Duration::from_millis(left)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_timeout_is_derived_from_the_lease() {
        assert_eq!(transport_timeout(None, secs(60)), Ok(DEFAULT_TIMEOUT));
        assert_eq!(transport_timeout(None, secs(11)), Ok(secs(10)));
        assert_eq!(transport_timeout(None, secs(5)), Ok(secs(4)));
        assert_eq!(transport_timeout(None, secs(2)), Ok(secs(1)));
        // The core counts a lease of 2.5 s as 2 s.
        assert_eq!(
            transport_timeout(None, Duration::from_millis(2500)),
            Ok(secs(1))
        );
    }

    #[test]
    fn a_timeout_the_lease_does_not_outlast_is_refused() {
        assert_eq!(transport_timeout(Some(secs(59)), secs(60)), Ok(secs(59)));
        assert_eq!(transport_timeout(Some(secs(1)), secs(2)), Ok(secs(1)));
        for (timeout, lease) in [
            (Duration::from_millis(59_001), secs(60)),
            (secs(60), secs(60)),
            (secs(120), secs(60)),
            (Duration::from_millis(10), secs(1)),
            (Duration::ZERO, secs(60)),
            (Duration::from_micros(999), secs(60)),
        ] {
            let error = transport_timeout(Some(timeout), lease).unwrap_err();
            assert_eq!(
                error.code(),
                "invalid_configuration",
                "{timeout:?} {lease:?}"
            );
        }
        for lease in [secs(1), Duration::from_millis(1999)] {
            let error = transport_timeout(None, lease).unwrap_err();
            assert_eq!(error.code(), "invalid_configuration");
            assert!(error.to_string().contains("lease"), "{error}");
        }
        assert!(
            transport_timeout(
                Some(Duration::from_millis(1500)),
                Duration::from_millis(2900)
            )
            .is_err()
        );
    }

    #[test]
    fn requests_end_before_the_flights_lease() {
        let deadline = 1_000_000;
        // Plenty of time: the timeout.
        assert_eq!(
            within_lease(secs(10), deadline, deadline - 60_000),
            Some(secs(10))
        );
        // A retry late in the lease: cut to end 100 ms before it.
        assert_eq!(
            within_lease(secs(10), deadline, deadline - 3_000),
            Some(Duration::from_millis(2_900))
        );
        // No time left, or past it: not sent.
        assert_eq!(
            within_lease(secs(10), deadline, deadline - ABORT_AHEAD_MS),
            None
        );
        assert_eq!(within_lease(secs(10), deadline, deadline + 5), None);
        assert_eq!(within_lease(secs(10), 0, u64::MAX), None);
    }
}
