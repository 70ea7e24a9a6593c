//! JWS signature verification by JWKS: `RS256` and `ES256`, nothing else.
//!
//! Used for ID tokens ([`IdTokenValidator::jwks`]) and back-channel logout
//! tokens ([`crate::logout_token`]).
//!
//! # Call order
//!
//! ```text
//! keys: a Jwks, parsed by Jwks::from_json, or from a JwksCache (see crate::jwks)
//! verify(token, &jwks) ─► Ok(JwsHeader { alg, kid, typ })   the signature holds
//!                      └► Err(JwsError)                      with a stable code()
//! ```
//!
//! Checks, in order:
//!
//! 1. The token is a compact JWS (three base64url parts) whose protected
//!    header is a JSON object; a `crit` header is refused (no extension is
//!    understood), `jku`, `x5u`, `jwk` and `x5c` are ignored: keys come
//!    from the JWKS only, never from the token.
//! 2. `alg`: `none` (in any case) is refused with `alg_none_refused`; every
//!    HMAC algorithm (`HS256`, `HS384`, `HS512`) with `hmac_alg_refused` —
//!    the classic attack signs `HS256` with the RSA public key as the
//!    secret; anything but `RS256` and `ES256` with `unsupported_algorithm`.
//! 3. The key: with a `kid`, the JWKS key of that `kid` whose type fits
//!    the algorithm (`jwk_not_found` when no key has the `kid`,
//!    `jwk_alg_mismatch` when its keys are of another type or name another
//!    `alg`, `jwk_unusable` when the key was refused at parsing: RSA below
//!    2048 bits, `use` other than `sig`, …); without a `kid`, the single
//!    key of the algorithm's type, else `jwk_not_found`.
//! 4. The algorithm is pinned to the key: `RS256` only with a `kty` `RSA`
//!    key, `ES256` only with an `EC` `P-256` key, and the JWK's own `alg`,
//!    when present, must be the header's.
//! 5. The signature: RSASSA-PKCS1-v1_5 with SHA-256 (RustCrypto `rsa`), or
//!    ECDSA P-256 with SHA-256 in its 64-byte JWS form (`p256`); else
//!    `invalid_signature`.
//!
//! ```
//! use tokenkeeper::id_token::Jwks;
//! use tokenkeeper::__private::jws;
//! use tokenkeeper::Limits;
//!
//! let jwks = Jwks::from_json(br#"{"keys":[]}"#, &Limits::default())?;
//! // {"alg":"none"}.{"sub":"x"}.
//! let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
//! assert_eq!(jws::verify(token, &jwks).unwrap_err().code(), "alg_none_refused");
//! # Ok::<(), tokenkeeper::id_token::JwksError>(())
//! ```
//!
//! [`IdTokenValidator::jwks`]: crate::id_token::IdTokenValidator::jwks

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::jwks::Jwks;
use crate::limits::json_depth_exceeds;

/// The longest algorithm name kept in an error (longer ones are cut).
const MAX_ALG_IN_ERROR: usize = 32;

/// The signature algorithms verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), keys of 2048 bits
    /// or more.
    Rs256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
}

