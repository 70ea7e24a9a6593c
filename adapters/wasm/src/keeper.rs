//! The shared handle on the core's [`Driver`]: every operation is a
//! [`Call`] driven through the driver's effects, and this adapter only
//! carries them out on the JavaScript runtime — `fetch` for
//! [`Effect::Send`], the store (its operations run in one step of the event
//! loop) for [`Effect::Store`], Web Crypto for [`Effect::Sign`], a
//! `setTimeout` or another caller's progress for [`Effect::Wait`].
//!
//! ```text
//! TokenKeeper::get_access_token(request) ─> run(Call::token(Ask::User))
//!   loop { effect = driver.poll(call, now)      (RefCell borrow, one step)
//!     Send  ─> fetch (timeout cut before the flight's lease deadline)
//!              ─> handle_response | handle_transport_error, wake waiters
//!     Store ─> op.run(store)                    ─> handle_store, wake waiters
//!     Sign  ─> crypto.subtle.sign               ─> handle_signature, wake waiters
//!     Wait  ─> until woken or the deadline (another tab refreshing: the
//!              store is read again in 200 ms, on the timer alone)
//!     Done  ─> the result (this adapter's transport or crypto error kept) }
//!   future dropped before Done ─> driver.abandon(call), wake waiters
//! ```
//!
//! Single-threaded: the driver and the store sit in `RefCell`s, each
//! borrowed for one step and never across an `.await`.

use core::cell::RefCell;
use core::fmt;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::rc::Rc;

use futures_channel::oneshot;
#[cfg(feature = "exchange")]
use tokenkeeper::ConnectionRequest;
#[cfg(feature = "exchange")]
use tokenkeeper::TokenResponse;
#[cfg(feature = "discovery")]
use tokenkeeper::discovery::{AuthorizationServerMetadata, DiscoveryKind, discovery_request};
use tokenkeeper::dpop::EcdsaSignature;
use tokenkeeper::driver::{Ask, Call, Driver, Effect, Failure, Finished, Keeper, WaitReason};
#[cfg(feature = "exchange")]
use tokenkeeper::grant::TokenExchangeRequest;
#[cfg(feature = "login")]
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::store::DEFAULT_KEY;
use tokenkeeper::{
    AccessTokenInfo, Authorization, Config, HttpRequest, HttpResponse, ResourceRetries,
    ResourceVerdict, Session, SessionStore, TokenManager, TokenRequest,
};

use crate::Error;
use crate::dpop::WebCryptoKey;
#[cfg(feature = "discovery")]
use crate::fetch::fetch;
use crate::fetch::fetch_with_limit;
use crate::js::{Delay, WebCryptoEntropy, millis_until, now, now_millis};
pub use crate::timeout::DEFAULT_TIMEOUT;
use crate::timeout::{transport_timeout, within_lease};

/// How often a caller told to reload (another tab or process holds the
/// refresh claim of a shared store) looks at the store again.
const RELOAD_POLL_MS: u64 = 200;

