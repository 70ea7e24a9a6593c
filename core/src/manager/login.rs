//! Login: the authorization code exchange that starts a session.
//!
//! ```text
//! LoginRequest::start(entropy) ──► (authorization URL, LoginTransaction)   the host redirects
//! exchange_code(transaction, callback, now) ──► OutgoingRequest           state, iss, error checked
//! handle_response(id, response, now) ──► Completion::Ready(token)          ID token checked,
//!                                                                          session started
//!                                     └─► Completion::Resend(GET jwks_uri) keys needed first
//!                                           (see `signature`): send, hand the JWKS back, same id
//! ```

use alloc::string::String;

use serde_json::Value;

use super::lookup::TokenAt;
use super::{ChangeReason, Dispatch, TokenManager};
use crate::error::Error;
use crate::flight::{Flight, FlightKind};
use crate::id_token::IdTokenValidator;
use crate::login::LoginTransaction;
use crate::session::Session;
use crate::time::UnixTime;
use crate::token::TokenSet;
use crate::token::response::ParsedResponse;

impl TokenManager {
    /// Validates the login callback (`state`, `error`, and `iss` per RFC
    /// 9207) and builds the authorization code exchange. Its response,
    /// through [`TokenManager::handle_response`], starts the session.
    ///
    /// # Errors
    /// [`Error::Login`] with the failed check's code (`state_mismatch`,
    /// `authorization_error`, `issuer_mismatch`, …).
    pub fn exchange_code(
        &mut self,
        transaction: &LoginTransaction,
        callback: &str,
        now: UnixTime,
    ) -> Result<Dispatch, Error> {
        let code = transaction
            .validate_callback(
                callback,
                self.config.issuer.as_deref(),
                self.config.require_iss,
            )
            .map_err(Error::Login)?;
        let mut exchange = transaction.code_exchange(
            &code,
            &self.config.token_endpoint,
            &self.config.client_id,
            &self.config.client_auth,
        );
        // RFC 8707 §2.2: a grant for several resources is narrowed to one at
        // the token endpoint; without it, servers such as node-oidc-provider
        // answer with a token for none of them (an opaque userinfo token).
        let resource = transaction.resources().first().map(String::as_str);
        if transaction.audience().is_none()
            && let Some(resource) = resource
        {
            exchange.target = Some(resource);
            exchange.target_parameter = crate::grant::refresh::TargetParameter::Resource;
        }
        let request = exchange.build();
        self.launch(
            FlightKind::CodeExchange {
                nonce: String::from(transaction.nonce().secret()),
            },
            transaction.audience().or(resource).map(String::from),
            String::from(transaction.scope()),
            request,
            now,
        )
    }

    /// Applies a code exchange response: a new session with the tokens, the
    /// requested scope, the normalised `token_type` and the ID token's
    /// claims as the user.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_login(
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
        let FlightKind::CodeExchange { nonce } = &flight.kind else {
            return Err(Error::UnknownRequest);
        };
        let claims = match &parsed.id_token {
            Some(id_token) => {
                // The signature (when the issuer's JWKS is configured) was
                // checked before the answer was read: refused, nothing is
                // stored.
                super::signature::signature_verdict(flight)?;
                let issuer = self.config.issuer.as_deref().ok_or_else(|| {
                    Error::InvalidConfiguration(String::from(
                        "an issuer is needed to validate the ID token of a login",
                    ))
                })?;
                Some(
                    IdTokenValidator::new(issuer, &self.config.client_id)
                        .clock_tolerance(self.config.clock_tolerance)
                        .validate_login(id_token, nonce, now)?,
                )
            }
            // OIDC Core 3.1.3.3: an `openid` login's token response must
            // carry an ID token; without it the user is not authenticated.
            None if crate::scope::tokens(&flight.requested_scope).any(|s| s == "openid") => {
                return Err(Error::IdToken(crate::id_token::IdTokenError::Missing));
            }
            None => None,
        };
        let granted = parsed
            .scope
            .clone()
            .unwrap_or_else(|| flight.requested_scope.clone());
        let mut session = Session::new(TokenSet {
            access_token: parsed.access_token,
            id_token: parsed.id_token,
            scope: Some(granted),
            requested_scope: Some(flight.requested_scope.clone()),
            refresh_token: parsed.refresh_token,
            expires_at: Some(expires_at),
            expires_in: Some(
                expires_at
                    .as_secs()
                    .saturating_sub(flight.sent_at.as_secs()),
            ),
            audience: flight.audience.clone(),
            token_type: Some(parsed.token_type),
            extra: serde_json::Map::new(),
        });
        let mut internal = serde_json::Map::new();
        let mut ceiling = None;
        if let Some(claims) = claims {
            if let Some(sid) = claims.sid() {
                internal.insert("sid".into(), Value::from(sid));
            }
            // IPSIE `session_expiry`: the session's ceiling, as the SDK
            // keeps it (valid only when 0 < value < 1e10).
            ceiling = claims
                .claims()
                .get("session_expiry")
                .and_then(crate::session::ceiling_from_json);
            session.set_user(Value::Object(claims.into_claims()));
        }
        if ceiling.is_some_and(|c| now >= c.saturating_sub(self.config.session_ceiling_leeway)) {
            return Err(Error::SessionExpired);
        }
        internal.insert("createdAt".into(), Value::from(now.as_secs()));
        session.set_internal(internal);
        // Without a `sid` claim the SDK still needs one.
        session.complete_for_sdk(None, now, &mut *self.entropy);
        match self.state.login_id.take() {
            // An application serving many sessions chose the id (its
            // store key) when the login started.
            Some(bytes) => session.ensure_id(&mut super::state::Chosen(bytes)),
            None => session.ensure_id(&mut *self.entropy),
        }
        session.set_session_expires_at(ceiling);
        // Continue the generation of the session this one replaces, so a
        // store's compare-and-swap sees a newer value.
        let previous = self.state.session.as_ref().map_or(0, Session::generation);
        session.set_generation(previous);
        self.state.session = Some(session);
        self.session_changed(&[ChangeReason::LoggedIn]);
        Ok(TokenAt::Main)
    }
}
