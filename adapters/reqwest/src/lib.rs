//! # tokenkeeper-reqwest
//!
//! An async driver for the [`tokenkeeper`] core on [reqwest] 0.13: one
//! [`TokenKeeper`] handle per application (`Clone + Send + Sync`), shared by
//! every task. The core decides everything (when to refresh, what to send,
//! what a response means); this crate only sends its requests, reads the
//! clock and the OS random source, makes callers wait while another task's
//! refresh is in flight, and saves every change to a [`SessionStore`].
//!
//! ```no_run
//! use tokenkeeper::grant::ClientAuth;
//! use tokenkeeper::{ClientSecret, Config, MemoryStore, TokenRequest};
//! use tokenkeeper_reqwest::TokenKeeper;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder("https://tenant.example.com/oauth/token", "my-client")
//!     .client_auth(ClientAuth::SecretPost(ClientSecret::new("my-secret")))
//!     .build()?;
//! let keeper = TokenKeeper::builder(config)
//!     .store(MemoryStore::new()) // or your database; the session is loaded from it
//!     .build()?;
//! let token = keeper
//!     .get_access_token(&TokenRequest::new().audience("https://api.example.com"))
//!     .await?;
//! println!("expires at {}", token.expires_at);
//!
//! // Or let the handle authorize, send and retry an API call:
//! let request = keeper.client().get("https://api.example.com/me").build()?;
//! let response = keeper.send_authorized(&TokenRequest::new(), request).await?;
//! # Ok(()) }
//! ```
//!
//! # The client
//!
//! Token endpoints never redirect, and following a redirect could send a
//! refresh token elsewhere: the client must not follow any. (reqwest
//! returns every status as a response; a 400 or 401 is data for the core.)
//! The handle makes its own with [`client`] by default. To configure it
//! (proxies, roots, user agent), pass your [`reqwest::ClientBuilder`] to
//! [`Builder::client_builder`]: the handle sets `redirect(Policy::none())`
//! on it and builds it. A ready [`reqwest::Client`] ([`Builder::client`])
//! must have been built with `redirect(Policy::none())`; one that follows
//! redirects is refused with [`Error::ClientFollowsRedirects`].
//!
//! # TLS
//!
//! HTTPS works out of the box: the default `rustls` feature turns on
//! reqwest's rustls with the ring crypto provider and the platform's trust
//! store (rustls-platform-verifier); the `native-tls` feature uses the
//! platform's TLS library instead (and wins when both are on, as in
//! reqwest). With `rustls`, building a client installs ring as the
//! process-wide rustls [`CryptoProvider`] if none is installed yet (reqwest
//! needs one): an application that installs its own should do so first.
//! To trust one more CA — a company's, or a test server's — give its PEM to
//! [`Builder::root_certificates_pem`] (or call `tls_certs_merge` on your
//! own client builder). A certificate that is not trusted fails the call
//! with [`Error::Tls`].
//!
//! A [`reqwest::Client`] you build yourself for [`Builder::client`] needs
//! a rustls provider too when your own `reqwest` dependency enables none
//! (reqwest's `rustls` feature brings aws-lc-rs): install one before
//! building it, e.g. `rustls::crypto::ring::default_provider().install_default()`.
//!
//! # Timeouts and the lease
//!
//! Each token request gets the client's timeout ([`Builder::timeout`],
//! default [`DEFAULT_TIMEOUT`]), cut short to end just before the flight's
//! lease ([`ConfigBuilder::lease`], default 60 s): once a lease runs out, a
//! waiting caller takes the refresh over, so a request still on the wire
//! then could spend the same refresh token twice. The adapter drops such a
//! request in time ([`Error::Timeout`]); its answer, should it still come,
//! is never read, let alone applied. A timeout longer than the lease is
//! therefore harmless, whatever the client.
//!
//! [`CryptoProvider`]: https://docs.rs/rustls/0.23/rustls/crypto/struct.CryptoProvider.html
//! [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
//!
//! # Executors
//!
//! The handle is [`tokenkeeper_native`]'s [`Handle`] (shared with the ureq
//! adapter) around this crate's transport: how a request is sent and how a
//! caller waits. The waiting is executor-agnostic (an
//! [`event_listener`](tokenkeeper_native::event_listener) notification and
//! a [`futures_timer`] delay for lease deadlines), and the core sits behind
//! a `std::sync::Mutex` that is never held across an `.await`. reqwest
//! itself needs a Tokio reactor for its connections.
//!
//! If a caller's future is dropped while its refresh is in flight, the
//! refresh is cancelled ([`TokenManager::cancel`]) and a waiting caller
//! takes its turn; a caller that vanishes otherwise (a leaked future, a
//! stalled executor) is released at its lease deadline.
//!
//! # Logins, machine tokens, DPoP
//!
//! [`TokenKeeper::login`] finishes an authorization code login that the
//! core started ([`tokenkeeper::login::LoginRequest`]): the core checks the
//! callback and the ID token, the handle sends the code exchange and saves
//! the new session. [`TokenKeeper::get_client_credentials_token`],
//! [`TokenKeeper::exchange_token`] and [`TokenKeeper::logout`] drive the
//! core's other grants; [`discover`] fetches the server's metadata.
//!
//! [`Builder::dpop`] turns DPoP on with a [`Signer`]: proofs on every token
//! request (the token endpoint's `use_dpop_nonce` retry is the core's), and
//! [`TokenKeeper::send_authorized`] presents bound tokens with proofs and
//! resends once with the resource server's nonce. A signer that answers
//! later (a KMS, an HSM) is served by [`Builder::deferred_signer`]:
//! an async closure `Fn(String) -> SignFuture`, awaited without the lock.
//!
//! # Persistence
//!
//! After every core call the adapter drains [`TokenManager::poll_event`] and,
//! when the session changed, saves it with `expected` = the generation it
//! last saved or loaded (compare-and-swap). On [`StoreError::Conflict`]
//! another process saved first: the adapter reloads the stored session and
//! installs it — except when its own change rotated the refresh token
//! (then the stored session holds a spent one, and this one overwrites it).
//!
//! Sessions shared by several processes through one store should be
//! configured with [`ConfigBuilder::shared_store`]: before a refresh leaves,
//! the core claims the refresh token in the session, and the adapter saves
//! that claim with compare-and-swap first. If the save loses, the request
//! is cancelled unsent and the stored session adopted; a handle that finds
//! another process's live claim polls the store (every 50 ms) for its
//! tokens, until the claim ends (the core's lease). Without that option the
//! adapter still compares the store's generation with its own before each
//! refresh and adopts a newer stored session instead of spending a refresh
//! token another process may have rotated, which narrows the window but
//! cannot close it.
//!
//! The store is an effect of the core's [driver](tokenkeeper::driver): an
//! [`AsyncSessionStore`] ([`Builder::async_store`]) is awaited with no lock
//! held, so a slow store never delays another caller's cached token; a
//! blocking [`SessionStore`] ([`Builder::store`]) must answer at once.
//!
//! [`ConfigBuilder::shared_store`]: tokenkeeper::ConfigBuilder::shared_store
//!
//! [`StoreError::Conflict`]: tokenkeeper::StoreError::Conflict
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokenkeeper::TokenResponse;
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::dpop::Signer;
use tokenkeeper::grant::TokenExchangeRequest;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Config, ConnectionRequest, Headers, HttpRequest,
    HttpResponse, Session, SessionStore, TokenManager, TokenRequest,
};
use tokenkeeper_native::event_listener::EventListener;
use tokenkeeper_native::{Handle, LastUrl, Settings, Transport};

