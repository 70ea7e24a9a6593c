//! The access-token endpoint contract: the Auth0 Next.js SDK's
//! `GET /auth/access-token` route, both sides.
//!
//! # Call order
//!
//! ```text
//! server (the web app holding the session):
//!   AccessTokenQuery::parse(query).token_request() ─► TokenRequest
//!   manager.get_access_token(..) … ─► Ok(AccessTokenInfo) or Err(Error)
//!   access_token_response(outcome, now) ─► RouteResponse { status, body } ─► .into_http()
//!
//! client (a browser or another process calling the route):
//!   AccessTokenQuery { .. }.to_query_string() ─► "?audience=…"
//!   parse_access_token_response(&response, &limits) ─► Ok(AccessTokenInfo) or Err(RouteError)
//! ```
//!
//! | outcome | status | body |
//! |---|---|---|
//! | token | 200 | `{"token","scope"?,"expires_at","expires_in","token_type"}` |
//! | [`Error::MfaRequired`] | 403 | `{"error":"mfa_required","error_description","mfa_token","mfa_requirements"?}` |
//! | any other error | 401 | `{"error":{"message","code"}}` |
//!
//! `expires_in` is `max(0, expires_at − now)`. The SDK encrypts the
//! `mfa_token` with the session secret before it leaves the server; the core
//! has no such key, so a host that does not want the raw `mfa_token` in a
//! browser must replace it before sending the body.

use alloc::string::{String, ToString};
use core::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, MfaRequired, ResponseError};
use crate::form::{self, FormBody};
use crate::http::{Headers, HttpResponse};
use crate::limits::{Limits, json_depth_exceeds};
use crate::manager::{AccessTokenInfo, TokenRequest};
use crate::secret::{AccessToken, MfaToken};
use crate::time::UnixTime;
use crate::token::TokenType;
use crate::token::set::seconds_from_json;

/// The route's query: `audience`, `scope` and `mergeScopes=false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessTokenQuery {
    /// `audience`.
    pub audience: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `Some(false)` for `mergeScopes=false`; any other value, or none,
    /// leaves the configured default (`None`), as the SDK.
    pub merge_scopes: Option<bool>,
}

impl AccessTokenQuery {
    /// Reads the query of a request URL (or the query alone). Empty values
    /// count as absent.
    #[must_use]
    pub fn parse(url_or_query: &str) -> Self {
        let without_fragment = url_or_query.split('#').next().unwrap_or("");
        let query = match without_fragment.split_once('?') {
            Some((_, query)) => query,
            None if without_fragment.contains('=') => without_fragment,
            None => "",
        };
        let pairs = form::parse(query);
        let text = |name: &str| {
            form::find(&pairs, name)
                .filter(|v| !v.is_empty())
                .map(|v| v.into_owned())
        };
        AccessTokenQuery {
            audience: text("audience"),
            scope: text("scope"),
            merge_scopes: (form::find(&pairs, "mergeScopes").as_deref() == Some("false"))
                .then_some(false),
        }
    }

    /// The manager request it asks for.
    #[must_use]
    pub fn token_request(&self) -> TokenRequest<'_> {
        let mut request = TokenRequest::new();
        request.audience = self.audience.as_deref();
        request.scope = self.scope.as_deref();
        request.merge_scopes = self.merge_scopes;
        request
    }

    /// The query string for a client to append to the route (`""` when
    /// empty, else starting with `?`).
    #[must_use]
    pub fn to_query_string(&self) -> String {
        let mut query = FormBody::new();
        if let Some(audience) = &self.audience {
            query.append("audience", audience);
        }
        if let Some(scope) = &self.scope {
            query.append("scope", scope);
        }
        if self.merge_scopes == Some(false) {
            query.append("mergeScopes", "false");
        }
        let query = query.finish();
        if query.is_empty() {
            query
        } else {
            alloc::format!("?{query}")
        }
    }
}

/// The route's answer: a status and a JSON body. `Debug` hides the body,
/// which carries the token.
#[derive(Clone, PartialEq, Eq)]
#[must_use]
pub struct RouteResponse {
    /// 200, 401 or 403.
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

impl RouteResponse {
    /// As an [`HttpResponse`], with `Content-Type: application/json` and
    /// `Cache-Control: no-store` (a token must not be cached by proxies or
    /// the browser).
    #[must_use]
    pub fn into_http(self) -> HttpResponse {
        let mut headers = Headers::new();
        headers.append("Content-Type", "application/json");
        headers.append("Cache-Control", "no-store");
        HttpResponse {
            status: self.status,
            headers,
            body: self.body.into_bytes(),
        }
    }
}

impl fmt::Debug for RouteResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteResponse")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

#[derive(Serialize)]
struct SuccessBody<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    expires_at: u64,
    expires_in: u64,
    token_type: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    code: &'a str,
}

