//! # tokenkeeper-ureq
//!
//! A blocking driver for the [`tokenkeeper`] core on [ureq] 3: one
//! [`TokenKeeper`] handle per application (`Clone + Send + Sync`), shared by
//! every thread. The core decides everything (when to refresh, what to
//! send, what a response means); this crate only sends its requests, reads
//! the clock and the OS random source, makes callers wait while another
//! thread's refresh is in flight, and saves every change to a
//! [`SessionStore`].
//!
//! ```no_run
//! use tokenkeeper::grant::ClientAuth;
//! use tokenkeeper::{ClientSecret, Config, MemoryStore, TokenRequest};
//! use tokenkeeper_ureq::TokenKeeper;
//!
//! let config = Config::builder("https://tenant.example.com/oauth/token", "my-client")
//!     .client_auth(ClientAuth::SecretPost(ClientSecret::new("my-secret")))
//!     .build()?;
//! let keeper = TokenKeeper::builder(config)
//!     .store(MemoryStore::new()) // or your database; the session is loaded from it
//!     .build()?;
//! let token = keeper.get_access_token(&TokenRequest::new().audience("https://api.example.com"))?;
//! println!("expires at {}", token.expires_at);
//!
//! // Or let the handle authorize, send and retry an API call:
//! let request = ureq::http::Request::get("https://api.example.com/me").body(())?;
//! let response = keeper.send_authorized(&TokenRequest::new(), request)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The agent
//!
//! Bring your own [`ureq::Agent`] ([`Builder::agent`]) or let [`agent`]
//! build one. Token requests need `http_status_as_error(false)` (a 400 or
//! 401 is data for the core, not a transport error) and `max_redirects(0)`
//! (token endpoints never redirect; following one could send a refresh
//! token elsewhere): [`agent`] configures both, and the handle also sets
//! them on each token request it sends, so an agent configured otherwise
//! cannot break them. Requests sent by [`TokenKeeper::send_authorized`] get
//! `http_status_as_error(false)` and keep the agent's redirect settings.
//!
//! # TLS
//!
//! HTTPS works out of the box: the default `rustls` feature turns on
//! ureq's rustls (on the ring crypto provider) with the webpki (Mozilla)
//! root certificates. The `native-tls` feature uses the platform's TLS
//! library and trust store instead (and wins when both are on). To trust
//! one more CA — a company's, or a test server's — give its PEM to
//! [`Builder::root_certificates_pem`], or bring your own agent with a
//! [`ureq::tls::TlsConfig`]. A certificate that is not trusted fails the
//! call with [`Error::Tls`], the TLS library's error as its source.
//!
//! # Timeouts and the lease
//!
//! Each token request gets the agent's timeout ([`Builder::timeout`],
//! default [`DEFAULT_TIMEOUT`]), cut short to end just before the flight's
//! lease ([`ConfigBuilder::lease`], default 60 s): once a lease runs out, a
//! waiting caller takes the refresh over, so a request still on the wire
//! then could spend the same refresh token twice. The adapter gives such a
//! request up in time ([`Error::Timeout`]); its answer, should it still
//! come, is never read, let alone applied. A timeout longer than the lease
//! is therefore harmless, whatever the agent.
//!
//! [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
//!
//! # Threads
//!
//! The handle is [`tokenkeeper_native`]'s [`Handle`] (shared with the
//! reqwest adapter) around this crate's transport: how a request is sent
//! and how a caller waits. The core's driver sits behind a mutex, held
//! only while it is called, never during network or store I/O (the store
//! has its own lock, held for one operation). At most one refresh is in
//! flight: the other callers sleep until it ends, or until its lease runs
//! out (then [`TokenManager::handle_timeout`] releases it, so a thread
//! that died mid-request cannot wedge the others). A thread that unwinds
//! mid-call cancels its flight, and a waiting caller takes over.
//!
//! # Many sessions
//!
//! A web backend's users each have a session: [`Sessions`] serves any
//! number of them by id on one agent, from any thread (one refresh per
//! session at a time; other sessions never wait for it), with a bounded
//! number in memory and the rest loaded from the store on demand. It is
//! [`tokenkeeper_native::Sessions`], shared with the reqwest adapter.
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
//! a closure `Fn(&str) -> Result<EcdsaSignature, _>`, called without the lock.
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
//! [`ConfigBuilder::shared_store`]: tokenkeeper::ConfigBuilder::shared_store
//! [`StoreError::Conflict`]: tokenkeeper::StoreError::Conflict
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use tokenkeeper::TokenResponse;
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::dpop::{EcdsaSignature, Signer};
use tokenkeeper::grant::TokenExchangeRequest;
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, Config, ConnectionRequest, Headers, HttpRequest, HttpResponse, Session,
    SessionStore, TokenManager, TokenRequest,
};
use tokenkeeper_native::event_listener::{EventListener, Listener as _};
use tokenkeeper_native::{BoxError, Handle, LastUrl, Settings, SignFuture, Transport, block_on};
use ureq::http;

