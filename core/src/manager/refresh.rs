//! The refresh (RFC 6749 §6): started when [`TokenManager::get_access_token`]
//! decides a token is due, applied when its answer comes back.
//!
//! ```text
//! get_access_token ─ decide ─► Refresh(plan)
//!   start_refresh(plan) ──► flight registered; shared store: the claim is
//!                           written into the session and RefreshClaimed raised
//!                           here, before the request leaves
//!                      ──► Action::Send / Action::Sign
//! handle_response ──► apply_refresh ──► rotated refresh token stored first,
//!                                       then the access token (main set or
//!                                       its entry), TokensUpdated raised
//!                                   └─► invalid_grant: ReauthenticationRequired
//!                 └─► a new ID token and the issuer's keys not at hand:
//!                     Completion::Resend(GET jwks_uri) first (see `signature`)
//! ```

use alloc::string::String;

use super::lookup::TokenAt;
use super::{Action, ChangeReason, Dispatch, TokenManager};
use crate::config::Config;
use crate::error::{Error, ResponseError};
use crate::flight::{Destination, Flight, FlightKind};
use crate::grant::RefreshRequest;
#[cfg(feature = "login")]
use crate::id_token::IdTokenValidator;
use crate::jwt;
use crate::scope;
use crate::secret::{IdToken, RefreshToken};
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use crate::token::{AccessTokenSet, TokenResponse};
use crate::trace::decision;

/// A refresh decided on: everything its request and its flight need, owned,
/// so the decision's borrow of the manager has ended when it starts.
#[derive(Debug)]
pub(super) struct RefreshPlan {
    /// Where the refreshed token goes.
    pub(super) destination: Destination,
    /// The audience the request resolved to.
    pub(super) audience: Option<String>,
    /// The merged scope wanted (recorded as `requestedScope`).
    pub(super) requested_scope: String,
    /// Whether the caller asked for a scope: only then is it sent.
    pub(super) scope_on_the_wire: bool,
    /// The API named on the wire (`audience` or `resource`).
    pub(super) target: Option<String>,
    /// The refresh token it spends: the session's.
    pub(super) refresh_token: RefreshToken,
}

