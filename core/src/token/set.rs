//! The stored token sets, in the JSON shape of the Auth0 Next.js SDK's
//! session: `TokenSet` (the session's main tokens, with the refresh token)
//! and `AccessTokenSet` (one entry of the per-audience `accessTokens[]`).
//! Unknown members survive a round trip.

use alloc::string::String;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::wire::{Key, KeySeed, Lenient, fill, keep_other, put_extra, put_opt, start};

use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::time::UnixTime;
use crate::token::TokenType;

/// The session's main token set (the SDK's `TokenSet`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    /// The access token for the default audience.
    pub access_token: AccessToken,
    /// The ID token, when one was issued.
    pub id_token: Option<IdToken>,
    /// The scope the server granted.
    pub scope: Option<String>,
    /// The scope that was asked for (the cache key).
    pub requested_scope: Option<String>,
    /// The refresh token, shared by every audience.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires. `None` when the stored value is
    /// missing or not a number (then a refresh is due).
    pub expires_at: Option<UnixTime>,
    /// The lifetime the server granted the access token, in seconds
    /// (`expires_in`; not an SDK member, kept beside `expiresAt`). It caps
    /// the refresh buffer at half the lifetime, so a token just obtained is
    /// served even when the buffer is longer than the tokens live.
    pub expires_in: Option<u64>,
    /// The audience of the access token.
    pub audience: Option<String>,
    /// `Bearer` or `DPoP` (normalised when read).
    pub token_type: Option<TokenType>,
    /// Members this crate does not know, kept for the round trip.
    pub extra: Map<String, Value>,
}

/// One entry of the multi-resource cache (the SDK's `AccessTokenSet`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The scope the server granted.
    pub scope: Option<String>,
    /// The scope that was asked for (the cache key).
    pub requested_scope: Option<String>,
    /// The audience (matched byte for byte).
    pub audience: String,
    /// When the access token expires.
    pub expires_at: Option<UnixTime>,
    /// The lifetime the server granted the access token, in seconds
    /// (`expires_in`; not an SDK member, kept beside `expiresAt`). It caps
    /// the refresh buffer at half the lifetime, so a token just obtained is
    /// served even when the buffer is longer than the tokens live.
    pub expires_in: Option<u64>,
    /// `Bearer` or `DPoP`.
    pub token_type: Option<TokenType>,
    /// Members this crate does not know, kept for the round trip.
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

const TOKEN_SET: &[&str] = &[
    "accessToken",
    "idToken",
    "scope",
    "requestedScope",
    "refreshToken",
    "expiresAt",
    "expiresIn",
    "audience",
    "token_type",
];

impl Serialize for TokenSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = start(serializer)?;
        map.serialize_entry("accessToken", &self.access_token)?;
        put_opt(&mut map, "idToken", self.id_token.as_ref())?;
        put_opt(&mut map, "scope", self.scope.as_ref())?;
        put_opt(&mut map, "requestedScope", self.requested_scope.as_ref())?;
        put_opt(&mut map, "refreshToken", self.refresh_token.as_ref())?;
        put_opt(&mut map, "expiresAt", self.expires_at.as_ref())?;
        put_opt(&mut map, "expiresIn", self.expires_in.as_ref())?;
        put_opt(&mut map, "audience", self.audience.as_ref())?;
        put_opt(&mut map, "token_type", self.token_type.as_ref())?;
        put_extra(&mut map, &self.extra)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for TokenSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokenSetVisitor;
        impl<'de> Visitor<'de> for TokenSetVisitor {
            type Value = TokenSet;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a token set")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenSet, A::Error> {
                let mut access_token = None;
                let (mut id_token, mut scope, mut requested_scope) = (None, None, None);
                let (mut refresh_token, mut audience, mut token_type) = (None, None, None);
                let (mut expires_at, mut expires_in): (Option<Lenient>, Option<Lenient>) =
                    (None, None);
                let mut extra = Map::new();
                while let Some(key) = map.next_key_seed(KeySeed(TOKEN_SET))? {
                    match key {
                        Key::Known(0) => fill(&mut map, &mut access_token, "accessToken")?,
                        Key::Known(1) => fill(&mut map, &mut id_token, "idToken")?,
                        Key::Known(2) => fill(&mut map, &mut scope, "scope")?,
                        Key::Known(3) => fill(&mut map, &mut requested_scope, "requestedScope")?,
                        Key::Known(4) => fill(&mut map, &mut refresh_token, "refreshToken")?,
                        Key::Known(5) => fill(&mut map, &mut expires_at, "expiresAt")?,
                        Key::Known(6) => fill(&mut map, &mut expires_in, "expiresIn")?,
                        Key::Known(7) => fill(&mut map, &mut audience, "audience")?,
                        Key::Known(_) => fill(&mut map, &mut token_type, "token_type")?,
                        Key::Other(name) => keep_other(&mut map, &mut extra, name)?,
                    }
                }
                Ok(TokenSet {
                    access_token: access_token
                        .ok_or_else(|| de::Error::missing_field("accessToken"))?,
                    id_token: id_token.flatten(),
                    scope: scope.flatten(),
                    requested_scope: requested_scope.flatten(),
                    refresh_token: refresh_token.flatten(),
                    expires_at: expires_at.and_then(|l| l.0).map(UnixTime::from_secs),
                    expires_in: expires_in.and_then(|l| l.0),
                    audience: audience.flatten(),
                    token_type: token_type.flatten(),
                    extra,
                })
            }
        }
        deserializer.deserialize_map(TokenSetVisitor)
    }
}

