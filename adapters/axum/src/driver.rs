//! The one module that speaks to the HTTP driver (`tokenkeeper-reqwest`):
//! everything else in the crate goes through [`Driver`], so re-pointing the
//! integration at another driver changes this file only.
//!
//! A web app serves many sessions. The driver is one application-wide
//! [`tokenkeeper_reqwest::Sessions`] (one client, one DPoP key and nonce
//! cache, single flight per session across every request of the process)
//! per kind of session:
//!
//! - stateful: sessions by the cookie's id, in the app's
//!   [`SessionBackend`] (compare-and-swap included);
//! - stateless: sessions by their own id, the cookie being the truth. A
//!   request's cookie session is adopted when this process holds none of
//!   that id, or an older one; otherwise the newer one here (a concurrent
//!   request's rotation the browser has not sent back yet) is used, and
//!   goes out in this response's cookie. They are kept in a bounded
//!   in-memory store.
//!
//! Two concurrent requests of one user therefore share one refresh: the
//! second waits for the first's flight and gets its token.
//!
//! ```text
//! Driver::new(config, client, dpop, backend)
//!   .get_access_token(SessionSource, &TokenRequest) ─► Outcome { result, changed }
//!   .login(stateful?, &transaction, callback)       ─► (Session, stateful id)
//!   .logout(SessionSource)                          ─► revocation result
//!   .send_authorized(SessionSource, &TokenRequest, request) ─► Outcome
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use tokenkeeper::dpop::P256Signer;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::store::SessionKey;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Config, ConnectionRequest, MemoryStore, Session,
    SessionStore, StoreError, TokenRequest,
};
use tokenkeeper_reqwest::Sessions;

use crate::stateful::{SessionBackend, on_blocking_pool};

/// The OS random source (login values, session ids).
pub use tokenkeeper_reqwest::OsEntropy;

/// The driver's error (re-exported as the crate's transport-side error).
pub type DriverError = tokenkeeper_reqwest::Error;

/// The most sessions of each kind kept in memory.
const IN_MEMORY: usize = 10_000;

