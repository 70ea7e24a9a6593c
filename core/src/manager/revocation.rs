//! Logout: the session is marked logged out at once, and its refresh token
//! revoked (RFC 7009) when a revocation endpoint is configured.

use super::{ChangeReason, Dispatch, Event, TokenManager};
use crate::error::Error;
use crate::flight::FlightKind;
use crate::grant::revocation::{parse_revocation_response, revoke_refresh_token};
use crate::http::HttpResponse;
use crate::time::UnixTime;

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
        let session = self.session.as_mut().ok_or(Error::MissingSession)?;
        if !session.is_logged_out() {
            session.set_logged_out();
            let generation = session.bump_generation();
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::LoggedOut,
            });
        }
        let (Some(endpoint), Some(refresh_token)) = (
            self.config.revocation_endpoint.as_deref(),
            self.session
                .as_ref()
                .and_then(|s| s.token_set.refresh_token.as_ref()),
        ) else {
            return Ok(None);
        };
        let request = revoke_refresh_token(
            endpoint,
            &self.config.client_id,
            &self.config.client_auth,
            refresh_token,
        )
        .build();
        self.launch(
            FlightKind::Revocation,
            None,
            alloc::string::String::new(),
            request,
            now,
        )
        .map(Some)
    }

    /// Applies a revocation response: on success the refresh token is
    /// dropped from the session (it is dead), and the change announced.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_revocation(&mut self, response: &HttpResponse) -> Result<(), Error> {
        parse_revocation_response(response, &self.config.limits).map_err(Error::Revocation)?;
        if let Some(session) = self.session.as_mut()
            && session.token_set.refresh_token.take().is_some()
        {
            let generation = session.bump_generation();
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::LoggedOut,
            });
        }
        Ok(())
    }
}
