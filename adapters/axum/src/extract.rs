//! In handlers: the [`AuthLayer`] (required by the extractors), the
//! [`User`] and [`Token`] extractors, and [`Api`] to call an API with the
//! token attached.
//!
//! ```text
//! request ─► AuthLayer: Auth::load once ─► one RequestSession into the extensions
//!              (require_login: no session ─► 401 or redirect to login)
//!   handler(User, Token, Api, …) ─► each refresh runs on the cell's current
//!              session, so a second one starts from the first's rotated token
//! response ◄─ AuthLayer: changed ─► Set-Cookie (+ no-cache); session_expired ─►
//!              delete; unchanged + rolling ─► re-set (the expiry moves forward)
//! ```
//!
//! The routes' own responses ([`Auth::router`]) write their cookies
//! themselves; the layer leaves them alone.
//!
//! A missing session becomes 401 `missing_session` or a redirect to the
//! login route with `returnTo` = the request's path and query
//! ([`MissingSession`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use tokenkeeper::{AccessTokenInfo, ConnectionRequest, TokenRequest};

use crate::Auth;
use crate::auth::now_secs;
use crate::config::MissingSession;
use crate::cookies::RequestCookies;
use crate::error::{Error, error_response};
use crate::request_session::RequestSession;
use crate::routes::{RouteResponse, append_cookies, redirect};

/// The layer the extractors need: it hands them the [`Auth`] and writes
/// back the sessions they change. [`Auth::require_login`] also refuses
/// requests without a session.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Auth,
    require_login: bool,
}

impl Auth {
    /// The layer for the extractors (sessions optional).
    #[must_use]
    pub fn layer(&self) -> AuthLayer {
        AuthLayer {
            auth: self.clone(),
            require_login: false,
        }
    }

    /// The layer, refusing requests without a session (401, or a redirect
    /// to login: [`MissingSession`]).
    #[must_use]
    pub fn require_login(&self) -> AuthLayer {
        AuthLayer {
            auth: self.clone(),
            require_login: true,
        }
    }

    /// The answer to a request without a session.
    pub(crate) fn missing(&self, path_and_query: &str) -> Response {
        match self.inner.missing_session {
            MissingSession::RedirectToLogin => {
                let return_to: String =
                    url::form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
                redirect(
                    &format!("{}?returnTo={return_to}", self.inner.routes.login),
                    Vec::new(),
                )
            }
            _ => error_response(
                StatusCode::UNAUTHORIZED,
                "missing_session",
                "The user does not have an active session.",
            ),
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> tower_service::Service<Request> for AuthService<S>
where
    S: tower_service::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let auth = self.layer.auth.clone();
        let require_login = self.layer.require_login;
        // The request's cookies: to find its session, and to replace or
        // delete the chunks it has.
        let mut cookies = HeaderMap::new();
        for value in request.headers().get_all(header::COOKIE) {
            cookies.append(header::COOKIE, value.clone());
        }
        // The clone that was made ready is the one called (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // A stateful backend that may block is read on the blocking
            // pool, not on this worker.
            let loaded = auth
                .load_async(&RequestCookies::from_headers(&cookies), now_secs())
                .await;
            if require_login && loaded.session.is_none() {
                let path = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                return Ok(auth.missing(&path));
            }
            let session = RequestSession::new(loaded);
            request.extensions_mut().insert(auth.clone());
            request.extensions_mut().insert(session.clone());
            let mut response = inner.call(request).await?;
            let route = response.extensions().get::<RouteResponse>().is_some();
            if route {
                return Ok(response);
            }
            let rolling = auth.inner.cookie.durations().rolling;
            match session
                .set_cookies(
                    &auth,
                    &RequestCookies::from_headers(&cookies),
                    now_secs(),
                    rolling,
                )
                .await
            {
                Ok(set_cookies) => append_cookies(&mut response, set_cookies),
                Err(e) => response = e.into_response(),
            }
            Ok(response)
        })
    }
}

/// What the layer put in the extensions, for a request with a session.
// The rejection is axum's `Response`, as extractors return it.
#[allow(clippy::result_large_err)]
async fn context(parts: &Parts) -> Result<(Auth, RequestSession), Response> {
    let (Some(auth), Some(session)) = (
        parts.extensions.get::<Auth>().cloned(),
        parts.extensions.get::<RequestSession>().cloned(),
    ) else {
        return Err(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_configuration",
            "the tokenkeeper-axum extractors need Auth::layer() or Auth::require_login()",
        ));
    };
    if !session.is_logged_in().await {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        return Err(auth.missing(path));
    }
    Ok((auth, session))
}

/// The logged-in user: the session's claims (the ID token's, as the SDK
/// keeps them).
#[derive(Debug, Clone)]
pub struct User {
    /// The claims.
    pub claims: Value,
}

