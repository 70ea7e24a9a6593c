//! What belongs to one session alone: the session, its flights, its
//! events and the refresh tokens it must still revoke. A
//! [`TokenManager`](super::TokenManager) holds one; an application serving
//! many sessions (the driver's `Sessions`) keeps one per session and
//! mounts it on a single shared manager for each call, so configuration,
//! discovery, the DPoP key and token-endpoint nonces, the machine-token
//! cache and the entropy exist once.
//!
//! ```text
//! SessionState ──swap_state──► mounted on the manager ──swap_state──► parked
//!   (parked: no call may touch it; its token is still readable through
//!    SessionState::token_at)
//! ```

use alloc::vec::Vec;
use core::fmt;

use super::lookup::{TokenAt, entry_ref, main_ref};
use super::{AccessTokenRef, Events};
use crate::flight::Flights;
use crate::secret::RefreshToken;
use crate::session::Session;

/// One session's part of a manager: what [`Sessions`](crate::driver::Sessions) keeps per id and mounts on its shared manager for each step.
#[derive(Default)]
pub struct SessionState {
    pub(super) session: Option<Session>,
    pub(super) flights: Flights,
    pub(super) events: Events,
    /// Refresh tokens that answers proved live but that could not be
    /// stored (the session moved on or logged out): revoked through
    /// [`TokenManager::poll_revocation`](super::TokenManager::poll_revocation),
    /// never silently dropped.
    pub(super) to_revoke: Vec<RefreshToken>,
    /// Proven refresh tokens dropped for want of a revocation endpoint.
    pub(super) unrevocable: u64,
    /// The id a login finishing here gives its session (its store key was
    /// chosen when the login started), as the 16 bytes it is the hex of.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(super) login_id: Option<[u8; 16]>,
}

/// Entropy that replays chosen bytes: a login's session gets the id drawn
/// when the login started ([`Session::ensure_id`] draws 16 bytes).
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(super) struct Chosen(pub(super) [u8; 16]);

impl crate::entropy::Entropy for Chosen {
    fn fill(&mut self, dest: &mut [u8]) {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
    }
}

impl fmt::Debug for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionState")
            .field("session", &self.session)
            .field("flights", &self.flights)
            .field("events", &self.events.0.len())
            .field("to_revoke", &self.to_revoke.len())
            .finish_non_exhaustive()
    }
}

impl super::TokenManager {
    /// 64 bits of the host's entropy (a hash seed).
    pub(crate) fn draw_seed(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.entropy.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// A new session id from the host's entropy (the form
    /// [`Session::ensure_id`] gives: 32 hex digits), and its bytes.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn draw_session_id(&mut self) -> (alloc::string::String, [u8; 16]) {
        let mut bytes = [0u8; 16];
        self.entropy.fill(&mut bytes);
        let id = bytes.iter().map(|b| alloc::format!("{b:02x}")).collect();
        (id, bytes)
    }

    /// Gives the session of the next login finishing on this state the id
    /// `bytes` are (see [`TokenManager::draw_session_id`]).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn choose_login_id(&mut self, bytes: [u8; 16]) {
        self.state.login_id = Some(bytes);
    }
}

impl SessionState {
    /// The session, if any.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Whether nothing is under way or owed for this session: no request in
    /// flight, no event undrained, no refresh token waiting for revocation.
    /// Only such a state may be dropped from memory (its session is in the
    /// store).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.flights.active_count() == 0 && self.events.0.is_empty() && self.to_revoke.is_empty()
    }

    /// The session's token at `at` (`None` for a machine token, which the
    /// manager keeps, or if it is not there).
    pub(crate) fn token_at(&self, at: TokenAt) -> Option<AccessTokenRef<'_>> {
        match at {
            TokenAt::Main => self.session.as_ref().map(|s| main_ref(&s.token_set)),
            TokenAt::Entry(at) => self.session.as_ref()?.cache.at(at).map(entry_ref),
            #[cfg(feature = "exchange")]
            TokenAt::Connection(at) => self
                .session
                .as_ref()?
                .connection_token_sets()
                .get(at)
                .map(super::connection::connection_ref),
            TokenAt::Machine(_) => None,
        }
    }
}