mod error;
mod sessions;

/// The README's examples, compiled by `cargo test --doc` (`no_run`: they need a tenant).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use error::Error;
pub use sessions::{Sessions, SessionsBuilder};
pub use tokenkeeper;
pub use tokenkeeper_native::{DEFAULT_TIMEOUT, DeferredSigner, OsEntropy, SignFuture};

/// A client configured for token endpoints: no redirects followed
/// (`redirect(Policy::none())`) and `timeout` for each whole request; HTTPS
/// as the crate's TLS feature says (see [TLS](crate#tls)).
///
/// # Errors
/// When reqwest cannot build a client (no TLS backend could start, …).
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    finish(reqwest::Client::builder().timeout(timeout))
}

/// [`client`]`(timeout)` that also trusts the CA certificates in `pem` (one
/// or more `CERTIFICATE` blocks) besides the platform's roots — for
/// [`discover`] and [`Builder::client`] when the issuer's certificate comes
/// from a company or test CA.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pem = std::fs::read("company-ca.pem")?;
/// let client = tokenkeeper_reqwest::client_with_roots(tokenkeeper_reqwest::DEFAULT_TIMEOUT, &pem)?;
/// let metadata = tokenkeeper_reqwest::discover(&client, "https://idp.corp.example/").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Certificate`] when `pem` holds no certificate or does not
/// parse, [`Error::Transport`] when reqwest cannot build the client.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "rustls", feature = "native-tls"))))]
pub fn client_with_roots(
    timeout: Duration,
    pem: impl AsRef<[u8]>,
) -> Result<reqwest::Client, Error> {
    with_roots(reqwest::Client::builder().timeout(timeout), pem.as_ref())
}

