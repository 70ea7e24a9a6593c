//! OpenID Connect Back-Channel Logout 1.0: validating a logout token and
//! saying which sessions it ends.
//!
//! The authorization server `POST`s `logout_token=<JWT>` (form-encoded) to
//! the client's back-channel logout URI. The client verifies the token
//! (§2.6), ends the sessions it names, and answers `200` (or `400` with an
//! error when refused).
//!
//! # Call order
//!
//! ```text
//! token = logout_token_from_form(body)?                     the POST body
//! cache.lookup(&token, now) ─► KeyLookup::Ready(jwks)         (crate::jwks::JwksCache;
//!                           ─► Fetch: send, handle_response,   Fetch/Refused as there)
//!                              look up again
//! validator = LogoutTokenValidator::new(issuer, client_id, jwks)
//!     [.clock_tolerance(d)] [.iat_window(d)] [.require_sid(true)]
//! validator.validate_once(&token, &mut replay_cache, now)
//!   ─► Ok(LogoutToken)    .target(): LogoutTarget { sub, sid }
//!                         .target().ends(&session): end each session it matches
//!   ─► Err(LogoutTokenError)  nothing is ended
//! backchannel_logout_response(None | Some(&error)) ─► 200, or 400 with the code
//! replay_cache.poll_timeout() ─► handle_timeout(now)       forget expired jtis
//! ```
//!
//! Ending the sessions across instances: [`crate::store::logout_marks`]
//! ("logged out at" marks by `sid`/`sub` that every instance checks on
//! load; `end_sessions`, `is_ended`).
//!
//! Fleets keep `jti`s in their shared store instead: [`validate`] (every
//! check but the replay), then an atomic "set if absent" of
//! [`LogoutToken::replay_key`] that expires at
//! [`LogoutToken::remember_until`]; a key already present is a replay.
//!
//! Checks, in order: the signature by JWKS ([`crate::jws::verify`]: `RS256`
//! or `ES256`, `alg` `none` and HMAC refused, the key by `kid`); the `typ`
//! header, when present, is `logout+jwt`; the claims are a JSON object;
//! `iss` is the issuer; `aud` contains the client id (and `azp`, when
//! present, is the client id); `iat` is neither later than `now +
//! tolerance` nor earlier than `now − window − tolerance` (default window 5
//! minutes, tolerance 60 s); `exp`, when present, is later than `now −
//! tolerance`; `jti` is a non-empty string; `events` is an object whose
//! member `http://schemas.openid.net/event/backchannel-logout` is an
//! object; `sub` or `sid` (or both) is a non-empty string (`sid` required
//! when so configured); there is no `nonce`; and, with a replay cache, the
//! `jti` was not seen before.
//!
//! [`validate`]: LogoutTokenValidator::validate

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::http::HttpResponse;
use crate::jwks::Jwks;
use crate::jws::{self, JwsError};
use crate::jwt;
use crate::session::Session;
use crate::time::UnixTime;

/// The event member of a back-channel logout token's `events` claim.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How old a logout token's `iat` may be: 5 minutes.
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(300);

/// The default clock tolerance on `iat` and `exp`: 60 s (as ID tokens).
pub const DEFAULT_CLOCK_TOLERANCE: Duration = crate::id_token::DEFAULT_CLOCK_TOLERANCE;

/// The most `jti`s a [`ReplayCache`] keeps by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 10_000;

/// The longest logout token accepted, in bytes.
pub const MAX_LOGOUT_TOKEN_BYTES: usize = 64 * 1024;