#[derive(Serialize)]
struct MfaBody<'a> {
    error: &'static str,
    error_description: &'a str,
    mfa_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_requirements: Option<Value>,
}

/// The route's response for the outcome of a get-access-token call at
/// `now`.
pub fn access_token_response(
    outcome: Result<&AccessTokenInfo, &Error>,
    now: UnixTime,
) -> RouteResponse {
    let (status, body) = match outcome {
        Ok(token) => (
            200,
            serde_json::to_string(&SuccessBody {
                token: token.token.secret(),
                scope: token.scope.as_deref(),
                expires_at: token.expires_at.as_secs(),
                expires_in: token.expires_at.saturating_duration_since(now).as_secs(),
                token_type: token.token_type.as_str(),
            }),
        ),
        Err(error @ Error::MfaRequired(mfa)) => {
            let default_description = error.to_string();
            (
                403,
                serde_json::to_string(&MfaBody {
                    error: "mfa_required",
                    error_description: mfa.description.as_deref().unwrap_or(&default_description),
                    mfa_token: mfa.mfa_token.as_ref().map_or("", MfaToken::secret),
                    mfa_requirements: mfa.mfa_requirements.as_deref().map(|raw| {
                        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()))
                    }),
                }),
            )
        }
        Err(error) => (
            401,
            serde_json::to_string(&ErrorBody {
                error: ErrorDetail {
                    message: &error.to_string(),
                    code: error.code(),
                },
            }),
        ),
    };
    RouteResponse {
        status,
        // Serialising these plain structs cannot fail; an empty object is
        // the harmless fallback.
        body: body.unwrap_or_else(|_| String::from("{}")),
    }
}

/// The message of [`RouteError::UnexpectedResponse`], as the SDK's client
/// helper words it.
pub const UNEXPECTED_MESSAGE: &str =
    "An unexpected error occurred while trying to fetch the access token.";

/// What a call to the route can fail with, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// 403 `mfa_required`. Code `mfa_required`.
    #[error("Multi-factor authentication is required.")]
    MfaRequired(MfaRequired),
    /// The route reported an error (`{"error":{"message","code"}}`, or a
    /// flat `error` / `error_description`). Code: the route's code (e.g.
    /// `missing_session`, `failed_to_refresh_token`).
    #[error("{message} ({code}, HTTP {status})")]
    AccessToken {
        /// The HTTP status.
        status: u16,
        /// The route's error code.
        code: String,
        /// The route's message.
        message: String,
    },
    /// Not JSON, or JSON that is neither a token nor an error. Code
    /// `unexpected_response`.
    #[error("An unexpected error occurred while trying to fetch the access token. (HTTP {status})")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
    },
    /// A 200 whose token data is unusable. Code `invalid_response`.
    #[error("invalid access token response: {0}")]
    Malformed(&'static str),
    /// The response exceeds a limit. Code `response_limit_exceeded`.
    #[error("access token response refused: {0}")]
    Limit(ResponseError),
}

impl RouteError {
    /// A machine-readable code: the route's own for
    /// [`RouteError::AccessToken`], otherwise `mfa_required`,
    /// `unexpected_response`, `invalid_response` or
    /// `response_limit_exceeded`.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            RouteError::MfaRequired(_) => "mfa_required",
            RouteError::AccessToken { code, .. } => code,
            RouteError::UnexpectedResponse { .. } => "unexpected_response",
            RouteError::Malformed(_) => "invalid_response",
            RouteError::Limit(_) => "response_limit_exceeded",
        }
    }
}

/// Reads the route's response back into the token, or the error it
/// reported.
///
/// # Errors
/// A [`RouteError`].
pub fn parse_access_token_response(
    response: &HttpResponse,
    limits: &Limits,
) -> Result<AccessTokenInfo, RouteError> {
    limits.check_response(response).map_err(RouteError::Limit)?;
    let status = response.status;
    if json_depth_exceeds(&response.body, limits.max_json_depth) {
        return Err(RouteError::Limit(ResponseError::Malformed {
            status,
            reason: "JSON nesting is deeper than the limit",
        }));
    }
    let Ok(Value::Object(body)) = crate::limits::from_json_slice::<Value>(&response.body) else {
        return Err(RouteError::UnexpectedResponse { status });
    };
    if response.is_success() {
        return token_from(&body, limits);
    }
    let text = |object: &Map<String, Value>, name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    if status == 403 && text(&body, "error").as_deref() == Some("mfa_required") {
        return Err(RouteError::MfaRequired(MfaRequired {
            description: text(&body, "error_description"),
            mfa_token: text(&body, "mfa_token").map(MfaToken::new),
            mfa_requirements: body.get("mfa_requirements").map(Value::to_string),
        }));
    }
    let (code, message) = match body.get("error") {
        Some(Value::Object(detail)) => (text(detail, "code"), text(detail, "message")),
        Some(Value::String(code)) => (Some(code.clone()), text(&body, "error_description")),
        _ => return Err(RouteError::UnexpectedResponse { status }),
    };
    Err(RouteError::AccessToken {
        status,
        code: code.unwrap_or_else(|| String::from("unknown_error")),
        message: message.unwrap_or_else(|| String::from(UNEXPECTED_MESSAGE)),
    })
}

