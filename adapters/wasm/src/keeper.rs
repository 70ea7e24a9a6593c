//! The shared handle: the drive loop over `fetch`, and the waiters.

use core::cell::RefCell;
use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::rc::Rc;

use futures_channel::oneshot;
#[cfg(feature = "exchange")]
use tokenkeeper::TokenResponse;
#[cfg(feature = "discovery")]
use tokenkeeper::discovery::{AuthorizationServerMetadata, DiscoveryKind, discovery_request};
use tokenkeeper::dpop::EcdsaSignature;
use tokenkeeper::driver::{Ask, Step, dispatch_id};
#[cfg(feature = "exchange")]
use tokenkeeper::grant::TokenExchangeRequest;
#[cfg(feature = "login")]
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, Authorization, Config, ConnectionRequest, Dispatch, HttpRequest, HttpResponse,
    RequestId, ResourceRetries, ResourceVerdict, Session, SessionStore, TokenManager, TokenRequest,
    UnixTime, UnsharedStore,
};

use crate::Error;
use crate::dpop::WebCryptoKey;
#[cfg(feature = "discovery")]
use crate::fetch::fetch;
use crate::fetch::fetch_with_limit;
use crate::js::{Delay, WebCryptoEntropy, millis_until, now, now_millis};
use crate::state::{Finished, State, cancel, complete, signed};
pub use crate::timeout::DEFAULT_TIMEOUT;
use crate::timeout::{transport_timeout, within_lease};

/// How often a caller told to reload (another tab or process holds the
/// refresh claim of a shared store) looks at the store again.
const RELOAD_POLL_MS: u64 = 200;

/// A waiter without a lease deadline looks again after this long.
const WAIT_FALLBACK_MS: u64 = 1000;

/// Fetches and validates `issuer`'s OpenID Connect discovery document
/// (`/.well-known/openid-configuration`); build the configuration from it
/// with [`ConfigBuilder::metadata`](tokenkeeper::ConfigBuilder::metadata).
///
/// # Errors
/// [`Error::Transport`] or [`Error::Timeout`], or [`Error::Core`] with
/// [`tokenkeeper::Error::Discovery`] (an issuer mismatch, a bad document, …).
#[cfg(feature = "discovery")]
#[cfg_attr(docsrs, doc(cfg(feature = "discovery")))]
pub async fn discover(
    issuer: &str,
    timeout: Duration,
) -> Result<AuthorizationServerMetadata, Error> {
    let discovery = |e| Error::Core(tokenkeeper::Error::Discovery(e));
    let limits = tokenkeeper::Limits::default();
    let request = discovery_request(issuer, DiscoveryKind::OpenIdConnect).map_err(discovery)?;
    let response = fetch(&request, timeout).await?;
    AuthorizationServerMetadata::parse(&response, issuer, &limits).map_err(discovery)
}

/// The shared handle: one per application, cloned into every task
/// (`spawn_local`, event handlers, …). Every clone drives the same core and
/// store. Not `Send`: JavaScript is single-threaded, and so is this handle
/// (`Rc<RefCell<…>>`).
#[derive(Clone)]
pub struct TokenKeeper {
    inner: Rc<Inner>,
}

struct Inner {
    state: RefCell<State>,
    /// Callers waiting for a flight, with the flight's id; woken (the
    /// sender sends) when the flight ends. A list, not a map: there are a
    /// handful at most, and a `BTreeMap` would cost the wasm app several KB.
    waiters: RefCell<Vec<(RequestId, oneshot::Sender<()>)>>,
    /// Each request's timeout, body included; it ends before the lease.
    timeout: Duration,
    /// The configuration's lease: a flight's requests end before it runs
    /// out.
    lease: Duration,
    /// The configuration's `Limits::max_body_bytes`.
    max_body: usize,
    /// The Web Crypto key that signs the core's deferred DPoP proofs.
    dpop: Option<WebCryptoKey>,
}

