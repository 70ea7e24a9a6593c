//! The stored token sets, in the JSON shape of the Auth0 Next.js SDK's
//! session: `TokenSet` (the session's main tokens, with the refresh token)
//! and `AccessTokenSet` (one entry of the per-audience `accessTokens[]`).
//! Unknown members survive a round trip.

use alloc::string::String;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::time::UnixTime;
use crate::token::TokenType;

/// The session's main token set (the SDK's `TokenSet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The access token for the default audience.
    #[serde(rename = "accessToken")]
    pub access_token: AccessToken,
    /// The ID token, when one was issued.
    #[serde(rename = "idToken", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// The scope the server granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The scope that was asked for (the cache key).
    #[serde(
        rename = "requestedScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub requested_scope: Option<String>,
    /// The refresh token, shared by every audience.
    #[serde(
        rename = "refreshToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires. `None` when the stored value is
    /// missing or not a number (then a refresh is due).
    #[serde(
        rename = "expiresAt",
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<UnixTime>,
    /// The lifetime the server granted the access token, in seconds
    /// (`expires_in`; not an SDK member, kept beside `expiresAt`). It caps
    /// the refresh buffer at half the lifetime, so a token just obtained is
    /// served even when the buffer is longer than the tokens live.
    #[serde(
        rename = "expiresIn",
        default,
        deserialize_with = "lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<u64>,
    /// The audience of the access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `Bearer` or `DPoP` (normalised when read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    /// Members this crate does not know, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of the multi-resource cache (the SDK's `AccessTokenSet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenSet {
    /// The access token.
    #[serde(rename = "accessToken")]
    pub access_token: AccessToken,
    /// The scope the server granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The scope that was asked for (the cache key).
    #[serde(
        rename = "requestedScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub requested_scope: Option<String>,
    /// The audience (matched byte for byte).
    pub audience: String,
    /// When the access token expires.
    #[serde(
        rename = "expiresAt",
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<UnixTime>,
    /// The lifetime the server granted the access token, in seconds
    /// (`expires_in`; not an SDK member, kept beside `expiresAt`). It caps
    /// the refresh buffer at half the lifetime, so a token just obtained is
    /// served even when the buffer is longer than the tokens live.
    #[serde(
        rename = "expiresIn",
        default,
        deserialize_with = "lenient_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_in: Option<u64>,
    /// `Bearer` or `DPoP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    /// Members this crate does not know, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenSet {
    /// The scope this entry answers for: `requestedScope`, else `scope`.
    #[must_use]
    pub fn key_scope(&self) -> &str {
        self.requested_scope
            .as_deref()
            .or(self.scope.as_deref())
            .unwrap_or("")
    }
}

/// Reads `expiresAt` as the SDK's `normalizeExpiresAt` does: a number or a
/// numeric string; anything else (null, NaN, garbage) is "unknown".
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<UnixTime>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(seconds_from_json(&value).map(UnixTime::from_secs))
}

/// Reads a number of seconds leniently (anything unusable is unknown).
fn lenient_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(seconds_from_json(&value))
}

/// A non-negative whole number of seconds from a JSON number or numeric
/// string (fractions are dropped; negative and non-finite values are `None`).
pub(crate) fn seconds_from_json(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(f64_to_secs)
        }),
        Value::String(s) => seconds_from_str(s),
        _ => None,
    }
}

/// [`seconds_from_json`] of a JSON string.
pub(crate) fn seconds_from_str(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        Some(v)
    } else {
        #[cfg(feature = "float-roundtrip")]
        return s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(f64_to_secs);
        #[cfg(not(feature = "float-roundtrip"))]
        return seconds_from_decimal(s);
    }
}

/// Without the float parser (feature `float-roundtrip` off: its tables are
/// most of its size): `[+]digits[.digits]`, the fraction dropped, what is
/// too large saturated, as the float path does below 2^53. Exponents and
/// a minus zero are not read.
#[cfg(not(feature = "float-roundtrip"))]
fn seconds_from_decimal(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    if whole.is_empty() {
        return Some(0);
    }
    // Only digits: the one error left is overflow.
    Some(whole.parse::<u64>().unwrap_or(u64::MAX))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn f64_to_secs(f: f64) -> u64 {
    // `as` saturates for floats, and the caller filtered negatives and NaN.
    f as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_strings_read_as_whole_seconds() {
        for (input, secs) in [
            ("3600", Some(3600)),
            (" 3600 ", Some(3600)),
            ("+3600", Some(3600)),
            ("3600.9", Some(3600)),
            ("+3600.5", Some(3600)),
            ("3600.", Some(3600)),
            (".5", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("-5", None),
            ("-0.5", None),
            ("1.2.3", None),
            (".", None),
            ("", None),
            ("abc", None),
            ("NaN", None),
            ("inf", None),
        ] {
            assert_eq!(seconds_from_str(input), secs, "{input:?}");
        }
        // Exponents need the float parser.
        let exponent = if cfg!(feature = "float-roundtrip") {
            Some(3600)
        } else {
            None
        };
        assert_eq!(seconds_from_str("3.6e3"), exponent);
    }

    #[test]
    fn round_trips_sdk_shape_with_unknown_fields() {
        let input = json!({
            "accessToken": "at",
            "idToken": "id",
            "scope": "openid profile",
            "requestedScope": "openid profile offline_access",
            "refreshToken": "rt",
            "expiresAt": 1_700_000_000u64,
            "audience": "https://api.example.com",
            "token_type": "bearer",
            "futureField": {"x": [1, 2]}
        });
        let set: TokenSet = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(set.token_type, Some(TokenType::Bearer));
        assert_eq!(set.expires_at, Some(UnixTime::from_secs(1_700_000_000)));
        let back = serde_json::to_value(&set).unwrap();
        let mut expected = input;
        expected["token_type"] = json!("Bearer");
        assert_eq!(back, expected);
    }

    #[test]
    fn expires_at_is_lenient() {
        for (raw, expected) in [
            (json!("1700000000"), Some(1_700_000_000)),
            (json!(1_700_000_000.9), Some(1_700_000_000)),
            (json!(null), None),
            (json!("soon"), None),
            (json!(-5), None),
            (json!(true), None),
        ] {
            let set: TokenSet =
                serde_json::from_value(json!({"accessToken": "a", "expiresAt": raw})).unwrap();
            assert_eq!(set.expires_at, expected.map(UnixTime::from_secs), "{raw}");
        }
        let set: TokenSet = serde_json::from_value(json!({"accessToken": "a"})).unwrap();
        assert_eq!(set.expires_at, None);
    }

    #[test]
    fn entry_requires_audience() {
        assert!(serde_json::from_value::<AccessTokenSet>(json!({"accessToken": "a"})).is_err());
        let e: AccessTokenSet = serde_json::from_value(
            json!({"accessToken": "a", "audience": "x", "scope": "s", "expiresAt": 5}),
        )
        .unwrap();
        assert_eq!(e.key_scope(), "s");
    }
}
