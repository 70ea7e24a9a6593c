//! The one module that speaks to the HTTP driver (`tokenkeeper-reqwest`):
//! everything else in the crate goes through [`Driver`], so re-pointing the
//! integration at another driver changes this file only.
//!
//! A web app serves many sessions: each request brings its own (from the
//! cookie, or from the stateful store by the cookie's id), so each call
//! makes a short-lived handle for that one session on the app's shared
//! client, runs the core's round trip, and reports whether the session
//! changed (a refresh, a rotation), which the caller then writes back.
//!
//! ```text
//! Driver::new(config, client, dpop)
//!   .get_access_token(SessionSource, &TokenRequest) ─► Outcome { result, changed }
//!   .login(SessionSource, &transaction, callback)   ─► Result<Session>
//!   .logout(SessionSource)                          ─► revocation result
//!   .send_authorized(SessionSource, &TokenRequest, request) ─► Outcome
//! ```

use tokenkeeper::dpop::P256Signer;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::store::SessionKey;
use tokenkeeper::{AccessTokenInfo, Config, Session, SessionStore, TokenRequest};
use tokenkeeper_reqwest::TokenKeeper;

/// The OS random source (login values, session ids).
pub use tokenkeeper_reqwest::OsEntropy;

/// The driver's error (re-exported as the crate's transport-side error).
pub type DriverError = tokenkeeper_reqwest::Error;

/// Where one call's session lives.
// Made and moved once per call: boxing the session would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SessionSource {
    /// In the request (a stateless cookie); `None` when there is none.
    Cookie(Option<Session>),
    /// In a shared store (stateful sessions), compare-and-swap included,
    /// under the session's id.
    Store {
        /// The store.
        store: Box<dyn SessionStore + Send>,
        /// The session's id: the key it is stored under.
        id: String,
    },
}

/// What a call did: its result, and the session when it changed (to be
/// written back to the cookie; a store was already written).
#[must_use]
pub struct Outcome<T> {
    /// The call's result.
    pub result: Result<T, DriverError>,
    /// The session after the call, when it changed.
    pub changed: Option<Session>,
}

/// The app-wide driver: configuration, HTTP client, DPoP key.
#[derive(Clone)]
pub struct Driver {
    config: Config,
    client: reqwest::Client,
    dpop: Option<P256Signer>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("client_id", &self.config.client_id())
            .field("dpop", &self.dpop.is_some())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for `config`, sending with `client` (which must not follow
    /// redirects: see [`tokenkeeper_reqwest::client`]).
    #[must_use]
    pub fn new(config: Config, client: reqwest::Client, dpop: Option<P256Signer>) -> Self {
        Driver {
            config,
            client,
            dpop,
        }
    }

    /// The core configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The HTTP client.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The DPoP key's JWK thumbprint (for `dpop_jkt` at login).
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop.as_ref().map(|s| s.key().thumbprint())
    }

    fn keeper(&self, source: SessionSource) -> Result<TokenKeeper, DriverError> {
        let mut builder = TokenKeeper::builder(self.config.clone()).client(self.client.clone());
        if let Some(signer) = &self.dpop {
            builder = builder.dpop(signer.clone());
        }
        match source {
            SessionSource::Cookie(Some(session)) => builder = builder.session(session),
            SessionSource::Cookie(None) => {}
            SessionSource::Store { store, id } => {
                builder = builder.store(Boxed(store)).session_key(id);
            }
        }
        builder.build()
    }

    /// The session after a call, if its generation moved.
    fn changed(keeper: &TokenKeeper, before: Option<u64>) -> Option<Session> {
        let after = keeper.session()?;
        (Some(after.generation()) != before).then_some(after)
    }

    /// An access token for `request` on the session in `source`.
    pub async fn get_access_token(
        &self,
        source: SessionSource,
        request: &TokenRequest<'_>,
    ) -> Outcome<AccessTokenInfo> {
        let keeper = match self.keeper(source) {
            Ok(keeper) => keeper,
            Err(e) => {
                return Outcome {
                    result: Err(e),
                    changed: None,
                };
            }
        };
        let before = keeper.session().map(|s| s.generation());
        let result = keeper.get_access_token(request).await;
        Outcome {
            changed: Self::changed(&keeper, before),
            result,
        }
    }

    /// Finishes a login: checks `callback` against `transaction`, exchanges
    /// the code, validates the ID token. The new session (saved to the
    /// store when `source` is one).
    ///
    /// # Errors
    /// The failed check, the server's error, or the transport's.
    pub async fn login(
        &self,
        source: SessionSource,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<Session, DriverError> {
        let keeper = self.keeper(source)?;
        keeper.login(transaction, callback).await?;
        keeper
            .session()
            .ok_or(DriverError::Core(tokenkeeper::Error::MissingSession))
    }

    /// Revokes the session's refresh token (when the configuration has a
    /// revocation endpoint) and marks it logged out.
    ///
    /// # Errors
    /// The revocation's failure (the session is logged out regardless).
    pub async fn logout(&self, source: SessionSource) -> Result<(), DriverError> {
        self.keeper(source)?.logout().await
    }

    /// Sends `request` with an access token for `token_request` attached
    /// (Bearer, or DPoP with one nonce retry), refreshing when needed.
    pub async fn send_authorized(
        &self,
        source: SessionSource,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Outcome<reqwest::Response> {
        let keeper = match self.keeper(source) {
            Ok(keeper) => keeper,
            Err(e) => {
                return Outcome {
                    result: Err(e),
                    changed: None,
                };
            }
        };
        let before = keeper.session().map(|s| s.generation());
        let result = keeper.send_authorized(token_request, request).await;
        Outcome {
            changed: Self::changed(&keeper, before),
            result,
        }
    }
}

/// A boxed store as a store (the driver takes `impl SessionStore`).
struct Boxed(Box<dyn SessionStore + Send>);

impl SessionStore for Boxed {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, tokenkeeper::StoreError> {
        self.0.load(key)
    }
    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), tokenkeeper::StoreError> {
        self.0.save(key, session, expected)
    }
    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, tokenkeeper::StoreError> {
        self.0.generation(key)
    }
    fn clear(&mut self, key: &SessionKey) -> Result<(), tokenkeeper::StoreError> {
        self.0.clear(key)
    }
    fn floor(&mut self, key: &SessionKey) -> Result<u64, tokenkeeper::StoreError> {
        self.0.floor(key)
    }
}

/// Discovers the server's metadata with `client`.
///
/// # Errors
/// The transport's error or an invalid document.
pub async fn discover(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<tokenkeeper::discovery::AuthorizationServerMetadata, DriverError> {
    tokenkeeper_reqwest::discover(client, issuer).await
}

/// A client that follows no redirects, with `timeout`.
///
/// # Errors
/// When the TLS backend cannot be set up.
pub fn client(timeout: std::time::Duration) -> Result<reqwest::Client, reqwest::Error> {
    tokenkeeper_reqwest::client(timeout)
}
