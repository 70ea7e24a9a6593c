//! ID token validation (OIDC Core §3.1.3.7 at login, §12.2 on refresh).
//!
//! An ID token received straight from the token endpoint over TLS need not
//! have its signature checked (§3.1.3.7 step 6), so the claims are read with
//! [`crate::jwt::decode_claims`] and validated. A
//! [`Jwks`] can be attached to also verify `RS256` and `ES256` signatures
//! (`RS256` and `ES256` by the crate's JWS check; keys cached by [`JwksCache`]).
//!
//! The [`TokenManager`](crate::TokenManager) does check them, by default:
//! whenever its configuration knows the issuer's `jwks_uri` (discovery's,
//! through `ConfigBuilder::metadata`), every ID token of a login or a
//! refresh has its signature verified against the manager's own
//! [`JwksCache`] before its claims are, the keys fetched by the host on
//! request (`Completion::Resend`, see `manager::signature`).
//!
//! # Call order
//!
//! ```text
//! let validator = IdTokenValidator::new(issuer, client_id)
//!     [.clock_tolerance(d)] [.jwks(&jwks)];
//! at login:    validator.validate_login(&id_token, transaction.nonce().secret(), now)
//! on refresh:  validator.validate_refresh(&id_token, previous_claims.sub(), now)
//!   ─► IdTokenClaims (sub, iss, aud, exp, iat, nonce, azp, sid, email, name, all claims)
//! ```
//!
//! Checks, in order: the token decodes to a claims object with `iss`,
//! `sub`, `aud`, `exp` and `iat` of the right types (the signature first,
//! when a JWKS is attached); `iss` equals the issuer; `aud` contains the
//! client id; with several audiences `azp` is present, and whenever present
//! equals the client id; `exp` is later than `now − tolerance`; `iat` and
//! `nbf` are not later than `now + tolerance`; at login, `nonce` equals the
//! transaction's; on refresh, `sub` is unchanged.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use serde_json::{Map, Value};

// The key sets ID and logout tokens are checked against live here: the
// `jwks` module itself is private.
pub use crate::jwks::{
    DEFAULT_JWKS_TTL, DEFAULT_REFETCH_INTERVAL, Jwks, JwksCache, JwksError, KeyLookup,
    MAX_JWKS_KEYS, MAX_RSA_BITS, MIN_RSA_BITS,
};
use crate::jws::{self, JwsError};
use crate::jwt::{self, JwtError};
use crate::login::constant_time_eq;
use crate::secret::IdToken;
use crate::time::UnixTime;

/// The default clock tolerance: 60 s.
pub const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

pub use crate::error::IdTokenError;

impl From<JwtError> for IdTokenError {
    fn from(error: JwtError) -> Self {
        IdTokenError::Malformed(match error {
            JwtError::NotCompact => "not a compact JWT",
            JwtError::Base64 => "a part is not base64url",
            _ => "the claims are not a JSON object",
        })
    }
}

/// The claims of a validated ID token: the user's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct IdTokenClaims {
    sub: String,
    iss: String,
    aud: Vec<String>,
    exp: UnixTime,
    iat: UnixTime,
    claims: Map<String, Value>,
}

impl IdTokenClaims {
    /// Reads and type-checks the claims of `id_token` **without validating
    /// them** (no issuer, audience, time or nonce checks): for a token read
    /// back from a trusted session store.
    ///
    /// # Errors
    /// [`IdTokenError::Malformed`] or [`IdTokenError::MissingSub`].
    pub fn decode_unvalidated(id_token: &IdToken) -> Result<Self, IdTokenError> {
        Self::from_claims(jwt::decode_claims(id_token.secret())?)
    }

