//! ID token signatures by the issuer's JWKS, at login and on refresh.
//!
//! When the configuration knows the issuer's `jwks_uri` (discovery sets it)
//! and signature checks are on (the default), every ID token a code
//! exchange or a refresh returns has its `RS256`/`ES256` signature checked
//! against the manager's [`JwksCache`] before the answer is applied. The
//! manager does no I/O: when the cache holds no fresh keys, or the token
//! names a `kid` it does not know (a key rotation, at most one refetch per
//! refresh interval), the answer is parked on its flight and the host is
//! asked to fetch the JWKS with the **same request id**, as for any retry
//! ([`Completion::Resend`](super::Completion::Resend)); the JWKS response
//! handed back with that id resumes the parked answer.
//!
//! ```text
//! handle_response(id, token response)
//!   no ID token, or no JWKS configured ───────────────────────► applied as before
//!   keys fresh and know the kid ─► verify ─► verdict on flight ─► applied (refused on a bad verdict)
//!   keys stale / kid unknown (refetch allowed)
//!     ─► answer parked ─► Completion::Resend(GET jwks_uri, same id)
//!          handle_response(id, JWKS response)
//!            ─► keys cached ─► verify the parked ID token ─► verdict ─► parked answer applied
//!          handle_transport_error(id) ─► the flight fails (transport_error), nothing stored
//! ```
//!
//! The verdict is applied where the claims are checked: a refused login
//! stores nothing; a refused refresh keeps only the rotated refresh token
//! (the old one is spent whatever happens), as for any refused ID token.
//! Each refusal keeps its own code: `invalid_signature`, `alg_none_refused`,
//! `hmac_alg_refused`, `jwk_not_found`, `jwk_alg_mismatch`, `jwk_unusable`,
//! `invalid_jwks`.

use alloc::boxed::Box;

use super::TokenManager;
use crate::error::{Error, IdTokenError};
use crate::flight::{Flight, FlightKind, IdTokenKeys, RequestId};
use crate::http::{HttpRequest, HttpResponse};
use crate::jwks::{JwksCache, KeyLookup};
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;

/// What the JWKS step makes of a response to a flight.
pub(super) enum Answer {
    /// No ID token signature to check here: handle it as it is.
    Plain,
    /// A token answer whose ID token (if any) is checked once parsed
    /// ([`TokenManager::check_id_token`]). The response is the token
    /// answer: the one handed in, or the parked one the JWKS completed.
    Check {
        /// Whether the keys were just fetched for it (a second fetch is
        /// not asked for).
        fetched: bool,
    },
}

impl TokenManager {
    /// The JWKS cache of the configured issuer, when ID token signatures are
    /// checked.
    #[must_use]
    pub fn jwks_cache(&self) -> Option<&JwksCache> {
        self.jwks.as_ref()
    }

    /// The cache the configuration asks for (none when signatures are not
    /// checked).
    pub(super) fn jwks_cache_for(config: &crate::config::Config) -> Option<JwksCache> {
        if !config.verifies_id_token_signatures() {
            return None;
        }
        let cache = JwksCache::new(config.jwks_uri.as_deref()?).ok()?;
        Some(
            cache
                .with_ttl(config.jwks_ttl)
                .with_refetch_interval(config.jwks_refetch_interval),
        )
    }

