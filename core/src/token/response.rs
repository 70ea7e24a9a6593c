//! Token endpoint responses: RFC 6749 §5.1 (success) and §5.2 (error).
//!
//! Parsing is lenient where real servers differ (`token_type` in any case,
//! `expires_in` as a number or a numeric string, unknown members kept) and
//! strict where mistakes cost tokens (a 2xx carrying `error` is an error, a
//! non-JSON body is an error naming the status, oversized input is refused
//! before it is parsed).

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use core::time::Duration;

use serde_json::{Map, Value};

use crate::error::{MfaRequired, ResponseError, ServerError};
use crate::http::HttpResponse;
use crate::limits::{Limits, json_depth_exceeds};
use crate::secret::{AccessToken, IdToken, MfaToken, RefreshToken};
use crate::time::UnixTime;
use crate::token::TokenType;
use crate::token::set::seconds_from_json;

/// A successful token endpoint response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenResponse {
    /// `access_token`.
    pub access_token: AccessToken,
    /// `token_type`, normalised. A missing `token_type` reads as `Bearer`.
    pub token_type: TokenType,
    /// `expires_in` in seconds, when sent.
    pub expires_in: Option<u64>,
    /// `refresh_token`, when the server issued (or rotated) one.
    pub refresh_token: Option<RefreshToken>,
    /// `id_token`, when issued.
    pub id_token: Option<IdToken>,
    /// `scope` as granted, when sent (absent means "as requested").
    pub scope: Option<String>,
    /// `issued_token_type` (RFC 8693), when sent.
    pub issued_token_type: Option<String>,
    /// All other members.
    pub extra: Map<String, Value>,
}

impl TokenResponse {
    /// Parses a response of the token endpoint, whatever its status.
    ///
    /// # Errors
    /// [`ResponseError::Server`] for an OAuth error (any status, a 2xx with
    /// `error` included); [`ResponseError::NotJson`] for a body that is not
    /// JSON; [`ResponseError::Malformed`] for JSON that is not a token
    /// response; [`ResponseError::TooLarge`] / [`ResponseError::HeadersTooLarge`]
    /// past the limits.
    pub fn parse(response: &HttpResponse, limits: &Limits) -> Result<Self, ResponseError> {
        limits.check_response(response)?;
        let status = response.status;
        // The common flat object takes the short road (depth 1 is within
        // any limit but zero).
        if limits.max_json_depth >= 1
            && let Some(members) = Members::read_flat(&response.body)
        {
            let parsed = members.into_response(status, response.is_success(), limits);
            // Fuzzing holds the short road to serde_json's answers.
            #[cfg(fuzzing)]
            assert_eq!(parsed, Self::parse_with_serde(response, limits));
            return parsed;
        }
        Self::parse_with_serde(response, limits)
    }

    /// [`TokenResponse::parse`] with serde_json, once the limits passed.
    fn parse_with_serde(response: &HttpResponse, limits: &Limits) -> Result<Self, ResponseError> {
        let object = parse_json_object(response, limits)?;
        Members::from_object(object).into_response(response.status, true, limits)
    }

    /// When the access token expires: the time the request was **sent** plus
    /// `expires_in`, or plus `default_lifetime` when the server gave none
    /// (never "valid forever").
    #[must_use]
    pub fn expires_at(&self, sent_at: UnixTime, default_lifetime: Duration) -> UnixTime {
        match self.expires_in {
            Some(secs) => sent_at.saturating_add(Duration::from_secs(secs)),
            None => sent_at.saturating_add(default_lifetime),
        }
    }
}

/// Checks the limits, then reads the body as a JSON object. An OAuth error
/// (`error` member, any status) becomes [`ResponseError::Server`]; so does a
/// non-2xx status with a JSON object that has no `error`, as
/// [`ResponseError::UnexpectedStatus`].
///
/// # Errors
/// As [`TokenResponse::parse`].
pub fn parse_json_object(
    response: &HttpResponse,
    limits: &Limits,
) -> Result<Map<String, Value>, ResponseError> {
    limits.check_response(response)?;
    let status = response.status;
    if json_depth_exceeds(&response.body, limits.max_json_depth) {
        return Err(ResponseError::Malformed {
            status,
            reason: "JSON nesting is deeper than the limit",
        });
    }
    let object = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(map)) => map,
        Ok(_) if response.is_success() => {
            return Err(ResponseError::Malformed {
                status,
                reason: "the body is not a JSON object",
            });
        }
        Ok(_) => return Err(ResponseError::UnexpectedStatus { status }),
        Err(_) => return Err(ResponseError::NotJson { status }),
    };
    if object.contains_key("error") {
        return Err(ResponseError::Server(server_error(status, &object)));
    }
    if !response.is_success() {
        return Err(ResponseError::UnexpectedStatus { status });
    }
    Ok(object)
}