impl User {
    /// The `sub` claim.
    #[must_use]
    pub fn sub(&self) -> &str {
        self.claims.get("sub").and_then(Value::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (auth, session) = context(parts).await?;
        match session.user().await {
            Some(claims) => Ok(User { claims }),
            // Another extractor of the request saw the session end.
            None => Err(auth.missing(parts.uri.path_and_query().map_or("/", |p| p.as_str()))),
        }
    }
}

/// Which API and scope a [`Token`] is for (the SDK's `getAccessToken`
/// options): implement it on a marker type.
pub trait TokenSpec: Send + Sync + 'static {
    /// The API (`None`: the configured default).
    const AUDIENCE: Option<&'static str> = None;
    /// The scope (`None`: the configured one for the API).
    const SCOPE: Option<&'static str> = None;
}

/// The configured default API and scope.
#[derive(Debug)]
pub struct DefaultApi;

impl TokenSpec for DefaultApi {}

/// An access token for the API of `A`, refreshed when needed (the new
/// session goes out with the response).
pub struct Token<A: TokenSpec = DefaultApi> {
    /// The token.
    pub info: AccessTokenInfo,
    _api: std::marker::PhantomData<A>,
}

impl<A: TokenSpec> std::fmt::Debug for Token<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.info.expires_at)
            .finish_non_exhaustive()
    }
}

/// The answer to a failed token request: the route contract's body.
fn token_error(error: &crate::driver::DriverError) -> Response {
    let core = match error {
        tokenkeeper_reqwest::Error::Core(e) => e.clone(),
        _ => tokenkeeper::Error::Transport,
    };
    let route = tokenkeeper::route::access_token_response(
        Err(&core),
        tokenkeeper::UnixTime::from_secs(now_secs()),
    );
    (
        StatusCode::from_u16(route.status).unwrap_or(StatusCode::UNAUTHORIZED),
        [(http::header::CONTENT_TYPE, "application/json")],
        route.body,
    )
        .into_response()
}

impl<S: Send + Sync, A: TokenSpec> FromRequestParts<S> for Token<A> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (auth, session) = context(parts).await?;
        let mut request = TokenRequest::new();
        request.audience = A::AUDIENCE;
        request.scope = A::SCOPE;
        let driver = &auth.inner.driver;
        match session
            .run(&auth, |source| driver.get_access_token(source, &request))
            .await
        {
            Ok(info) => Ok(Token {
                info,
                _api: std::marker::PhantomData,
            }),
            Err(e) => Err(token_error(&e)),
        }
    }
}

/// Calls APIs for the logged-in user: the token attached (Bearer, or DPoP
/// with one nonce retry, through the core's `authorize`), refreshed when
/// needed or when the API rejects it.
///
/// The calls of one request share its session (and the extractors'):
/// they run one at a time, each on the session the last one left.
pub struct Api {
    auth: Auth,
    session: RequestSession,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// Sends `request` with a token for `token_request`; a refreshed
    /// session goes out with the handler's response.
    ///
    /// # Errors
    /// [`Error::Driver`] when no token could be had or the request failed.
    pub async fn send(
        &self,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, Error> {
        let driver = &self.auth.inner.driver;
        Ok(self
            .session
            .run(&self.auth, |source| {
                driver.send_authorized(source, token_request, request)
            })
            .await?)
    }

    /// The shared HTTP client, to build requests with.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        self.auth.inner.driver.client()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Api {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (auth, session) = context(parts).await?;
        Ok(Api { auth, session })
    }
}

/// Token Vault for the logged-in user: the access tokens of the
/// federated connections (`google-oauth2`, `github`, …) they linked, as the
/// SDK's `getAccessTokenForConnection` gives them (cached in the session's
/// `connectionTokenSets`; an exchange's new session goes out with the
/// handler's response).
///
/// ```no_run
/// use tokenkeeper::ConnectionRequest;
/// use tokenkeeper_axum::Connections;
///
/// async fn calendar(connections: Connections) -> String {
///     match connections.token(&ConnectionRequest::new("google-oauth2")).await {
///         Ok(token) => format!("expires at {}", token.expires_at.as_secs()),
///         Err(error) => format!("no token: {error}"),
///     }
/// }
/// ```
pub struct Connections {
    auth: Auth,
    session: RequestSession,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}

impl Connections {
    /// The access token of `request.connection` (with its login hint).
    ///
    /// # Errors
    /// [`Error::Driver`] with the core's `failed_to_exchange_refresh_token`
    /// (the server refused the exchange), `missing_refresh_token`, or a
    /// transport error.
    pub async fn token(&self, request: &ConnectionRequest<'_>) -> Result<AccessTokenInfo, Error> {
        let driver = &self.auth.inner.driver;
        Ok(self
            .session
            .run(&self.auth, |source| {
                driver.get_connection_token(source, request)
            })
            .await?)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Connections {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (auth, session) = context(parts).await?;
        Ok(Connections { auth, session })
    }
}

#[cfg(test)]
mod send_checks {
    fn send<T: Send>(_: &T) {}

    /// Handlers' futures must be `Send`.
    #[allow(dead_code)]
    async fn api_send_is_send(api: super::Api, request: reqwest::Request) {
        let token_request = tokenkeeper::TokenRequest::new();
        let future = api.send(&token_request, request);
        send(&future);
        let _ = future.await;
    }
}