impl fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeeper")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenKeeper`].
#[must_use]
pub struct Builder {
    config: Config,
    timeout: Option<Duration>,
    store: Box<dyn SessionStore>,
    session: Option<Session>,
    dpop: Option<WebCryptoKey>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The timeout of each request, body included (default
    /// [`DEFAULT_TIMEOUT`], or the lease less a second when that is
    /// shorter).
    ///
    /// It must end at least a second before the configuration's lease
    /// ([`ConfigBuilder::lease`](tokenkeeper::ConfigBuilder::lease),
    /// default 60 s), or [`Builder::build`] refuses it: when a lease runs
    /// out, the core lets a waiting caller take the refresh over, and an
    /// answer still on the wire would then arrive beside a second request
    /// spending the same refresh token. (The core counts whole seconds,
    /// hence the second.) Each request of a flight is moreover aborted
    /// before that flight's lease deadline, so a `use_dpop_nonce` retry
    /// cannot outlast it either.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Where the session is kept (default: an [`UnsharedStore`]: the session
    /// stays in this handle's memory and nothing is copied). The
    /// session is loaded from it when the handle is built.
    pub fn store(mut self, store: impl SessionStore + 'static) -> Self {
        self.store = Box::new(store);
        self
    }

    /// Starts with `session` (saved to the store) instead of the stored one.
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Turns DPoP on with `key` (see [`WebCryptoKey`]): every token
    /// request carries a proof, tokens must come back DPoP-bound, and API
    /// requests present them with a proof. The core builds the proofs; this
    /// handle signs them in Web Crypto (the core's deferred signer path).
    pub fn dpop(mut self, key: WebCryptoKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// The handle. Its entropy is [`WebCryptoEntropy`].
    ///
    /// # Errors
    /// [`Error::Core`] with code `invalid_configuration` when the timeout
    /// does not end a second before the lease (see [`Builder::timeout`]),
    /// [`Error::Store`] when the store cannot be read or written.
    pub fn build(self) -> Result<TokenKeeper, Error> {
        let lease = self.config.lease();
        let timeout = transport_timeout(self.timeout, lease)?;
        let max_body = self.config.limits().max_body_bytes;
        let mut manager = TokenManager::new(self.config, WebCryptoEntropy);
        if let Some(key) = &self.dpop {
            manager.enable_dpop(key.deferred_signer())?;
        }
        let state = State::new(manager, self.store, self.session)?;
        Ok(TokenKeeper {
            inner: Rc::new(Inner {
                state: RefCell::new(state),
                waiters: RefCell::new(Vec::new()),
                timeout,
                lease,
                max_body,
                dpop: self.dpop,
            }),
        })
    }
}

impl TokenKeeper {
    /// A builder: timeout, store, initial session.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            timeout: None,
            store: Box::new(UnsharedStore::new()),
            session: None,
            dpop: None,
        }
    }

    /// A handle with an in-memory store holding `session`.
    ///
    /// # Errors
    /// See [`Builder::build`].
    pub fn new(config: Config, session: Session) -> Result<Self, Error> {
        TokenKeeper::builder(config).session(session).build()
    }