impl TokenManager {
    /// Starts the refresh `plan`: the flight, and with a shared store the
    /// claim, written and announced now (the host saves it with
    /// compare-and-swap before it sends the request).
    pub(super) fn start_refresh(&mut self, plan: RefreshPlan, now: UnixTime) -> Action<'_> {
        let RefreshPlan {
            destination,
            audience,
            requested_scope,
            scope_on_the_wire,
            target,
            refresh_token,
        } = plan;
        let config = &self.config;
        let request = RefreshRequest {
            token_endpoint: &config.token_endpoint,
            client_id: &config.client_id,
            client_auth: &config.client_auth,
            refresh_token: &refresh_token,
            scope: scope_on_the_wire.then_some(requested_scope.as_str()),
            target: target.as_deref(),
            target_parameter: config.target_parameter,
        }
        .build();
        let kind = FlightKind::Refresh {
            destination,
            refresh_token,
            target,
        };
        let launched = self.launch(kind, audience, requested_scope, request, now);
        if launched.is_ok() && self.config.shared_store {
            self.claim_refresh(now.saturating_add(self.config.lease));
        }
        match launched {
            Ok(Dispatch::Send(out)) => Action::Send(out),
            Ok(Dispatch::Sign(sign)) => Action::Sign(sign),
            Err(error) => Action::Failed(error),
        }
    }

    /// Applies a refresh response to the session. On error nothing stored
    /// changes, except: `invalid_grant` marks the session for
    /// re-authentication, and a rotated refresh token is kept even when the
    /// access token cannot be used.
    pub(super) fn apply_refresh(
        &mut self,
        flight: &Flight,
        answer: &mut ParsedResponse<'_>,
        now: UnixTime,
    ) -> Result<TokenAt, Error> {
        let wrap = Error::FailedToRefreshToken;
        let parsed = match answer.take_token_response() {
            Ok(parsed) => parsed,
            // `invalid_grant`: the refresh token is dead. `invalid_target`:
            // servers such as node-oidc-provider consume the refresh token
            // before checking the resource, so sending it again would be a
            // replay that revokes the whole grant.
            Err(ResponseError::Server(server))
                if server.error == "invalid_grant" || server.error == "invalid_target" =>
            {
                decision!(warn, event = "invalid_grant", code = server.error.as_str());
                let session = self.state.session.as_mut().ok_or(Error::MissingSession)?;
                if session.token_set.refresh_token.as_ref() == flight.refresh_token() {
                    session.set_reauthentication_required();
                    self.state
                        .events
                        .session_changed(session, &[ChangeReason::ReauthenticationRequired]);
                }
                return Err(Error::FailedToRefreshToken(ResponseError::Server(server)));
            }
            Err(other) => return Err(self.grant_error(other, answer, wrap)),
        };
        let usable = self.usable_expiry(flight, &parsed, answer.status(), now, wrap);
        let session = self.state.session.as_mut().ok_or(Error::MissingSession)?;

        // The response's parts move into the session: no copies.
        let TokenResponse {
            access_token,
            token_type,
            refresh_token,
            id_token,
            scope: granted,
            ..
        } = parsed;

        // The rotated refresh token is stored first: the old one is spent
        // whatever happens to the access token.
        let rotated = match refresh_token {
            Some(new) if session.token_set.refresh_token.as_ref() != Some(&new) => {
                session.token_set.refresh_token = Some(new);
                true
            }
            _ => false,
        };

        // `sub` continuity: a refreshed ID token must name the same user
        // (and, with an issuer configured, pass the other checks too). Checked
        // after the rotation is kept: a refused answer still spent the old
        // refresh token, and only the rotated one is live.
        let id_token_checked = match &id_token {
            #[cfg(feature = "login")]
            Some(new_id_token) => super::signature::signature_verdict(flight).and_then(|()| {
                check_refreshed_id_token(&self.config, session_subject(session), new_id_token, now)
            }),
            #[cfg(not(feature = "login"))]
            Some(new_id_token) => {
                check_refreshed_id_token(&self.config, session_subject(session), new_id_token, now)
            }
            None => Ok(()),
        };
        let expires_at = match id_token_checked.and(usable) {
            Ok(expires_at) => expires_at,
            Err(error) => {
                if rotated {
                    self.state.events.session_changed(
                        session,
                        &[ChangeReason::TokensUpdated {
                            refresh_token_rotated: true,
                        }],
                    );
                }
                return Err(error);
            }
        };

        // What the server granted, counted from the send time as
        // `expiresAt` is (it caps the refresh buffer).
        let lifetime = expires_at
            .as_secs()
            .saturating_sub(flight.sent_at.as_secs());
        // RFC 6749 §5.1: no `scope` means "as requested".
        let granted = granted.unwrap_or_else(|| flight.requested_scope.clone());
        let missing = if self.config.strict_scopes {
            scope::missing(&flight.requested_scope, &granted)
        } else {
            String::new()
        };
        if id_token.is_some() {
            session.token_set.id_token = id_token;
        }
        let mut evicted = 0;
        let FlightKind::Refresh { destination, .. } = &flight.kind else {
            return Err(Error::UnknownRequest);
        };
        let at = match destination {
            Destination::Main => {
                let set = &mut session.token_set;
                set.access_token = access_token;
                set.expires_at = Some(expires_at);
                set.expires_in = Some(lifetime);
                set.scope = Some(granted);
                if !flight.requested_scope.is_empty()
                    && set.requested_scope.as_deref() != Some(&*flight.requested_scope)
                {
                    set.requested_scope = Some(flight.requested_scope.clone());
                }
                if set.audience.is_none() {
                    set.audience = flight.audience.clone();
                }
                set.token_type = Some(token_type);
                Some(TokenAt::Main)
            }
            Destination::Entry(audience, replaces) => {
                // The refreshed token replaces the entry it was refreshed
                // for, even when that entry was keyed by a wider scope:
                // kept beside it, the stale one could still be found.
                if let Some(replaced) = replaces {
                    session.cache.remove(audience, replaced);
                }
                let at = session.cache.upsert(AccessTokenSet {
                    access_token,
                    scope: Some(granted),
                    requested_scope: Some(flight.requested_scope.clone()),
                    audience: audience.clone(),
                    expires_at: Some(expires_at),
                    expires_in: Some(lifetime),
                    token_type: Some(token_type),
                    extra: serde_json::Map::new(),
                });
                evicted = session.cache.evict_over(
                    self.config.max_cache_entries,
                    Some((audience, &flight.requested_scope)),
                );
                // Exactly the entry just written: a lookup could rank
                // another one first. Eviction moves the entries after a
                // victim, so then it is found again by its key.
                let at = if evicted > 0 {
                    session.cache.position(audience, &flight.requested_scope)
                } else {
                    Some(at)
                };
                at.map(TokenAt::Entry)
            }
        };
        let updated = ChangeReason::TokensUpdated {
            refresh_token_rotated: rotated,
        };
        let reasons: &[ChangeReason] = if evicted > 0 {
            &[updated, ChangeReason::Evicted]
        } else {
            &[updated]
        };
        let _generation = self.state.events.session_changed(session, reasons);
        decision!(
            info,
            event = "refresh_finished",
            rotated = rotated,
            generation = _generation
        );
        if !missing.is_empty() {
            return Err(Error::MissingScopes { missing });
        }
        // Unreachable: the entry was just written.
        at.ok_or(Error::UnknownRequest)
    }
}