impl Algorithm {
    /// The JWA name: `RS256` or `ES256`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Not a compact JWS, or its header is not a JSON object with a string
    /// `alg` (and a string `kid` and `typ`, when present), or it has a
    /// `crit` header.
    /// Code `jws_malformed`.
    #[error("the JWS is malformed: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`: an unsigned token. Code `alg_none_refused`.
    #[error("the JWS is unsigned (alg none)")]
    AlgNone,
    /// `alg` is an HMAC algorithm (`HS256`, …): a shared-secret signature,
    /// never accepted for tokens verified by public keys. Code
    /// `hmac_alg_refused`.
    #[error("the JWS algorithm {0:?} is an HMAC algorithm, refused")]
    HmacAlgorithm(String),
    /// `alg` is neither `RS256` nor `ES256`. Code `unsupported_algorithm`.
    #[error("the JWS algorithm {0:?} is not supported (RS256 and ES256 only)")]
    UnsupportedAlgorithm(String),
    /// No key of the JWKS has the token's `kid`, or the token has no `kid`
    /// and the JWKS has not exactly one key of the algorithm's type. Code
    /// `jwk_not_found`.
    #[error("no key of the JWKS matches the token")]
    KeyNotFound,
    /// The keys with the token's `kid` are of another type than the
    /// algorithm needs, or their JWK `alg` names another algorithm. Code
    /// `jwk_alg_mismatch`.
    #[error("the key with the token's kid is not a key for its algorithm")]
    KeyAlgorithmMismatch,
    /// The token's `kid` names a key the JWKS holds but that was refused
    /// when parsed (the reason given). Code `jwk_unusable`.
    #[error("the key with the token's kid is unusable: {0}")]
    KeyUnusable(&'static str),
    /// The signature does not verify. Code `invalid_signature`.
    #[error("the JWS signature is invalid")]
    InvalidSignature,
}

impl JwsError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            JwsError::Malformed(_) => "jws_malformed",
            JwsError::AlgNone => "alg_none_refused",
            JwsError::HmacAlgorithm(_) => "hmac_alg_refused",
            JwsError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            JwsError::KeyNotFound => "jwk_not_found",
            JwsError::KeyAlgorithmMismatch => "jwk_alg_mismatch",
            JwsError::KeyUnusable(_) => "jwk_unusable",
            JwsError::InvalidSignature => "invalid_signature",
        }
    }
}

/// The protected header of a JWS whose algorithm is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsHeader {
    /// `alg`.
    pub alg: Algorithm,
    /// `kid`, when present.
    pub kid: Option<String>,
    /// `typ`, when present.
    pub typ: Option<String>,
}

/// The three parts of a compact JWS.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, JwsError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => Err(JwsError::Malformed("not a compact JWS")),
    }
}

fn alg_for_error(alg: &str) -> String {
    alg.chars().take(MAX_ALG_IN_ERROR).collect()
}

/// Reads the protected header of `token` and checks its algorithm, without
/// looking at any key: refuses `alg` `none`, HMAC and every algorithm but
/// `RS256` and `ES256`, a `crit` header and a non-string `kid` or `typ`.
///
/// # Errors
/// [`JwsError::Malformed`], [`JwsError::AlgNone`],
/// [`JwsError::HmacAlgorithm`] or [`JwsError::UnsupportedAlgorithm`].
pub fn decode_header(token: &str) -> Result<JwsHeader, JwsError> {
    let parts = split(token)?;
    header_of(parts.header).map(|(header, _)| header)
}

fn header_of(encoded: &str) -> Result<(JwsHeader, Map<String, Value>), JwsError> {
    let bytes: Vec<u8> = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| JwsError::Malformed("the header is not base64url"))?;
    if json_depth_exceeds(&bytes, 8) {
        return Err(JwsError::Malformed("the header is not a JSON object"));
    }
    let Ok(Value::Object(map)) = crate::limits::from_json_slice::<Value>(&bytes) else {
        return Err(JwsError::Malformed("the header is not a JSON object"));
    };
    let alg = match map.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(JwsError::Malformed("alg is not a string")),
        None => return Err(JwsError::Malformed("the header has no alg")),
    };
    let alg = if alg.eq_ignore_ascii_case("none") {
        return Err(JwsError::AlgNone);
    } else if alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        return Err(JwsError::HmacAlgorithm(alg_for_error(alg)));
    } else if alg == "RS256" {
        Algorithm::Rs256
    } else if alg == "ES256" {
        Algorithm::Es256
    } else {
        return Err(JwsError::UnsupportedAlgorithm(alg_for_error(alg)));
    };
    if map.contains_key("crit") {
        return Err(JwsError::Malformed("a crit header is not understood"));
    }
    let kid = match map.get("kid") {
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwsError::Malformed("kid is not a string")),
        None => None,
    };
    let typ = match map.get("typ") {
        Some(Value::String(typ)) => Some(typ.to_string()),
        Some(_) => return Err(JwsError::Malformed("typ is not a string")),
        None => None,
    };
    Ok((JwsHeader { alg, kid, typ }, map))
}

