//! The handle's state and operations, shared by the native adapters: the
//! core's [`Driver`] behind a mutex, the store, the deferred signer, the
//! wake-up for waiters; every operation goes through the one effect loop
//! (`drive`, shared with [`Sessions`](crate::Sessions)). An adapter's `TokenKeeper` is an `Arc` of this
//! with its [`Transport`]; its methods call these (ureq through
//! [`block_on`](crate::block_on), reqwest with `.await`).
//!
//! The mutex is taken for each driver step and released before any I/O:
//! never held across an `.await`, a request, a store operation or a
//! signature.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};

use event_listener::Event;
use tokenkeeper::TokenResponse;
use tokenkeeper::dpop::{EcdsaSignature, Signer};
use tokenkeeper::driver::{Ask, Call, Driver, Finished};
use tokenkeeper::grant::TokenExchangeRequest;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::store::DEFAULT_KEY;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Config, ConnectionRequest, HttpRequest, HttpResponse,
    Session, SessionStore, TokenManager, TokenRequest,
};

use crate::drive::{Host, One, drive, lock};
use crate::error::BoxError;
use crate::platform::{OsEntropy, now};
use crate::store::{Blocking, DynStore, StoreSource};
use crate::{Error, Transport};

/// What a [`DeferredSigner`] returns.
pub type SignFuture = Pin<Box<dyn Future<Output = Result<EcdsaSignature, BoxError>> + Send>>;

/// Signs a DPoP proof's signing input for a signer that answered
/// [`SignOutcome::Deferred`](tokenkeeper::dpop::SignOutcome::Deferred) (a
/// KMS, an HSM): ES256, the raw 64-byte `r || s`.
pub type DeferredSigner = dyn Fn(String) -> SignFuture + Send + Sync;

/// What an adapter's builder collects besides its HTTP client: the
/// configuration, the store, the session key, the starting session and the
/// DPoP signers. [`Settings::build`] makes the [`Handle`].
#[must_use]
pub struct Settings {
    config: Config,
    store: StoreSource,
    key: String,
    session: Option<Session>,
    dpop: Option<Box<dyn Signer + Send>>,
    deferred_signer: Option<Box<DeferredSigner>>,
}

impl Settings {
    /// Settings for `config`: no store (the session is kept in the handle's
    /// memory only, and a save copies nothing), the key [`DEFAULT_KEY`], no
    /// starting session, no DPoP.
    pub fn new(config: Config) -> Self {
        Settings {
            config,
            store: StoreSource::Memory,
            key: DEFAULT_KEY.into(),
            session: None,
            dpop: None,
            deferred_signer: None,
        }
    }

    /// DPoP with `signer`.
    pub fn dpop(&mut self, signer: Box<dyn Signer + Send>) {
        self.dpop = Some(signer);
    }

    /// The signer for a DPoP signer that defers.
    pub fn deferred_signer(&mut self, sign: Box<DeferredSigner>) {
        self.deferred_signer = Some(sign);
    }

    /// A blocking store (it must answer at once in an async adapter).
    pub fn store(&mut self, store: Box<dyn SessionStore + Send>) {
        self.store = StoreSource::Blocking(store);
    }

    /// An awaited store; the session is loaded when the first call runs.
    pub fn async_store(&mut self, store: impl AsyncSessionStore + 'static) {
        self.store = StoreSource::Async(Box::new(store));
    }

    /// The key the session is stored under.
    pub fn session_key(&mut self, key: String) {
        self.key = key;
    }

    /// Start with `session` (saved to the store) instead of the stored one.
    pub fn session(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// The handle sending with `transport`. A blocking store's session is
    /// loaded (or the starting one saved) here; an async store's when the
    /// first call runs.
    ///
    /// # Errors
    /// [`Error::Store`] when the blocking store cannot be read or written,
    /// [`Error::Core`] when the DPoP signer is not ES256.
    pub fn build<T: Transport>(self, transport: T) -> Result<Handle<T>, Error<T::Error>> {
        let max_body = self.config.limits().max_body_bytes;
        let mut manager = TokenManager::new(self.config, OsEntropy);
        if let Some(signer) = self.dpop {
            manager.enable_dpop(signer)?;
        }
        let (driver, store): (Driver, Box<dyn DynStore>) = match self.store {
            StoreSource::Memory => {
                let driver = Driver::starting(manager, &self.key, self.session).memory_only();
                (driver, StoreSource::never_asked())
            }
            StoreSource::Blocking(store) => {
                let (driver, store) = tokenkeeper::driver::Keeper::with_key(
                    manager,
                    Box::new(store),
                    &self.key,
                    self.session,
                )?
                .into_parts();
                (driver, Box::new(Blocking(Mutex::new(*store))))
            }
            StoreSource::Async(store) => {
                (Driver::starting(manager, &self.key, self.session), store)
            }
        };
        Ok(Handle {
            state: Mutex::new(driver),
            host: Host {
                transport,
                store,
                progress: Event::new(),
                max_body,
                deferred_signer: self.deferred_signer,
            },
        })
    }
}

/// One session's driver, store and transport, shared by every caller (an
/// adapter's `TokenKeeper` holds it in an `Arc`).
pub struct Handle<T: Transport> {
    state: Mutex<Driver>,
    /// The transport, the store, the signer and the waiters' wake-up.
    host: Host<T>,
}

impl<T: Transport> std::fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl<T: Transport> Handle<T> {
    /// The transport requests are sent with.
    pub fn transport(&self) -> &T {
        &self.host.transport
    }

