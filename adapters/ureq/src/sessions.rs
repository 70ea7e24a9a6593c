//! [`Sessions`]: [`tokenkeeper_native::Sessions`] on ureq — one
//! application-wide handle serving any number of sessions by id (a web
//! backend's users) on one agent, from any thread: configuration, DPoP key
//! and token endpoint nonces, machine tokens shared; single flight per
//! session; a bounded number of sessions in memory, the rest loaded from
//! the store on demand. As with [`TokenKeeper`](crate::TokenKeeper), this
//! crate only sends and waits (blocking the calling thread); the rest is
//! the native facade's, shared with `tokenkeeper_reqwest::Sessions`.
//!
//! ```text
//! Sessions::builder(config).store(..).capacity(n).build()
//!   .login(&transaction, callback)      ─► (id, token)   new session stored under id
//!   .insert(session)                    ─► id            a session from elsewhere
//!   .get_access_token(id, &request)     ─► token         cached (no I/O) or refreshed
//!   .send_authorized(id, &request, req) ─► response
//!   .logout(id) / .clear(id)
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokenkeeper::dpop::{EcdsaSignature, Signer};
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, Config, ConnectionRequest, Session, SessionStore, TokenManager, TokenRequest,
};
use tokenkeeper_native::{BoxError, SessionsSettings, block_on};
use ureq::http;

use crate::{Agent, DEFAULT_TIMEOUT, Error, deferred, send_resource};

/// The application-wide handle: any number of sessions by id on one agent
/// (configuration, DPoP key and nonces, machine tokens shared), single
/// flight per session, a bounded number in memory, the rest loaded from the
/// store on demand. Cheap to clone; every clone serves the same sessions,
/// from any thread.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<tokenkeeper_native::Sessions<Agent>>,
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
    agent: Option<ureq::Agent>,
    timeout: Duration,
    roots: Vec<u8>,
}

impl SessionsBuilder {
    /// Sends with `agent` (see the [crate docs](crate#the-agent) for the
    /// settings it needs). Default: [`agent`](crate::agent)`(timeout)`.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The request timeout of the agent this builder makes (default
    /// [`DEFAULT_TIMEOUT`]; ignored with [`SessionsBuilder::agent`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` besides the webpki roots (see
    /// [`Builder::root_certificates_pem`](crate::Builder::root_certificates_pem)).
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "rustls", feature = "native-tls"))))]
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.extend_from_slice(pem.as_ref());
        self.roots.push(b'\n');
        self
    }

    /// Keeps sessions in `store`, each under its id. Default: memory only,
    /// this process only; memory then holds the only copy of each session,
    /// so a session is never evicted for the capacity.
    pub fn store(mut self, store: impl SessionStore + Send + 'static) -> Self {
        self.settings.store(Box::new(store));
        self
    }

    /// At most `capacity` sessions in memory (default
    /// [`DEFAULT_CAPACITY`](tokenkeeper_native::DEFAULT_CAPACITY)); the
    /// least recently used idle one goes first (with a store: without one,
    /// only slots that hold no session go).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.settings.capacity(capacity);
        self
    }

    /// DPoP with `signer` for every session (one key, shared nonces).
    pub fn dpop(mut self, signer: impl Signer + Send + 'static) -> Self {
        self.settings.dpop(Box::new(signer));
        self
    }

    /// Signs for a DPoP signer that defers, called without any lock held
    /// (see [`Builder::deferred_signer`](crate::Builder::deferred_signer)).
    pub fn deferred_signer(
        mut self,
        sign: impl Fn(&str) -> Result<EcdsaSignature, BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.settings.deferred_signer(deferred(sign));
        self
    }

    /// The handle. Nothing is loaded here: each session is loaded from the
    /// store at its first call.
    ///
    /// # Errors
    /// [`Error::Core`] when the DPoP signer is not ES256,
    /// [`Error::Certificate`] when a root certificate does not parse.
    pub fn build(self) -> Result<Sessions, Error> {
        let agent = crate::builder_agent(self.agent, self.timeout, &self.roots)?;
        Ok(Sessions {
            inner: Arc::new(self.settings.build(Agent::new(agent))?),
        })
    }
}

impl Sessions {
    /// A builder: agent, store, capacity, DPoP.
    pub fn builder(config: Config) -> SessionsBuilder {
        SessionsBuilder {
            settings: SessionsSettings::new(config),
            agent: None,
            timeout: DEFAULT_TIMEOUT,
            roots: Vec::new(),
        }
    }

    /// The agent requests are sent with.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
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
    /// for it and share its result; other sessions do not wait).
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`](crate::TokenKeeper::get_access_token);
    /// no session stored under `id` is [`Error::Core`] (login required).
    pub fn get_access_token(
        &self,
        id: &str,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_access_token(id, request))
    }

    /// A federated connection's access token for the session stored under
    /// `id` (Token Vault; see
    /// [`TokenKeeper::get_connection_token`](crate::TokenKeeper::get_connection_token)).
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`]; `failed_to_exchange_refresh_token`
    /// when the server refused the exchange.
    pub fn get_connection_token(
        &self,
        id: &str,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_connection_token(id, request))
    }

    /// A client-credentials token, shared by the whole application.
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`].
    pub fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_client_credentials_token(request))
    }

    /// Finishes a login (see [`TokenKeeper::login`](crate::TokenKeeper::login)):
    /// the new session is stored under a new id, returned with its token.
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Store`].
    pub fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<(String, AccessTokenInfo), Error> {
        block_on(self.inner.login(transaction, callback))
    }

    /// Stores `session` under its id, given one if it has none; returns
    /// the id.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn insert(&self, session: Session) -> Result<String, Error> {
        block_on(self.inner.insert(session))
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
    pub fn load(&self, id: &str) -> Result<Option<Session>, Error> {
        block_on(self.inner.load(id))
    }

    /// Logs session `id` out: marked logged out and saved at once, then
    /// its refresh token revoked (when the configuration has a revocation
    /// endpoint).
    ///
    /// # Errors
    /// [`Error::Core`] (no such session, the revocation failed),
    /// [`Error::Transport`], [`Error::Store`].
    pub fn logout(&self, id: &str) -> Result<(), Error> {
        block_on(self.inner.logout(id))
    }

    /// Removes session `id` here and from the store.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn clear(&self, id: &str) -> Result<Option<Session>, Error> {
        block_on(self.inner.clear(id))
    }

    /// Calls `f` with the core's manager, session `id` mounted (loaded
    /// first when needed), then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Core`] when no session is stored under `id`,
    /// [`Error::Store`].
    pub fn with_session<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error> {
        block_on(self.inner.with_session(id, f))
    }

    /// Sends `request` with session `id`'s token for `token_request`, as
    /// [`TokenKeeper::send_authorized`](crate::TokenKeeper::send_authorized)
    /// does for its one session (DPoP proofs, the resource server's nonce
    /// and `invalid_token` retries).
    ///
    /// # Errors
    /// Getting the token, authorizing it, or sending.
    pub fn send_authorized<B: ureq::AsSendBody + Clone>(
        &self,
        id: &str,
        token_request: &TokenRequest<'_>,
        request: http::Request<B>,
    ) -> Result<http::Response<ureq::Body>, Error> {
        block_on(async {
            let url = request.uri().to_string();
            let call = (self.inner)
                .resource(id, token_request, request.method().as_str(), url)
                .await?;
            send_resource(self.agent(), call, &request).await
        })
    }
}