/// Why a logout token was refused. Nothing is ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutTokenError {
    /// The back-channel logout body has no (or several) `logout_token`.
    /// Code `missing_logout_token`.
    #[error("the request has no single logout_token")]
    MissingLogoutToken,
    /// Not a JWT with a claims object, a claim of the wrong type, or too
    /// long. Code `logout_token_malformed`.
    #[error("the logout token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature check refused it; the code is the [`JwsError`]'s
    /// (`invalid_signature`, `alg_none_refused`, `hmac_alg_refused`,
    /// `jwk_not_found`, …).
    #[error("the logout token's signature was refused: {0}")]
    Signature(JwsError),
    /// The `typ` header is present and not `logout+jwt`. Code
    /// `invalid_logout_token_typ`.
    #[error("the logout token's typ header is not logout+jwt")]
    InvalidType,
    /// `iss` is not the issuer. Code `issuer_mismatch`.
    #[error("the logout token's issuer {received:?} is not the expected {expected:?}")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The `iss` received.
        received: String,
    },
    /// `aud` does not contain the client id. Code `audience_mismatch`.
    #[error("the logout token's audience does not contain the client id")]
    AudienceMismatch,
    /// `azp` is present and not the client id. Code `azp_mismatch`.
    #[error("the logout token's azp is not the client id")]
    AzpMismatch,
    /// `iat` is older than the window (beyond the tolerance). Code
    /// `iat_too_old`.
    #[error("the logout token was issued too long ago ({iat})")]
    IatTooOld {
        /// The `iat` claim.
        iat: UnixTime,
    },
    /// `iat` is in the future (beyond the tolerance). Code `iat_in_future`.
    #[error("the logout token was issued in the future ({iat})")]
    IatInFuture {
        /// The `iat` claim.
        iat: UnixTime,
    },
    /// `exp` has passed (beyond the tolerance). Code
    /// `logout_token_expired`.
    #[error("the logout token expired at {exp}")]
    Expired {
        /// The `exp` claim.
        exp: UnixTime,
    },
    /// `jti` is missing or empty. Code `missing_jti`.
    #[error("the logout token has no jti")]
    MissingJti,
    /// The `jti` was seen before. Code `jti_replayed`.
    #[error("the logout token was already used (jti replayed)")]
    Replayed,
    /// The token has a `nonce` (an ID token, not a logout token). Code
    /// `nonce_present`.
    #[error("the logout token carries a nonce")]
    NoncePresent,
    /// There is no `events` claim. Code `missing_events`.
    #[error("the logout token has no events claim")]
    MissingEvents,
    /// `events` is not an object holding the back-channel logout event as
    /// an object. Code `invalid_events`.
    #[error("the logout token's events claim lacks the back-channel logout event")]
    InvalidEvents,
    /// Neither `sub` nor `sid` is present. Code `missing_sub_and_sid`.
    #[error("the logout token has neither sub nor sid")]
    MissingSubAndSid,
    /// `sid` is required (the client registered
    /// `backchannel_logout_session_required`) and missing. Code
    /// `missing_sid`.
    #[error("the logout token has no sid")]
    MissingSid,
}

impl LogoutTokenError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            LogoutTokenError::MissingLogoutToken => "missing_logout_token",
            LogoutTokenError::Malformed(_) => "logout_token_malformed",
            LogoutTokenError::Signature(e) => e.code(),
            LogoutTokenError::InvalidType => "invalid_logout_token_typ",
            LogoutTokenError::IssuerMismatch { .. } => "issuer_mismatch",
            LogoutTokenError::AudienceMismatch => "audience_mismatch",
            LogoutTokenError::AzpMismatch => "azp_mismatch",
            LogoutTokenError::IatTooOld { .. } => "iat_too_old",
            LogoutTokenError::IatInFuture { .. } => "iat_in_future",
            LogoutTokenError::Expired { .. } => "logout_token_expired",
            LogoutTokenError::MissingJti => "missing_jti",
            LogoutTokenError::Replayed => "jti_replayed",
            LogoutTokenError::NoncePresent => "nonce_present",
            LogoutTokenError::MissingEvents => "missing_events",
            LogoutTokenError::InvalidEvents => "invalid_events",
            LogoutTokenError::MissingSubAndSid => "missing_sub_and_sid",
            LogoutTokenError::MissingSid => "missing_sid",
        }
    }
}