mod error;
mod sessions;

/// The README's examples, compiled by `cargo test --doc` (`no_run`: they need a tenant).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use error::Error;
pub use sessions::{Sessions, SessionsBuilder};
pub use tokenkeeper;
pub use tokenkeeper_native::{DEFAULT_TIMEOUT, OsEntropy};

/// An agent configured for token endpoints: every status returned as a
/// response (`http_status_as_error(false)`), no redirects followed
/// (`max_redirects(0)`), and `timeout` for each whole request.
/// HTTPS as the crate's TLS feature says (see [TLS](crate#tls)).
#[must_use]
pub fn agent(timeout: Duration) -> ureq::Agent {
    agent_config(timeout).build().into()
}

/// [`agent`]`(timeout)` that also trusts the CA certificates in `pem` (one
/// or more `CERTIFICATE` blocks) besides the webpki roots — for
/// [`discover`] and [`Builder::agent`] when the issuer's certificate comes
/// from a company or test CA. With the `native-tls` feature the list
/// replaces the platform's trust store by the webpki roots and these.
///
/// ```no_run
/// let pem = std::fs::read("company-ca.pem")?;
/// let agent = tokenkeeper_ureq::agent_with_roots(tokenkeeper_ureq::DEFAULT_TIMEOUT, &pem)?;
/// let metadata = tokenkeeper_ureq::discover(&agent, "https://idp.corp.example/")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Certificate`] when `pem` holds no certificate or does not
/// parse.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "rustls", feature = "native-tls"))))]
pub fn agent_with_roots(timeout: Duration, pem: impl AsRef<[u8]>) -> Result<ureq::Agent, Error> {
    let roots = parse_roots(pem.as_ref())?;
    Ok(agent_config(timeout)
        .tls_config(tls_config(Some(roots)))
        .build()
        .into())
}

fn agent_config(timeout: Duration) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout));
    #[cfg(feature = "native-tls")]
    let config = config.tls_config(tls_config(None));
    config
}

/// The TLS configuration of the agents this crate makes: the `native-tls`
/// feature's provider and the platform's roots, or rustls with the webpki
/// roots; with `extra` roots, the webpki roots and those (ureq takes a
/// single list).
#[cfg(any(feature = "rustls", feature = "native-tls"))]
fn tls_config(extra: Option<Vec<ureq::tls::Certificate<'static>>>) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let tls = TlsConfig::builder();
    #[cfg(feature = "native-tls")]
    let tls = tls
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(RootCerts::PlatformVerifier);
    let tls = match extra {
        Some(extra) => tls.root_certs(RootCerts::from(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned())
                .chain(extra),
        )),
        None => tls,
    };
    tls.build()
}

/// The certificates in `pem` (at least one).
#[cfg(any(feature = "rustls", feature = "native-tls"))]
fn parse_roots(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(cert) =
            item.map_err(|e| Error::Certificate(e.into()))?
        {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err(Error::Certificate("no CERTIFICATE block in the PEM".into()));
    }
    Ok(certs)
}