    /// An access token for `request`: the cached one when fresh, otherwise
    /// refreshed (one refresh at a time; concurrent callers wait for it and
    /// share its result).
    ///
    /// # Errors
    /// [`Error::Core`] for the core's answers, [`Error::Transport`] (or
    /// [`Error::Tls`], [`Error::Timeout`]) when the refresh could not be
    /// sent, [`Error::Store`] when a change could not be saved.
    pub async fn get_access_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        self.token(Ask::User(request)).await
    }

    /// A client-credentials token for `request`'s audience and scope.
    ///
    /// # Errors
    /// As [`Handle::get_access_token`].
    pub async fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        self.token(Ask::Machine(request)).await
    }

    /// A federated connection's access token (Token Vault, the SDK's
    /// `getAccessTokenForConnection`): the one cached in the session's
    /// `connectionTokenSets` when fresh, otherwise exchanged for with the
    /// session's refresh token (one exchange per connection and login hint
    /// at a time; concurrent callers wait for it) and saved with the
    /// session.
    ///
    /// # Errors
    /// [`Error::Core`] with `failed_to_exchange_refresh_token` when the
    /// server refused the exchange, `missing_session` /
    /// `missing_refresh_token` when there is nothing to exchange; a
    /// transport error, [`Error::Store`].
    pub async fn get_connection_token(
        &self,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        self.token(Ask::Connection(request)).await
    }

    async fn token(&self, ask: Ask<'_, '_>) -> Result<AccessTokenInfo, Error<T::Error>> {
        match self.run(Call::token(ask)).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// Finishes a login (the callback checked against `transaction`, the
    /// code exchanged, the new session saved).
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error, a
    /// transport error, [`Error::Store`].
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        let out = self
            .lock()
            .manager
            .exchange_code(transaction, callback, now())?;
        match self.run(Call::flight(out)).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a token exchange (RFC 8693); the result is returned, not stored.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid request or the server's error, a
    /// transport error.
    pub async fn exchange_token(
        &self,
        request: &TokenExchangeRequest<'_>,
    ) -> Result<TokenResponse, Error<T::Error>> {
        let out = self.lock().manager.exchange_token(request, now())?;
        match self.run(Call::flight(out)).await? {
            Finished::Exchanged(response) => Ok(*response),
            other => Err(unexpected(&other)),
        }
    }

    /// Marks the session logged out (saved at once), then revokes its
    /// refresh token when the configuration has a revocation endpoint.
    ///
    /// # Errors
    /// [`Error::Core`] (no session, the revocation failed), a transport
    /// error, [`Error::Store`].
    pub async fn logout(&self) -> Result<(), Error<T::Error>> {
        let out = self.lock().manager.logout(now())?;
        let Some(out) = out else {
            self.run(Call::persist()).await?;
            return Ok(());
        };
        match self.run(Call::flight(out)).await? {
            Finished::Revoked => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// The JWK thumbprint of the DPoP key, when DPoP is on.
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<String> {
        self.lock().manager.dpop_thumbprint().map(String::from)
    }

    /// Sends a request the core described outside the token lifecycle, with
    /// the token-endpoint settings.
    ///
    /// # Errors
    /// A transport error when it could not be sent.
    pub async fn send_request(
        &self,
        request: HttpRequest,
    ) -> Result<HttpResponse, Error<T::Error>> {
        self.host
            .transport
            .send(request, self.host.max_body, None)
            .await
    }

    /// Calls `f` with the core's manager, then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub async fn with_manager<R>(
        &self,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error<T::Error>> {
        let result = f(&mut self.lock().manager);
        // `f` may have finished or cancelled a flight.
        self.host.notify();
        self.run(Call::persist()).await?;
        Ok(result)
    }

    /// Installs `session` and saves it, replacing whatever the store held.
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be saved (it is installed all the
    /// same, and saved with the next change).
    pub async fn set_session(&self, session: Session) -> Result<(), Error<T::Error>> {
        self.run(Call::install(session)).await.map(drop)
    }

    /// A copy of the current session.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        self.lock().manager.session().cloned()
    }

    /// Removes the session here and from the store.
    ///
    /// # Errors
    /// [`Error::Store`] when the store could not be cleared.
    pub async fn clear_session(&self) -> Result<Option<Session>, Error<T::Error>> {
        match self.run(Call::clear()).await? {
            Finished::Cleared(session) => Ok(session.map(|s| *s)),
            _ => Ok(None),
        }
    }

    /// Signs with the deferred signer (no lock held).
    pub(crate) async fn sign(
        &self,
        signing_input: String,
    ) -> Result<EcdsaSignature, Error<T::Error>> {
        self.host.sign(signing_input).await
    }

    /// Drives `call` through the core's driver to its end (the one loop,
    /// [`drive`]): the transport sends and waits, the store is awaited, the
    /// deferred signer signs. If this future is dropped, the call is
    /// abandoned: its flight cancelled, a waiting caller takes over.
    async fn run(&self, call: Call<'_, '_>) -> Result<Finished, Error<T::Error>> {
        drive(&self.host, &self.state, One, call).await
    }

    fn lock(&self) -> MutexGuard<'_, Driver> {
        lock(&self.state)
    }
}

/// A call ended in another way than its kind should.
pub(crate) fn unexpected<E: std::error::Error + 'static>(finished: &Finished) -> Error<E> {
    Error::Unsupported(format!("{finished:?}"))
}