fn token_from(body: &Map<String, Value>, limits: &Limits) -> Result<AccessTokenInfo, RouteError> {
    let token = match body.get("token") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= limits.max_token_bytes => {
            AccessToken::new(s.as_str())
        }
        Some(Value::String(s)) if !s.is_empty() => {
            return Err(RouteError::Malformed("token is longer than the limit"));
        }
        _ => return Err(RouteError::Malformed("token is missing or not a string")),
    };
    let expires_at =
        body.get("expires_at")
            .and_then(seconds_from_json)
            .ok_or(RouteError::Malformed(
                "expires_at is missing or not a number",
            ))?;
    let scope = match body.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(RouteError::Malformed("scope is not a string")),
    };
    let token_type = match body.get("token_type") {
        None | Some(Value::Null) => TokenType::Bearer,
        Some(Value::String(s)) if !s.is_empty() => TokenType::parse(s),
        Some(_) => return Err(RouteError::Malformed("token_type is not a string")),
    };
    Ok(AccessTokenInfo {
        token,
        expires_at: UnixTime::from_secs(expires_at),
        scope,
        audience: None,
        token_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn info(scope: Option<&str>) -> AccessTokenInfo {
        AccessTokenInfo {
            token: AccessToken::new("at-123"),
            expires_at: UnixTime::from_secs(1_700_000_600),
            scope: scope.map(String::from),
            audience: Some("https://api.example.com".into()),
            token_type: TokenType::Bearer,
        }
    }

    const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

    #[test]
    fn success_body_exact() {
        let r = access_token_response(Ok(&info(Some("openid read:data"))), NOW);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            r#"{"token":"at-123","scope":"openid read:data","expires_at":1700000600,"expires_in":600,"token_type":"Bearer"}"#
        );
        // No scope; already expired gives expires_in 0, never negative.
        let mut dpop = info(None);
        dpop.token_type = TokenType::DPoP;
        let r = access_token_response(Ok(&dpop), UnixTime::from_secs(1_800_000_000));
        assert_eq!(
            r.body,
            r#"{"token":"at-123","expires_at":1700000600,"expires_in":0,"token_type":"DPoP"}"#
        );
        assert!(!format!("{r:?}").contains("at-123"));
        let http = r.into_http();
        assert_eq!(http.headers.get("content-type"), Some("application/json"));
        assert_eq!(http.headers.get("cache-control"), Some("no-store"));
    }

    #[test]
    fn error_bodies_exact() {
        let r = access_token_response(Err(&Error::MissingSession), NOW);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            r#"{"error":{"message":"The user does not have an active session.","code":"missing_session"}}"#
        );
        let r = access_token_response(
            Err(&Error::MissingRefreshToken {
                access_token_expired: true,
            }),
            NOW,
        );
        assert_eq!(
            r.body,
            r#"{"error":{"message":"The access token has expired and a refresh token was not provided. The user needs to re-authenticate.","code":"missing_refresh_token"}}"#
        );
    }

    #[test]
    fn mfa_body_exact() {
        let mfa = MfaRequired {
            description: Some("Multifactor authentication required".into()),
            mfa_token: Some(MfaToken::new("mfa-1")),
            mfa_requirements: Some(r#"{"challenge":[{"type":"otp"}]}"#.into()),
        };
        let r = access_token_response(Err(&Error::MfaRequired(mfa)), NOW);
        assert_eq!(r.status, 403);
        assert_eq!(
            r.body,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-1","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#
        );
        let bare = MfaRequired {
            description: None,
            mfa_token: None,
            mfa_requirements: None,
        };
        let r = access_token_response(Err(&Error::MfaRequired(bare)), NOW);
        assert_eq!(
            r.body,
            r#"{"error":"mfa_required","error_description":"Multi-factor authentication is required.","mfa_token":""}"#
        );
    }

    #[test]
    fn client_reads_back_what_the_server_wrote() {
        let limits = Limits::default();
        let original = info(Some("openid"));
        let http = access_token_response(Ok(&original), NOW).into_http();
        let back = parse_access_token_response(&http, &limits).unwrap();
        assert_eq!(back.token.secret(), "at-123");
        assert_eq!(back.expires_at, original.expires_at);
        assert_eq!(back.scope.as_deref(), Some("openid"));
        assert_eq!(back.token_type, TokenType::Bearer);
        assert_eq!(back.audience, None);

        let http = access_token_response(Err(&Error::SessionExpired), NOW).into_http();
        let e = parse_access_token_response(&http, &limits).unwrap_err();
        assert_eq!(e.code(), "session_expired");
        assert_eq!(
            e,
            RouteError::AccessToken {
                status: 401,
                code: "session_expired".into(),
                message: "The session has expired and the user must re-authenticate.".into()
            }
        );

        let mfa = MfaRequired {
            description: Some("step up".into()),
            mfa_token: Some(MfaToken::new("mfa-1")),
            mfa_requirements: Some(r#"{"challenge":[]}"#.into()),
        };
        let http = access_token_response(Err(&Error::MfaRequired(mfa.clone())), NOW).into_http();
        assert_eq!(
            parse_access_token_response(&http, &limits).unwrap_err(),
            RouteError::MfaRequired(mfa)
        );
    }

    #[test]
    fn client_handles_odd_responses() {
        let limits = Limits::default();
        let parse = |status, body: &str| {
            parse_access_token_response(&HttpResponse::new(status, body), &limits)
        };
        let e = parse(500, "<html>").unwrap_err();
        assert_eq!(e, RouteError::UnexpectedResponse { status: 500 });
        assert!(e.to_string().contains("HTTP 500"));
        assert_eq!(
            parse(200, "<html>").unwrap_err().code(),
            "unexpected_response"
        );
        assert_eq!(parse(404, "{}").unwrap_err().code(), "unexpected_response");
        // A flat error.
        let e = parse(
            401,
            r#"{"error":"login_required","error_description":"Log in"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "login_required");
        assert!(e.to_string().starts_with("Log in"));
        // A 403 that is not MFA.
        assert_eq!(
            parse(403, r#"{"error":{"code":"forbidden","message":"no"}}"#)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        // An error object without a code.
        assert_eq!(
            parse(401, r#"{"error":{}}"#).unwrap_err().code(),
            "unknown_error"
        );
        // Bad success bodies.
        assert_eq!(
            parse(200, r#"{"expires_at":1}"#).unwrap_err().code(),
            "invalid_response"
        );
        assert_eq!(
            parse(200, r#"{"token":"t"}"#).unwrap_err().code(),
            "invalid_response"
        );
        assert_eq!(
            parse(200, r#"{"token":"t","expires_at":1,"scope":5}"#)
                .unwrap_err()
                .code(),
            "invalid_response"
        );
        let ok = parse(200, r#"{"token":"t","expires_at":"5","token_type":"dpop"}"#).unwrap();
        assert_eq!(ok.token_type, TokenType::DPoP);
        assert_eq!(ok.expires_at, UnixTime::from_secs(5));
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(
            parse(200, &format!(r#"{{"token":"t","x":{deep}}}"#))
                .unwrap_err()
                .code(),
            "response_limit_exceeded"
        );
    }

    #[test]
    fn query_round_trip() {
        let q = AccessTokenQuery::parse(
            "/auth/access-token?audience=https%3A%2F%2Fapi.example.com%2F&scope=read+write&mergeScopes=false",
        );
        assert_eq!(q.audience.as_deref(), Some("https://api.example.com/"));
        assert_eq!(q.scope.as_deref(), Some("read write"));
        assert_eq!(q.merge_scopes, Some(false));
        let request = q.token_request();
        assert_eq!(request.audience, Some("https://api.example.com/"));
        assert_eq!(request.scope, Some("read write"));
        assert_eq!(request.merge_scopes, Some(false));
        assert!(!request.force_refresh);
        assert_eq!(
            q.to_query_string(),
            "?audience=https%3A%2F%2Fapi.example.com%2F&scope=read+write&mergeScopes=false"
        );
        assert_eq!(AccessTokenQuery::parse(&q.to_query_string()), q);

        // Any value but "false" keeps the default; empty values are absent.
        let q = AccessTokenQuery::parse("mergeScopes=true&audience=");
        assert_eq!(q, AccessTokenQuery::default());
        assert_eq!(q.to_query_string(), "");
        assert_eq!(
            AccessTokenQuery::parse("/auth/access-token"),
            AccessTokenQuery::default()
        );
    }
}
