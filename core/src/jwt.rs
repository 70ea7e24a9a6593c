//! Reading the claims of a compact JWT without verifying it.
//!
//! Used for ID tokens received straight from the token endpoint over TLS,
//! where OIDC Core §3.1.3.7 allows skipping the signature check.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::limits::json_depth_exceeds;

/// Why a JWT could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three dot-separated parts.
    #[error("not a compact JWT")]
    NotCompact,
    /// A part is not base64url.
    #[error("a JWT part is not base64url")]
    Base64,
    /// The claims are not a JSON object.
    #[error("the JWT claims are not a JSON object")]
    NotJsonObject,
}

/// The claims (payload) of a compact JWS, as a JSON object.
///
/// # Errors
/// [`JwtError`] when the token is not a well-formed compact JWT.
pub fn decode_claims(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotCompact);
    };
    let bytes: Vec<u8> = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JwtError::Base64)?;
    if json_depth_exceeds(&bytes, 32) {
        return Err(JwtError::NotJsonObject);
    }
    match crate::limits::from_json_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::NotJsonObject),
    }
}

/// The protected header of a compact JWS, as a JSON object.
///
/// # Errors
/// [`JwtError`] when the token is not a well-formed compact JWT.
pub fn decode_header(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotCompact);
    };
    let bytes: Vec<u8> = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| JwtError::Base64)?;
    if json_depth_exceeds(&bytes, 8) {
        return Err(JwtError::NotJsonObject);
    }
    match crate::limits::from_json_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::NotJsonObject),
    }
}

/// For a JWT access token (RFC 9068: header `typ` `at+jwt`), whether its
/// `aud` claim names `audience`. `None` when the token is not such a JWT
/// (opaque tokens cannot be checked).
#[must_use]
pub fn access_token_names_audience(token: &str, audience: &str) -> Option<bool> {
    let header = decode_header(token).ok()?;
    let typ = header.get("typ")?.as_str()?;
    if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
        return None;
    }
    let claims = decode_claims(token).ok()?;
    Some(match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_claims() {
        // {"sub":"alice","n":1}
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"alice","n":1}"#);
        let token = alloc::format!("eyJhbGciOiJub25lIn0.{payload}.sig");
        let claims = decode_claims(&token).unwrap();
        assert_eq!(claims["sub"], "alice");
    }

    #[test]
    fn rejects_bad_tokens() {
        assert_eq!(decode_claims("a.b"), Err(JwtError::NotCompact));
        assert_eq!(decode_claims("a.b.c.d"), Err(JwtError::NotCompact));
        assert_eq!(decode_claims("a.!!.c"), Err(JwtError::Base64));
        let payload = URL_SAFE_NO_PAD.encode(b"[1]");
        assert_eq!(
            decode_claims(&alloc::format!("a.{payload}.c")),
            Err(JwtError::NotJsonObject)
        );
    }
}
