//! [`Sessions`]: [`tokenkeeper_native::Sessions`] on reqwest — one
//! application-wide handle serving any number of sessions by id (a web
//! backend's users) on one client: configuration, DPoP key and token
//! endpoint nonces, machine tokens shared; single flight per session; a
//! bounded number of sessions in memory, the rest loaded from the store on
//! demand. Only the client setup and `send_authorized` are this crate's.
//!
//! ```text
//! Sessions::builder(config).store(..)/async_store(..).capacity(n).build()
//!   .login(&transaction, callback)      ─► (id, token)   new session stored under id
//!   .insert(session)                    ─► id            a session from elsewhere
//!   .get_access_token(id, &request)     ─► token         cached (no I/O) or refreshed
//!   .send_authorized(id, &request, req) ─► response
//!   .logout(id) / .clear(id)
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokenkeeper::dpop::Signer;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Config, ConnectionRequest, Headers, Session, SessionStore,
    TokenManager, TokenRequest,
};
use tokenkeeper_native::SessionsSettings;

use crate::{
    Client, ClientSource, DEFAULT_TIMEOUT, Error, SignFuture, error, follows_redirects, with_roots,
};

/// The application-wide handle: any number of sessions by id on one
/// client (configuration, DPoP key and nonces, machine tokens shared),
/// single flight per session, a bounded number in memory, the rest loaded
/// from the store on demand. Cheap to clone; every clone serves the same
/// sessions.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<tokenkeeper_native::Sessions<Client>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// Builds a [`Sessions`].
#[must_use]
pub struct SessionsBuilder {
    settings: SessionsSettings,
    client: Option<ClientSource>,
    roots: Vec<u8>,
    timeout: Duration,
}

impl SessionsBuilder {
    /// Sends with `client`, which must not follow redirects (see
    /// [`Builder::client`](crate::Builder::client)).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(ClientSource::Client(client));
        self
    }

    /// Sends with a client built from `builder`, with
    /// `redirect(Policy::none())` set by the handle.
    pub fn client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.client = Some(ClientSource::Builder(Box::new(builder)));
        self
    }

    /// The request timeout of the client this builder makes (default
    /// [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` besides the platform's roots
    /// (see [`Builder::root_certificates_pem`](crate::Builder::root_certificates_pem)).
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "rustls", feature = "native-tls"))))]
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.extend_from_slice(pem.as_ref());
        self.roots.push(b'\n');
        self
    }

    /// Keeps sessions in `store`, each under its id (blocking: it must
    /// answer at once, as an in-memory one does). Default: memory only, this
    /// process only; memory then holds the only copy of each session, so a
    /// session is never evicted for the capacity.
    pub fn store(mut self, store: impl SessionStore + Send + 'static) -> Self {
        self.settings.store(Box::new(store));
        self
    }

    /// Keeps sessions in an async `store`, awaited with no lock held.
    pub fn async_store(mut self, store: impl AsyncSessionStore + 'static) -> Self {
        self.settings.async_store(store);
        self
    }

    /// At most `capacity` sessions in memory (default
    /// [`DEFAULT_CAPACITY`](tokenkeeper_native::DEFAULT_CAPACITY)); with a
    /// store, the least recently used idle one goes first; without one,
    /// only slots that hold no session go.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.settings.capacity(capacity);
        self
    }

    /// DPoP with `signer` for every session (one key, shared nonces).
    pub fn dpop(mut self, signer: impl Signer + Send + 'static) -> Self {
        self.settings.dpop(Box::new(signer));
        self
    }

    /// Signs for a DPoP signer that defers, awaited without any lock held.
    pub fn deferred_signer(
        mut self,
        sign: impl Fn(String) -> SignFuture + Send + Sync + 'static,
    ) -> Self {
        self.settings.deferred_signer(Box::new(sign));
        self
    }

    /// The handle.
    ///
    /// # Errors
    /// [`Error::ClientFollowsRedirects`], [`Error::Transport`] when the
    /// client cannot be built, [`Error::Certificate`] when a root
    /// certificate does not parse, [`Error::Core`] for a DPoP signer that
    /// is not ES256.
    pub fn build(self) -> Result<Sessions, Error> {
        let client = match self.client {
            Some(ClientSource::Client(client)) if follows_redirects(&client) => {
                return Err(Error::ClientFollowsRedirects);
            }
            Some(ClientSource::Client(client)) => client,
            Some(ClientSource::Builder(builder)) => with_roots(*builder, &self.roots)?,
            None => with_roots(
                reqwest::Client::builder().timeout(self.timeout),
                &self.roots,
            )?,
        };
        Ok(Sessions {
            inner: Arc::new(self.settings.build(Client::new(client))?),
        })
    }
}