/// Builds `builder` for token endpoints: no redirects followed, and a
/// rustls crypto provider installed if none is.
fn finish(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, reqwest::Error> {
    #[cfg(feature = "rustls")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails harmlessly if another thread installed one meanwhile.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    builder.redirect(reqwest::redirect::Policy::none()).build()
}

/// Whether `client` may follow redirects. reqwest has no getter for a
/// client's redirect policy, but its `Debug` output names any policy but
/// the default (`Policy(Limit(10))`); only `Policy(None)` is accepted, so a
/// reqwest release that printed it otherwise would refuse every client
/// (fail closed; [`Builder::client_builder`] still works).
fn follows_redirects(client: &reqwest::Client) -> bool {
    !format!("{client:?}").contains(r#"redirect_policy: "Policy(None)""#)
}

/// Fetches and validates `issuer`'s OpenID Connect discovery document
/// (`/.well-known/openid-configuration`); build the configuration from it
/// with [`ConfigBuilder::metadata`](tokenkeeper::ConfigBuilder::metadata).
///
/// # Errors
/// [`Error::Transport`], or [`Error::Core`] with
/// [`tokenkeeper::Error::Discovery`] (an issuer mismatch, a bad document, …).
pub async fn discover(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, Error> {
    tokenkeeper_native::discover(&Client::new(client.clone()), issuer).await
}

/// The shared handle. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct TokenKeeper {
    inner: Arc<Handle<Client>>,
}

impl std::fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeeper").finish_non_exhaustive()
    }
}

/// Builds a [`TokenKeeper`].
#[must_use]
pub struct Builder {
    settings: Settings,
    client: Option<ClientSource>,
    roots: Vec<u8>,
    timeout: Duration,
}

impl Builder {
    /// Turns DPoP on with `signer`: token requests carry proofs (with the
    /// servers' nonces), tokens come back DPoP-bound, and
    /// [`TokenKeeper::send_authorized`] presents them with proofs.
    pub fn dpop(mut self, signer: impl Signer + Send + 'static) -> Self {
        self.settings.dpop(Box::new(signer));
        self
    }

    /// Signs for a DPoP signer that defers (answers
    /// [`SignOutcome::Deferred`](tokenkeeper::dpop::SignOutcome::Deferred)).
    /// Awaited without any lock held.
    pub fn deferred_signer(
        mut self,
        sign: impl Fn(String) -> SignFuture + Send + Sync + 'static,
    ) -> Self {
        self.settings.deferred_signer(Box::new(sign));
        self
    }