/// Fetches and validates `issuer`'s OpenID Connect discovery document
/// (`/.well-known/openid-configuration`); build the configuration from it
/// with [`ConfigBuilder::metadata`](tokenkeeper::ConfigBuilder::metadata).
///
/// # Errors
/// [`Error::Transport`], or [`Error::Core`] with
/// [`tokenkeeper::Error::Discovery`] (an issuer mismatch, a bad document, …).
pub fn discover(agent: &ureq::Agent, issuer: &str) -> Result<AuthorizationServerMetadata, Error> {
    block_on(tokenkeeper_native::discover(
        &Agent::new(agent.clone()),
        issuer,
    ))
}

/// The shared handle. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct TokenKeeper {
    inner: Arc<Handle<Agent>>,
}

/// Signs a DPoP proof's signing input for a signer that answered
/// [`SignOutcome::Deferred`](tokenkeeper::dpop::SignOutcome::Deferred) (a
/// KMS, an HSM): ES256, the raw 64-byte `r || s`.
pub type DeferredSigner = dyn Fn(&str) -> Result<EcdsaSignature, BoxError> + Send + Sync;

impl std::fmt::Debug for TokenKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeeper").finish_non_exhaustive()
    }
}

/// Builds a [`TokenKeeper`].
#[must_use]
pub struct Builder {
    settings: Settings,
    agent: Option<ureq::Agent>,
    timeout: Duration,
    roots: Vec<u8>,
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
    /// Called without any lock held.
    pub fn deferred_signer(
        mut self,
        sign: impl Fn(&str) -> Result<EcdsaSignature, Box<dyn std::error::Error + Send + Sync>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.settings.deferred_signer(deferred(sign));
        self
    }

    /// Sends with `agent` (see the [crate docs](crate#the-agent) for the
    /// settings it needs). Default: [`agent`]`(timeout)`.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The request timeout of the agent this builder makes (default
    /// [`DEFAULT_TIMEOUT`]; ignored with [`Builder::agent`]). Token
    /// requests are given up before their flight's lease
    /// ([`ConfigBuilder::lease`]) runs out in any case: see
    /// [Timeouts and the lease](crate#timeouts-and-the-lease).
    ///
    /// [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE`
    /// blocks) besides the webpki roots, in the agent this builder makes
    /// (ignored with [`Builder::agent`]: configure your agent's
    /// [`TlsConfig`](ureq::tls::TlsConfig) instead). May be called again
    /// to add more.
    ///
    /// ```no_run
    /// # fn run(config: tokenkeeper::Config) -> Result<(), tokenkeeper_ureq::Error> {
    /// let keeper = tokenkeeper_ureq::TokenKeeper::builder(config)
    ///     .root_certificates_pem(std::fs::read("company-ca.pem").unwrap())
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// With the `native-tls` feature the list replaces the platform's trust
    /// store by the webpki roots and these.
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
    pub fn store(mut self, store: impl SessionStore + Send + 'static) -> Self {
        self.settings.store(Box::new(store));
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

    /// The handle.
    ///
    /// # Errors
    /// [`Error::Store`] when the store cannot be read or written,
    /// [`Error::Core`] when the DPoP signer is not ES256,
    /// [`Error::Certificate`] when a root certificate does not parse.
    pub fn build(self) -> Result<TokenKeeper, Error> {
        let agent = builder_agent(self.agent, self.timeout, &self.roots)?;
        // The session is loaded (or installed) here, at once.
        Ok(TokenKeeper {
            inner: Arc::new(self.settings.build(Agent::new(agent))?),
        })
    }
}

/// The agent a builder sends with: the one given, else one made with
/// `timeout`, trusting `roots` (PEM) besides the platform's when given.
pub(crate) fn builder_agent(
    given: Option<ureq::Agent>,
    timeout: Duration,
    roots: &[u8],
) -> Result<ureq::Agent, Error> {
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    let _ = roots;
    Ok(match given {
        Some(agent) => agent,
        #[cfg(any(feature = "rustls", feature = "native-tls"))]
        None if !roots.is_empty() => agent_with_roots(timeout, roots)?,
        None => agent(timeout),
    })
}

impl TokenKeeper {
    /// A builder: agent, timeout, store, initial session.
    pub fn builder(config: Config) -> Builder {
        Builder {
            settings: Settings::new(config),
            agent: None,
            timeout: DEFAULT_TIMEOUT,
            roots: Vec::new(),
        }
    }

