//! `GET /auth/logout`: revokes the session's refresh token (best effort:
//! the user is logged out locally whatever the server says), clears the
//! session, and ends the server's session through its
//! `end_session_endpoint` (RP-initiated logout, with `id_token_hint`,
//! `client_id` and `post_logout_redirect_uri` = `returnTo` on this app)
//! when it has one; otherwise redirects to `returnTo` (same-origin only).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::HeaderMap;

use super::redirect;
use crate::Auth;
use crate::auth::now_secs;
use crate::cookies::RequestCookies;

pub(super) async fn logout(
    State(auth): State<Auth>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &auth.inner;
    let cookies = RequestCookies::from_headers(&headers);
    let loaded = auth.load_async(&cookies, now_secs()).await;
    let return_to = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "returnTo")
        .and_then(|(_, value)| auth.safe_return_to(&value))
        .unwrap_or_else(|| inner.post_logout_path.clone());
    let id_token = loaded
        .session
        .as_ref()
        .and_then(|s| s.token_set().id_token.as_ref())
        .map(|t| t.secret().to_owned());
    if loaded.session.is_some() {
        // The revocation's outcome changes nothing for the user.
        let _ = inner.driver.logout(auth.source(&loaded)).await;
    }
    let mut set_cookies = Vec::new();
    auth.clear(&loaded, &cookies, &mut set_cookies).await;
    let Some(end_session) = inner.metadata.end_session_endpoint.as_deref() else {
        return redirect(&return_to, set_cookies);
    };
    let Ok(mut url) = url::Url::parse(end_session) else {
        return redirect(&return_to, set_cookies);
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("client_id", &inner.client_id);
        query.append_pair("post_logout_redirect_uri", &auth.absolute(&return_to));
        if let Some(id_token) = &id_token {
            query.append_pair("id_token_hint", id_token);
        }
    }
    redirect(url.as_str(), set_cookies)
}