const ACCESS_TOKEN_SET: &[&str] = &[
    "accessToken",
    "scope",
    "requestedScope",
    "audience",
    "expiresAt",
    "expiresIn",
    "token_type",
];

impl Serialize for AccessTokenSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = start(serializer)?;
        map.serialize_entry("accessToken", &self.access_token)?;
        put_opt(&mut map, "scope", self.scope.as_ref())?;
        put_opt(&mut map, "requestedScope", self.requested_scope.as_ref())?;
        map.serialize_entry("audience", &self.audience)?;
        put_opt(&mut map, "expiresAt", self.expires_at.as_ref())?;
        put_opt(&mut map, "expiresIn", self.expires_in.as_ref())?;
        put_opt(&mut map, "token_type", self.token_type.as_ref())?;
        put_extra(&mut map, &self.extra)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for AccessTokenSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = AccessTokenSet;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("an access token set")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AccessTokenSet, A::Error> {
                let (mut access_token, mut audience) = (None, None);
                let (mut scope, mut requested_scope, mut token_type) = (None, None, None);
                let (mut expires_at, mut expires_in): (Option<Lenient>, Option<Lenient>) =
                    (None, None);
                let mut extra = Map::new();
                while let Some(key) = map.next_key_seed(KeySeed(ACCESS_TOKEN_SET))? {
                    match key {
                        Key::Known(0) => fill(&mut map, &mut access_token, "accessToken")?,
                        Key::Known(1) => fill(&mut map, &mut scope, "scope")?,
                        Key::Known(2) => fill(&mut map, &mut requested_scope, "requestedScope")?,
                        Key::Known(3) => fill(&mut map, &mut audience, "audience")?,
                        Key::Known(4) => fill(&mut map, &mut expires_at, "expiresAt")?,
                        Key::Known(5) => fill(&mut map, &mut expires_in, "expiresIn")?,
                        Key::Known(_) => fill(&mut map, &mut token_type, "token_type")?,
                        Key::Other(name) => keep_other(&mut map, &mut extra, name)?,
                    }
                }
                Ok(AccessTokenSet {
                    access_token: access_token
                        .ok_or_else(|| de::Error::missing_field("accessToken"))?,
                    scope: scope.flatten(),
                    requested_scope: requested_scope.flatten(),
                    audience: audience.ok_or_else(|| de::Error::missing_field("audience"))?,
                    expires_at: expires_at.and_then(|l| l.0).map(UnixTime::from_secs),
                    expires_in: expires_in.and_then(|l| l.0),
                    token_type: token_type.flatten(),
                    extra,
                })
            }
        }
        deserializer.deserialize_map(EntryVisitor)
    }
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
    use alloc::string::ToString as _;
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
    fn members_read_once_each_nulls_are_absent_and_the_output_order_is_fixed() {
        // A known member twice is refused: which one was meant is unclear.
        let twice = r#"{"accessToken":"a","scope":"x","scope":"y"}"#;
        let error = serde_json::from_str::<TokenSet>(twice).unwrap_err();
        assert!(
            error.to_string().contains("duplicate field `scope`"),
            "{error}"
        );
        let twice = r#"{"accessToken":"a","audience":"x","audience":"y"}"#;
        assert!(serde_json::from_str::<AccessTokenSet>(twice).is_err());
        // Unknown members twice: the last one wins, as in JavaScript.
        let set: TokenSet = serde_json::from_str(r#"{"accessToken":"a","x":1,"x":2}"#).unwrap();
        assert_eq!(set.extra.get("x"), Some(&json!(2)));
        // `null` optional members read as absent and are not written back.
        let set: TokenSet = serde_json::from_str(
            r#"{"accessToken":"a","idToken":null,"refreshToken":null,"scope":null,"token_type":null,"expiresIn":null}"#,
        )
        .unwrap();
        assert_eq!(
            (
                set.id_token.is_none(),
                set.refresh_token.is_none(),
                set.scope.as_deref(),
                set.token_type.as_ref()
            ),
            (true, true, None, None)
        );
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"{"accessToken":"a"}"#
        );
        // Required members.
        for missing in [r#"{"scope":"s"}"#, r#"{"accessToken":5}"#, "[]", "\"a\""] {
            assert!(
                serde_json::from_str::<TokenSet>(missing).is_err(),
                "{missing}"
            );
        }
        // Known members first, in the SDK's order, then the unknown ones.
        let entry: AccessTokenSet = serde_json::from_str(
            r#"{"zz":true,"token_type":"DPoP","expiresAt":5,"audience":"x","accessToken":"a"}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"accessToken":"a","audience":"x","expiresAt":5,"token_type":"DPoP","zz":true}"#
        );
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
