//! Logout: the session is marked logged out at once, and its refresh token
//! revoked (RFC 7009) when a revocation endpoint is configured.
//!
//! ```text
//! logout(now) ──► LoggedOut raised ──► Some(Dispatch)   the revocation, when there is an endpoint
//! poll_revocation(now) ──► Dispatch                    a proven refresh token that could not be stored
//! handle_response(id, response, now) ──► apply_revocation ──► Completion::Revoked
//!                                       (the token leaves the session, LoggedOut raised again)
//! ```

use super::{ChangeReason, Dispatch, TokenManager};
use crate::error::Error;
use crate::flight::FlightKind;
use crate::grant::revocation::{revocation_outcome, revoke_refresh_token};
use crate::secret::RefreshToken;
use crate::session::Session;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use alloc::string::String;

impl TokenManager {
    /// Logs the session out: from now on every token request answers
    /// `logged_out` (an event says so, to persist). Returns the request that
    /// revokes the refresh token (`token_type_hint=refresh_token`) when
    /// there is one and a revocation endpoint is configured; its response
    /// goes to [`TokenManager::handle_response`] and gives
    /// [`Completion::Revoked`](super::Completion::Revoked).
    ///
    /// # Errors
    /// [`Error::MissingSession`] without a session.
    pub fn logout(&mut self, now: UnixTime) -> Result<Option<Dispatch>, Error> {
        let session = self.state.session.as_mut().ok_or(Error::MissingSession)?;
        if !session.is_logged_out() {
            session.set_logged_out();
            self.state
                .events
                .session_changed(session, &[ChangeReason::LoggedOut]);
        }
        let refresh_token = self
            .state
            .session
            .as_ref()
            .and_then(|s| s.token_set.refresh_token.clone());
        match refresh_token {
            // Logging out again while its revocation is in flight sends
            // nothing more.
            Some(refresh_token) if self.state.flights.revoking(&refresh_token) => Ok(None),
            Some(refresh_token) if self.config.revocation_endpoint.is_some() => {
                self.launch_revocation(refresh_token, now).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The revocation request for `refresh_token`, as a flight. `None`
    /// without a revocation endpoint.
    fn launch_revocation(
        &mut self,
        refresh_token: RefreshToken,
        now: UnixTime,
    ) -> Result<Dispatch, Error> {
        let endpoint =
            self.config.revocation_endpoint.as_deref().ok_or_else(|| {
                Error::InvalidConfiguration(String::from("no revocation endpoint"))
            })?;
        let request = revoke_refresh_token(
            endpoint,
            &self.config.client_id,
            &self.config.client_auth,
            &refresh_token,
        )
        .build();
        self.launch(
            FlightKind::Revocation { refresh_token },
            None,
            String::new(),
            request,
            now,
        )
    }

    /// The next revocation the host must send: a refresh token that an
    /// answer proved live but that could not be stored (a refresh answered
    /// after a logout, a new login, or a session another process ended).
    /// Call after every call that handled a response, until `None`; send
    /// each like any other request (its answer gives
    /// [`Completion::Revoked`](super::Completion::Revoked)). Without a
    /// revocation endpoint configured such tokens are dropped (and
    /// [`TokenManager::unrevocable`] counts them).
    ///
    /// # Errors
    /// As [`TokenManager::logout`]'s request (a DPoP or client-assertion
    /// failure); the token is then dropped.
    pub fn poll_revocation(&mut self, now: UnixTime) -> Option<Result<Dispatch, Error>> {
        let refresh_token = self.state.to_revoke.pop()?;
        if self.config.revocation_endpoint.is_none() {
            self.state.unrevocable += 1;
            return None;
        }
        Some(self.launch_revocation(refresh_token, now))
    }

    /// How many proven refresh tokens could not be revoked for want of a
    /// revocation endpoint.
    #[must_use]
    pub fn unrevocable(&self) -> u64 {
        self.state.unrevocable
    }

    /// Queues `refresh_token` for revocation (see
    /// [`TokenManager::poll_revocation`]), unless it is the session's own.
    pub(crate) fn revoke_later(&mut self, refresh_token: RefreshToken) {
        let own = self
            .state
            .session
            .as_ref()
            .and_then(|s| s.token_set.refresh_token.as_ref())
            .is_some_and(|own| *own == refresh_token && !self.session_logged_out());
        if !own && !self.state.to_revoke.contains(&refresh_token) {
            self.state.to_revoke.push(refresh_token);
        }
    }

    fn session_logged_out(&self) -> bool {
        self.state
            .session
            .as_ref()
            .is_some_and(Session::is_logged_out)
    }

    /// Queues the refresh token a successful refresh answer carries, when
    /// that answer cannot be applied.
    pub(super) fn revoke_rotated(&mut self, answer: &mut ParsedResponse<'_>) {
        if let Ok(parsed) = answer.take_token_response()
            && let Some(rotated) = parsed.refresh_token
        {
            self.revoke_later(rotated);
        }
    }

    /// Applies a revocation response: on success the refresh token is
    /// dropped from the session (it is dead), and the change announced.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_revocation(
        &mut self,
        revoked: &RefreshToken,
        answer: &ParsedResponse<'_>,
    ) -> Result<(), Error> {
        revocation_outcome(answer).map_err(Error::Revocation)?;
        // Only the token revoked goes: a refresh answered meanwhile may have
        // put another one in the session (it is queued for revocation).
        if let Some(session) = self.state.session.as_mut()
            && session.token_set.refresh_token.as_ref() == Some(revoked)
            && session.token_set.refresh_token.take().is_some()
        {
            self.state
                .events
                .session_changed(session, &[ChangeReason::LoggedOut]);
        }
        Ok(())
    }
}
