//! `GET /auth/access-token`: the core's route contract
//! ([`tokenkeeper::route`]): `audience`, `scope`, `mergeScopes=false`; 200
//! with the token, 401 `{"error":{"message","code"}}` (`missing_session`,
//! `failed_to_refresh_token`, …), 403 for `mfa_required`. `Set-Cookie`
//! and the no-cache headers only when the session changed (a refresh); a
//! `session_expired` answer also deletes the session.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokenkeeper::UnixTime;
use tokenkeeper::route::{AccessTokenQuery, access_token_response};

use super::append_cookies;
use crate::Auth;
use crate::auth::now_secs;
use crate::cookies::RequestCookies;

pub(super) async fn access_token(
    State(auth): State<Auth>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cookies = RequestCookies::from_headers(&headers);
    let now = now_secs();
    let mut loaded = auth.load_async(&cookies, now).await;
    let query = AccessTokenQuery::parse(query.as_deref().unwrap_or(""));
    let request = query.token_request();
    let mut set_cookies = Vec::new();
    let (route, write_error) = if loaded.session.is_none() {
        let error = tokenkeeper::Error::MissingSession;
        (
            access_token_response(Err(&error), UnixTime::from_secs(now)),
            None,
        )
    } else {
        let outcome = auth
            .inner
            .driver
            // The route needs only the id afterwards (to clear or persist).
            .get_access_token(auth.take_source(&mut loaded), &request)
            .await;
        // The route contract speaks the core's errors; the transport's
        // become the core's `transport_error`.
        let core_error = match &outcome.result {
            Err(tokenkeeper_reqwest::Error::Core(e)) => Some(e.clone()),
            Err(_) => Some(tokenkeeper::Error::Transport),
            Ok(_) => None,
        };
        let route = match (&outcome.result, &core_error) {
            (Ok(token), _) => access_token_response(Ok(token), UnixTime::from_secs(now)),
            (Err(_), Some(e)) => access_token_response(Err(e), UnixTime::from_secs(now)),
            (Err(_), None) => access_token_response(
                Err(&tokenkeeper::Error::Transport),
                UnixTime::from_secs(now),
            ),
        };
        let mut write_error = None;
        if core_error
            .as_ref()
            .is_some_and(|e| e.code() == "session_expired")
        {
            auth.clear(&loaded, &cookies, &mut set_cookies).await;
        } else if let Some(changed) = &outcome.changed
            && let Err(e) = auth.persist(
                changed,
                loaded.id.as_deref(),
                &cookies,
                now,
                &mut set_cookies,
            )
        {
            write_error = Some(e);
        }
        (route, write_error)
    };
    if let Some(e) = write_error {
        return axum::response::IntoResponse::into_response(e);
    }
    let mut response = Response::new(Body::from(route.body));
    *response.status_mut() = StatusCode::from_u16(route.status).unwrap_or(StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    append_cookies(&mut response, set_cookies);
    response
}