impl Sessions {
    /// A builder: client, store, capacity, DPoP.
    pub fn builder(config: Config) -> SessionsBuilder {
        SessionsBuilder {
            settings: SessionsSettings::new(config),
            client: None,
            roots: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The client requests are sent with.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.transport().0
    }

    /// The number of sessions in memory now.
    #[must_use]
    pub fn in_memory(&self) -> usize {
        self.inner.in_memory()
    }

    /// The DPoP key's JWK thumbprint (for a login's `dpop_jkt`).
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<String> {
        self.inner.dpop_thumbprint()
    }

    /// Session `id`'s access token for `request`: the cached one when it is
    /// in memory and fresh (no I/O, no wait), otherwise loaded and/or
    /// refreshed (one refresh per session at a time; its other callers wait
    /// for it and share its result).
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`](crate::TokenKeeper::get_access_token).
    pub async fn get_access_token(
        &self,
        id: &str,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_access_token(id, request).await
    }

    /// A federated connection's access token for the session stored under
    /// `id` (Token Vault; see
    /// [`TokenKeeper::get_connection_token`](crate::TokenKeeper::get_connection_token)).
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`].
    pub async fn get_connection_token(
        &self,
        id: &str,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_connection_token(id, request).await
    }

    /// A client-credentials token, shared by the whole application.
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`].
    pub async fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_client_credentials_token(request).await
    }

    /// Finishes a login (see [`TokenKeeper::login`](crate::TokenKeeper::login)):
    /// the new session is stored under a new id, returned with its token.
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<(String, AccessTokenInfo), Error> {
        self.inner.login(transaction, callback).await
    }

    /// Stores `session` under its id, given one if it has none; returns
    /// the id.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn insert(&self, session: Session) -> Result<String, Error> {
        self.inner.insert(session).await
    }

    /// A copy of session `id` as held in memory (`None` when it is not in
    /// memory: see [`Sessions::load`]).
    #[must_use]
    pub fn session(&self, id: &str) -> Option<Session> {
        self.inner.session(id)
    }

    /// The generation of session `id` as held in memory (`None` when it is
    /// not in memory), without copying the session.
    #[must_use]
    pub fn generation(&self, id: &str) -> Option<u64> {
        self.inner.generation(id)
    }

    /// Session `id`, loaded from the store if it is not in memory.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn load(&self, id: &str) -> Result<Option<Session>, Error> {
        self.inner.load(id).await
    }

    /// Logs session `id` out: marked logged out and saved at once, then
    /// its refresh token revoked (when the configuration has a revocation
    /// endpoint).
    ///
    /// # Errors
    /// [`Error::Core`] (no such session, the revocation failed),
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn logout(&self, id: &str) -> Result<(), Error> {
        self.inner.logout(id).await
    }

    /// Removes session `id` here and from the store.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn clear(&self, id: &str) -> Result<Option<Session>, Error> {
        self.inner.clear(id).await
    }

    /// Calls `f` with the core's manager, session `id` mounted (loaded
    /// first when needed), then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Core`] when no session is stored under `id`,
    /// [`Error::Store`].
    pub async fn with_session<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error> {
        self.inner.with_session(id, f).await
    }

    /// Sends `request` with session `id`'s token for `token_request`, as
    /// [`TokenKeeper::send_authorized`](crate::TokenKeeper::send_authorized)
    /// does for its one session.
    ///
    /// # Errors
    /// Getting the token, authorizing it, or sending.
    pub async fn send_authorized(
        &self,
        id: &str,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, Error> {
        let url = request.url().to_string();
        let mut call = (self.inner)
            .resource(id, token_request, request.method().as_str(), url)
            .await?;
        let mut attempt = request;
        loop {
            let spare = attempt.try_clone();
            let headers = call.authorization().await?;
            tokenkeeper_native::apply_headers(&headers, attempt.headers_mut())?;
            let response = self
                .client()
                .execute(attempt)
                .await
                .map_err(error::transport)?;
            let (status, headers) = (response.status(), Headers::from(response.headers()));
            let again = call.handle_response(status.as_u16(), headers).await?;
            // A request whose body cannot be copied is not retried.
            match spare {
                Some(spare) if again => attempt = spare,
                _ => return Ok(response),
            }
        }
    }
}

// Shared by tasks on any executor; its futures may move between threads.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Sessions>();
};
const _: fn(&Sessions, &TokenRequest<'_>, reqwest::Request) = |sessions, token_request, api| {
    fn send<T: Send>(_: &T) {}
    send(&sessions.get_access_token("id", token_request));
    send(&sessions.send_authorized("id", token_request, api));
};