    /// The first half of the signature step, before the answer is
    /// parsed: a JWKS response for a parked answer is cached and the parked
    /// answer takes its place in `response`, to be checked; a token answer
    /// to a login or a refresh is to be checked; anything else goes on
    /// unchanged. (The response is changed in place, not moved through:
    /// this runs on every answer.)
    pub(super) fn id_token_answer(
        &mut self,
        id: RequestId,
        response: &mut HttpResponse,
        now: UnixTime,
    ) -> Answer {
        let Some(cache) = self.jwks.as_mut() else {
            return Answer::Plain;
        };
        let Some(flight) = self.state.flights.get_mut(id) else {
            return Answer::Plain;
        };
        if matches!(
            flight.id_token_keys.as_deref(),
            Some(IdTokenKeys::Checked(Err(IdTokenError::KeysUnavailable)))
        ) {
            // An answer taken back from its failed key fetch: refused as it is.
            return Answer::Plain;
        }
        if !matches!(
            flight.kind,
            FlightKind::Refresh { .. } | FlightKind::CodeExchange { .. }
        ) {
            return Answer::Plain;
        }
        match flight.id_token_keys.take().map(|keys| *keys) {
            Some(IdTokenKeys::Fetching(parked)) => {
                // `response` is the JWKS. Its TTL counts from now: the
                // send time is a moment earlier.
                let cached = cache.handle_response(response, now, &self.config.limits);
                *response = parked;
                if let Err(error) = cached {
                    flight.id_token_keys = Some(Box::new(IdTokenKeys::Checked(Err(
                        IdTokenError::from(error),
                    ))));
                    return Answer::Plain;
                }
                Answer::Check { fetched: true }
            }
            _ => Answer::Check { fetched: false },
        }
    }

    /// The second half, on the one parse of the answer: the ID token the
    /// answer will be applied with (the last of duplicated members) is
    /// verified and the verdict kept on the flight; or, when the keys are
    /// stale or do not know its `kid` (and were not just fetched), the JWKS
    /// request to send under the flight's id, the caller parking the answer
    /// ([`TokenManager::park`]).
    pub(super) fn check_id_token(
        &mut self,
        id: RequestId,
        answer: &ParsedResponse<'_>,
        fetched: bool,
        now: UnixTime,
    ) -> Option<HttpRequest> {
        let token = answer.id_token()?;
        let cache = self.jwks.as_mut()?;
        let flight = self.state.flights.get_mut(id)?;
        let verdict = match cache.lookup(token, now) {
            KeyLookup::Ready(jwks) => crate::jws::verify(token, jwks)
                .map(|_header| ())
                .map_err(IdTokenError::from),
            KeyLookup::Refused(error) => Err(IdTokenError::from(error)),
            // A fetch already in flight (another session's) is not waited
            // for: this flight fetches its own copy.
            KeyLookup::Fetch if !fetched => {
                return Some(cache.poll_request(now).unwrap_or_else(|| cache.request()));
            }
            // The keys just fetched did not become fresh (a TTL of zero):
            // nothing knows the key.
            KeyLookup::Fetch => Err(IdTokenError::KeyNotFound),
        };
        flight.id_token_keys = Some(Box::new(IdTokenKeys::Checked(verdict)));
        None
    }

    /// Parks `answer` on flight `id` while its keys are fetched.
    pub(super) fn park(&mut self, id: RequestId, answer: HttpResponse) {
        if let Some(flight) = self.state.flights.get_mut(id) {
            flight.id_token_keys = Some(Box::new(IdTokenKeys::Fetching(answer)));
        }
    }

    /// The token answer parked on flight `id` while its keys were being
    /// fetched, taken back with the verdict "keys unavailable": the fetch
    /// failed in transport (`fetch_failed`: the cache may fetch again) or
    /// was given up. The token endpoint did answer, so the answer must
    /// still be applied: its rotated refresh token is the live one.
    pub(super) fn unpark(&mut self, id: RequestId, fetch_failed: bool) -> Option<HttpResponse> {
        let flight = self.state.flights.get_mut(id)?;
        if !matches!(
            flight.id_token_keys.as_deref(),
            Some(IdTokenKeys::Fetching(_))
        ) {
            return None;
        }
        let verdict = Box::new(IdTokenKeys::Checked(Err(IdTokenError::KeysUnavailable)));
        let Some(IdTokenKeys::Fetching(parked)) =
            flight.id_token_keys.replace(verdict).map(|keys| *keys)
        else {
            return None;
        };
        if fetch_failed && let Some(cache) = self.jwks.as_mut() {
            cache.handle_transport_error();
        }
        Some(parked)
    }
}

/// The refusal of the flight's ID token signature, if it was refused.
pub(super) fn signature_verdict(flight: &Flight) -> Result<(), Error> {
    match flight.id_token_keys.as_deref() {
        Some(IdTokenKeys::Checked(Err(error))) => Err(Error::IdToken(error.clone())),
        _ => Ok(()),
    }
}
