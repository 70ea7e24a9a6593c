//! `GET /auth/callback`: finishes a login. The transaction cookie of the
//! callback's `state` must be present (else 400 `missing_transaction`: a
//! replayed or foreign callback); it is deleted whatever happens. The core
//! checks `state`, `iss` (RFC 9207) and the server's `error` (400 with the
//! check's code), exchanges the code and validates the ID token. The new
//! session is written (500 `session_too_large` when it cannot be) and the
//! browser sent to the transaction's `returnTo`.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::{append_cookies, redirect};
use crate::Auth;
use crate::auth::now_secs;
use crate::cookies::RequestCookies;
use crate::error::{Error, error_response};
use crate::transaction::TransactionCookie;

pub(super) async fn callback(
    State(auth): State<Auth>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &auth.inner;
    let query = query.unwrap_or_default();
    let cookies = RequestCookies::from_headers(&headers);
    let now = now_secs();
    let state = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned());
    let Some(state) = state.filter(|s| !s.is_empty()) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "missing_state",
            "the callback has no state parameter",
        );
    };
    let attributes = inner.cookie.attributes();
    let delete_transaction = TransactionCookie::delete(attributes, &state);
    let Some(txn) = TransactionCookie::read(inner.cookie.key(), &cookies, &state, now) else {
        let mut response = error_response(
            StatusCode::BAD_REQUEST,
            "missing_transaction",
            "no login transaction for this state: the login expired, was finished already, or was started elsewhere",
        );
        append_cookies(&mut response, vec![delete_transaction]);
        return response;
    };
    let callback_url = format!("{}?{query}", auth.absolute(&inner.routes.callback));
    let mut set_cookies = vec![delete_transaction];
    let (session, id) = match inner
        .driver
        .login(auth.is_stateful(), &txn.transaction, &callback_url)
        .await
    {
        Ok(done) => done,
        Err(e) => {
            let mut response = Error::from(e).into_response();
            append_cookies(&mut response, set_cookies);
            return response;
        }
    };
    if let Err(e) = auth.persist(&session, id.as_deref(), &cookies, now, &mut set_cookies) {
        let mut response = e.into_response();
        append_cookies(&mut response, set_cookies);
        return response;
    }
    // Checked at login already; checked again so a forged cookie (with
    // the app's key) still cannot redirect away.
    let return_to = auth
        .safe_return_to(&txn.return_to)
        .unwrap_or_else(|| "/".into());
    redirect(&return_to, set_cookies)
}