    /// A handle with the default agent and an in-memory store holding
    /// `session`.
    ///
    /// # Errors
    /// See [`Builder::build`].
    pub fn new(config: Config, session: Session) -> Result<Self, Error> {
        TokenKeeper::builder(config).session(session).build()
    }

    /// The agent requests are sent with.
    #[must_use]
    pub fn agent(&self) -> &ureq::Agent {
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
    pub fn get_access_token(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_access_token(request))
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
    pub fn get_connection_token(
        &self,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_connection_token(request))
    }

    /// A client-credentials token for `request`'s audience and scope (no
    /// session needed): cached, and one request at a time per audience and
    /// scope.
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`].
    pub fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.get_client_credentials_token(request))
    }

    /// Finishes a login: checks the callback URL (or query) against
    /// `transaction` (state, issuer, error), exchanges the code, validates
    /// the ID token and starts a new session (saved to the store).
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Store`].
    pub fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Error> {
        block_on(self.inner.login(transaction, callback))
    }

    /// Runs a token exchange (RFC 8693); the result is returned, not stored.
    ///
    /// # Errors
    /// [`Error::Core`] for an invalid request or the server's error,
    /// [`Error::Transport`].
    pub fn exchange_token(
        &self,
        request: &TokenExchangeRequest<'_>,
    ) -> Result<TokenResponse, Error> {
        block_on(self.inner.exchange_token(request))
    }

