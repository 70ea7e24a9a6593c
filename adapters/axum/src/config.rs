//! The integration's configuration: the server, the client, the app's base
//! URL and secret, the routes' paths, the session's cookie and lifetime.
//!
//! ```text
//! Auth::builder(issuer, client_id, base_url, secret)
//!     .client_secret(..).scope(..).audience(..).routes(..).durations(..)
//!     .stateful(backend).missing_session(..).dpop(key)
//!     .build().await ─► Auth (discovery done)
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokenkeeper::dpop::P256Signer;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;

use crate::session_cookie::{DEFAULT_COOKIE_NAME, SessionDurations};
use crate::stateful::SessionBackend;

/// The routes' paths (the SDK's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// `/auth/login`.
    pub login: String,
    /// `/auth/callback` (the redirect URI is the base URL plus this).
    pub callback: String,
    /// `/auth/logout`.
    pub logout: String,
    /// `/auth/profile`.
    pub profile: String,
    /// `/auth/access-token`.
    pub access_token: String,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            login: "/auth/login".into(),
            callback: "/auth/callback".into(),
            logout: "/auth/logout".into(),
            profile: "/auth/profile".into(),
            access_token: "/auth/access-token".into(),
        }
    }
}

/// What extractors and the login layer do for a request without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissingSession {
    /// `401` with `{"error":{"code":"missing_session",…}}` (APIs).
    #[default]
    Unauthorized,
    /// A redirect to the login route with `returnTo` = the request's path
    /// (pages).
    RedirectToLogin,
}

/// The default total size of the session cookie (all chunks): five chunks,
/// the SDK's sweep range, about what proxies' default header limits allow.
pub const DEFAULT_MAX_COOKIE_BYTES: usize = 5 * crate::cookies::MAX_CHUNK_SIZE;

/// The shortest secret accepted (the SDK asks for 32 characters).
pub const MIN_SECRET_BYTES: usize = 32;

/// Builds an [`Auth`](crate::Auth).
#[must_use]
pub struct AuthBuilder {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) base_url: String,
    pub(crate) secret: Vec<u8>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) target: Option<TargetParameter>,
    pub(crate) routes: Routes,
    pub(crate) durations: SessionDurations,
    pub(crate) cookie_name: String,
    pub(crate) max_cookie_bytes: usize,
    pub(crate) missing_session: MissingSession,
    pub(crate) backend: Option<Arc<dyn SessionBackend>>,
    pub(crate) dpop: Option<P256Signer>,
    pub(crate) authorization_params: Vec<(String, String)>,
    pub(crate) client: Option<reqwest::Client>,
    pub(crate) timeout: Duration,
    pub(crate) post_logout_path: String,
    pub(crate) login_resources: Vec<String>,
}

impl std::fmt::Debug for AuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AuthBuilder {
    pub(crate) fn new(issuer: &str, client_id: &str, base_url: &str, secret: &[u8]) -> Self {
        AuthBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            base_url: base_url.trim_end_matches('/').into(),
            secret: secret.to_vec(),
            client_auth: ClientAuth::None,
            scope: tokenkeeper::DEFAULT_SCOPE.into(),
            audience: None,
            target: None,
            routes: Routes::default(),
            durations: SessionDurations::default(),
            cookie_name: DEFAULT_COOKIE_NAME.into(),
            max_cookie_bytes: DEFAULT_MAX_COOKIE_BYTES,
            missing_session: MissingSession::default(),
            backend: None,
            dpop: None,
            authorization_params: Vec::new(),
            client: None,
            timeout: tokenkeeper_reqwest::DEFAULT_TIMEOUT,
            post_logout_path: "/".into(),
            login_resources: Vec::new(),
        }
    }

    /// `client_secret_post` with `secret` (the SDK's method).
    pub fn client_secret(mut self, secret: &str) -> Self {
        self.client_auth = ClientAuth::SecretPost(tokenkeeper::ClientSecret::new(secret));
        self
    }

    /// Any client authentication of the core.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The login scope (default `openid profile email offline_access`).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }

    /// The default API (audience / resource) of logins and tokens.
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// How the API is named to the server (default: `resource` when the
    /// server announces resource indicators, else `audience`).
    pub fn target_parameter(mut self, target: TargetParameter) -> Self {
        self.target = Some(target);
        self
    }

    /// The routes' paths.
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = routes;
        self
    }

    /// Session lifetime (rolling, absolute, inactivity).
    pub fn durations(mut self, durations: SessionDurations) -> Self {
        self.durations = durations;
        self
    }

    /// The session cookie's name (default `__session`).
    pub fn cookie_name(mut self, name: &str) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The session cookie's largest total size (default
    /// [`DEFAULT_MAX_COOKIE_BYTES`]); a larger session is refused with
    /// `session_too_large`.
    pub fn max_cookie_bytes(mut self, bytes: usize) -> Self {
        self.max_cookie_bytes = bytes;
        self
    }

    /// What extractors and [`Auth::require_login`](crate::Auth::require_login)
    /// do without a session.
    pub fn missing_session(mut self, missing: MissingSession) -> Self {
        self.missing_session = missing;
        self
    }

    /// Stateful sessions in `backend` (the cookie holds only an id).
    pub fn stateful(mut self, backend: impl SessionBackend) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// DPoP with `signer`: `dpop_jkt` at login, bound tokens, proofs.
    pub fn dpop(mut self, signer: P256Signer) -> Self {
        self.dpop = Some(signer);
        self
    }

    /// An extra authorization parameter sent with every login.
    pub fn authorization_param(mut self, name: &str, value: &str) -> Self {
        self.authorization_params.push((name.into(), value.into()));
        self
    }

    /// The HTTP client (must not follow redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// One more API the login asks for with `resource` (RFC 8707), so the
    /// refresh token also serves it (multi-resource refresh tokens on
    /// servers that grant per resource).
    pub fn login_resource(mut self, resource: &str) -> Self {
        self.login_resources.push(resource.into());
        self
    }

    /// Where logout returns to by default (default `/`).
    pub fn post_logout_path(mut self, path: &str) -> Self {
        self.post_logout_path = path.into();
        self
    }
}