    fn from_claims(claims: Map<String, Value>) -> Result<Self, IdTokenError> {
        let iss = match claims.get("iss") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(IdTokenError::Malformed("iss is not a string")),
            None => return Err(IdTokenError::Malformed("iss is missing")),
        };
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                return Err(IdTokenError::MissingSub);
            }
            Some(_) => return Err(IdTokenError::Malformed("sub is not a string")),
        };
        let aud = match claims.get("aud") {
            Some(Value::String(s)) => alloc::vec![s.clone()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .ok_or(IdTokenError::Malformed("aud holds a non-string"))?,
            Some(_) => {
                return Err(IdTokenError::Malformed(
                    "aud is not a string or a non-empty array",
                ));
            }
            None => return Err(IdTokenError::Malformed("aud is missing")),
        };
        let exp = required_time(&claims, "exp", "exp is missing or not a number")?;
        let iat = required_time(&claims, "iat", "iat is missing or not a number")?;
        for (name, problem) in [
            ("nonce", "nonce is not a string"),
            ("azp", "azp is not a string"),
            ("sid", "sid is not a string"),
        ] {
            if claims.get(name).is_some_and(|v| !v.is_string()) {
                return Err(IdTokenError::Malformed(problem));
            }
        }
        for (name, problem) in [
            ("nbf", "nbf is not a number"),
            ("auth_time", "auth_time is not a number"),
        ] {
            if claims.get(name).is_some_and(|v| numeric_date(v).is_none()) {
                return Err(IdTokenError::Malformed(problem));
            }
        }
        Ok(IdTokenClaims {
            sub,
            iss,
            aud,
            exp,
            iat,
            claims,
        })
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// `sub`: the user's identifier at the issuer.
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `iss`.
    #[must_use]
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `aud`, as a list even when sent as a string.
    #[must_use]
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `exp`.
    #[must_use]
    pub fn exp(&self) -> UnixTime {
        self.exp
    }

    /// `iat`.
    #[must_use]
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// `nonce`.
    #[must_use]
    pub fn nonce(&self) -> Option<&str> {
        self.text("nonce")
    }

    /// `azp`.
    #[must_use]
    pub fn azp(&self) -> Option<&str> {
        self.text("azp")
    }

    /// `sid`: the session id, for back-channel logout.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.text("sid")
    }

    /// `email`, when a string.
    #[must_use]
    pub fn email(&self) -> Option<&str> {
        self.text("email")
    }

    /// `name`, when a string.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.text("name")
    }

    /// `auth_time`.
    #[must_use]
    pub fn auth_time(&self) -> Option<UnixTime> {
        self.claims.get("auth_time").and_then(numeric_date)
    }

    /// Every claim, as sent (the user's profile).
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Every claim, owned.
    #[must_use]
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }
}

/// A JSON NumericDate: a non-negative number of seconds (fractions
/// dropped); negative values read as the epoch.
fn numeric_date(value: &Value) -> Option<UnixTime> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(secs) = n.as_u64() {
        return Some(UnixTime::from_secs(secs));
    }
    let f = n.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    Some(UnixTime::from_secs(saturating_secs(f)))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn saturating_secs(f: f64) -> u64 {
    // `as` saturates: negatives become 0, huge values `u64::MAX`.
    f as u64
}

fn required_time(
    claims: &Map<String, Value>,
    name: &str,
    problem: &'static str,
) -> Result<UnixTime, IdTokenError> {
    claims
        .get(name)
        .and_then(numeric_date)
        .ok_or(IdTokenError::Malformed(problem))
}

/// Validates ID tokens for one client of one issuer.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct IdTokenValidator<'a> {
    issuer: &'a str,
    client_id: &'a str,
    clock_tolerance: Duration,
    jwks: Option<&'a Jwks>,
}

impl<'a> IdTokenValidator<'a> {
    /// A validator expecting `iss == issuer` and `client_id` in `aud`, with
    /// the default clock tolerance and no signature check.
    pub fn new(issuer: &'a str, client_id: &'a str) -> Self {
        IdTokenValidator {
            issuer,
            client_id,
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
            jwks: None,
        }
    }

