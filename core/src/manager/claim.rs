//! Refresh claims for sessions in shared stores.
//!
//! ```text
//! get_access_token ──► Send(request)    the claim is written into the
//!                                       session in the same call
//! poll_event       ──► SessionChanged { RefreshClaimed }: save with
//!                      compare-and-swap BEFORE sending; on a conflict,
//!                      cancel(id), reload the session and ask again
//! handle_response  ──► the claim is released with the new tokens
//! other managers   ──► Action::Reload { until } while the claim is live
//! ```
//!
//! The claim is recorded in the session itself (`tokenkeeper.refreshClaim`),
//! so the store's compare-and-swap decides which manager may spend the
//! refresh token: the loser's save fails before its request leaves.

use alloc::string::String;

use super::{ChangeReason, TokenManager};
use crate::session::RefreshClaim;
use crate::time::UnixTime;

impl TokenManager {
    /// Another manager's live claim on the session's refresh token, if any.
    pub(super) fn foreign_claim(&self, now: UnixTime) -> Option<UnixTime> {
        if !self.config.shared_store {
            return None;
        }
        let claim = self.state.session.as_ref()?.refresh_claim()?;
        (claim.owner != self.instance && claim.until > now).then_some(claim.until)
    }

    /// Whether a refresh may leave now: always without a shared store;
    /// with one, only while the session here carries this manager's own
    /// claim — the one the host just saved with compare-and-swap. A
    /// session loaded or adopted over a claim not yet saved (another
    /// caller's job read the store meanwhile) carries the store's claim or
    /// none: what was saved is not this manager's claim, and the refresh
    /// token may be another process's to spend.
    pub(crate) fn holds_own_claim(&self) -> bool {
        if !self.config.shared_store {
            return true;
        }
        self.state
            .session
            .as_ref()
            .and_then(|s| s.refresh_claim())
            .is_some_and(|c| c.owner == self.instance)
    }

    /// Claims the session's refresh token until `until` (a refresh starts,
    /// or its `use_dpop_nonce` retry renews the lease), and announces it
    /// at once: the host saves it with compare-and-swap before the request
    /// leaves.
    pub(super) fn claim_refresh(&mut self, until: UnixTime) {
        let Some(session) = self.state.session.as_mut() else {
            return;
        };
        session.set_refresh_claim(Some(RefreshClaim {
            owner: self.instance.clone(),
            until,
        }));
        self.state
            .events
            .session_changed(session, &[ChangeReason::RefreshClaimed]);
    }

    /// Removes this manager's claim. Returns whether there was one (the
    /// caller announces the change, usually with the new tokens).
    pub(super) fn release_claim(&mut self) -> bool {
        let Some(session) = self.state.session.as_mut() else {
            return false;
        };
        if session
            .refresh_claim()
            .is_some_and(|c| c.owner == self.instance)
        {
            session.set_refresh_claim(None);
            return true;
        }
        false
    }

    /// Releases the claim when a refresh ended without new tokens, and
    /// announces it.
    pub(super) fn release_claim_and_announce(&mut self) {
        if self.release_claim() {
            self.announce_release();
        }
    }

    /// Announces a released claim as a change of its own.
    pub(super) fn announce_release(&mut self) {
        self.session_changed(&[ChangeReason::RefreshReleased]);
    }

    /// A random instance name for claims, from the host's entropy.
    pub(super) fn instance_name(entropy: &mut dyn crate::entropy::Entropy) -> String {
        let mut bytes = [0u8; 12];
        entropy.fill(&mut bytes);
        bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
    }
}