/// Where one call's session lives.
// Made and moved once per call: boxing the session would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SessionSource {
    /// In the request (a stateless cookie); `None` when there is none.
    Cookie(Option<Session>),
    /// In the shared store (stateful sessions) under the cookie's id.
    Store {
        /// The session's id: the key it is stored under.
        id: String,
        /// The generation of the session the request loaded, if any.
        generation: Option<u64>,
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

impl<T> Outcome<T> {
    fn failed(error: DriverError) -> Self {
        Outcome {
            result: Err(error),
            changed: None,
        }
    }
}

/// The app-wide driver: configuration, HTTP client, DPoP key, and the
/// sessions of the process.
#[derive(Clone)]
pub struct Driver {
    config: Config,
    client: reqwest::Client,
    dpop: Option<P256Signer>,
    /// Stateful sessions, by the cookie's id.
    stateful: Option<Sessions>,
    /// Stateless sessions, by their own id.
    cookies: Sessions,
    /// Serialises the adoption of cookie sessions (check, then install):
    /// two requests bringing the same cookie install it once. Held across
    /// the install's store operation (an in-memory store): it is this
    /// module's lock, not the core's.
    adopting: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("client_id", &self.config.client_id())
            .field("dpop", &self.dpop.is_some())
            .field("stateful", &self.stateful.is_some())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for `config`, sending with `client` (which must not follow
    /// redirects: see [`tokenkeeper_reqwest::client`]); stateful sessions
    /// in `backend` when given.
    ///
    /// # Errors
    /// A client that follows redirects, or a DPoP key the core refuses.
    pub fn new(
        config: Config,
        client: reqwest::Client,
        dpop: Option<P256Signer>,
        backend: Option<Arc<dyn SessionBackend>>,
    ) -> Result<Self, DriverError> {
        let sessions = |store: Option<Arc<dyn SessionBackend>>| {
            let mut builder = Sessions::builder(config.clone())
                .client(client.clone())
                .capacity(IN_MEMORY);
            if let Some(signer) = &dpop {
                builder = builder.dpop(signer.clone());
            }
            builder = match store {
                // Each store call on the blocking pool: see `SessionBackend::blocks`.
                Some(backend) if backend.blocks() => builder.async_store(OnBlockingPool(backend)),
                Some(backend) => builder.store(Backend(backend)),
                None => builder.store(Bounded::new(4 * IN_MEMORY)),
            };
            builder.build()
        };
        let stateful = backend.map(|b| sessions(Some(b))).transpose()?;
        let cookies = sessions(None)?;
        Ok(Driver {
            config,
            client,
            dpop,
            stateful,
            cookies,
            adopting: Arc::default(),
        })
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

    /// The sessions, the id and the generation the request brought, for
    /// `source` (a cookie session adopted first).
    async fn resolve(
        &self,
        source: SessionSource,
    ) -> Result<(&Sessions, String, Option<u64>), DriverError> {
        match source {
            SessionSource::Store { id, generation } => match &self.stateful {
                Some(sessions) => Ok((sessions, id, generation)),
                None => Err(DriverError::Core(tokenkeeper::Error::MissingSession)),
            },
            SessionSource::Cookie(None) => {
                Err(DriverError::Core(tokenkeeper::Error::MissingSession))
            }
            SessionSource::Cookie(Some(session)) => {
                let generation = session.generation();
                let id = self.adopt(session).await?;
                Ok((&self.cookies, id, Some(generation)))
            }
        }
    }

    /// Makes the cookie's `session` the one this process serves under its
    /// id, unless a newer one (same id) is already here.
    async fn adopt(&self, session: Session) -> Result<String, DriverError> {
        let sessions = &self.cookies;
        let newer_here = |id: &str| {
            sessions
                .generation(id)
                .is_some_and(|here| here >= session.generation())
        };
        if let Some(id) = session.id()
            && newer_here(id)
        {
            return Ok(id.to_owned());
        }
        let _adopting = self.adopting.lock().await;
        if let Some(id) = session.id() {
            let here = sessions.load(id).await?;
            if here.is_some_and(|here| here.generation() >= session.generation()) {
                return Ok(id.to_owned());
            }
        }
        sessions.insert(session).await
    }

    /// The session after a call, if its generation moved from `before`.
    fn changed(sessions: &Sessions, id: &str, before: Option<u64>) -> Option<Session> {
        // The generation first: the session is copied only when it moved.
        let after = sessions.generation(id)?;
        (Some(after) != before)
            .then(|| sessions.session(id))
            .flatten()
    }

    /// An access token for `request` on the session in `source`.
    pub async fn get_access_token(
        &self,
        source: SessionSource,
        request: &TokenRequest<'_>,
    ) -> Outcome<AccessTokenInfo> {
        let (sessions, id, before) = match self.resolve(source).await {
            Ok(resolved) => resolved,
            Err(e) => return Outcome::failed(e),
        };
        let result = sessions.get_access_token(&id, request).await;
        Outcome {
            changed: Self::changed(sessions, &id, before),
            result,
        }
    }

    /// A federated connection's access token (Token Vault) for the session
    /// in `source`: cached in its `connectionTokenSets`, else exchanged for.
    pub async fn get_connection_token(
        &self,
        source: SessionSource,
        request: &ConnectionRequest<'_>,
    ) -> Outcome<AccessTokenInfo> {
        let (sessions, id, before) = match self.resolve(source).await {
            Ok(resolved) => resolved,
            Err(e) => return Outcome::failed(e),
        };
        let result = sessions.get_connection_token(&id, request).await;
        Outcome {
            changed: Self::changed(sessions, &id, before),
            result,
        }
    }

    /// Finishes a login: checks `callback` against `transaction`, exchanges
    /// the code, validates the ID token. The new session, and its id when
    /// it is stateful (stored in the backend under it).
    ///
    /// # Errors
    /// The failed check, the server's error, or the transport's.
    pub async fn login(
        &self,
        stateful: bool,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<(Session, Option<String>), DriverError> {
        let sessions = match (&self.stateful, stateful) {
            (Some(sessions), true) => sessions,
            _ => &self.cookies,
        };
        let (id, _) = sessions.login(transaction, callback).await?;
        let session = sessions
            .session(&id)
            .ok_or(DriverError::Core(tokenkeeper::Error::MissingSession))?;
        Ok((session, (stateful && self.stateful.is_some()).then_some(id)))
    }

    /// Revokes the session's refresh token (when the configuration has a
    /// revocation endpoint) and marks it logged out; this process forgets
    /// it.
    ///
    /// # Errors
    /// The revocation's failure (the session is logged out regardless).
    pub async fn logout(&self, source: SessionSource) -> Result<(), DriverError> {
        let (sessions, id, _) = self.resolve(source).await?;
        let result = sessions.logout(&id).await;
        let _ = sessions.clear(&id).await;
        result
    }

    /// Sends `request` with an access token for `token_request` attached
    /// (Bearer, or DPoP with one nonce retry), refreshing when needed.
    pub async fn send_authorized(
        &self,
        source: SessionSource,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Outcome<reqwest::Response> {
        let (sessions, id, before) = match self.resolve(source).await {
            Ok(resolved) => resolved,
            Err(e) => return Outcome::failed(e),
        };
        let result = sessions.send_authorized(&id, token_request, request).await;
        Outcome {
            changed: Self::changed(sessions, &id, before),
            result,
        }
    }
}

/// The app's [`SessionBackend`] as one store for every id.
struct Backend(Arc<dyn SessionBackend>);

impl SessionStore for Backend {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, tokenkeeper::StoreError> {
        self.0.store(key).load(key)
    }
    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), tokenkeeper::StoreError> {
        self.0.store(key).save(key, session, expected)
    }
    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, tokenkeeper::StoreError> {
        self.0.store(key).generation(key)
    }
    fn clear(&mut self, key: &SessionKey) -> Result<(), tokenkeeper::StoreError> {
        self.0.delete(key)
    }
    fn floor(&mut self, key: &SessionKey) -> Result<u64, tokenkeeper::StoreError> {
        self.0.store(key).floor(key)
    }
}

/// The app's [`SessionBackend`], one that may block, as one async store
/// for every id: each call runs on tokio's blocking pool.
struct OnBlockingPool(Arc<dyn SessionBackend>);

impl OnBlockingPool {
    /// `call` on the backend's store of `key`, on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        key: &SessionKey,
        call: impl FnOnce(&dyn SessionBackend, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (backend, key) = (Arc::clone(&self.0), key.to_owned());
        on_blocking_pool(move || call(&*backend, &key))
            .await
            .unwrap_or_else(|| Err(StoreError::backend(ShuttingDown)))
    }
}

impl AsyncSessionStore for OnBlockingPool {
    async fn load(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        self.run(key, |backend, key| backend.store(key).load(key))
            .await
    }
    async fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let session = session.clone();
        self.run(key, move |backend, key| {
            backend.store(key).save(key, &session, expected)
        })
        .await
    }
    async fn generation(&self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        self.run(key, |backend, key| backend.store(key).generation(key))
            .await
    }
    async fn clear(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.run(key, |backend, key| backend.delete(key)).await
    }
    async fn floor(&self, key: &SessionKey) -> Result<u64, StoreError> {
        self.run(key, |backend, key| backend.store(key).floor(key))
            .await
    }
}

/// A store call not run: the runtime is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the runtime is shutting down")]
struct ShuttingDown;

/// Stateless sessions' store: this process's memory, at most `capacity`
/// ids (the oldest written first forgotten: the cookie still holds it).
struct Bounded {
    store: MemoryStore,
    order: VecDeque<String>,
    capacity: usize,
}

impl Bounded {
    fn new(capacity: usize) -> Self {
        Bounded {
            store: MemoryStore::new(),
            order: VecDeque::new(),
            capacity,
        }
    }
}

impl SessionStore for Bounded {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, tokenkeeper::StoreError> {
        self.store.load(key)
    }
    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), tokenkeeper::StoreError> {
        let new = self.store.get(key).is_none();
        self.store.save(key, session, expected)?;
        if new {
            self.order.push_back(key.to_owned());
            while self.order.len() > self.capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.store.clear(&oldest)?;
                }
            }
        }
        Ok(())
    }
    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, tokenkeeper::StoreError> {
        self.store.generation(key)
    }
    fn clear(&mut self, key: &SessionKey) -> Result<(), tokenkeeper::StoreError> {
        self.order.retain(|k| k != key);
        self.store.clear(key)
    }
    fn floor(&mut self, key: &SessionKey) -> Result<u64, tokenkeeper::StoreError> {
        self.store.floor(key)
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