    /// Sends with `client`, which must have been built with
    /// `redirect(reqwest::redirect::Policy::none())`:
    /// [`Builder::build`] refuses one that follows redirects
    /// ([`Error::ClientFollowsRedirects`]). Default: [`client`]`(timeout)`.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(ClientSource::Client(client));
        self
    }

    /// Sends with a client built from `builder` (your proxies, roots, user
    /// agent, …), with `redirect(Policy::none())` set by the handle:
    ///
    /// ```no_run
    /// # async fn run(config: tokenkeeper::Config) -> Result<(), tokenkeeper_reqwest::Error> {
    /// let builder = reqwest::Client::builder().user_agent("my-app/1.0");
    /// let keeper = tokenkeeper_reqwest::TokenKeeper::builder(config)
    ///     .client_builder(builder)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`Builder::timeout`] is not applied to it: set the builder's own.
    pub fn client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.client = Some(ClientSource::Builder(Box::new(builder)));
        self
    }

    /// The request timeout of the client this builder makes (default
    /// [`DEFAULT_TIMEOUT`]; ignored with [`Builder::client`] and
    /// [`Builder::client_builder`]). Token requests are given up before
    /// their flight's lease ([`ConfigBuilder::lease`]) runs out in any case:
    /// see [Timeouts and the lease](crate#timeouts-and-the-lease).
    ///
    /// [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE`
    /// blocks) besides the platform's roots, in the client this builder
    /// makes or builds ([`Builder::client_builder`]; ignored with
    /// [`Builder::client`]). May be called again to add more.
    ///
    /// ```no_run
    /// # async fn run(config: tokenkeeper::Config) -> Result<(), tokenkeeper_reqwest::Error> {
    /// let keeper = tokenkeeper_reqwest::TokenKeeper::builder(config)
    ///     .root_certificates_pem(std::fs::read("company-ca.pem").unwrap())
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// [`Builder::build`] fails with [`Error::Certificate`] when `pem` holds
    /// no certificate or does not parse.
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "rustls", feature = "native-tls"))))]
    pub fn root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.roots.extend_from_slice(pem.as_ref());
        self.roots.push(b'\n');
        self
    }

    /// Where the session is kept (default: none: the session stays in this
    /// handle's memory only, with no store operation and no copy). The
    /// session is loaded from it when the handle is built. To read the
    /// session elsewhere in the process, or to share it between handles,
    /// pass an `Arc<Mutex<MemoryStore>>` and keep a clone.
    ///
    /// Its operations run on the calling task, so it must answer at once
    /// (memory): a store that does I/O is an [`AsyncSessionStore`]
    /// ([`Builder::async_store`]).
    pub fn store(mut self, store: impl SessionStore + Send + 'static) -> Self {
        self.settings.store(Box::new(store));
        self
    }

    /// Where the session is kept, awaited: a database, Redis, a remote
    /// key-value service. No lock of the handle's is held while an
    /// operation runs, so a slow store never delays a cached token.
    ///
    /// The session is loaded from it (or the builder's
    /// [`session`](Builder::session) installed) when the handle's first
    /// call runs; a store error then is that call's.
    pub fn async_store(mut self, store: impl AsyncSessionStore + 'static) -> Self {
        self.settings.async_store(store);
        self
    }

    /// The key the session is stored under (default
    /// [`DEFAULT_KEY`](tokenkeeper::store::DEFAULT_KEY)): a session's id,
    /// when one store keeps many.
    pub fn session_key(mut self, key: impl Into<String>) -> Self {
        self.settings.session_key(key.into());
        self
    }

    /// Starts with `session` (saved to the store) instead of the stored one.
    pub fn session(mut self, session: Session) -> Self {
        self.settings.session(session);
        self
    }

    /// The handle, with the session loaded from the store (or `session`
    /// installed) at once — with an [`async_store`](Builder::async_store),
    /// when the first call runs.
    ///
    /// # Errors
    /// [`Error::Store`] when the store cannot be read or written,
    /// [`Error::Transport`] when the client cannot be built,
    /// [`Error::ClientFollowsRedirects`] for a [`Builder::client`] that
    /// follows redirects, [`Error::Certificate`] when a root certificate
    /// does not parse, [`Error::Core`] when the DPoP signer is not ES256.
    pub fn build(self) -> Result<TokenKeeper, Error> {
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
        // A blocking store's session is loaded (or installed) here, at once.
        Ok(TokenKeeper {
            inner: Arc::new(self.settings.build(Client::new(client))?),
        })
    }
}

/// Where the handle's client comes from.
enum ClientSource {
    Client(reqwest::Client),
    /// Boxed: a builder is large, and rarely given.
    Builder(Box<reqwest::ClientBuilder>),
}

/// Builds `builder` (see [`finish`]) trusting the extra `roots` (PEM).
fn with_roots(builder: reqwest::ClientBuilder, roots: &[u8]) -> Result<reqwest::Client, Error> {
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    let builder = if roots.is_empty() {
        builder
    } else {
        let certs = reqwest::Certificate::from_pem_bundle(roots)
            .map_err(|e| Error::Certificate(Box::new(e)))?;
        if certs.is_empty() {
            return Err(Error::Certificate("no CERTIFICATE block in the PEM".into()));
        }
        builder.tls_certs_merge(certs)
    };
    let _ = roots;
    finish(builder).map_err(Error::Transport)
}

