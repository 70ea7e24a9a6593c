//! The refresh decision of `getAccessToken`, as a pure function of the
//! stored state and the time.
//!
//! | refresh token | access token | state                               | decision |
//! |---------------|--------------|-------------------------------------|----------|
//! | yes           | any          | forced, no expiry, or `expiresAt <= now + buffer` | refresh |
//! | yes           | yes          | fresh                               | ready    |
//! | no            | yes          | `expiresAt > now` (even in the buffer) | ready |
//! | no            | yes          | expired or expiry unknown           | `missing_refresh_token` |
//! | no            | no           | —                                   | `missing_refresh_token` |

use core::time::Duration;

use crate::time::UnixTime;

/// What the stored state says about one access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Whether an access token exists for the request.
    pub has_access_token: bool,
    /// Its expiry, when known.
    pub expires_at: Option<UnixTime>,
    /// Whether a usable refresh token exists.
    pub has_refresh_token: bool,
    /// The lifetime the server granted the token, when known: the buffer
    /// is capped at half of it.
    pub lifetime: Option<Duration>,
}

/// The outcome of [`Freshness::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Return the stored access token, no I/O.
    Ready,
    /// Send a refresh.
    Refresh,
    /// No refresh token and nothing usable: the user must log in again.
    /// `access_token_expired` tells the two SDK messages apart.
    MissingRefreshToken {
        /// An access token exists but has expired.
        access_token_expired: bool,
    },
}

impl Freshness {
    /// Applies the decision table. `force` is the caller's `refresh: true`;
    /// `buffer` the refresh buffer (the SDK's `tokenRefreshBuffer`).
    ///
    /// The buffer is capped at half the granted lifetime: a buffer at or
    /// above the lifetime would make every token "due" the moment it
    /// arrives, and every call would refresh.
    pub fn decide(&self, now: UnixTime, buffer: Duration, force: bool) -> Decision {
        let buffer = match self.lifetime {
            Some(lifetime) => buffer.min(lifetime / 2),
            None => buffer,
        };
        if self.has_refresh_token {
            let due = match self.expires_at {
                None => true,
                Some(expires_at) => expires_at <= now.saturating_add(buffer),
            };
            if force || due || !self.has_access_token {
                Decision::Refresh
            } else {
                Decision::Ready
            }
        } else if !self.has_access_token {
            Decision::MissingRefreshToken {
                access_token_expired: false,
            }
        } else {
            match self.expires_at {
                Some(expires_at) if expires_at > now => Decision::Ready,
                _ => Decision::MissingRefreshToken {
                    access_token_expired: true,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime::from_secs(1_000);
    const BUFFER: Duration = Duration::from_secs(60);

    fn state(at: bool, exp: Option<u64>, rt: bool) -> Freshness {
        Freshness {
            has_access_token: at,
            expires_at: exp.map(UnixTime::from_secs),
            has_refresh_token: rt,
            lifetime: None,
        }
    }

    #[test]
    fn the_buffer_is_capped_at_half_the_granted_lifetime() {
        // 60 s tokens, a 120 s buffer: a token just obtained is served.
        let fresh = Freshness {
            lifetime: Some(Duration::from_secs(60)),
            ..state(true, Some(1_060), true)
        };
        let buffer = Duration::from_secs(120);
        assert_eq!(fresh.decide(NOW, buffer, false), Decision::Ready);
        // Half-way through its life it is due.
        assert_eq!(
            fresh.decide(UnixTime::from_secs(1_029), buffer, false),
            Decision::Ready
        );
        assert_eq!(
            fresh.decide(UnixTime::from_secs(1_030), buffer, false),
            Decision::Refresh
        );
        // A buffer below half the lifetime applies as configured.
        let long = Freshness {
            lifetime: Some(Duration::from_secs(3_600)),
            ..state(true, Some(4_600), true)
        };
        assert_eq!(
            long.decide(UnixTime::from_secs(4_539), BUFFER, false),
            Decision::Ready
        );
        assert_eq!(
            long.decide(UnixTime::from_secs(4_540), BUFFER, false),
            Decision::Refresh
        );
        // Unknown lifetime (a session another SDK wrote): the buffer as is.
        assert_eq!(
            state(true, Some(1_060), true).decide(NOW, buffer, false),
            Decision::Refresh
        );
    }

    #[test]
    fn with_refresh_token() {
        assert_eq!(
            state(true, Some(2000), true).decide(NOW, BUFFER, false),
            Decision::Ready
        );
        assert_eq!(
            state(true, Some(2000), true).decide(NOW, BUFFER, true),
            Decision::Refresh
        );
        // Inside the buffer: refresh early. The boundary is inclusive.
        assert_eq!(
            state(true, Some(1060), true).decide(NOW, BUFFER, false),
            Decision::Refresh
        );
        assert_eq!(
            state(true, Some(1061), true).decide(NOW, BUFFER, false),
            Decision::Ready
        );
        // Without a buffer, expiresAt == now is expired.
        assert_eq!(
            state(true, Some(1000), true).decide(NOW, Duration::ZERO, false),
            Decision::Refresh
        );
        assert_eq!(
            state(true, Some(1001), true).decide(NOW, Duration::ZERO, false),
            Decision::Ready
        );
        assert_eq!(
            state(true, None, true).decide(NOW, BUFFER, false),
            Decision::Refresh
        );
        assert_eq!(
            state(false, None, true).decide(NOW, BUFFER, false),
            Decision::Refresh
        );
    }

    #[test]
    fn without_refresh_token() {
        // Inside the buffer but valid: returned anyway.
        assert_eq!(
            state(true, Some(1030), false).decide(NOW, BUFFER, false),
            Decision::Ready
        );
        // Forced refresh without a refresh token: the valid token is returned.
        assert_eq!(
            state(true, Some(1030), false).decide(NOW, BUFFER, true),
            Decision::Ready
        );
        assert_eq!(
            state(true, Some(1000), false).decide(NOW, BUFFER, false),
            Decision::MissingRefreshToken {
                access_token_expired: true
            }
        );
        assert_eq!(
            state(true, None, false).decide(NOW, BUFFER, false),
            Decision::MissingRefreshToken {
                access_token_expired: true
            }
        );
        assert_eq!(
            state(false, None, false).decide(NOW, BUFFER, false),
            Decision::MissingRefreshToken {
                access_token_expired: false
            }
        );
    }

    #[test]
    fn never_ready_when_expired() {
        for exp in 990..1010 {
            for rt in [false, true] {
                for force in [false, true] {
                    for buffer in [0, 5, 60] {
                        let d = state(true, Some(exp), rt).decide(
                            NOW,
                            Duration::from_secs(buffer),
                            force,
                        );
                        if exp <= NOW.as_secs() {
                            assert_ne!(d, Decision::Ready, "exp={exp} rt={rt} force={force}");
                        }
                    }
                }
            }
        }
    }
}