fn server_error(status: u16, object: &Map<String, Value>) -> ServerError {
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(String::from);
    ServerError {
        status,
        // A non-string `error` still signals an error; keep its JSON form.
        error: match object.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::from("unknown_error"),
        },
        error_description: text("error_description"),
        error_uri: text("error_uri"),
    }
}

/// The MFA details of an `mfa_required` error body (`mfa_token`,
/// `mfa_requirements`), or `None` when the body is not such an error.
#[must_use]
pub fn parse_mfa_required(response: &HttpResponse, limits: &Limits) -> Option<MfaRequired> {
    if limits.check_response(response).is_err()
        || json_depth_exceeds(&response.body, limits.max_json_depth)
    {
        return None;
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&response.body) else {
        return None;
    };
    let is_mfa = |name| object.get(name).and_then(Value::as_str) == Some("mfa_required");
    if !is_mfa("error") && !is_mfa("code") {
        return None;
    }
    Some(MfaRequired {
        description: object
            .get("error_description")
            .and_then(Value::as_str)
            .map(String::from),
        mfa_token: object
            .get("mfa_token")
            .and_then(Value::as_str)
            .map(MfaToken::new),
        mfa_requirements: object.get("mfa_requirements").map(Value::to_string),
    })
}

/// The members of a token response object: the token members by name,
/// every other member (`error` included) in `extra`.
#[derive(Default)]
struct Members {
    access_token: Option<Value>,
    token_type: Option<Value>,
    expires_in: Option<Value>,
    refresh_token: Option<Value>,
    id_token: Option<Value>,
    scope: Option<Value>,
    issued_token_type: Option<Value>,
    extra: Map<String, Value>,
}

impl Members {
    /// Where `member` is kept.
    fn slot_of(&mut self, member: Member) -> &mut Option<Value> {
        match member {
            Member::AccessToken => &mut self.access_token,
            Member::TokenType => &mut self.token_type,
            Member::ExpiresIn => &mut self.expires_in,
            Member::RefreshToken => &mut self.refresh_token,
            Member::IdToken => &mut self.id_token,
            Member::Scope => &mut self.scope,
            Member::IssuedTokenType => &mut self.issued_token_type,
        }
    }

    /// The members of a flat object, read without serde_json
    /// ([`flat`](super::flat)); `None` for any other body.
    fn read_flat(json: &[u8]) -> Option<Self> {
        let mut members = Members::default();
        super::flat::read_object(json, |name, value| members.insert(name, value))?;
        Some(members)
    }

    fn from_object(object: Map<String, Value>) -> Self {
        let mut members = Members::default();
        for (name, value) in object {
            members.insert(Cow::Owned(name), value);
        }
        members
    }

    /// Files one member: a token member in its slot (the last of
    /// duplicates wins, as in a `Map`), any other in `extra`.
    fn insert(&mut self, name: Cow<'_, str>, value: Value) {
        match Member::of(&name) {
            Some(member) => *self.slot_of(member) = Some(value),
            None => drop(self.extra.insert(name.into_owned(), value)),
        }
    }