    /// Logs the session out: it is marked logged out (and saved) at once,
    /// then its refresh token is revoked when the configuration has a
    /// revocation endpoint.
    ///
    /// # Errors
    /// [`Error::Core`] (no session, the revocation failed),
    /// [`Error::Transport`], [`Error::Store`].
    pub fn logout(&self) -> Result<(), Error> {
        block_on(self.inner.logout())
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
    /// `invalid_token` rejection. The response is returned whatever its
    /// status; its body is not read here.
    ///
    /// # Errors
    /// Getting the token ([`TokenKeeper::get_access_token`]), authorizing
    /// it ([`Error::Core`]), or sending ([`Error::Transport`]).
    pub fn send_authorized<B: ureq::AsSendBody + Clone>(
        &self,
        token_request: &TokenRequest<'_>,
        request: http::Request<B>,
    ) -> Result<http::Response<ureq::Body>, Error> {
        block_on(async {
            let url = request.uri().to_string();
            let call = (self.inner)
                .resource(token_request, request.method().as_str(), url)
                .await?;
            send_resource(self.agent(), call, &request).await
        })
    }

    /// Sends a request the core described outside the token lifecycle (a
    /// login's code exchange, a discovery fetch, a revocation) with the
    /// token-endpoint settings, and returns the response whatever its
    /// status, with every header.
    ///
    /// # Errors
    /// [`Error::Transport`] when it could not be sent.
    pub fn send_request(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        block_on(self.inner.send_request(request))
    }

    /// Calls `f` with the core's manager (for what this handle does not
    /// wrap), then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Store`] when a change could not be saved.
    pub fn with_manager<R>(&self, f: impl FnOnce(&mut TokenManager) -> R) -> Result<R, Error> {
        block_on(self.inner.with_manager(f))
    }

    /// Installs `session` (after a login) and saves it, replacing whatever
    /// the store held.
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be saved (it is installed here
    /// all the same, and saved with the next change).
    pub fn set_session(&self, session: Session) -> Result<(), Error> {
        block_on(self.inner.set_session(session))
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
    pub fn clear_session(&self) -> Result<Option<Session>, Error> {
        block_on(self.inner.clear_session())
    }
}

/// How this adapter sends and waits: blocking the calling thread (the
/// futures finish on their first poll, run by [`block_on`]).
struct Agent(ureq::Agent, LastUrl<http::Uri>);

impl Agent {
    fn new(agent: ureq::Agent) -> Self {
        Agent(agent, LastUrl::default())
    }
}

/// `request` for ureq, its URL parsed once per change of URL.
fn convert(
    last_url: &LastUrl<http::Uri>,
    request: HttpRequest,
) -> Result<http::Request<Vec<u8>>, http::Error> {
    let uri = last_url.parse(&request.url, |url| http::Uri::try_from(url))?;
    Ok(request.into_http_with_uri(uri)?)
}

impl Transport for Agent {
    type Error = ureq::Error;

    async fn send(
        &self,
        request: HttpRequest,
        max_body: usize,
        budget: Option<Duration>,
    ) -> Result<HttpResponse, Error> {
        send(&self.0, &self.1, request, max_body, budget).map_err(error::transport)
    }

    async fn wait(&self, listener: EventListener, pause: Duration) {
        listener.wait_timeout(pause);
    }
}

/// Sends a core request; returns the response whatever its status, with
/// every header and at most `max_body + 1` bytes of body (the core rejects
/// a longer one itself). Within `budget`, body included, when given.
fn send(
    agent: &ureq::Agent,
    last_url: &LastUrl<http::Uri>,
    request: HttpRequest,
    max_body: usize,
    budget: Option<Duration>,
) -> Result<HttpResponse, ureq::Error> {
    // Nothing is copied: header values and body move; the URL is parsed
    // once per endpoint.
    let mut request = convert(last_url, request)?;
    let config = agent.config();
    let global = config.timeouts().global;
    // The agent's timeout, cut short by the budget (a per-request setting
    // replaces the agent's).
    let timeout = match (global, budget) {
        (Some(global), Some(budget)) if budget < global => Some(budget),
        (None, Some(budget)) => Some(budget),
        _ => None,
    };
    if config.http_status_as_error() || config.max_redirects() > 0 || timeout.is_some() {
        // Enforced per request, whatever the agent's own configuration.
        let mut configured = agent
            .configure_request(request)
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(timeout) = timeout {
            configured = configured.timeout_global(Some(timeout));
        }
        request = configured.build();
    }
    let response = agent.run(request)?;
    let status = response.status().as_u16();
    let headers = Headers::from(response.headers());
    // Read at most one byte past the limit: the core refuses a longer body.
    let limit = max_body.saturating_add(1);
    let announced = response
        .body()
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(announced.min(limit));
    response
        .into_body()
        .into_reader()
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut body)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Sends `request` for a resource call (its token from a handle or a
/// session of [`Sessions`]): each attempt with the core's headers, until
/// the core does not ask for another; the last response whatever its
/// status.
async fn send_resource<B: ureq::AsSendBody + Clone>(
    agent: &ureq::Agent,
    mut call: tokenkeeper_native::ResourceCall<'_, '_, '_, Agent>,
    request: &http::Request<B>,
) -> Result<http::Response<ureq::Body>, Error> {
    loop {
        let headers = call.authorization().await?;
        let mut attempt = copy_request(request);
        tokenkeeper_native::apply_headers(&headers, attempt.headers_mut())
            .map_err(|e| Error::Transport(e.into()))?;
        // A 401 must come back as a response for the core to see it.
        if agent.config().http_status_as_error() {
            attempt = agent
                .configure_request(attempt)
                .http_status_as_error(false)
                .build();
        }
        let response = agent.run(attempt).map_err(error::transport)?;
        let (status, headers) = (response.status(), Headers::from(response.headers()));
        if !call.handle_response(status.as_u16(), headers).await? {
            return Ok(response);
        }
    }
}

/// A blocking deferred signer as the native handle awaits it: answered at
/// once.
fn deferred(
    sign: impl Fn(&str) -> Result<EcdsaSignature, BoxError> + Send + Sync + 'static,
) -> Box<tokenkeeper_native::DeferredSigner> {
    Box::new(move |input: String| {
        let signature = sign(&input);
        Box::pin(std::future::ready(signature)) as SignFuture
    })
}

/// A copy of `request` to send again (the body type is cloneable).
fn copy_request<B: Clone>(request: &http::Request<B>) -> http::Request<B> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

// The handle is shared by threads: cloned into each, used from any. Checked
// when the crate compiles, not by a test that has to be run.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<TokenKeeper>();
    shareable::<Sessions>();
};