/// Verifies the signature of the compact JWS `token` with a key of `jwks`
/// (the checks are listed in this module's source documentation) and returns its
/// header. The payload is not read.
///
/// # Errors
/// A [`JwsError`] with its own code for each refusal.
pub fn verify(token: &str, jwks: &Jwks) -> Result<JwsHeader, JwsError> {
    let parts = split(token)?;
    let (header, _) = header_of(parts.header)?;
    let key = jwks.select(header.alg, header.kid.as_deref())?;
    let signature: Vec<u8> = URL_SAFE_NO_PAD
        .decode(parts.signature)
        .map_err(|_| JwsError::InvalidSignature)?;
    let signing_input = &token[..parts.header.len() + 1 + parts.payload.len()];
    if key.verify(signing_input.as_bytes(), &signature) {
        Ok(header)
    } else {
        Err(JwsError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn header(json: &str) -> Result<JwsHeader, JwsError> {
        decode_header(&format!("{}.e30.", b64(json)))
    }

    #[test]
    fn algorithms() {
        let code = |json: &str| header(json).unwrap_err().code();
        assert_eq!(code(r#"{"alg":"none"}"#), "alg_none_refused");
        assert_eq!(code(r#"{"alg":"NoNe"}"#), "alg_none_refused");
        assert_eq!(code(r#"{"alg":"HS256"}"#), "hmac_alg_refused");
        assert_eq!(code(r#"{"alg":"hs512"}"#), "hmac_alg_refused");
        assert_eq!(code(r#"{"alg":"RS512"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"PS256"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"rs256"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"EdDSA"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":""}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"H"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":"é"}"#), "unsupported_algorithm");
        assert_eq!(code(r#"{"alg":5}"#), "jws_malformed");
        assert_eq!(code(r#"{}"#), "jws_malformed");
        assert_eq!(code(r#"[]"#), "jws_malformed");
        assert_eq!(code(r#"{"alg":"RS256","crit":["b64"]}"#), "jws_malformed");
        assert_eq!(code(r#"{"alg":"RS256","kid":1}"#), "jws_malformed");
        assert_eq!(code(r#"{"alg":"RS256","typ":7}"#), "jws_malformed");
        let long = format!(r#"{{"alg":"{}"}}"#, "X".repeat(1000));
        match header(&long).unwrap_err() {
            JwsError::UnsupportedAlgorithm(alg) => assert_eq!(alg.len(), MAX_ALG_IN_ERROR),
            other => panic!("{other:?}"),
        }
        let ok =
            header(r#"{"alg":"RS256","kid":"k","typ":"logout+jwt","jku":"https://x"}"#).unwrap();
        assert_eq!(ok.alg, Algorithm::Rs256);
        assert_eq!(ok.alg.name(), "RS256");
        assert_eq!(ok.kid.as_deref(), Some("k"));
        assert_eq!(ok.typ.as_deref(), Some("logout+jwt"));
        assert_eq!(header(r#"{"alg":"ES256"}"#).unwrap().alg.name(), "ES256");
    }

    #[test]
    fn shapes() {
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.e30.", "a.b.c.d.e"] {
            assert_eq!(
                decode_header(bad).unwrap_err().code(),
                "jws_malformed",
                "{bad}"
            );
        }
        let deep = format!("{}.e30.", b64(&"[".repeat(20)));
        assert_eq!(decode_header(&deep).unwrap_err().code(), "jws_malformed");
    }
}