    /// The timeout of each request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// An access token for `request`: the cached one when fresh, otherwise
    /// refreshed (one refresh at a time; concurrent callers wait for it and
    /// share its result).
    ///
    /// # Errors
    /// [`Error::Core`] for the core's answers (login required, the refresh
    /// failed with the server's error, …), [`Error::Transport`] or
    /// [`Error::Timeout`] when the refresh got no response, [`Error::Store`]
    /// when a change could not be saved.
    pub async fn get_access_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.drive(Ask::User(request)).await
    }

    /// A client-credentials token for `request`'s audience and scope (no
    /// session needed): cached, and one request at a time per audience and
    /// scope. Only for confidential clients (a server on Node, say): a
    /// browser cannot keep a client secret.
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`].
    pub async fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.drive(Ask::Machine(request)).await
    }

    /// A federated connection's access token (Token Vault, the SDK's
    /// `getAccessTokenForConnection`): the one cached in the session's
    /// `connectionTokenSets` when fresh, otherwise exchanged for with the
    /// session's refresh token (one exchange per connection and login hint
    /// at a time). Only for confidential clients, like the exchange itself.
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`]; code
    /// `failed_to_exchange_refresh_token` when the server refused the
    /// exchange.
    pub async fn get_connection_token(
        &self,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.drive(Ask::Connection(request)).await
    }

    /// Finishes a login: checks the callback URL (or query) against
    /// `transaction` (state, issuer, error), exchanges the code, validates
    /// the ID token and starts a new session (saved to the store).
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Timeout`], [`Error::Store`].
    #[cfg(feature = "login")]
    #[cfg_attr(docsrs, doc(cfg(feature = "login")))]
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Error> {
        let at = now();
        let dispatch = self.with_manager(|m| m.exchange_code(transaction, callback, at))??;
        match self.exchange(dispatch, at).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a token exchange (RFC 8693); the result is returned, not stored.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid request or the server's error,
    /// [`Error::Transport`], [`Error::Timeout`].
    #[cfg(feature = "exchange")]
    #[cfg_attr(docsrs, doc(cfg(feature = "exchange")))]
    pub async fn exchange_token(
        &self,
        request: &TokenExchangeRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        let at = now();
        let dispatch = self.with_manager(|m| m.exchange_token(request, at))??;
        match self.exchange(dispatch, at).await? {
            Finished::Exchanged(response) => Ok(*response),
            other => Err(unexpected(&other)),
        }
    }

    /// Logs the session out: it is marked logged out (and saved) at once,
    /// then its refresh token is revoked when the configuration has a
    /// revocation endpoint.
    ///
    /// # Errors
    /// [`Error::Core`] (no session, the revocation failed),
    /// [`Error::Transport`], [`Error::Timeout`], [`Error::Store`].
    pub async fn logout(&self) -> Result<(), Error> {
        let at = now();
        let Some(dispatch) = self.with_manager(|m| m.logout(at))?? else {
            return Ok(());
        };
        let result = match self.exchange(dispatch, at).await? {
            Finished::Revoked => Ok(()),
            other => Err(unexpected(&other)),
        };
        self.revoke_orphans().await;
        result
    }

    /// Sends `request` to a resource server with the token for
    /// `token_request`: the core's `Authorization` (and `DPoP`) headers
    /// replace any of the same name, the response is shown to the core
    /// (`handle_resource_response`), and the request is sent once more when
    /// the core asks for it — with a fresh proof after a `use_dpop_nonce`
    /// challenge, or with a new (refreshed) token after an `invalid_token`
    /// rejection. The response is returned whatever its status, body read.
    ///
    /// # Errors
    /// Getting the token ([`TokenKeeper::get_access_token`]), authorizing
    /// it ([`Error::Core`]), or sending ([`Error::Transport`],
    /// [`Error::Timeout`]).
    pub async fn send_authorized(
        &self,
        token_request: &TokenRequest<'_>,
        request: HttpRequest,
    ) -> Result<HttpResponse, Error> {
        let mut token = self.get_access_token(token_request).await?;
        let mut retries = ResourceRetries::new();
        loop {
            let authorization =
                self.with_manager(|m| m.authorize(&request.method, &request.url, &token, now()))??;
            let headers = match authorization {
                Authorization::Ready(headers) => headers,
                Authorization::Sign(pending) => {
                    let signature = self.sign(pending.signing_input()).await?;
                    pending.finish(&signature)
                }
                // Named, not `Debug`-printed: keeps the formatting machinery
                // out of small apps.
                _ => return Err(Error::unsupported("an authorization step")),
            };
            let mut attempt = request.clone();
            for (name, _) in headers.iter() {
                attempt.headers.remove(name);
            }
            for (name, value) in headers.iter() {
                attempt.headers.append(name, value);
            }
            let response =
                fetch_with_limit(&attempt, self.inner.timeout, self.inner.max_body).await?;
            let verdict = self.with_manager(|m| {
                m.handle_resource_response(&request.url, &token, &response, now())
            })?;
            match retries.admit(verdict) {
                Some(ResourceVerdict::TokenRejected) => {
                    token = self.get_access_token(token_request).await?;
                }
                Some(_) => {}
                None => return Ok(response),
            }
        }
    }

    /// Sends a request the core described outside the token lifecycle (a
    /// discovery fetch, a revocation) with this handle's timeout and body
    /// limit, and returns the response whatever its status, with every
    /// header.
    ///
    /// # Errors
    /// [`Error::Transport`], [`Error::Timeout`] or [`Error::TooLarge`].
    pub async fn send_request(&self, request: &HttpRequest) -> Result<HttpResponse, Error> {
        fetch_with_limit(request, self.inner.timeout, self.inner.max_body).await
    }

    /// Calls `f` with the core's manager (for what this handle does not
    /// wrap), then saves any change it made and wakes every waiting caller
    /// (`f` may have ended a flight). `f` must not call back into this
    /// handle.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub fn with_manager<R>(&self, f: impl FnOnce(&mut TokenManager) -> R) -> Result<R, Error> {
        let result = {
            let mut state = self.inner.state.borrow_mut();
            let result = f(&mut state.manager);
            state.persist()?;
            result
        };
        self.inner.wake_all();
        Ok(result)
    }

    /// Installs `session` (after a login) and saves it, replacing whatever
    /// the store held.
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be saved (it is installed here
    /// all the same, and saved with the next change).
    pub fn set_session(&self, session: Session) -> Result<(), Error> {
        Ok(self.inner.state.borrow_mut().install(session)?)
    }

    /// A copy of the current session.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        self.inner.state.borrow().manager.session().cloned()
    }

    /// Removes the session here and from the store (a local logout).
    ///
    /// # Errors
    /// [`Error::Store`] when the store could not be cleared.
    pub fn clear_session(&self) -> Result<Option<Session>, Error> {
        Ok(self.inner.state.borrow_mut().clear()?)
    }

    /// The drive loop: ask, wait for another caller's flight, or own one.
    async fn drive(&self, ask: Ask<'_, '_>) -> Result<AccessTokenInfo, Error> {
        let result = self.drive_to_end(ask).await;
        self.revoke_orphans().await;
        result
    }

    /// Sends the revocations the core asks for: refresh tokens an answer
    /// proved live that could not be stored (a refresh answered after a
    /// logout, a session another tab ended). Best effort: a failed
    /// revocation leaves nothing else to do.
    async fn revoke_orphans(&self) {
        loop {
            let at = now();
            let next = self.inner.state.borrow_mut().manager.poll_revocation(at);
            match next {
                Some(Ok(dispatch)) => drop(self.exchange(dispatch, at).await),
                Some(Err(_)) => {}
                None => break,
            }
        }
    }

    async fn drive_to_end(&self, ask: Ask<'_, '_>) -> Result<AccessTokenInfo, Error> {
        let mut waited = None;
        loop {
            // The borrow ends with the statement: never held across `.await`.
            let at = now();
            let step = self.inner.state.borrow_mut().step(ask, waited, at)?;
            match step {
                Step::Ready(token) => return Ok(token),
                Step::Failed(error) => return Err(error.into()),
                Step::Wait(id, deadline) => {
                    waited = Some(id);
                    self.wait(id, deadline).await;
                }
                // Another tab or process refreshes (shared store): poll the
                // store for its tokens, until its claim ends.
                Step::Reload(until) => {
                    waited = None;
                    let moved = self.inner.state.borrow_mut().moved_on()?;
                    if !moved {
                        Delay::new(millis_until(until).clamp(1, RELOAD_POLL_MS)).await;
                    }
                }
                Step::Own(dispatch) => {
                    return match self.exchange(dispatch, at).await? {
                        Finished::Token(token) => Ok(token),
                        other => Err(unexpected(&other)),
                    };
                }
            }
        }
    }

    /// Waits until flight `id` ends or `deadline` (its lease) passes.
    async fn wait(&self, id: RequestId, deadline: Option<UnixTime>) {
        let (tx, mut ended) = oneshot::channel();
        {
            let mut waiters = self.inner.waiters.borrow_mut();
            waiters.retain(|(_, tx)| !tx.is_canceled());
            waiters.push((id, tx));
        }
        let ms = deadline.map_or(WAIT_FALLBACK_MS, |d| millis_until(d).max(1));
        let mut delay = Delay::new(ms);
        poll_fn(|cx| {
            let ended = Pin::new(&mut ended).poll(cx).is_ready();
            if ended || Pin::new(&mut delay).poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Sends the request of the flight `first` starts (signing its DPoP
    /// proof first when the signer defers), again on a resend, and hands
    /// the outcome to the core. Owns the flight: if this future is dropped, the flight is
    /// cancelled and its waiters woken. `started` is the time the core was
    /// given when it started the flight: its lease runs out at `started +
    /// lease`, and every request of the flight is aborted before that.
    async fn exchange(&self, first: Dispatch, started: UnixTime) -> Result<Finished, Error> {
        let Some(id) = dispatch_id(&first) else {
            return Err(Error::unsupported("a dispatch without a request"));
        };
        let mut guard = CancelOnDrop {
            inner: &self.inner,
            id: Some(id),
        };
        let mut next = first;
        let finished = loop {
            let out = match next {
                Dispatch::Send(out) => out,
                Dispatch::Sign(sign) => {
                    let signature = self.sign(&sign.signing_input).await;
                    let signed = signed(&mut self.inner.state.borrow_mut(), id, signature, now());
                    match signed {
                        Ok(out) => out,
                        Err(error) => break Err(error),
                    }
                }
                _ => break Err(Error::unsupported("a dispatch step")),
            };
            // As the core computes it: whole seconds.
            let deadline = started.saturating_add(self.inner.lease);
            let deadline_ms = deadline.as_secs().saturating_mul(1000);
            let sent = match within_lease(self.inner.timeout, deadline_ms, now_millis()) {
                Some(timeout) => fetch_with_limit(&out.request, timeout, self.inner.max_body).await,
                // No time left before the lease runs out: not sent at all.
                None => Err(Error::Timeout),
            };
            let finished = complete(&mut self.inner.state.borrow_mut(), id, sent, now());
            next = match finished {
                Ok(Finished::Resend(out)) => Dispatch::Send(out),
                Ok(Finished::Sign(sign)) => Dispatch::Sign(sign),
                other => break other,
            };
        };
        guard.id = None;
        self.inner.wake(id);
        finished
    }

    /// Signs a DPoP signing input with this handle's Web Crypto key.
    async fn sign(&self, signing_input: &str) -> Result<EcdsaSignature, Error> {
        let key = self.inner.dpop.as_ref().ok_or_else(|| {
            Error::Crypto(String::from(
                "the core asked for a DPoP signature and this handle has no Web Crypto key",
            ))
        })?;
        key.sign(signing_input.as_bytes()).await
    }
}

impl Inner {
    /// Wakes the callers waiting for flight `id`.
    fn wake(&self, id: RequestId) {
        let woken: Vec<_> = {
            let mut waiters = self.waiters.borrow_mut();
            let (woken, rest) = core::mem::take(&mut *waiters)
                .into_iter()
                .partition(|(flight, _)| *flight == id);
            *waiters = rest;
            woken
        };
        for (_, tx) in woken {
            let _ = tx.send(());
        }
    }

    /// Wakes every waiting caller (each asks the core again).
    fn wake_all(&self) {
        let all = core::mem::take(&mut *self.waiters.borrow_mut());
        for (_, tx) in all {
            let _ = tx.send(());
        }
    }
}

/// Cancels the flight it holds when dropped armed (the owner's future was
/// dropped mid-request), and wakes its waiters.
struct CancelOnDrop<'a> {
    inner: &'a Inner,
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // Never held across an await, so free here; if not, the lease
            // releases the flight.
            if let Ok(mut state) = self.inner.state.try_borrow_mut() {
                cancel(&mut state, id);
            }
            self.inner.wake(id);
        }
    }
}

/// A flight ended in another way than its kind should.
fn unexpected(finished: &Finished) -> Error {
    Error::unsupported(finished.name())
}
