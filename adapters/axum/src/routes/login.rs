//! `GET /auth/login`: starts a login. Query: `returnTo` (same-origin only;
//! anything else becomes `/`), `audience`, `scope`, and any other
//! parameter passed on to the authorization request (one the flow sets
//! itself is refused with 400 `reserved_parameter`).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::login::LoginRequest;

use super::redirect;
use crate::Auth;
use crate::auth::now_secs;
use crate::driver::OsEntropy;
use crate::error::error_response;
use crate::transaction::TransactionCookie;

pub(super) async fn login(
    State(auth): State<Auth>,
    _headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let inner = &auth.inner;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let return_to = param("returnTo")
        .and_then(|r| auth.safe_return_to(r))
        .unwrap_or_else(|| "/".to_owned());
    let scope = param("scope").unwrap_or(&inner.scope);
    let audience = param("audience").or(inner.audience.as_deref());
    let Some(endpoint) = inner.metadata.authorization_endpoint.as_deref() else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_configuration",
            "no authorization endpoint",
        );
    };
    let redirect_uri = auth.absolute(&inner.routes.callback);
    let mut request = LoginRequest::new(endpoint, &inner.client_id, &redirect_uri).scope(scope);
    if let Some(audience) = audience {
        request = match inner.target {
            TargetParameter::Audience => request.audience(audience),
            TargetParameter::Resource => request.resource(audience),
            _ => request.audience(audience).resource(audience),
        };
    }
    for resource in &inner.login_resources {
        if Some(resource.as_str()) != audience {
            request = request.resource(resource);
        }
    }
    if let Some(jkt) = inner.driver.dpop_thumbprint() {
        request = request.dpop_jkt(jkt);
    }
    // The request's own parameters win over the configured ones.
    for (name, value) in &inner.authorization_params {
        if !pairs.iter().any(|(n, _)| n == name) {
            request = request.param(name, value);
        }
    }
    for (name, value) in &pairs {
        if !matches!(name.as_str(), "returnTo" | "audience" | "scope") {
            request = request.param(name, value);
        }
    }
    let (url, transaction) = match request.start(&mut OsEntropy) {
        Ok(started) => started,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    let cookie = TransactionCookie {
        transaction,
        return_to,
    };
    let Some(set_cookie) = cookie.write(inner.cookie.key(), inner.cookie.attributes(), now_secs())
    else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "transaction_error",
            "the login transaction could not be encrypted",
        );
    };
    redirect(&url, vec![set_cookie])
}