    /// The clock skew allowed on `exp`, `iat` and `nbf` (default 60 s).
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.clock_tolerance = tolerance;
        self
    }

    /// Also verify the signature (`RS256` or `ES256`) with a key of `jwks`,
    /// before any claim is read (see [`crate::jws::verify`]).
    pub fn jwks(mut self, jwks: &'a Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Validates the ID token of a login: every check, with `nonce` equal
    /// to `expected_nonce` (the login transaction's).
    ///
    /// # Errors
    /// The [`IdTokenError`] of the first failed check.
    pub fn validate_login(
        &self,
        id_token: &IdToken,
        expected_nonce: &str,
        now: UnixTime,
    ) -> Result<IdTokenClaims, IdTokenError> {
        self.validate(id_token, Some(expected_nonce), now)
    }

    /// Validates an ID token from a refresh (OIDC Core §12.2): every check
    /// but the nonce, and `sub` must equal `previous_sub`.
    ///
    /// # Errors
    /// The [`IdTokenError`] of the first failed check;
    /// [`IdTokenError::SubjectMismatch`] for another user.
    pub fn validate_refresh(
        &self,
        id_token: &IdToken,
        previous_sub: &str,
        now: UnixTime,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let claims = self.validate(id_token, None, now)?;
        if claims.sub != previous_sub {
            return Err(IdTokenError::SubjectMismatch);
        }
        Ok(claims)
    }

    /// Validates an ID token; the nonce is checked only when
    /// `expected_nonce` is given.
    ///
    /// # Errors
    /// The [`IdTokenError`] of the first failed check.
    pub fn validate(
        &self,
        id_token: &IdToken,
        expected_nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let token = id_token.secret();
        if let Some(jwks) = self.jwks {
            jws::verify(token, jwks)?;
        }
        let claims = IdTokenClaims::from_claims(jwt::decode_claims(token)?)?;
        if claims.iss != self.issuer {
            return Err(IdTokenError::IssuerMismatch {
                expected: String::from(self.issuer),
                received: claims.iss,
            });
        }
        if !claims.aud.iter().any(|a| a == self.client_id) {
            return Err(IdTokenError::AudienceMismatch);
        }
        match claims.azp() {
            Some(azp) if azp != self.client_id => return Err(IdTokenError::AzpMismatch),
            None if claims.aud.len() > 1 => return Err(IdTokenError::AzpMismatch),
            _ => {}
        }
        let tolerance = self.clock_tolerance;
        if now >= claims.exp.saturating_add(tolerance) {
            return Err(IdTokenError::Expired { exp: claims.exp });
        }
        let latest = now.saturating_add(tolerance);
        if claims.iat > latest {
            return Err(IdTokenError::IatInFuture { iat: claims.iat });
        }
        if let Some(nbf) = claims.claims.get("nbf").and_then(numeric_date)
            && nbf > latest
        {
            return Err(IdTokenError::NotYetValid { nbf });
        }
        if let Some(expected) = expected_nonce {
            match claims.nonce() {
                Some(nonce) if constant_time_eq(nonce, expected) => {}
                _ => return Err(IdTokenError::NonceMismatch),
            }
        }
        Ok(claims)
    }
}

impl From<JwsError> for IdTokenError {
    /// Each signature refusal keeps its code.
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::Malformed(reason) => IdTokenError::Malformed(reason),
            JwsError::AlgNone => IdTokenError::AlgNone,
            JwsError::HmacAlgorithm(alg) => IdTokenError::HmacAlgorithm(alg),
            JwsError::UnsupportedAlgorithm(alg) => IdTokenError::UnsupportedAlgorithm(alg),
            JwsError::KeyNotFound => IdTokenError::KeyNotFound,
            JwsError::KeyAlgorithmMismatch => IdTokenError::KeyAlgorithmMismatch,
            JwsError::KeyUnusable(reason) => IdTokenError::KeyUnusable(reason),
            _ => IdTokenError::InvalidSignature,
        }
    }
}

impl From<crate::jwks::JwksError> for IdTokenError {
    /// Becomes [`IdTokenError::InvalidJwks`] (code `invalid_jwks`).
    fn from(error: crate::jwks::JwksError) -> Self {
        IdTokenError::InvalidJwks(match error {
            crate::jwks::JwksError::HttpStatus { .. } => "the response status is not 2xx",
            crate::jwks::JwksError::Invalid(reason) => reason,
            _ => "the jwks_uri is missing or invalid",
        })
    }
}