impl From<JwsError> for LogoutTokenError {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed(reason) => LogoutTokenError::Malformed(reason),
            other => LogoutTokenError::Signature(other),
        }
    }
}

/// The logout token of a back-channel logout request body
/// (`application/x-www-form-urlencoded`, `logout_token=…`).
///
/// ```
/// use tokenkeeper::logout_token::logout_token_from_form;
///
/// assert_eq!(logout_token_from_form(b"logout_token=a.b.c").unwrap(), "a.b.c");
/// assert_eq!(
///     logout_token_from_form(b"token=a.b.c").unwrap_err().code(),
///     "missing_logout_token"
/// );
/// ```
///
/// # Errors
/// [`LogoutTokenError::MissingLogoutToken`] when the body has none, an
/// empty one or several; [`LogoutTokenError::Malformed`] when the body is
/// not UTF-8 or too long.
pub fn logout_token_from_form(body: &[u8]) -> Result<String, LogoutTokenError> {
    // The token, form-encoded, plus a little room for other parameters.
    if body.len() > MAX_LOGOUT_TOKEN_BYTES * 3 + 1024 {
        return Err(LogoutTokenError::Malformed("the body is too long"));
    }
    let body = core::str::from_utf8(body)
        .map_err(|_| LogoutTokenError::Malformed("the body is not UTF-8"))?;
    let mut tokens = crate::form::parse(body)
        .into_iter()
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value);
    match (tokens.next(), tokens.next()) {
        (Some(token), None) if !token.is_empty() => Ok(token),
        _ => Err(LogoutTokenError::MissingLogoutToken),
    }
}

/// The answer to the authorization server's back-channel logout request
/// (§2.8): `200` once the sessions are ended, else `400` with
/// `{"error":"invalid_request","error_description":<the code>}`; both with
/// `Cache-Control: no-store`.
///
/// ```
/// use tokenkeeper::logout_token::{LogoutTokenError, backchannel_logout_response};
///
/// let ok = backchannel_logout_response(None);
/// assert_eq!(ok.status, 200);
/// let refused = backchannel_logout_response(Some(&LogoutTokenError::NoncePresent));
/// assert_eq!(refused.status, 400);
/// assert_eq!(
///     refused.body,
///     br#"{"error":"invalid_request","error_description":"nonce_present"}"#
/// );
/// assert_eq!(refused.headers.get("cache-control"), Some("no-store"));
/// ```
#[must_use]
pub fn backchannel_logout_response(refused: Option<&LogoutTokenError>) -> HttpResponse {
    let response = match refused {
        None => HttpResponse::new(200, Vec::new()),
        Some(error) => HttpResponse::new(
            400,
            alloc::format!(
                r#"{{"error":"invalid_request","error_description":"{}"}}"#,
                error.code()
            ),
        )
        .with_header("Content-Type", "application/json"),
    };
    response.with_header("Cache-Control", "no-store")
}

/// Which sessions a logout token ends: those of the user `sub`, or the one
/// session `sid`, or with both, the session `sid` of user `sub`. At least
/// one is present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogoutTarget {
    /// The user whose sessions end (`sub`).
    pub sub: Option<String>,
    /// The session that ends (`sid`, the authorization server's session id,
    /// as the ID token's `sid`).
    pub sid: Option<String>,
}

impl LogoutTarget {
    /// Whether a session of user `sub` with session id `sid` is ended:
    /// every part the target names must match, and a part the session
    /// lacks does not match.
    #[must_use]
    pub fn matches(&self, sub: Option<&str>, sid: Option<&str>) -> bool {
        let part = |wanted: &Option<String>, have: Option<&str>| match wanted {
            None => true,
            Some(wanted) => have == Some(wanted.as_str()),
        };
        (self.sub.is_some() || self.sid.is_some()) && part(&self.sub, sub) && part(&self.sid, sid)
    }

