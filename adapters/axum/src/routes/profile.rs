//! `GET /auth/profile`: the session's user claims as JSON, or 401 (empty
//! body, as the SDK) without a session. Never cached.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};

use crate::Auth;
use crate::auth::now_secs;
use crate::cookies::RequestCookies;

pub(super) async fn profile(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    let loaded = auth
        .load_async(&RequestCookies::from_headers(&headers), now_secs())
        .await;
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    match loaded.session.as_ref().and_then(|s| s.user()) {
        Some(user) => (no_store, axum::Json(user.clone())).into_response(),
        None => (StatusCode::UNAUTHORIZED, no_store).into_response(),
    }
}
