//! `POST /auth/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0
//! (stateful mode only; served when the backend keeps logout marks).
//!
//! ```text
//! authorization server ─► POST logout_token=<JWT> (form)
//!   logout_token_from_form ─► the issuer's JWKS (cached; fetched on a
//!     cold cache or an unknown kid, rate-limited) ─► LogoutTokenValidator
//!     (signature, iss, aud, iat window, events, sub/sid, no nonce)
//!   ─► jti recorded once in the shared marks (a replay: 400 jti_replayed)
//!   ─► a "logged out at" mark on the sid (else the sub)             200
//!   any refusal: 400 {"error":"invalid_request","error_description":<code>}
//!   keys or marks store unavailable: 503 (nothing ended; the server may retry)
//!   no marks (not stateful, or a backend without them): 501
//! every instance, on its next request: the session's marks ─► no session
//! ```
//!
//! Both answers carry `Cache-Control: no-store` (§2.8).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use tokenkeeper::id_token::{Jwks, JwksCache, KeyLookup};
use tokenkeeper::logout_token::{
    LogoutTokenError, LogoutTokenValidator, backchannel_logout_response, logout_token_from_form,
};
use tokenkeeper::store::logout_marks::{self, DEFAULT_MARK_RETENTION};
use tokenkeeper::{HttpRequest, HttpResponse, UnixTime};

use crate::Auth;
use crate::auth::now_secs;
use crate::stateful::on_blocking_pool;

/// The route's path (the SDK's `/auth/backchannel-logout`).
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/auth/backchannel-logout";

/// The issuer's keys for logout tokens.
#[derive(Debug)]
pub(crate) struct Backchannel {
    jwks: Option<Mutex<JwksCache>>,
}

impl Backchannel {
    /// For the discovered `jwks_uri` (none: every logout token is refused
    /// with `invalid_jwks`).
    pub(crate) fn new(jwks_uri: Option<&str>) -> Self {
        Backchannel {
            jwks: jwks_uri
                .and_then(|uri| JwksCache::new(uri).ok())
                .map(Mutex::new),
        }
    }
}

pub(crate) async fn backchannel_logout(State(auth): State<Auth>, body: Bytes) -> Response {
    let refused = match end_sessions(&auth, &body).await {
        Ok(()) => None,
        Err(Refusal::Token(error)) => Some(error),
        Err(Refusal::Unavailable) => {
            return (StatusCode::NOT_IMPLEMENTED, [("cache-control", "no-store")]).into_response();
        }
        // Not the token's fault: the server may send it again later.
        Err(Refusal::Failed) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("cache-control", "no-store")],
            )
                .into_response();
        }
    };
    to_axum(backchannel_logout_response(refused.as_ref()))
}

enum Refusal {
    Token(LogoutTokenError),
    /// No shared marks (not stateful, or a backend without them): 501.
    Unavailable,
    /// The issuer's keys could not be fetched, or the marks store failed:
    /// 503, nothing ended.
    Failed,
}

impl From<LogoutTokenError> for Refusal {
    fn from(error: LogoutTokenError) -> Self {
        Refusal::Token(error)
    }
}

async fn end_sessions(auth: &Auth, body: &[u8]) -> Result<(), Refusal> {
    let inner = &auth.inner;
    let (marks, blocks) = inner
        .backend
        .as_ref()
        .and_then(|backend| Some((backend.logout_marks()?, backend.blocks())))
        .ok_or(Refusal::Unavailable)?;
    let token = logout_token_from_form(body)?;
    let now = UnixTime::from_secs(now_secs());
    let jwks = keys_for(auth, &token, now).await?;
    let validated = LogoutTokenValidator::new(&inner.metadata.issuer, &inner.client_id, &jwks)
        .validate(&token, now)?;
    let write = move || {
        let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner);
        match marks.record_once(&validated.replay_key(), validated.remember_until(), now) {
            Ok(true) => {}
            Ok(false) => return Err(Refusal::Token(LogoutTokenError::Replayed)),
            Err(_) => return Err(Refusal::Failed),
        }
        logout_marks::end_sessions(&mut *marks, validated.target(), now, DEFAULT_MARK_RETENTION)
            .map_err(|_| Refusal::Failed)
    };
    // Marks kept in a store that may block are written on the blocking
    // pool (see `SessionBackend::blocks`).
    if blocks {
        on_blocking_pool(write)
            .await
            .unwrap_or(Err(Refusal::Failed))
    } else {
        write()
    }
}

/// The keys to check `token` with, fetched as the cache asks (at most
/// twice: a cold cache, then one refetch for an unknown `kid`). One fetch
/// at a time: a request that finds another's fetch in flight waits for it
/// (polling the cache, within [`FETCH_TIMEOUT`]) instead of fetching again.
/// A token the keys refuse is the token's fault (400); keys that cannot be
/// had are not (503).
async fn keys_for(auth: &Auth, token: &str, now: UnixTime) -> Result<Jwks, Refusal> {
    let unavailable = || Refusal::Failed;
    let cache = auth
        .inner
        .backchannel
        .jwks
        .as_ref()
        .ok_or_else(unavailable)?;
    let limits = tokenkeeper::Limits::default();
    let give_up = tokio::time::Instant::now() + FETCH_TIMEOUT;
    let mut fetches = 0;
    loop {
        // Decide under the lock, fetch without it.
        let request = {
            let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.lookup(token, now) {
                KeyLookup::Ready(jwks) => return Ok(jwks.clone()),
                KeyLookup::Refused(error) => {
                    return Err(Refusal::Token(LogoutTokenError::from(error)));
                }
                KeyLookup::Fetch if fetches < 2 => cache.poll_request(now),
                _ => return Err(unavailable()),
            }
        };
        let Some(request) = request else {
            // Another request's fetch is in flight: its answer serves this
            // one too.
            if tokio::time::Instant::now() >= give_up {
                return Err(unavailable());
            }
            tokio::time::sleep(IN_FLIGHT_POLL).await;
            continue;
        };
        fetches += 1;
        let response = send(auth.inner.driver.client(), &request, limits.max_body_bytes).await;
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        match response {
            Some(response) => {
                if cache.handle_response(&response, now, &limits).is_err() {
                    return Err(unavailable());
                }
            }
            None => {
                cache.handle_transport_error();
                return Err(unavailable());
            }
        }
    }
}

/// The longest a logout request fetches or waits for the issuer's keys.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a request waiting for another's JWKS fetch looks again.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(20);

/// `GET` of the JWKS: the status and at most `max_body + 1` bytes of body
/// (the cache refuses a longer one), within [`FETCH_TIMEOUT`].
async fn send(
    client: &reqwest::Client,
    request: &HttpRequest,
    max_body: usize,
) -> Option<HttpResponse> {
    let mut call = client.get(&request.url).timeout(FETCH_TIMEOUT);
    for (name, value) in request.headers.iter() {
        call = call.header(name, value);
    }
    let mut response = call.send().await.ok()?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > max_body {
            break;
        }
    }
    Some(HttpResponse::new(status, body))
}

fn to_axum(response: HttpResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = response;
    let mut out = (status, std::mem::take(&mut response.body)).into_response();
    for (name, value) in response.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}