    /// Whether `session` is ended: its user's `sub` (`user.sub`) and its
    /// session id (`internal.sid`, from the ID token's `sid` at login) are
    /// checked with [`matches`](LogoutTarget::matches).
    ///
    /// ```
    /// use tokenkeeper::logout_token::LogoutTarget;
    /// use tokenkeeper::Session;
    ///
    /// let json = br#"{"user":{"sub":"auth0|alice"},"internal":{"sid":"s-1"},
    ///                "tokenSet":{"accessToken":"at","expiresAt":1}}"#;
    /// let session = Session::from_json(json, &Default::default())?;
    /// let by_sid = LogoutTarget { sub: None, sid: Some("s-1".into()) };
    /// let by_sub = LogoutTarget { sub: Some("auth0|bob".into()), sid: None };
    /// assert!(by_sid.ends(&session));
    /// assert!(!by_sub.ends(&session));
    /// # Ok::<(), tokenkeeper::Error>(())
    /// ```
    #[must_use]
    pub fn ends(&self, session: &Session) -> bool {
        self.matches(session.sub(), session.sid())
    }
}

/// A validated logout token.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutToken {
    target: LogoutTarget,
    iss: String,
    jti: String,
    iat: UnixTime,
    exp: Option<UnixTime>,
    remember_until: UnixTime,
    claims: Map<String, Value>,
}

impl LogoutToken {
    /// The sessions it ends.
    #[must_use]
    pub fn target(&self) -> &LogoutTarget {
        &self.target
    }

    /// The sessions it ends, owned.
    #[must_use]
    pub fn into_target(self) -> LogoutTarget {
        self.target
    }

    /// `iss`.
    #[must_use]
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `jti`.
    #[must_use]
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// `iat`.
    #[must_use]
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// `exp`, when present.
    #[must_use]
    pub fn exp(&self) -> Option<UnixTime> {
        self.exp
    }

    /// Until when its `jti` must be remembered: after that, the token is
    /// refused by its `iat` (or `exp`) anyway.
    #[must_use]
    pub fn remember_until(&self) -> UnixTime {
        self.remember_until
    }

    /// A fixed-size key for its `jti` in a replay store: the hex SHA-256 of
    /// `iss`, a NUL and `jti` (64 characters, whatever the `jti`).
    #[must_use]
    pub fn replay_key(&self) -> String {
        let digest = replay_digest(&self.iss, &self.jti);
        let mut key = String::with_capacity(64);
        for byte in digest {
            key.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            key.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xF)]));
        }
        key
    }

    /// Every claim, as sent.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

fn replay_digest(iss: &str, jti: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(iss.as_bytes());
    hash.update([0u8]);
    hash.update(jti.as_bytes());
    hash.finalize().into()
}

/// Validates back-channel logout tokens for one client of one issuer.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct LogoutTokenValidator<'a> {
    issuer: &'a str,
    client_id: &'a str,
    jwks: &'a Jwks,
    clock_tolerance: Duration,
    iat_window: Duration,
    require_sid: bool,
}

impl<'a> LogoutTokenValidator<'a> {
    /// A validator expecting `iss == issuer` and `client_id` in `aud`,
    /// signatures by a key of `jwks`, with the default window and
    /// tolerance, `sid` not required.
    pub fn new(issuer: &'a str, client_id: &'a str, jwks: &'a Jwks) -> Self {
        LogoutTokenValidator {
            issuer,
            client_id,
            jwks,
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
            iat_window: DEFAULT_IAT_WINDOW,
            require_sid: false,
        }
    }

