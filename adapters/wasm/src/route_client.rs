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
//!
//! For a page's own JavaScript the call is exported by `wasm-bindgen`
//! (built as a `cdylib`, see `scripts/axum-web-wasm.sh`):
//!
//! ```text
//! import init, { getAccessTokenFromRoute } from './pkg/tokenkeeper_wasm.js';
//! await init();
//! const { token, tokenType, expiresAt, scope } = await getAccessTokenFromRoute(
//!   '/auth/access-token', { audience, scope, mergeScopes, timeoutMs });
//! // rejects with an Error named "RouteTokenError": { kind: "route" | "fetch",
//! //   code: "missing_session" | …, status: 401 | … | undefined, message }
//! ```

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

/// What the JavaScript error object of [`RouteTokenError`] carries
/// besides its message: `kind` (`"route"` when the route answered,
/// `"fetch"` when no answer could be read), `code`, and the HTTP `status`
/// when the route answered with one.
#[must_use]
pub fn error_fields(error: &RouteTokenError) -> (&'static str, &str, Option<u16>) {
    match error {
        RouteTokenError::Route(e) => {
            let status = match e {
                RouteError::MfaRequired(_) => Some(403),
                RouteError::AccessToken { status, .. }
                | RouteError::UnexpectedResponse { status } => Some(*status),
                // A 200 whose token is unusable, or an over-limit answer.
                _ => None,
            };
            ("route", e.code(), status)
        }
        RouteTokenError::Fetch(e) => ("fetch", e.code(), None),
    }
}

/// The page-facing export: `getAccessTokenFromRoute(routeUrl, options)`.
#[cfg(target_arch = "wasm32")]
mod js_export {
    use js_sys::{Object, Reflect};
    use tokenkeeper::AccessTokenInfo;
    use tokenkeeper::route::AccessTokenQuery;
    use wasm_bindgen::prelude::*;

    use super::{RouteTokenError, error_fields, get_access_token_from_route};

    /// The per-call timeout when the options give none (as the adapter's
    /// other requests).
    const DEFAULT_TIMEOUT_MS: f64 = 10_000.0;

    /// Asks the app's access-token route at `routeUrl` (relative to the
    /// page, e.g. `/auth/access-token`) for a token. `options`: optional
    /// `audience` and `scope` (strings), `mergeScopes` (boolean; `false`
    /// asks for exactly `scope`), `timeoutMs` (number, default 10000).
    /// Resolves to `{ token, tokenType, expiresAt, scope?, audience? }`;
    /// rejects with an `Error` named `RouteTokenError` carrying `kind`,
    /// `code` and `status` (see [`error_fields`]), or a `TypeError` for
    /// options of the wrong type. Nothing is kept in the page.
    #[wasm_bindgen(js_name = getAccessTokenFromRoute)]
    pub async fn get_access_token_from_route_js(
        route_url: String,
        options: JsValue,
    ) -> Result<JsValue, JsValue> {
        let (query, timeout) = read_options(&options)?;
        match get_access_token_from_route(&route_url, &query, timeout).await {
            Ok(info) => token_object(&info),
            Err(error) => Err(error_object(&error)?),
        }
    }

    fn read_options(
        options: &JsValue,
    ) -> Result<(AccessTokenQuery, core::time::Duration), JsValue> {
        let mut query = AccessTokenQuery::default();
        let mut timeout_ms = DEFAULT_TIMEOUT_MS;
        if options.is_undefined() || options.is_null() {
            return Ok((query, core::time::Duration::from_millis(timeout_ms as u64)));
        }
        if !options.is_object() {
            return Err(js_sys::TypeError::new("options must be an object").into());
        }
        let member = |name: &str| Reflect::get(options, &JsValue::from_str(name));
        let absent = |v: &JsValue| v.is_undefined() || v.is_null();
        let text = |name: &str| -> Result<Option<String>, JsValue> {
            let value = member(name)?;
            if absent(&value) {
                return Ok(None);
            }
            value
                .as_string()
                .map(Some)
                .ok_or_else(|| js_sys::TypeError::new(&format!("{name} must be a string")).into())
        };
        query.audience = text("audience")?;
        query.scope = text("scope")?;
        let merge = member("mergeScopes")?;
        if !absent(&merge) {
            let merge = merge
                .as_bool()
                .ok_or_else(|| js_sys::TypeError::new("mergeScopes must be a boolean"))?;
            // As the route: only `false` changes anything.
            query.merge_scopes = (!merge).then_some(false);
        }
        let timeout = member("timeoutMs")?;
        if !absent(&timeout) {
            timeout_ms = timeout
                .as_f64()
                .filter(|ms| ms.is_finite() && *ms > 0.0)
                .ok_or_else(|| js_sys::TypeError::new("timeoutMs must be a positive number"))?;
        }
        Ok((query, core::time::Duration::from_millis(timeout_ms as u64)))
    }

    fn set(object: &Object, name: &str, value: &JsValue) -> Result<(), JsValue> {
        Reflect::set(object, &JsValue::from_str(name), value).map(|_| ())
    }