    /// The checks of RFC 6749 §5.1 and §5.2, in the order
    /// [`parse_json_object`] makes them.
    fn into_response(
        self,
        status: u16,
        success: bool,
        limits: &Limits,
    ) -> Result<TokenResponse, ResponseError> {
        if self.extra.contains_key("error") {
            return Err(ResponseError::Server(server_error(status, &self.extra)));
        }
        if !success {
            return Err(ResponseError::UnexpectedStatus { status });
        }
        let malformed = |reason| ResponseError::Malformed { status, reason };
        let access_token = match self.access_token {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::String(_)) => return Err(malformed("access_token is empty")),
            Some(_) => return Err(malformed("access_token is not a string")),
            None => return Err(malformed("access_token is missing")),
        };
        let access_token = AccessToken::new(access_token);
        if access_token.len() > limits.max_token_bytes {
            return Err(malformed("access_token is longer than the limit"));
        }
        let token_type = match self.token_type {
            Some(Value::String(s)) if !s.is_empty() => TokenType::parse(&s),
            None => TokenType::Bearer,
            Some(_) => return Err(malformed("token_type is not a string")),
        };
        let expires_in = match self.expires_in {
            None | Some(Value::Null) => None,
            Some(v) => match seconds_from_json(&v) {
                Some(0) => return Err(malformed("expires_in is zero")),
                Some(secs) => Some(secs),
                None => return Err(malformed("expires_in is not a non-negative number")),
            },
        };
        let refresh_token = optional_token(self.refresh_token, limits)
            .map_err(malformed)?
            .map(RefreshToken::new);
        let id_token = optional_token(self.id_token, limits)
            .map_err(malformed)?
            .map(IdToken::new);
        let scope = optional_string(self.scope).map_err(malformed)?;
        let issued_token_type = optional_string(self.issued_token_type).map_err(malformed)?;
        Ok(TokenResponse {
            access_token,
            token_type,
            expires_in,
            refresh_token,
            id_token,
            scope,
            issued_token_type,
            extra: self.extra,
        })
    }
}

/// The token members of RFC 6749 §5.1 and RFC 8693 §2.2.1.
#[derive(Clone, Copy)]
enum Member {
    AccessToken,
    TokenType,
    ExpiresIn,
    RefreshToken,
    IdToken,
    Scope,
    IssuedTokenType,
}

impl Member {
    fn of(name: &str) -> Option<Member> {
        Some(match name {
            "access_token" => Member::AccessToken,
            "token_type" => Member::TokenType,
            "expires_in" => Member::ExpiresIn,
            "refresh_token" => Member::RefreshToken,
            "id_token" => Member::IdToken,
            "scope" => Member::Scope,
            "issued_token_type" => Member::IssuedTokenType,
            _ => return None,
        })
    }
}

fn optional_string(value: Option<Value>) -> Result<Option<String>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("a string member has another type"),
    }
}