/// `sub` continuity: a refreshed ID token must name the same user as the
/// session's (and, with an issuer configured, pass the other checks too).
/// Out of line: most refreshes carry no ID token.
#[cfg(feature = "login")]
#[inline(never)]
fn check_refreshed_id_token(
    config: &Config,
    old_sub: Option<String>,
    new_id_token: &IdToken,
    now: UnixTime,
) -> Result<(), Error> {
    let new_sub = match (&config.issuer, &old_sub) {
        (Some(issuer), Some(old_sub)) => {
            let validator = IdTokenValidator::new(issuer, &config.client_id)
                .clock_tolerance(config.clock_tolerance);
            String::from(
                validator
                    .validate_refresh(new_id_token, old_sub, now)?
                    .sub(),
            )
        }
        (Some(issuer), None) => {
            let validator = IdTokenValidator::new(issuer, &config.client_id)
                .clock_tolerance(config.clock_tolerance);
            String::from(validator.validate(new_id_token, None, now)?.sub())
        }
        // Without an issuer to check against, only `sub` is read.
        (None, _) => subject(new_id_token)
            .ok_or(Error::IdToken(crate::id_token::IdTokenError::MissingSub))?,
    };
    if old_sub.is_some_and(|old| old != new_sub) {
        return Err(Error::SubjectMismatch);
    }
    Ok(())
}

/// `sub` continuity without the ID token validator (feature `login` off):
/// a refreshed ID token must name the same user as the session's, whether
/// or not an issuer is configured; one without a `sub` is refused as with
/// no issuer configured.
#[cfg(not(feature = "login"))]
#[inline(never)]
fn check_refreshed_id_token(
    _config: &Config,
    old_sub: Option<String>,
    new_id_token: &IdToken,
    _now: UnixTime,
) -> Result<(), Error> {
    let new_sub =
        subject(new_id_token).ok_or(Error::IdToken(crate::error::IdTokenError::MissingSub))?;
    match old_sub {
        Some(old_sub) if old_sub != new_sub => Err(Error::SubjectMismatch),
        _ => Ok(()),
    }
}

/// Who the session belongs to: its ID token's `sub`, or, for a session
/// that keeps no ID token, its user's `sub` (what the app, the logout
/// marks and the extractors go by).
fn session_subject(session: &crate::session::Session) -> Option<String> {
    session
        .token_set
        .id_token
        .as_ref()
        .and_then(subject)
        .or_else(|| session.sub().map(String::from))
}

/// The `sub` claim of an ID token, read without validation.
fn subject(id_token: &IdToken) -> Option<String> {
    let claims = jwt::decode_claims(id_token.secret()).ok()?;
    claims.get("sub")?.as_str().map(String::from)
}