impl TokenKeeper {
    /// A builder: client, timeout, store, initial session.
    pub fn builder(config: Config) -> Builder {
        Builder {
            settings: Settings::new(config),
            client: None,
            roots: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A handle with the default client and an in-memory store holding
    /// `session`.
    ///
    /// # Errors
    /// See [`Builder::build`].
    pub fn new(config: Config, session: Session) -> Result<Self, Error> {
        TokenKeeper::builder(config).session(session).build()
    }

    /// The client requests are sent with.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.transport().0
    }

    /// An access token for `request`: the cached one when fresh, otherwise
    /// refreshed (one refresh at a time; concurrent callers wait for it and
    /// share its result).
    ///
    /// # Errors
    /// [`Error::Core`] for the core's answers (login required, the refresh
    /// failed with the server's error, …), [`Error::Transport`] when the
    /// refresh could not be sent, [`Error::Store`] when a change could not
    /// be saved.
    pub async fn get_access_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_access_token(request).await
    }

    /// A federated connection's access token (Token Vault, the SDK's
    /// `getAccessTokenForConnection`): the one cached in the session's
    /// `connectionTokenSets` when fresh, otherwise exchanged for with the
    /// session's refresh token (one exchange per connection and login hint
    /// at a time) and saved with the session.
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`]; code
    /// `failed_to_exchange_refresh_token` when the server refused the
    /// exchange.
    pub async fn get_connection_token(
        &self,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_connection_token(request).await
    }

    /// A client-credentials token for `request`'s audience and scope (no
    /// session needed): cached, and one request at a time per audience and
    /// scope.
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`].
    pub async fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.get_client_credentials_token(request).await
    }

    /// Finishes a login: checks the callback URL (or query) against
    /// `transaction` (state, issuer, error), exchanges the code, validates
    /// the ID token and starts a new session (saved to the store).
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Error> {
        self.inner.login(transaction, callback).await
    }

    /// Runs a token exchange (RFC 8693); the result is returned, not stored.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid request or the server's error,
    /// [`Error::Transport`].
    pub async fn exchange_token(
        &self,
        request: &TokenExchangeRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        self.inner.exchange_token(request).await
    }

    /// Logs the session out: it is marked logged out (and saved) at once,
    /// then its refresh token is revoked when the configuration has a
    /// revocation endpoint.
    ///
    /// # Errors
    /// [`Error::Core`] (no session, the revocation failed),
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn logout(&self) -> Result<(), Error> {
        self.inner.logout().await
    }

    /// The JWK thumbprint of the DPoP key (for a login's `dpop_jkt`), when
    /// DPoP is on.
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<String> {
        self.inner.dpop_thumbprint()
    }

    /// Sends `request` to a resource server with this handle's token for
    /// `token_request`: the core's `Authorization` (and `DPoP`) headers are
    /// set, the response is shown to the core, and the request is sent once
    /// more when the core asks for it — with a fresh proof after a
    /// `use_dpop_nonce` challenge, or with a new token (refreshed) after an
    /// `invalid_token` rejection. A request whose body cannot be cloned (a
    /// stream) is sent only once. The response is returned whatever its
    /// status; its body is not read here.
    ///
    /// # Errors
    /// Getting the token ([`TokenKeeper::get_access_token`]), authorizing
    /// it ([`Error::Core`]), or sending ([`Error::Transport`]).
    pub async fn send_authorized(
        &self,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, Error> {
        let url = request.url().to_string();
        let mut call = (self.inner)
            .resource(token_request, request.method().as_str(), url)
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

    /// Sends a request the core described outside the token lifecycle (a
    /// login's code exchange, a discovery fetch, a revocation) with the
    /// token-endpoint settings, and returns the response whatever its
    /// status, with every header.
    ///
    /// # Errors
    /// [`Error::Transport`] when it could not be sent.
    pub async fn send_request(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.inner.send_request(request).await
    }

    /// Calls `f` with the core's manager (for what this handle does not
    /// wrap), then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub async fn with_manager<R>(
        &self,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error> {
        self.inner.with_manager(f).await
    }

    /// Installs `session` (after a login) and saves it, replacing whatever
    /// the store held.
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be saved (it is installed here
    /// all the same, and saved with the next change).
    pub async fn set_session(&self, session: Session) -> Result<(), Error> {
        self.inner.set_session(session).await
    }

    /// A copy of the current session.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        self.inner.session()
    }

    /// Removes the session here and from the store (a local logout).
    ///
    /// # Errors
    /// [`Error::Store`] when the store could not be cleared.
    pub async fn clear_session(&self) -> Result<Option<Session>, Error> {
        self.inner.clear_session().await
    }
}

/// How this adapter sends and waits: reqwest's client, awaited, and an
/// executor-agnostic timer.
struct Client(reqwest::Client, LastUrl<(http::Uri, reqwest::Url)>);

impl Client {
    fn new(client: reqwest::Client) -> Self {
        Client(client, LastUrl::default())
    }
}

impl Transport for Client {
    type Error = reqwest::Error;

    /// Within `budget`, body included, when given: the exchange is dropped
    /// (its connection closed) when the budget runs out first.
    async fn send(
        &self,
        request: HttpRequest,
        max_body: usize,
        budget: Option<Duration>,
    ) -> Result<HttpResponse, Error> {
        // `Duration::MAX`: no deadline known (a timer that long would overflow).
        let Some(budget) = budget.filter(|budget| *budget != Duration::MAX) else {
            return send(&self.0, &self.1, request, max_body).await;
        };
        let mut timer = pin!(futures_timer::Delay::new(budget));
        let mut exchange = pin!(send(&self.0, &self.1, request, max_body));
        poll_fn(|cx| {
            if let Poll::Ready(result) = exchange.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Error::Timeout(None))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    async fn wait(&self, listener: EventListener, pause: Duration) {
        let mut timer = pin!(futures_timer::Delay::new(pause));
        let mut listener = pin!(listener);
        poll_fn(|cx| {
            if listener.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Sends a core request; returns the response whatever its status, with
/// every header and at most a little more than `max_body` bytes of body
/// (the core rejects a longer one itself).
async fn send(
    client: &reqwest::Client,
    last_url: &LastUrl<(http::Uri, reqwest::Url)>,
    request: HttpRequest,
    max_body: usize,
) -> Result<HttpResponse, Error> {
    // Nothing is copied: header values and body move, and the URL is
    // parsed once per endpoint (reqwest's `Url` and the `http` crate's
    // `Uri` both); `execute` adds the client's default headers as `send`
    // does.
    let parsed = last_url.parse(&request.url, |url| -> Result<_, Option<http::Error>> {
        let uri = http::Uri::try_from(url).map_err(|e| Some(http::Error::from(e)))?;
        let parsed = reqwest::Url::parse(url).map_err(|_| None)?;
        Ok((uri, parsed))
    });
    let request = match parsed {
        Ok((uri, url)) => {
            let (parts, body) = request
                .into_http_with_uri(uri)
                .map_err(http::Error::from)?
                .into_parts();
            let mut request = reqwest::Request::new(parts.method, url);
            *request.headers_mut() = parts.headers;
            *request.body_mut() = Some(body.into());
            request
        }
        Err(Some(error)) => return Err(Error::InvalidRequest(error)),
        // A URL reqwest refuses: its own conversion says why.
        Err(None) => {
            let request = http::Request::try_from(request).map_err(http::Error::from)?;
            reqwest::Request::try_from(request).map_err(Error::Transport)?
        }
    };
    let mut response = client.execute(request).await.map_err(error::transport)?;
    let status = response.status().as_u16();
    let headers = Headers::from(response.headers());
    // Sized from Content-Length, up to one byte past the limit (the core
    // refuses a longer body itself).
    let announced = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(announced.min(max_body.saturating_add(1)));
    while let Some(chunk) = response.chunk().await.map_err(error::transport)? {
        body.extend_from_slice(&chunk);
        if body.len() > max_body {
            break;
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

// The handle is shared by tasks on any executor, and its futures may move
// between worker threads. Checked when the crate compiles, not by a test
// that has to be run.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<TokenKeeper>();
};
const _: fn(&TokenKeeper, &TokenRequest<'_>, reqwest::Request, HttpRequest) =
    |keeper, token_request, api, raw| {
        fn send<T: Send>(_: &T) {}
        send(&keeper.get_access_token(token_request));
        send(&keeper.send_authorized(token_request, api));
        send(&keeper.send_request(raw));
    };
