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

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::TokenManager;
use crate::error::{Error, IdTokenError};
use crate::flight::{Flight, FlightKind, IdTokenKeys, RequestId};
use crate::http::{HttpRequest, HttpResponse};
use crate::jwks::{JwksCache, KeyLookup};
use crate::time::UnixTime;

/// What to do with a response after the signature step.
pub(super) enum Keys {
    /// Handle this response (the one handed in, or the parked token
    /// response the JWKS completed).
    Go(HttpResponse),
    /// Fetch the JWKS with this request, under the flight's id.
    Fetch(HttpRequest),
}

/// The `id_token` member of a token response, read without the rest.
#[derive(Deserialize)]
struct IdTokenMember<'a> {
    #[serde(borrow, default)]
    id_token: Option<Cow<'a, str>>,
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

    /// The signature step of a response to flight `id`: a JWKS response
    /// for a parked answer is cached and the parked answer comes back; a
    /// token response carrying an ID token is checked, or parked while the
    /// keys are fetched. Anything else goes on unchanged.
    pub(super) fn id_token_keys(
        &mut self,
        id: RequestId,
        response: HttpResponse,
        now: UnixTime,
    ) -> Keys {
        let Some(cache) = self.jwks.as_mut() else {
            return Keys::Go(response);
        };
        let Some(flight) = self.state.flights.get_mut(id) else {
            return Keys::Go(response);
        };
        if matches!(
            flight.id_token_keys.as_deref(),
            Some(IdTokenKeys::Checked(Err(IdTokenError::KeysUnavailable)))
        ) {
            // An answer taken back from its failed key fetch: refused as it is.
            return Keys::Go(response);
        }
        if !matches!(
            flight.kind,
            FlightKind::Refresh { .. } | FlightKind::CodeExchange { .. }
        ) {
            return Keys::Go(response);
        }
        let limits = &self.config.limits;
        let (answer, fetched) = match flight.id_token_keys.take().map(|keys| *keys) {
            Some(IdTokenKeys::Fetching(parked)) => {
                // `response` is the JWKS. Its TTL counts from now: the
                // send time is a moment earlier.
                if let Err(error) = cache.handle_response(&response, now, limits) {
                    flight.id_token_keys = Some(Box::new(IdTokenKeys::Checked(Err(
                        IdTokenError::from(error),
                    ))));
                    return Keys::Go(parked);
                }
                (parked, true)
            }
            _ => (response, false),
        };
        let token = match read_id_token(&answer, limits) {
            Some(token) => token,
            None => return Keys::Go(answer),
        };
        let verdict = match cache.lookup(&token, now) {
            KeyLookup::Ready(jwks) => crate::jws::verify(&token, jwks)
                .map(|_header| ())
                .map_err(IdTokenError::from),
            KeyLookup::Refused(error) => Err(IdTokenError::from(error)),
            KeyLookup::Fetch if !fetched => {
                // A fetch already in flight (another session's) is not
                // waited for: this flight fetches its own copy.
                let request = cache.poll_request(now).unwrap_or_else(|| cache.request());
                flight.id_token_keys = Some(Box::new(IdTokenKeys::Fetching(answer)));
                return Keys::Fetch(request);
            }
            // The keys just fetched did not become fresh (a TTL of zero):
            // nothing knows the key.
            KeyLookup::Fetch => Err(IdTokenError::KeyNotFound),
        };
        flight.id_token_keys = Some(Box::new(IdTokenKeys::Checked(verdict)));
        Keys::Go(answer)
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

/// The `id_token` of a successful token response within the limits
/// (anything else is left to the response parser to refuse).
fn read_id_token(
    response: &HttpResponse,
    limits: &crate::limits::Limits,
) -> Option<Zeroizing<String>> {
    if !response.is_success() || limits.check_response(response).is_err() {
        return None;
    }
    let member: IdTokenMember<'_> = crate::limits::from_json_slice(&response.body).ok()?;
    member
        .id_token
        .map(|token| Zeroizing::new(String::from(token.as_ref())))
}