    /// The clock skew allowed on `iat` and `exp` (default 60 s).
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.clock_tolerance = tolerance;
        self
    }

    /// How old `iat` may be (default 5 minutes), on top of the tolerance.
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.iat_window = window;
        self
    }

    /// Require `sid` (for a client registered with
    /// `backchannel_logout_session_required`).
    pub fn require_sid(mut self, required: bool) -> Self {
        self.require_sid = required;
        self
    }

    /// Validates `token` and records its `jti` in `replay`: every check,
    /// including that the `jti` was not seen before. A refused token is
    /// not recorded.
    ///
    /// # Errors
    /// The [`LogoutTokenError`] of the first failed check.
    pub fn validate_once(
        &self,
        token: &str,
        replay: &mut ReplayCache,
        now: UnixTime,
    ) -> Result<LogoutToken, LogoutTokenError> {
        let validated = self.validate(token, now)?;
        replay.check_and_record(&validated, now)?;
        Ok(validated)
    }

    /// Validates `token`: every check but the replay of its `jti` (the
    /// host checks [`LogoutToken::replay_key`] in its shared store, or
    /// uses [`validate_once`](LogoutTokenValidator::validate_once)).
    ///
    /// # Errors
    /// The [`LogoutTokenError`] of the first failed check.
    pub fn validate(&self, token: &str, now: UnixTime) -> Result<LogoutToken, LogoutTokenError> {
        if token.len() > MAX_LOGOUT_TOKEN_BYTES {
            return Err(LogoutTokenError::Malformed("the token is too long"));
        }
        let header = jws::verify(token, self.jwks)?;
        if let Some(typ) = &header.typ
            && !typ.eq_ignore_ascii_case("logout+jwt")
            && !typ.eq_ignore_ascii_case("application/logout+jwt")
        {
            return Err(LogoutTokenError::InvalidType);
        }
        let claims = jwt::decode_claims(token)
            .map_err(|_| LogoutTokenError::Malformed("the claims are not a JSON object"))?;

        let iss =
            string_claim(&claims, "iss")?.ok_or(LogoutTokenError::Malformed("iss is missing"))?;
        if iss != self.issuer {
            return Err(LogoutTokenError::IssuerMismatch {
                expected: String::from(self.issuer),
                received: String::from(iss),
            });
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => aud == self.client_id,
            Some(Value::Array(auds)) if auds.iter().all(Value::is_string) => {
                auds.iter().any(|a| a.as_str() == Some(self.client_id))
            }
            Some(_) => return Err(LogoutTokenError::Malformed("aud is not a string or array")),
            None => return Err(LogoutTokenError::Malformed("aud is missing")),
        };
        if !audience_ok {
            return Err(LogoutTokenError::AudienceMismatch);
        }
        if string_claim(&claims, "azp")?.is_some_and(|azp| azp != self.client_id) {
            return Err(LogoutTokenError::AzpMismatch);
        }

        let iat =
            time_claim(&claims, "iat")?.ok_or(LogoutTokenError::Malformed("iat is missing"))?;
        let tolerance = self.clock_tolerance;
        if iat > now.saturating_add(tolerance) {
            return Err(LogoutTokenError::IatInFuture { iat });
        }
        // Accepted while now <= iat + window + tolerance.
        let last_accepted = iat
            .saturating_add(self.iat_window)
            .saturating_add(tolerance);
        if now > last_accepted {
            return Err(LogoutTokenError::IatTooOld { iat });
        }
        let exp = time_claim(&claims, "exp")?;
        if let Some(exp) = exp
            && now >= exp.saturating_add(tolerance)
        {
            return Err(LogoutTokenError::Expired { exp });
        }

        let jti = match string_claim(&claims, "jti")? {
            Some(jti) if !jti.is_empty() => String::from(jti),
            _ => return Err(LogoutTokenError::MissingJti),
        };
        match claims.get("events") {
            None => return Err(LogoutTokenError::MissingEvents),
            Some(Value::Object(events)) => {
                if !events
                    .get(BACKCHANNEL_LOGOUT_EVENT)
                    .is_some_and(Value::is_object)
                {
                    return Err(LogoutTokenError::InvalidEvents);
                }
            }
            Some(_) => return Err(LogoutTokenError::InvalidEvents),
        }
        let sub = string_claim(&claims, "sub")?.filter(|s| !s.is_empty());
        let sid = string_claim(&claims, "sid")?.filter(|s| !s.is_empty());
        if sub.is_none() && sid.is_none() {
            return Err(LogoutTokenError::MissingSubAndSid);
        }
        if self.require_sid && sid.is_none() {
            return Err(LogoutTokenError::MissingSid);
        }
        if claims.contains_key("nonce") {
            return Err(LogoutTokenError::NoncePresent);
        }
        let target = LogoutTarget {
            sub: sub.map(String::from),
            sid: sid.map(String::from),
        };
        let iss = String::from(iss);
        Ok(LogoutToken {
            target,
            iss,
            jti,
            iat,
            exp,
            remember_until: last_accepted.saturating_add(Duration::from_secs(1)),
            claims,
        })
    }
}