/// A waiter without a deadline looks again after this long.
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
    /// The core's driver: the manager and how its session stands with the
    /// store.
    driver: RefCell<Driver>,
    /// Where the session is kept; each operation runs in one step.
    /// `None`: the session is kept in memory only (the driver answers
    /// every store operation).
    store: RefCell<Option<Box<dyn SessionStore>>>,
    /// Callers waiting for another call's progress; all woken after every
    /// step that changed something (each polls the driver again).
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// Each request's timeout, body included; it ends before the lease.
    timeout: Duration,
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
    store: Option<Box<dyn SessionStore>>,
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

    /// Where the session is kept (default: none: the session stays in this
    /// handle's memory only, and nothing is copied — as an
    /// [`UnsharedStore`](tokenkeeper::UnsharedStore) would keep it). The
    /// session is loaded from it when the handle is built.
    pub fn store(mut self, store: impl SessionStore + 'static) -> Self {
        self.store = Some(Box::new(store));
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
        // The session is loaded (or the starting one saved) here, at once.
        let (driver, store) = match self.store {
            Some(store) => {
                let (driver, store) = Keeper::new(manager, store, self.session)?.into_parts();
                (driver, Some(store))
            }
            None => (
                Driver::starting(manager, DEFAULT_KEY, self.session).memory_only(),
                None,
            ),
        };
        Ok(TokenKeeper {
            inner: Rc::new(Inner {
                driver: RefCell::new(driver),
                store: RefCell::new(store),
                waiters: RefCell::new(Vec::new()),
                timeout,
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
            store: None,
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
        self.token(Ask::User(request)).await
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
        self.token(Ask::Machine(request)).await
    }

    async fn token(&self, ask: Ask<'_, '_>) -> Result<AccessTokenInfo, Error> {
        match self.run(Call::token(ask)).await? {
            Finished::Token(token) => Ok(token),
            _ => Err(Error::unsupported("a token call's end")),
        }
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
    #[cfg(feature = "exchange")]
    pub async fn get_connection_token(
        &self,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.token(Ask::Connection(request)).await
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
        let dispatch =
            (self.inner.driver.borrow_mut().manager).exchange_code(transaction, callback, now())?;
        match self.run(Call::flight(dispatch)).await? {
            Finished::Token(token) => Ok(token),
            _ => Err(Error::unsupported("a login's end")),
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
        let dispatch = (self.inner.driver.borrow_mut().manager).exchange_token(request, now())?;
        match self.run(Call::flight(dispatch)).await? {
            Finished::Exchanged(response) => Ok(*response),
            _ => Err(Error::unsupported("an exchange's end")),
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
        let out = self.inner.driver.borrow_mut().manager.logout(now())?;
        let Some(dispatch) = out else {
            self.run(Call::persist()).await?;
            return Ok(());
        };
        match self.run(Call::flight(dispatch)).await? {
            Finished::Revoked => Ok(()),
            _ => Err(Error::unsupported("a logout's end")),
        }
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
            let authorization = self
                .with_manager(|m| m.authorize(&request.method, &request.url, &token, now()))
                .await??;
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
            let verdict = self
                .with_manager(|m| {
                    m.handle_resource_response(&request.url, &token, &response, now())
                })
                .await?;
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
    /// wrap), wakes every waiting caller (`f` may have ended a flight),
    /// then saves any change it made. `f` must not call back into this
    /// handle.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub async fn with_manager<R>(
        &self,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error> {
        let result = f(&mut self.inner.driver.borrow_mut().manager);
        self.inner.wake_all();
        self.run(Call::persist()).await?;
        Ok(result)
    }

    /// Installs `session` (after a login) and saves it, replacing whatever
    /// the store held.
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be saved (it is installed here
    /// all the same, and saved with the next change).
    pub async fn set_session(&self, session: Session) -> Result<(), Error> {
        self.run(Call::install(session)).await.map(drop)
    }

    /// A copy of the current session.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        self.inner.driver.borrow().manager.session().cloned()
    }

    /// Removes the session here and from the store (a local logout).
    ///
    /// # Errors
    /// [`Error::Store`] when the store could not be cleared.
    pub async fn clear_session(&self) -> Result<Option<Session>, Error> {
        match self.run(Call::clear()).await? {
            Finished::Cleared(session) => Ok(session.map(|s| *s)),
            _ => Ok(None),
        }
    }

    /// Drives `call` through the core's driver to its end (see the
    /// [module docs](self)). If this future is dropped, the call is
    /// abandoned: its flight cancelled, a waiting caller takes over.
    async fn run(&self, call: Call<'_, '_>) -> Result<Finished, Error> {
        let inner = &*self.inner;
        let mut running = Running {
            inner,
            call,
            armed: true,
        };
        // This adapter's own errors, kept while the driver ends the call.
        let mut failed: Option<Error> = None;
        loop {
            // Each borrow ends with its statement: never held across `.await`.
            let effect = inner.driver.borrow_mut().poll(&mut running.call, now());
            match effect {
                Effect::Send { request, deadline } => {
                    // Aborted before the flight's lease runs out (the core
                    // counts whole seconds); not sent when no time is left.
                    let timeout = match deadline {
                        Some(deadline) => {
                            let deadline_ms = deadline.as_secs().saturating_mul(1000);
                            within_lease(inner.timeout, deadline_ms, now_millis())
                        }
                        None => Some(inner.timeout),
                    };
                    let sent = match timeout {
                        Some(timeout) => {
                            fetch_with_limit(&request.request, timeout, inner.max_body).await
                        }
                        None => Err(Error::Timeout),
                    };
                    let mut driver = inner.driver.borrow_mut();
                    match sent {
                        Ok(response) => driver.handle_response(&mut running.call, response, now()),
                        Err(error) => {
                            failed = Some(error);
                            driver.handle_transport_error(&mut running.call, now());
                        }
                    }
                    drop(driver);
                    inner.wake_all();
                }
                Effect::Store(op) => {
                    let answer = match inner.store.borrow_mut().as_deref_mut() {
                        Some(store) => op.run(store),
                        None => inner.driver.borrow().answer_in_memory(&op),
                    };
                    inner
                        .driver
                        .borrow_mut()
                        .handle_store(&mut running.call, answer);
                    inner.wake_all();
                }
                Effect::Sign(request) => {
                    let signature = self.sign(&request.signing_input).await;
                    let signature = signature.map_err(|e| failed = Some(e)).ok();
                    inner.driver.borrow_mut().handle_signature(
                        &mut running.call,
                        signature.as_ref(),
                        now(),
                    );
                    inner.wake_all();
                }
                Effect::Wait(wait) => {
                    let ms = wait
                        .deadline
                        .map_or(WAIT_FALLBACK_MS, |deadline| millis_until(deadline).max(1));
                    if wait.reason == WaitReason::OtherProcess {
                        // Another tab or process refreshes (shared store):
                        // read the store again soon, on the timer alone.
                        // Woken by this tab's progress instead, its callers
                        // waiting so would wake each other with every store
                        // read, without end, in microtasks that starve the
                        // event loop (the other tab's answer included).
                        Delay::new(ms.min(RELOAD_POLL_MS)).await;
                    } else {
                        inner.wait(ms).await;
                    }
                }
                Effect::Done(result) => {
                    running.armed = false;
                    return result.map_err(|failure| from_failure(failure, failed.take()));
                }
                _ => {
                    running.armed = false;
                    inner.driver.borrow_mut().abandon(&mut running.call);
                    inner.wake_all();
                    return Err(Error::unsupported("an effect"));
                }
            }
        }
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
    /// Waits until another call makes progress or `ms` pass.
    async fn wait(&self, ms: u64) {
        let (tx, mut woken) = oneshot::channel();
        {
            let mut waiters = self.waiters.borrow_mut();
            waiters.retain(|tx| !tx.is_canceled());
            waiters.push(tx);
        }
        let mut delay = Delay::new(ms);
        poll_fn(|cx| {
            let woken = Pin::new(&mut woken).poll(cx).is_ready();
            if woken || Pin::new(&mut delay).poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Wakes every waiting caller (each polls the driver again).
    fn wake_all(&self) {
        let all = core::mem::take(&mut *self.waiters.borrow_mut());
        for tx in all {
            let _ = tx.send(());
        }
    }
}

/// A call in progress: abandoned (its flight cancelled, waiters woken) if
/// its future is dropped before it is done.
struct Running<'h, 'r, 'a> {
    inner: &'h Inner,
    call: Call<'r, 'a>,
    armed: bool,
}

impl Drop for Running<'_, '_, '_> {
    fn drop(&mut self) {
        if self.armed {
            // Never borrowed across an await, so free here; if not, the
            // lease releases the flight.
            if let Ok(mut driver) = self.inner.driver.try_borrow_mut() {
                driver.abandon(&mut self.call);
            }
            self.inner.wake_all();
        }
    }
}

/// The caller's error for a call the driver ended with `failure`; `failed`
/// is this adapter's own error (the transport's, Web Crypto's), kept.
fn from_failure(failure: Failure, failed: Option<Error>) -> Error {
    match failure {
        Failure::Core(error) => Error::Core(error),
        Failure::Store(error) => Error::Store(error),
        Failure::LeaseExpired => Error::Timeout,
        // A caller that waited on another's failed flight has no error of
        // its own: the core's says what ended it.
        Failure::Transport => failed.unwrap_or(Error::Core(tokenkeeper::Error::Transport)),
        Failure::Signing => failed
            .unwrap_or_else(|| Error::Crypto(String::from("the deferred DPoP signature failed"))),
        _ => Error::unsupported("a failure"),
    }
}
