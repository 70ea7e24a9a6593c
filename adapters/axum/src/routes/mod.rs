//! The routes, mounted with one call ([`Auth::router`]) at the configured
//! paths (the SDK's defaults: `/auth/login`, `/auth/callback`,
//! `/auth/logout`, `/auth/profile`, `/auth/access-token`).
//!
//! ```text
//! browser ─► /auth/login?returnTo=/page ─► 302 authorization endpoint (+ Set-Cookie __txn_{state})
//!         ◄─ server login, consent ─► /auth/callback?code&state&iss
//!            ─► 302 /page (+ Set-Cookie __session, delete __txn_{state})
//! page JS ─► /auth/access-token?audience=… ─► 200 {token, expires_at, …}
//! browser ─► /auth/logout ─► 302 end_session_endpoint (+ delete __session)
//! server  ─► POST /auth/backchannel-logout (stateful) ─► 200 / 400 (the sessions it names end)
//! ```

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};

use crate::Auth;

mod access_token;
pub(crate) mod backchannel_logout;
mod callback;
mod login;
mod logout;
mod profile;

impl Auth {
    /// The five routes, for any app state: merge them into the app's router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let routes = &self.inner.routes;
        let router = Router::new();
        // Back-channel logout ends sessions in the shared store: stateful
        // mode only.
        let router = if self.is_stateful() {
            router.route(
                backchannel_logout::BACKCHANNEL_LOGOUT_PATH,
                axum::routing::post(backchannel_logout::backchannel_logout),
            )
        } else {
            router
        };
        router
            .route(&routes.login, get(login::login))
            .route(&routes.callback, get(callback::callback))
            .route(&routes.logout, get(logout::logout))
            .route(&routes.profile, get(profile::profile))
            .route(&routes.access_token, get(access_token::access_token))
            .route_layer(axum::middleware::map_response(mark))
            .with_state(self.clone())
    }
}

/// Marks a route's response: it wrote (or deliberately did not write)
/// the session cookie itself, so the [`AuthLayer`](crate::AuthLayer)
/// around the routes must neither roll nor overwrite it (a callback's new
/// session, a logout's deletion, an unchanged `/auth/access-token`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteResponse;

async fn mark(mut response: Response) -> Response {
    response.extensions_mut().insert(RouteResponse);
    response
}

/// A `302 Found` to `location` with `set_cookies`, not cached.
pub(crate) fn redirect(location: &str, set_cookies: Vec<String>) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    append_cookies(&mut response, set_cookies);
    response
}

/// Appends `Set-Cookie` values and, when there are any, the SDK's no-cache
/// headers (a response that sets a session must not be cached).
pub(crate) fn append_cookies(response: &mut Response, set_cookies: Vec<String>) {
    if set_cookies.is_empty() {
        return;
    }
    let headers = response.headers_mut();
    for cookie in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
}