fn optional_token(value: Option<Value>, limits: &Limits) -> Result<Option<String>, &'static str> {
    match optional_string(value)? {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.len() > limits.max_token_bytes => Err("a token is longer than the limit"),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn parse(status: u16, body: &str) -> Result<TokenResponse, ResponseError> {
        TokenResponse::parse(&HttpResponse::new(status, body), &Limits::default())
    }

    #[test]
    fn success_with_all_fields() {
        let r = parse(
            200,
            r#"{"access_token":"at","token_type":"bearer","expires_in":3600,
               "refresh_token":"rt2","id_token":"a.b.c","scope":"openid read","x-extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.access_token.secret(), "at");
        assert_eq!(r.token_type, TokenType::Bearer);
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.refresh_token.unwrap().secret(), "rt2");
        assert_eq!(r.scope.as_deref(), Some("openid read"));
        assert_eq!(r.extra["x-extra"], 1);
    }

    #[test]
    fn expires_in_forms() {
        assert_eq!(
            parse(
                200,
                r#"{"access_token":"a","token_type":"DPoP","expires_in":"120"}"#
            )
            .unwrap()
            .expires_in,
            Some(120)
        );
        assert_eq!(
            parse(200, r#"{"access_token":"a","expires_in":59.9}"#)
                .unwrap()
                .expires_in,
            Some(59)
        );
        let r = parse(200, r#"{"access_token":"a","token_type":"bearer"}"#).unwrap();
        assert_eq!(r.expires_in, None);
        assert_eq!(
            r.expires_at(UnixTime::from_secs(1000), Duration::from_secs(300)),
            UnixTime::from_secs(1300)
        );
        for bad in [r#""soon""#, "-1", "0", "true", "[]"] {
            let body = alloc::format!(r#"{{"access_token":"a","expires_in":{bad}}}"#);
            assert!(
                matches!(parse(200, &body), Err(ResponseError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn expires_at_counts_from_send_time() {
        let r = parse(200, r#"{"access_token":"a","expires_in":60}"#).unwrap();
        assert_eq!(
            r.expires_at(UnixTime::from_secs(100), Duration::from_secs(3600)),
            UnixTime::from_secs(160)
        );
        let r = parse(
            200,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(
            r.expires_at(UnixTime::from_secs(100), Duration::ZERO),
            UnixTime::from_secs(u64::MAX)
        );
    }

    #[test]
    fn errors() {
        let e = parse(
            400,
            r#"{"error":"invalid_grant","error_description":"grant request is invalid","error_uri":"https://x"}"#,
        )
        .unwrap_err();
        let ResponseError::Server(server) = e else {
            panic!("{e:?}")
        };
        assert_eq!(server.error, "invalid_grant");
        assert_eq!(server.status, 400);
        assert_eq!(server.error_uri.as_deref(), Some("https://x"));

        // A 200 carrying `error` is an error.
        assert!(matches!(
            parse(200, r#"{"error":"server_error","access_token":"x"}"#),
            Err(ResponseError::Server(ServerError { status: 200, .. }))
        ));
        // A proxy's HTML page.
        assert_eq!(
            parse(502, "<html><body>Bad Gateway</body></html>").unwrap_err(),
            ResponseError::NotJson { status: 502 }
        );
        assert_eq!(
            parse(500, "{}").unwrap_err(),
            ResponseError::UnexpectedStatus { status: 500 }
        );
        assert!(matches!(
            parse(200, "[]"),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"token_type":"bearer"}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":""}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":7}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert!(matches!(
            parse(200, r#"{"access_token":"a","refresh_token":5}"#),
            Err(ResponseError::Malformed { .. })
        ));
        assert_eq!(
            parse(200, "").unwrap_err(),
            ResponseError::NotJson { status: 200 }
        );
        // A non-string error code is still an error.
        assert!(matches!(
            parse(400, r#"{"error":42}"#),
            Err(ResponseError::Server(ServerError { ref error, .. })) if error == "42"
        ));
    }

    #[test]
    fn body_size_limit() {
        let limits = Limits {
            max_body_bytes: 64,
            ..Limits::default()
        };
        let body = r#"{"access_token":"a"}"#.to_string() + &" ".repeat(44);
        assert_eq!(body.len(), 64);
        assert!(TokenResponse::parse(&HttpResponse::new(200, body.clone()), &limits).is_ok());
        let body = body + " ";
        assert_eq!(
            TokenResponse::parse(&HttpResponse::new(200, body), &limits).unwrap_err(),
            ResponseError::TooLarge { limit: 64 }
        );
    }

    #[test]
    fn token_length_limit() {
        let limits = Limits {
            max_token_bytes: 4,
            ..Limits::default()
        };
        let ok = HttpResponse::new(200, r#"{"access_token":"abcd","refresh_token":"wxyz"}"#);
        assert!(TokenResponse::parse(&ok, &limits).is_ok());
        let long = HttpResponse::new(200, r#"{"access_token":"abcde"}"#);
        assert!(TokenResponse::parse(&long, &limits).is_err());
        let long_rt = HttpResponse::new(200, r#"{"access_token":"a","refresh_token":"vwxyz"}"#);
        assert!(TokenResponse::parse(&long_rt, &limits).is_err());
    }

    #[test]
    fn deep_json_is_refused() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        let body = alloc::format!(r#"{{"access_token":"a","x":{deep}}}"#);
        assert!(matches!(
            parse(200, &body),
            Err(ResponseError::Malformed { .. })
        ));
    }

    #[test]
    fn mfa_details() {
        let response = HttpResponse::new(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-1","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        );
        let mfa = parse_mfa_required(&response, &Limits::default()).unwrap();
        assert_eq!(mfa.mfa_token.unwrap().secret(), "mfa-1");
        assert_eq!(
            mfa.mfa_requirements.as_deref(),
            Some(r#"{"challenge":[{"type":"otp"}]}"#)
        );
        assert!(
            parse_mfa_required(
                &HttpResponse::new(400, r#"{"error":"x"}"#),
                &Limits::default()
            )
            .is_none()
        );
        let _ = vec![0u8; 0];
    }

    /// The flat reader's short road decides exactly as serde_json's `Map`
    /// does (the road every other body takes): duplicates, escapes,
    /// numbers, wrong types, errors and odd bytes included.
    mod flat_reader_agrees_with_serde_json {
        use super::*;
        use crate::http::Headers;
        use proptest::prelude::*;

        fn via_map(
            response: &HttpResponse,
            limits: &Limits,
        ) -> Result<TokenResponse, ResponseError> {
            let object = parse_json_object(response, limits)?;
            Members::from_object(object).into_response(response.status, true, limits)
        }

        fn member() -> impl Strategy<Value = (String, String)> {
            // `error` is rare: it decides every body it is in.
            let name = prop_oneof![
                8 => Just("access_token"),
                1 => Just("token_type"),
                1 => Just("expires_in"),
                1 => Just("refresh_token"),
                1 => Just("id_token"),
                1 => Just("scope"),
                1 => Just("issued_token_type"),
                1 => Just("acc\\u0065ss_token"),
                1 => Just("x"),
                1 => Just("error_description"),
                1 => Just("error"),
            ];
            let value = prop_oneof![
                Just("\"at\"".to_string()),
                Just("\"\"".to_string()),
                Just("3600".to_string()),
                Just("\"60\"".to_string()),
                Just("0".to_string()),
                Just("-1".to_string()),
                Just("null".to_string()),
                Just("true".to_string()),
                Just("[1,{}]".to_string()),
                Just("{\"a\":\"b\"}".to_string()),
                Just("1.5e3".to_string()),
                Just(r#""a\"b\\c""#.to_string()),
                Just(r#""http:\/\/x\n\t\r\b\f""#.to_string()),
                Just(r#""\u0041\ud83d\ude00""#.to_string()),
                Just(r#""\ud800""#.to_string()),
                Just("\"é€😀\"".to_string()),
                Just("\"a\u{1}\"".to_string()),
                Just("-0".to_string()),
                Just("1e2".to_string()),
                Just("01".to_string()),
                Just("1.".to_string()),
                Just("18446744073709551616".to_string()),
                Just("-9223372036854775809".to_string()),
                Just("tru".to_string()),
                "[a-z ]{0,6}".prop_map(|s| alloc::format!("\"{s}\"")),
            ];
            (name.prop_map(String::from), value)
        }

        #[test]
        fn flat_bodies_take_the_short_road() {
            for body in [
                r#"{"access_token":"eyJ.eyJ.c2ln","token_type":"Bearer","expires_in":3600,"scope":"openid offline_access","refresh_token":"rt","id_token":"eyJ.eyJ.sig"}"#,
                r#"{"access_token":"at","expires_in":"60","token_type":"DPoP","custom":true,"n":null}"#,
                r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
                "{ \"access_token\" : \"a\\/b\" }\n",
            ] {
                assert!(Members::read_flat(body.as_bytes()).is_some(), "{body}");
            }
        }

        proptest! {
            #[test]
            fn on_objects(members in proptest::collection::vec(member(), 0..8), status in prop_oneof![6 => Just(200u16), 1 => Just(400), 1 => Just(500)], cut in prop_oneof![4 => Just(0usize), 1 => Just(1), 1 => Just(2)]) {
                // JSON whitespace anywhere it may go.
                let ws = [" ", "", "\n", "\t\r"];
                let mut body = String::from(ws[members.len() % 4]);
                body.push('{');
                for (i, (name, value)) in members.iter().enumerate() {
                    if i > 0 { body.push(','); }
                    body.push_str(&alloc::format!("{}\"{name}\"{}:{value}{}", ws[i % 4], ws[(i + 1) % 4], ws[(i + 2) % 4]));
                }
                body.push('}');
                // Sometimes truncated: not JSON any more.
                let keep = match cut { 0 => body.len(), 1 => body.len() - 1, _ => body.len() / 2 };
                let body = body.get(..keep).unwrap_or(&body);
                let response = HttpResponse::new(status, body);
                let limits = Limits::default();
                prop_assert_eq!(TokenResponse::parse(&response, &limits), via_map(&response, &limits));
            }

            #[test]
            fn on_bytes(body in proptest::collection::vec(any::<u8>(), 0..64), status in 100u16..600) {
                let response = HttpResponse { status, headers: Headers::new(), body };
                let limits = Limits::default();
                prop_assert_eq!(TokenResponse::parse(&response, &limits), via_map(&response, &limits));
            }
        }
    }
}
