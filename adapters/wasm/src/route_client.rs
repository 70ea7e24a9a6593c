//! The browser half of the web integration, as the seed SDK's client-side
//! `getAccessToken()`: ask the app's own `/auth/access-token` route (which
//! holds the session in its encrypted cookie) for an access token.
//!
//! ```text
//! page ─► get_access_token_from_route("/auth/access-token", &query, timeout)
//!            GET route?audience=…&scope=…&mergeScopes=false   (the session cookie
//!            goes with it: fetch's default credentials, same-origin)
//!        ◄─ 200 {token, expires_at, …}       ─► Ok(AccessTokenInfo)
//!        ◄─ 401 {"error":{code,message}}     ─► Err(RouteTokenError::Route(AccessToken{..}))
//!        ◄─ 403 mfa_required                  ─► Err(RouteTokenError::Route(MfaRequired))
//!        ◄─ no response / too large / timeout ─► Err(RouteTokenError::Fetch(..))
//! ```
//!
//! Nothing is stored in the browser: each call asks the route, which
//! answers from the session's cache (or refreshes on the server). The
//! response is read with the core's client side of the route contract
//! ([`tokenkeeper::route::parse_access_token_response`]), so the typed
//! errors are the route's own codes (`missing_session`,
//! `failed_to_refresh_token`, …).

use tokenkeeper::Limits;
use tokenkeeper::route::{AccessTokenQuery, RouteError, parse_access_token_response};
use tokenkeeper::{AccessTokenInfo, Headers, HttpRequest};

use crate::Error;

/// Why the route gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteTokenError {
    /// The route answered with an error (or something that is not the
    /// contract): see [`RouteError::code`] (`missing_session` when the
    /// user is not logged in).
    #[error("the access-token route refused")]
    Route(#[source] RouteError),
    /// No usable response: network failure, timeout, oversized body.
    #[error("the access-token route could not be reached")]
    Fetch(#[source] Error),
}

impl RouteTokenError {
    /// A stable code: the route's ([`RouteError::code`]) or the
    /// transport's ([`Error::code`]).
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            RouteTokenError::Route(e) => e.code(),
            RouteTokenError::Fetch(e) => e.code(),
        }
    }
}

/// The request for the route at `route_url` (absolute, or relative to the
/// page in a browser) with `query`.
#[must_use]
pub fn route_request(route_url: &str, query: &AccessTokenQuery) -> HttpRequest {
    let mut headers = Headers::new();
    headers.append("accept", "application/json");
    HttpRequest {
        method: tokenkeeper::Method::GET,
        url: format!("{route_url}{}", query.to_query_string()),
        headers,
        body: Vec::new(),
    }
}

/// Asks the app's access-token route at `route_url` for a token for
/// `query` (`audience`, `scope`, `mergeScopes`), within `timeout`. The
/// request carries the page's cookies for its own origin (fetch's default
/// `credentials: "same-origin"`), never a token; the token is returned,
/// not kept.
///
/// # Errors
/// [`RouteTokenError::Route`] with the route's error,
/// [`RouteTokenError::Fetch`] when no response could be read.
#[cfg(target_arch = "wasm32")]
pub async fn get_access_token_from_route(
    route_url: &str,
    query: &AccessTokenQuery,
    timeout: core::time::Duration,
) -> Result<AccessTokenInfo, RouteTokenError> {
    let limits = Limits::default();
    let request = route_request(route_url, query);
    let response = crate::fetch::fetch_with_limit(&request, timeout, limits.max_body_bytes)
        .await
        .map_err(RouteTokenError::Fetch)?;
    read_route_response(&response, &limits)
}

/// The token or the error in the route's `response` (the target-independent
/// half of [`get_access_token_from_route`]).
///
/// # Errors
/// [`RouteTokenError::Route`].
pub fn read_route_response(
    response: &tokenkeeper::HttpResponse,
    limits: &Limits,
) -> Result<AccessTokenInfo, RouteTokenError> {
    parse_access_token_response(response, limits).map_err(RouteTokenError::Route)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use tokenkeeper::HttpResponse;

    #[test]
    fn the_query_goes_on_the_route() {
        let query = AccessTokenQuery {
            audience: Some("https://api2.example.com".into()),
            scope: Some("read:data write:data".into()),
            merge_scopes: Some(false),
        };
        let request = route_request("/auth/access-token", &query);
        assert_eq!(
            request.url,
            "/auth/access-token?audience=https%3A%2F%2Fapi2.example.com&scope=read%3Adata+write%3Adata&mergeScopes=false"
        );
        assert!(request.body.is_empty());
        assert_eq!(route_request("/t", &AccessTokenQuery::default()).url, "/t");
    }

    #[test]
    fn tokens_and_typed_errors() {
        let limits = Limits::default();
        let ok = HttpResponse::new(
            200,
            r#"{"token":"at-1","scope":"read:data","expires_at":2000000000,"expires_in":60,"token_type":"Bearer"}"#,
        );
        let info = read_route_response(&ok, &limits).unwrap();
        assert_eq!(info.token.secret(), "at-1");
        let missing = HttpResponse::new(
            401,
            r#"{"error":{"message":"The user does not have an active session.","code":"missing_session"}}"#,
        );
        let error = read_route_response(&missing, &limits).unwrap_err();
        assert_eq!(error.code(), "missing_session");
        let html = HttpResponse::new(500, "<html>oops</html>");
        assert_eq!(
            read_route_response(&html, &limits).unwrap_err().code(),
            "unexpected_response"
        );
    }
}