    fn token_object(info: &AccessTokenInfo) -> Result<JsValue, JsValue> {
        let object = Object::new();
        set(&object, "token", &JsValue::from_str(info.token.secret()))?;
        set(
            &object,
            "tokenType",
            &JsValue::from_str(info.token_type.as_str()),
        )?;
        // Seconds since the epoch, as the route's `expires_at`.
        set(
            &object,
            "expiresAt",
            &JsValue::from_f64(info.expires_at.as_secs() as f64),
        )?;
        if let Some(scope) = &info.scope {
            set(&object, "scope", &JsValue::from_str(scope))?;
        }
        if let Some(audience) = &info.audience {
            set(&object, "audience", &JsValue::from_str(audience))?;
        }
        Ok(object.into())
    }

    fn error_object(error: &RouteTokenError) -> Result<JsValue, JsValue> {
        let (kind, code, status) = error_fields(error);
        // The message with its cause, as the route's own text says what
        // happened ("The user does not have an active session.").
        let message = match error {
            RouteTokenError::Route(e) => e.to_string(),
            RouteTokenError::Fetch(e) => format!("{error}: {e}"),
        };
        let object = js_sys::Error::new(&message);
        object.set_name("RouteTokenError");
        set(&object, "kind", &JsValue::from_str(kind))?;
        set(&object, "code", &JsValue::from_str(code))?;
        let status = status.map_or(JsValue::UNDEFINED, |s| JsValue::from_f64(f64::from(s)));
        set(&object, "status", &status)?;
        Ok(object.into())
    }
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

    #[test]
    fn the_javascript_error_fields() {
        let limits = Limits::default();
        let missing = HttpResponse::new(
            401,
            r#"{"error":{"message":"The user does not have an active session.","code":"missing_session"}}"#,
        );
        let error = read_route_response(&missing, &limits).unwrap_err();
        assert_eq!(
            error_fields(&error),
            ("route", "missing_session", Some(401))
        );
        let html = HttpResponse::new(502, "<html>bad gateway</html>");
        let error = read_route_response(&html, &limits).unwrap_err();
        assert_eq!(
            error_fields(&error),
            ("route", "unexpected_response", Some(502))
        );
        let no_token = HttpResponse::new(200, r#"{"token_type":"Bearer"}"#);
        let error = read_route_response(&no_token, &limits).unwrap_err();
        assert_eq!(error_fields(&error).2, None, "{error:?}");
        let timeout = RouteTokenError::Fetch(Error::Timeout);
        assert_eq!(error_fields(&timeout), ("fetch", "timeout", None));
    }
}

// The JavaScript face, in Node (`scripts/wasm-tests.sh run`, or
// `cargo test -p tokenkeeper-wasm --target wasm32-unknown-unknown --lib`
// with wasm-bindgen-test-runner): what a page's `catch` sees. The route's
// answers themselves are covered in a real browser by
// adapters/axum/tests/browser.rs.
#[cfg(all(test, target_arch = "wasm32"))]
mod js_tests {
    use js_sys::{Object, Reflect};
    use wasm_bindgen::{JsCast as _, JsValue};
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::js_export::get_access_token_from_route_js;

    fn member(value: &JsValue, name: &str) -> JsValue {
        Reflect::get(value, &JsValue::from_str(name)).unwrap()
    }

    fn options(members: &[(&str, JsValue)]) -> JsValue {
        let object = Object::new();
        for (name, value) in members {
            Reflect::set(&object, &JsValue::from_str(name), value).unwrap();
        }
        object.into()
    }

    #[wasm_bindgen_test]
    async fn no_answer_is_a_typed_fetch_error() {
        // An invalid URL: fetch rejects before any connection.
        let error = get_access_token_from_route_js(
            "http://[::1/auth/access-token".into(),
            JsValue::UNDEFINED,
        )
        .await
        .unwrap_err();
        let error = error.dyn_into::<js_sys::Error>().expect("an Error object");
        assert_eq!(String::from(error.name()), "RouteTokenError");
        assert_eq!(member(&error, "kind").as_string().as_deref(), Some("fetch"));
        assert_eq!(
            member(&error, "code").as_string().as_deref(),
            Some("transport_error")
        );
        assert!(member(&error, "status").is_undefined());
    }

    #[wasm_bindgen_test]
    async fn options_of_the_wrong_type_are_type_errors() {
        for bad in [
            JsValue::from_str("audience"),
            options(&[("audience", JsValue::from_f64(1.0))]),
            options(&[("scope", JsValue::TRUE)]),
            options(&[("mergeScopes", JsValue::from_str("false"))]),
            options(&[("timeoutMs", JsValue::from_f64(-1.0))]),
            options(&[("timeoutMs", JsValue::from_f64(f64::NAN))]),
        ] {
            let error = get_access_token_from_route_js("/auth/access-token".into(), bad.clone())
                .await
                .unwrap_err();
            assert!(
                error.is_instance_of::<js_sys::TypeError>(),
                "{bad:?}: {error:?}"
            );
        }
    }
}