/// Verifies the `ES256` signature of a compact JWS against `jwks` (any
/// other `alg` is refused): [`crate::jws::verify`] restricted to `ES256`.
///
/// # Errors
/// [`IdTokenError::Malformed`], [`IdTokenError::UnsupportedAlgorithm`] (and
/// the other algorithm refusals), [`IdTokenError::KeyNotFound`] or
/// [`IdTokenError::InvalidSignature`].
pub fn verify_es256(token: &str, jwks: &Jwks) -> Result<(), IdTokenError> {
    let header = jws::decode_header(token)?;
    if header.alg != jws::Algorithm::Es256 {
        return Err(IdTokenError::UnsupportedAlgorithm(header.alg.name().into()));
    }
    jws::verify(token, jwks)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::http::HttpResponse;
    use crate::limits::Limits;
    use alloc::format;
    use alloc::string::ToString;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};

    pub(crate) const ISSUER: &str = "https://as.example/";
    pub(crate) const CLIENT: &str = "client-1";
    pub(crate) const NOW: u64 = 1_700_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An unsigned-looking token with these claims.
    pub(crate) fn token(claims: &Value) -> IdToken {
        IdToken::new(format!(
            "{}.{}.sig",
            b64(br#"{"alg":"RS256"}"#),
            b64(claims.to_string().as_bytes())
        ))
    }

    pub(crate) fn good_claims() -> Value {
        serde_json::json!({
            "iss": ISSUER, "sub": "auth0|alice", "aud": CLIENT,
            "exp": NOW + 3600, "iat": NOW, "nonce": "n-0S6_WzA2Mj",
            "sid": "sess-1", "email": "alice@example.com", "name": "Alice",
            "https://example.com/roles": ["admin"]
        })
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> IdToken {
        let mut claims = good_claims();
        change(claims.as_object_mut().unwrap());
        token(&claims)
    }

    fn validator() -> IdTokenValidator<'static> {
        IdTokenValidator::new(ISSUER, CLIENT)
    }

    fn login(id_token: &IdToken) -> Result<IdTokenClaims, IdTokenError> {
        validator().validate_login(id_token, "n-0S6_WzA2Mj", UnixTime::from_secs(NOW))
    }

    fn code(id_token: &IdToken) -> &'static str {
        login(id_token).unwrap_err().code()
    }

    #[test]
    fn valid_login_token_exposes_claims() {
        let claims = login(&token(&good_claims())).unwrap();
        assert_eq!(claims.sub(), "auth0|alice");
        assert_eq!(claims.iss(), ISSUER);
        assert_eq!(claims.aud(), [CLIENT]);
        assert_eq!(claims.exp(), UnixTime::from_secs(NOW + 3600));
        assert_eq!(claims.iat(), UnixTime::from_secs(NOW));
        assert_eq!(claims.nonce(), Some("n-0S6_WzA2Mj"));
        assert_eq!(claims.sid(), Some("sess-1"));
        assert_eq!(claims.email(), Some("alice@example.com"));
        assert_eq!(claims.name(), Some("Alice"));
        assert_eq!(claims.azp(), None);
        assert_eq!(claims.claims()["https://example.com/roles"][0], "admin");
        assert_eq!(claims.clone().into_claims().len(), 10);
    }

    #[test]
    fn each_failure_has_its_code() {
        assert_eq!(code(&IdToken::new("not-a-jwt")), "id_token_malformed");
        assert_eq!(code(&with(|c| drop(c.remove("exp")))), "id_token_malformed");
        assert_eq!(
            code(&with(|c| drop(c.insert("exp".into(), "soon".into())))),
            "id_token_malformed"
        );
        assert_eq!(code(&with(|c| drop(c.remove("iat")))), "id_token_malformed");
        assert_eq!(
            code(&with(|c| drop(c.insert("aud".into(), 5.into())))),
            "id_token_malformed"
        );
        assert_eq!(
            code(&with(|c| drop(
                c.insert("aud".into(), serde_json::json!([]))
            ))),
            "id_token_malformed"
        );
        assert_eq!(
            code(&with(|c| drop(c.insert("nonce".into(), 5.into())))),
            "id_token_malformed"
        );
        assert_eq!(code(&with(|c| drop(c.remove("iss")))), "id_token_malformed");
        assert_eq!(code(&with(|c| drop(c.remove("sub")))), "missing_sub");
        assert_eq!(
            code(&with(|c| drop(c.insert("sub".into(), "".into())))),
            "missing_sub"
        );
        assert_eq!(
            code(&with(|c| drop(
                c.insert("iss".into(), "https://as.example".into())
            ))),
            "issuer_mismatch"
        );
        assert_eq!(
            code(&with(|c| drop(c.insert("aud".into(), "other".into())))),
            "audience_mismatch"
        );
        assert_eq!(
            code(&with(|c| drop(
                c.insert("aud".into(), serde_json::json!(["other", "api"]))
            ))),
            "audience_mismatch"
        );
        // Several audiences: azp required, and equal to the client id.
        assert_eq!(
            code(&with(|c| drop(
                c.insert("aud".into(), serde_json::json!([CLIENT, "api"]))
            ))),
            "azp_mismatch"
        );
        assert_eq!(
            code(&with(|c| {
                c.insert("aud".into(), serde_json::json!([CLIENT, "api"]));
                c.insert("azp".into(), "api".into());
            })),
            "azp_mismatch"
        );
        assert!(
            login(&with(|c| {
                c.insert("aud".into(), serde_json::json!([CLIENT, "api"]));
                c.insert("azp".into(), CLIENT.into());
            }))
            .is_ok()
        );
        // A single audience with a foreign azp is refused too.
        assert_eq!(
            code(&with(|c| drop(c.insert("azp".into(), "x".into())))),
            "azp_mismatch"
        );
        assert_eq!(
            code(&with(|c| drop(c.insert("nonce".into(), "other".into())))),
            "nonce_mismatch"
        );
        assert_eq!(code(&with(|c| drop(c.remove("nonce")))), "nonce_mismatch");
    }

    #[test]
    fn time_checks_with_tolerance() {
        // Expired 59 s ago: inside the 60 s tolerance.
        assert!(login(&with(|c| drop(c.insert("exp".into(), (NOW - 59).into())))).is_ok());
        let e = login(&with(|c| drop(c.insert("exp".into(), (NOW - 60).into())))).unwrap_err();
        assert_eq!(
            e,
            IdTokenError::Expired {
                exp: UnixTime::from_secs(NOW - 60)
            }
        );
        assert_eq!(e.code(), "id_token_expired");
        // Negative and fractional times.
        assert_eq!(
            code(&with(|c| drop(c.insert("exp".into(), (-5).into())))),
            "id_token_expired"
        );
        assert!(
            login(&with(|c| drop(
                c.insert("exp".into(), serde_json::json!(1_700_003_600.5))
            )))
            .is_ok()
        );
        // iat in the future.
        assert!(login(&with(|c| drop(c.insert("iat".into(), (NOW + 60).into())))).is_ok());
        assert_eq!(
            code(&with(|c| drop(c.insert("iat".into(), (NOW + 61).into())))),
            "iat_in_future"
        );
        assert_eq!(
            code(&with(|c| drop(c.insert("nbf".into(), (NOW + 61).into())))),
            "id_token_not_yet_valid"
        );
        // A tighter tolerance.
        let strict = validator().clock_tolerance(Duration::ZERO);
        let t = with(|c| {
            c.insert("exp".into(), NOW.into());
            c.insert("iat".into(), (NOW - 10).into());
        });
        assert_eq!(
            strict
                .validate(&t, None, UnixTime::from_secs(NOW))
                .unwrap_err()
                .code(),
            "id_token_expired"
        );
        assert!(
            strict
                .validate(&t, None, UnixTime::from_secs(NOW - 1))
                .is_ok()
        );
    }

    #[test]
    fn refresh_keeps_the_subject() {
        let v = validator();
        let now = UnixTime::from_secs(NOW);
        // No nonce needed on refresh.
        let t = with(|c| drop(c.remove("nonce")));
        assert!(v.validate_refresh(&t, "auth0|alice", now).is_ok());
        let e = v.validate_refresh(&t, "auth0|bob", now).unwrap_err();
        assert_eq!(e.code(), "subject_mismatch");
        assert_eq!(crate::error::Error::from(e).code(), "subject_mismatch");
        assert_eq!(
            crate::error::Error::from(IdTokenError::NonceMismatch).code(),
            "nonce_mismatch"
        );
    }

    #[test]
    fn decode_unvalidated_reads_structure_only() {
        let t = with(|c| drop(c.insert("exp".into(), 1.into())));
        assert_eq!(
            IdTokenClaims::decode_unvalidated(&t).unwrap().sub(),
            "auth0|alice"
        );
        assert_eq!(
            IdTokenClaims::decode_unvalidated(&IdToken::new("a.b"))
                .unwrap_err()
                .code(),
            "id_token_malformed"
        );
    }

    #[test]
    fn errors_do_not_leak_the_token() {
        let t = with(|c| drop(c.insert("nonce".into(), "other".into())));
        let e = login(&t).unwrap_err();
        assert!(!format!("{e} {e:?}").contains(t.secret()));
    }

    // ---- ES256 ----

    fn signing_key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn jwk(key: &SigningKey, kid: Option<&str>) -> Value {
        let point = key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65]),
        });
        if let Some(kid) = kid {
            jwk["kid"] = kid.into();
        }
        jwk
    }

    fn signed(key: &SigningKey, header: &Value, claims: &Value) -> IdToken {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature: Signature = key.sign(input.as_bytes());
        IdToken::new(format!("{input}.{}", b64(&signature.to_bytes())))
    }

    fn jwks(keys: &[Value]) -> Jwks {
        let doc = serde_json::json!({ "keys": keys }).to_string();
        Jwks::from_json(doc.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn es256_signatures() {
        let key = signing_key();
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let set = jwks(&[
            jwk(&other, Some("k0")),
            jwk(&key, Some("k1")),
            serde_json::json!({"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}),
        ]);
        assert_eq!(set.len(), 2);
        let header = serde_json::json!({"alg":"ES256","kid":"k1","typ":"JWT"});
        let t = signed(&key, &header, &good_claims());
        let v = validator().jwks(&set);
        let now = UnixTime::from_secs(NOW);
        assert!(v.validate_login(&t, "n-0S6_WzA2Mj", now).is_ok());

        // The other key's kid: the signature does not verify.
        let wrong_kid = signed(
            &key,
            &serde_json::json!({"alg":"ES256","kid":"k0"}),
            &good_claims(),
        );
        assert_eq!(
            v.validate(&wrong_kid, None, now).unwrap_err().code(),
            "invalid_signature"
        );
        // An unknown kid.
        let unknown = signed(
            &key,
            &serde_json::json!({"alg":"ES256","kid":"zz"}),
            &good_claims(),
        );
        assert_eq!(
            v.validate(&unknown, None, now).unwrap_err().code(),
            "jwk_not_found"
        );
        // No kid with two keys is ambiguous; with one key it is fine.
        let no_kid = signed(&key, &serde_json::json!({"alg":"ES256"}), &good_claims());
        assert_eq!(
            v.validate(&no_kid, None, now).unwrap_err().code(),
            "jwk_not_found"
        );
        let single = jwks(&[jwk(&key, None)]);
        assert!(
            validator()
                .jwks(&single)
                .validate(&no_kid, None, now)
                .is_ok()
        );
        // A tampered payload.
        let mut parts: Vec<&str> = t.secret().split('.').collect();
        let evil = b64(good_claims()
            .to_string()
            .replace("alice", "mallory")
            .as_bytes());
        parts[1] = &evil;
        let tampered = IdToken::new(parts.join("."));
        assert_eq!(
            v.validate(&tampered, None, now).unwrap_err().code(),
            "invalid_signature"
        );
        // RS256 without a kid, and no RSA key in the set.
        assert_eq!(
            v.validate(&token(&good_claims()), None, now)
                .unwrap_err()
                .code(),
            "jwk_not_found"
        );
        let none = signed(
            &key,
            &serde_json::json!({"alg":"none","kid":"k1"}),
            &good_claims(),
        );
        assert_eq!(
            v.validate(&none, None, now).unwrap_err(),
            IdTokenError::AlgNone
        );
        // A garbage signature.
        let garbage = IdToken::new(format!(
            "{}.{}.AAAA",
            t.secret().split('.').next().unwrap(),
            parts[1]
        ));
        assert_eq!(
            v.validate(&garbage, None, now).unwrap_err().code(),
            "invalid_signature"
        );
    }

    #[test]
    fn jwks_parsing() {
        let limits = Limits::default();
        let code = |s: &str| Jwks::from_json(s.as_bytes(), &limits).unwrap_err().code();
        assert_eq!(code("nope"), "invalid_jwks");
        assert_eq!(code("[]"), "invalid_jwks");
        assert_eq!(code(r#"{"keys":{}}"#), "invalid_jwks");
        // Unusable keys are skipped, not fatal.
        let key = signing_key();
        let mut bad_point = jwk(&key, Some("bad"));
        bad_point["y"] = b64(&[0u8; 32]).into();
        let mut enc = jwk(&key, Some("enc"));
        enc["use"] = "enc".into();
        let mut short = jwk(&key, Some("short"));
        short["x"] = "AAAA".into();
        assert!(jwks(&[bad_point, enc, short, serde_json::json!(5)]).is_empty());
        let response = HttpResponse::new(
            200,
            serde_json::json!({"keys":[jwk(&key, None)]}).to_string(),
        );
        assert_eq!(Jwks::parse(&response, &limits).unwrap().len(), 1);
        assert_eq!(
            Jwks::parse(&HttpResponse::new(404, "{}"), &limits)
                .unwrap_err()
                .code(),
            "jwks_http_error"
        );
    }
}