fn string_claim<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'c str>, LogoutTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(LogoutTokenError::Malformed(match name {
            "iss" => "iss is not a string",
            "azp" => "azp is not a string",
            "jti" => "jti is not a string",
            "sub" => "sub is not a string",
            "sid" => "sid is not a string",
            _ => "a claim is not a string",
        })),
    }
}

/// A NumericDate claim: a non-negative number of seconds (fractions
/// dropped, negatives read as the epoch).
fn time_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<UnixTime>, LogoutTokenError> {
    let problem = if name == "iat" {
        "iat is not a number"
    } else {
        "exp is not a number"
    };
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                return Ok(Some(UnixTime::from_secs(secs)));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() => Ok(Some(UnixTime::from_secs(saturating_secs(f)))),
                _ => Err(LogoutTokenError::Malformed(problem)),
            }
        }
        Some(_) => Err(LogoutTokenError::Malformed(problem)),
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn saturating_secs(f: f64) -> u64 {
    // `as` saturates: negatives become 0, huge values `u64::MAX`.
    f as u64
}

/// The `jti`s of accepted logout tokens, each kept until its token could
/// no longer be accepted anyway ([`LogoutToken::remember_until`]), for one
/// process. Bounded: when full, expired entries go first, then the entry
/// that expires soonest (a replayed logout token only ends the same
/// sessions again, while refusing a fresh one would leave sessions alive).
/// Entries are SHA-256 digests of `iss` and `jti`, whatever their length.
#[derive(Clone)]
pub struct ReplayCache {
    entries: BTreeMap<[u8; 32], UnixTime>,
    capacity: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new()
    }
}

impl ReplayCache {
    /// An empty cache for [`DEFAULT_REPLAY_CAPACITY`] `jti`s.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_REPLAY_CAPACITY)
    }

    /// An empty cache for at most `capacity` `jti`s (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        ReplayCache {
            entries: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Refuses a token whose `jti` was recorded and is still remembered at
    /// `now`; otherwise records it until [`LogoutToken::remember_until`].
    ///
    /// # Errors
    /// [`LogoutTokenError::Replayed`].
    pub fn check_and_record(
        &mut self,
        token: &LogoutToken,
        now: UnixTime,
    ) -> Result<(), LogoutTokenError> {
        let key = replay_digest(&token.iss, &token.jti);
        if self.entries.get(&key).is_some_and(|&until| now < until) {
            return Err(LogoutTokenError::Replayed);
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.handle_timeout(now);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(key, _)| *key)
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries.insert(key, token.remember_until);
        Ok(())
    }

    /// The number of `jti`s remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no `jti` is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the next entry can be forgotten.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.entries.values().min().copied()
    }

    /// Forgets the entries no longer needed at `now`.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.entries.retain(|_, until| now < *until);
    }
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayCache")
            .field("len", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}
