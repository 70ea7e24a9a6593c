//! Machine-to-machine tokens: the `client_credentials` grant, cached per
//! audience and scope and coalesced like refreshes (one request per
//! audience + scope in flight; other callers wait on it).

use alloc::string::String;

use super::lookup::TokenAt;
use super::{Action, Dispatch, TokenManager, TokenRequest};
use crate::cache::WantedScope;
use crate::error::Error;
use crate::flight::{Flight, FlightKind};
use crate::grant::client_credentials::ClientCredentialsRequest;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use crate::token::{AccessTokenSet, Decision, Freshness};

impl TokenManager {
    /// A client-credentials token for `request.audience` with
    /// `request.scope` (the configured default scope is not merged in: it
    /// is a user login's). Needs no session.
    pub fn get_client_credentials_token(
        &mut self,
        request: &TokenRequest<'_>,
        now: UnixTime,
    ) -> Action<'_> {
        let audience = request.audience.or(self.config.default_audience.as_deref());
        let scope = request.scope.unwrap_or("");
        let wanted = WantedScope::new(scope, "");
        let found = self
            .machine_cache
            .locate(audience.unwrap_or(""), &wanted, now);
        let entry = found.and_then(|at| self.machine_cache.at(at));
        let freshness = Freshness {
            has_access_token: entry.is_some(),
            expires_at: entry.and_then(|e| e.expires_at),
            // A client can always ask for a new token.
            has_refresh_token: true,
            lifetime: entry
                .and_then(|e| e.expires_in)
                .map(core::time::Duration::from_secs),
        };
        let decision = freshness.decide(now, self.config.refresh_buffer, request.force_refresh);
        // Decided: a hit counts as use, then the token is borrowed where it
        // was found, or a request goes out.
        if let Some(at) = found {
            self.machine_cache.touch(at);
        }
        if let (Decision::Ready, Some(at)) = (decision, found) {
            return match self.token_at(TokenAt::Machine(at)) {
                Some(token) => Action::Ready(token),
                // Unreachable: it was just found there.
                None => Action::LoginRequired(Error::MissingSession),
            };
        }
        if let Some(id) = self.state.flights.machine_in_flight(audience, scope) {
            return Action::Wait(id);
        }
        let mut builder = ClientCredentialsRequest::new(
            &self.config.token_endpoint,
            &self.config.client_id,
            &self.config.client_auth,
        );
        if !scope.is_empty() {
            builder = builder.scope(scope);
        }
        if let Some(audience) = audience {
            builder = builder.target(audience, self.config.target_parameter);
        }
        let http = builder.build();
        let audience = audience.map(String::from);
        let scope = String::from(scope);
        match self.launch(FlightKind::ClientCredentials, audience, scope, http, now) {
            Ok(Dispatch::Send(out)) => Action::Send(out),
            Ok(Dispatch::Sign(sign)) => Action::Sign(sign),
            Err(error) => Action::Failed(error),
        }
    }

    /// Stores a client-credentials token in the machine cache.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_machine_token(
        &mut self,
        flight: &Flight,
        answer: &mut ParsedResponse<'_>,
        now: UnixTime,
    ) -> Result<TokenAt, Error> {
        let wrap = Error::TokenRequestFailed;
        let parsed = answer
            .take_token_response()
            .map_err(|e| self.grant_error(e, answer, wrap))?;
        let expires_at = self.usable_expiry(flight, &parsed, answer.status(), now, wrap)?;
        let audience = flight.audience.clone().unwrap_or_default();
        let at = self.machine_cache.upsert(AccessTokenSet {
            access_token: parsed.access_token,
            scope: Some(
                parsed
                    .scope
                    .unwrap_or_else(|| flight.requested_scope.clone()),
            ),
            requested_scope: Some(flight.requested_scope.clone()),
            audience: audience.clone(),
            expires_at: Some(expires_at),
            expires_in: Some(
                expires_at
                    .as_secs()
                    .saturating_sub(flight.sent_at.as_secs()),
            ),
            token_type: Some(parsed.token_type),
            extra: serde_json::Map::new(),
        });
        let removed = self.machine_cache.remove_expired(now)
            + self.machine_cache.evict_over(
                self.config.max_cache_entries,
                Some((&audience, &flight.requested_scope)),
            );
        // Exactly the entry just written; entries that went before it
        // moved it, so then it is found again by its key.
        let at = if removed > 0 {
            self.machine_cache
                .position(&audience, &flight.requested_scope)
        } else {
            Some(at)
        };
        // Unreachable: it was just written and is never evicted.
        at.map(TokenAt::Machine).ok_or(Error::UnknownRequest)
    }
}
