//! Shared by the `scenarios_*` suites: a [`Driver`] over each adapter (the
//! blocking `tokenkeeper-ureq`; the async `tokenkeeper-reqwest`, driven by
//! a Tokio current-thread runtime; and `tokenkeeper-wasm`, compiled for
//! wasm32 and run in Node by the bridge in `tests/wasm-bridge`, see
//! [`wasm`]), the `scenarios!` macro that instantiates every scenario for
//! all three, and helpers (harness clients' configurations, a login through
//! the core, a store that records every save).
//!
//! Each scenario is a generic function `fn name<D: Driver>()`; the macro
//! turns it into `ureq_driver::name`, `reqwest_driver::name` and
//! `wasm_driver::name` tests. Scenarios build their configuration with
//! this module's [`Config`] (the core's, plus the builder calls that made
//! it, which is how it reaches the wasm module).

#![allow(dead_code, missing_docs)]

mod config;
pub mod wasm;

pub use config::{Config, ConfigBuilder, wire_client_auth};
pub use wasm::Wasm;

use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokenkeeper::TokenResponse;
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::ClientAssertionKey;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::TokenExchangeRequest;
use tokenkeeper::login::{LoginRequest, LoginTransaction};
use tokenkeeper::{AccessTokenInfo, ClientSecret, Session, TokenRequest};
use tokenkeeper_integration::{
    API1, API2, Harness, PKJWT_KID, PKJWT_PRIVATE_PEM_PATH, REDIRECT_URI, TestClient,
};
use tokenkeeper_wasm_bridge::protocol::{
    Answer, Command, WireExchangeRequest, WireTokenRequest, metadata_from_json, session_from_json,
    token_response_from_json,
};

/// The scope of every login (OIDC, a refresh token, both API scopes).
pub const LOGIN_SCOPE: &str = "openid profile email offline_access read:data write:data";

/// Instantiates each named scenario `fn name<D: Driver>()` of the calling
/// file as a test per adapter: `ureq_driver::name`, `reqwest_driver::name`,
/// `wasm_driver::name`. Attributes before a name (`#[ignore = "…"]`) are
/// kept on all three tests.
macro_rules! scenarios {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        /// The scenarios through `tokenkeeper-ureq` (threads).
        mod ureq_driver {
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    super::$name::<crate::scenarios_common::Ureq>();
                }
            )*
        }
        /// The scenarios through `tokenkeeper-reqwest` (tasks on a Tokio
        /// current-thread runtime).
        mod reqwest_driver {
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    super::$name::<crate::scenarios_common::Reqwest>();
                }
            )*
        }
        /// The scenarios through `tokenkeeper-wasm` (tasks in one Node
        /// event loop).
        mod wasm_driver {
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    super::$name::<crate::scenarios_common::Wasm>();
                }
            )*
        }
    };
}

/// A failed call, whichever adapter made it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The adapter error's stable code (`failed_to_refresh_token`,
    /// `transport_error`, …).
    pub code: &'static str,
    /// The core's error, when it is one (boxed: a small `Err`). Through
    /// the wasm driver it is rebuilt from the wire for the kinds
    /// `WireCoreError` carries (every one holding plain data; not the ID
    /// token, login, discovery, revocation, signing, DPoP or MFA errors,
    /// which come as `None` with their code and message).
    pub core: Option<Box<tokenkeeper::Error>>,
    /// `requires_login()` of the adapter error.
    pub requires_login: bool,
    /// The adapter error's `Display`.
    pub message: String,
}

impl Failure {
    /// The server's OAuth `error` behind a failed token request, if any.
    pub fn server_error(&self) -> Option<&str> {
        self.core
            .as_deref()
            .and_then(tokenkeeper::Error::server_error)
            .map(|e| e.error.as_str())
    }

    /// The cause of a `failed_to_refresh_token`.
    pub fn refresh_cause(&self) -> Option<&tokenkeeper::ResponseError> {
        match self.core.as_deref() {
            Some(tokenkeeper::Error::FailedToRefreshToken(cause)) => Some(cause),
            _ => None,
        }
    }
}

macro_rules! failure_from {
    ($error:ty) => {
        impl From<$error> for Failure {
            fn from(error: $error) -> Self {
                Failure {
                    code: error.code(),
                    core: error.core().cloned().map(Box::new),
                    requires_login: error.requires_login(),
                    message: error.to_string(),
                }
            }
        }
    };
}
failure_from!(tokenkeeper_ureq::Error);
failure_from!(tokenkeeper_reqwest::Error);

/// A resource server's answer to [`Driver::call_api`].
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    /// The JSON body (`Null` when it is not JSON).
    pub body: Value,
    pub www_authenticate: Option<String>,
}

/// Which grant a concurrent caller asks through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `get_access_token` (the session's refresh token).
    User,
    /// `get_client_credentials_token`.
    Machine,
}

/// One adapter, seen through the operations the scenarios need. Every
/// method blocks until the adapter's answer is there.
pub trait Driver: Clone + Send + Sync + Sized + 'static {
    /// `ureq`, `reqwest` or `wasm`.
    const NAME: &'static str;

    /// A handle on `config` whose session lives in `store` (loaded from it
    /// at once), with DPoP when `dpop` is given.
    fn build(config: Config, store: SharedStore, dpop: Option<Arc<P256Signer>>) -> Self;

    /// The adapter's OpenID Connect discovery of `issuer`.
    fn discover(issuer: &str) -> Result<AuthorizationServerMetadata, Failure>;

    /// `get_access_token`.
    fn get(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure>;

    /// `get_client_credentials_token`.
    fn machine(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure>;

    /// `login`: the code exchange of a login the core started.
    fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Failure>;

    /// `logout` (mark logged out, then revoke the refresh token).
    fn logout(&self) -> Result<(), Failure>;

    /// `exchange_token` (RFC 8693).
    fn exchange(&self, request: &TokenExchangeRequest<'_>) -> Result<TokenResponse, Failure>;

    /// `send_authorized`: `GET url` with the token for `request`.
    fn call_api(&self, request: &TokenRequest<'_>, url: &str) -> Result<ApiResponse, Failure>;

    /// A copy of the handle's session.
    fn session(&self) -> Option<Session>;

    /// The DPoP key's thumbprint, when DPoP is on.
    fn dpop_thumbprint(&self) -> Option<String>;

    /// Every `(ask, request)` at the same moment (threads released by one
    /// barrier, or tasks all spawned before any runs); the answers in order.
    fn at_once(
        &self,
        asks: Vec<(Ask, TokenRequest<'static>)>,
    ) -> Vec<Result<AccessTokenInfo, Failure>>;
}

// ---------------------------------------------------------------------------
// ureq

/// `tokenkeeper_ureq::TokenKeeper`.
#[derive(Clone)]
pub struct Ureq(pub tokenkeeper_ureq::TokenKeeper);

impl Driver for Ureq {
    const NAME: &'static str = "ureq";

    fn build(config: Config, store: SharedStore, dpop: Option<Arc<P256Signer>>) -> Self {
        let mut builder = tokenkeeper_ureq::TokenKeeper::builder(config.core).store(store);
        if let Some(signer) = dpop {
            builder = builder.dpop(signer);
        }
        Ureq(builder.build().expect("ureq handle"))
    }

    fn discover(issuer: &str) -> Result<AuthorizationServerMetadata, Failure> {
        let agent = tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT);
        Ok(tokenkeeper_ureq::discover(&agent, issuer)?)
    }

    fn get(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self.0.get_access_token(request)?)
    }

    fn machine(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self.0.get_client_credentials_token(request)?)
    }

    fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Failure> {
        Ok(self.0.login(transaction, callback)?)
    }

    fn logout(&self) -> Result<(), Failure> {
        Ok(self.0.logout()?)
    }

    fn exchange(&self, request: &TokenExchangeRequest<'_>) -> Result<TokenResponse, Failure> {
        Ok(self.0.exchange_token(request)?)
    }

    fn call_api(&self, request: &TokenRequest<'_>, url: &str) -> Result<ApiResponse, Failure> {
        let http_request = ureq::http::Request::get(url)
            .header("accept", "application/json")
            .body(())
            .expect("request");
        let mut response = self.0.send_authorized(request, http_request)?;
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.body_mut().read_to_vec().expect("API body");
        Ok(ApiResponse {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            www_authenticate,
        })
    }

    fn session(&self) -> Option<Session> {
        self.0.session()
    }

    fn dpop_thumbprint(&self) -> Option<String> {
        self.0.dpop_thumbprint()
    }

    fn at_once(
        &self,
        asks: Vec<(Ask, TokenRequest<'static>)>,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        let barrier = Arc::new(Barrier::new(asks.len()));
        let threads: Vec<_> = asks
            .into_iter()
            .map(|(ask, request)| {
                let (keeper, barrier) = (self.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    match ask {
                        Ask::User => keeper.get(&request),
                        Ask::Machine => keeper.machine(&request),
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("caller thread"))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// reqwest

/// `tokenkeeper_reqwest::TokenKeeper` with the Tokio current-thread runtime
/// that drives it (every call is a `block_on`; reqwest's pooled connections
/// belong to this runtime, so it lives as long as the handle).
#[derive(Clone)]
pub struct Reqwest {
    pub keeper: tokenkeeper_reqwest::TokenKeeper,
    pub runtime: Arc<tokio::runtime::Runtime>,
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl Reqwest {
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Driver for Reqwest {
    const NAME: &'static str = "reqwest";

    fn build(config: Config, store: SharedStore, dpop: Option<Arc<P256Signer>>) -> Self {
        let runtime = Arc::new(current_thread_runtime());
        // reqwest's client needs the runtime's reactor when it is built.
        let keeper = runtime.block_on(async move {
            let mut builder = tokenkeeper_reqwest::TokenKeeper::builder(config.core).store(store);
            if let Some(signer) = dpop {
                builder = builder.dpop(signer);
            }
            builder.build().expect("reqwest handle")
        });
        Reqwest { keeper, runtime }
    }

    fn discover(issuer: &str) -> Result<AuthorizationServerMetadata, Failure> {
        current_thread_runtime().block_on(async {
            let client = tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT)
                .expect("reqwest client");
            Ok(tokenkeeper_reqwest::discover(&client, issuer).await?)
        })
    }

    fn get(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self.block_on(self.keeper.get_access_token(request))?)
    }

    fn machine(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        Ok(self.block_on(self.keeper.get_client_credentials_token(request))?)
    }

    fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Failure> {
        Ok(self.block_on(self.keeper.login(transaction, callback))?)
    }

    fn logout(&self) -> Result<(), Failure> {
        Ok(self.block_on(self.keeper.logout())?)
    }

    fn exchange(&self, request: &TokenExchangeRequest<'_>) -> Result<TokenResponse, Failure> {
        Ok(self.block_on(self.keeper.exchange_token(request))?)
    }

    fn call_api(&self, request: &TokenRequest<'_>, url: &str) -> Result<ApiResponse, Failure> {
        self.block_on(async {
            let http_request = self
                .keeper
                .client()
                .get(url)
                .header("accept", "application/json")
                .build()
                .expect("request");
            let response = self.keeper.send_authorized(request, http_request).await?;
            let status = response.status().as_u16();
            let www_authenticate = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = response.bytes().await.expect("API body");
            Ok(ApiResponse {
                status,
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                www_authenticate,
            })
        })
    }

    fn session(&self) -> Option<Session> {
        self.keeper.session()
    }

    fn dpop_thumbprint(&self) -> Option<String> {
        self.keeper.dpop_thumbprint()
    }

    fn at_once(
        &self,
        asks: Vec<(Ask, TokenRequest<'static>)>,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        self.block_on(async {
            // Spawned inside `block_on` on a current-thread runtime: none of
            // them runs before the first `.await` below, so all start together.
            let tasks: Vec<_> = asks
                .into_iter()
                .map(|(ask, request)| {
                    let keeper = self.keeper.clone();
                    tokio::spawn(async move {
                        let answer = match ask {
                            Ask::User => keeper.get_access_token(&request).await,
                            Ask::Machine => keeper.get_client_credentials_token(&request).await,
                        };
                        answer.map_err(Failure::from)
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(tasks.len());
            for task in tasks {
                answers.push(task.await.expect("caller task"));
            }
            answers
        })
    }
}

// ---------------------------------------------------------------------------
// wasm

impl Wasm {
    fn ask(&self, command: Command) -> Result<Answer, Failure> {
        Wasm::one(command)
    }
}

fn token(answer: Answer) -> AccessTokenInfo {
    match answer {
        Answer::Token(token) => token.get(),
        other => panic!("expected a token, got {other:?}"),
    }
}

impl Driver for Wasm {
    const NAME: &'static str = "wasm";

    fn build(config: Config, store: SharedStore, dpop: Option<Arc<P256Signer>>) -> Self {
        let jwk = dpop.map(|signer| signer.key().to_jwk().to_string());
        Wasm::build(&config, store, jwk).unwrap_or_else(|e| panic!("wasm handle: {e:?}"))
    }

    fn discover(issuer: &str) -> Result<AuthorizationServerMetadata, Failure> {
        let command = Command::Discover {
            issuer: issuer.to_owned(),
        };
        match Wasm::one(command)? {
            Answer::Metadata { json } => {
                Ok(metadata_from_json(&json, issuer).expect("the metadata again"))
            }
            other => panic!("expected metadata, got {other:?}"),
        }
    }

    fn get(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        let request = WireTokenRequest::new(request);
        self.ask(Command::Get {
            keeper: self.id(),
            request,
        })
        .map(token)
    }

    fn machine(&self, request: &TokenRequest<'_>) -> Result<AccessTokenInfo, Failure> {
        let request = WireTokenRequest::new(request);
        self.ask(Command::Machine {
            keeper: self.id(),
            request,
        })
        .map(token)
    }

    fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<AccessTokenInfo, Failure> {
        self.ask(Command::Login {
            keeper: self.id(),
            transaction: transaction.clone(),
            callback: callback.to_owned(),
        })
        .map(token)
    }

    fn logout(&self) -> Result<(), Failure> {
        self.ask(Command::Logout { keeper: self.id() }).map(drop)
    }

    fn exchange(&self, request: &TokenExchangeRequest<'_>) -> Result<TokenResponse, Failure> {
        let auth = wire_client_auth(request.client_auth());
        let request = WireExchangeRequest::new(request, auth).expect("a valid exchange request");
        match self.ask(Command::Exchange {
            keeper: self.id(),
            request,
        })? {
            Answer::Exchanged { json } => {
                Ok(token_response_from_json(&json).expect("the token response again"))
            }
            other => panic!("expected a token response, got {other:?}"),
        }
    }

    fn call_api(&self, request: &TokenRequest<'_>, url: &str) -> Result<ApiResponse, Failure> {
        let command = Command::CallApi {
            keeper: self.id(),
            request: WireTokenRequest::new(request),
            url: url.to_owned(),
        };
        match self.ask(command)? {
            Answer::Api {
                status,
                body,
                www_authenticate,
            } => Ok(ApiResponse {
                status,
                body: serde_json::from_str(&body).unwrap_or(Value::Null),
                www_authenticate,
            }),
            other => panic!("expected an API response, got {other:?}"),
        }
    }

    fn session(&self) -> Option<Session> {
        match self.ask(Command::Session { keeper: self.id() }) {
            Ok(Answer::Session { json }) => {
                json.map(|json| session_from_json(&json).expect("the session again"))
            }
            other => panic!("expected a session, got {other:?}"),
        }
    }

    fn dpop_thumbprint(&self) -> Option<String> {
        match self.ask(Command::DpopThumbprint { keeper: self.id() }) {
            Ok(Answer::Thumbprint { jkt }) => jkt,
            other => panic!("expected a thumbprint, got {other:?}"),
        }
    }

    fn at_once(
        &self,
        asks: Vec<(Ask, TokenRequest<'static>)>,
    ) -> Vec<Result<AccessTokenInfo, Failure>> {
        let commands = asks
            .iter()
            .map(|(ask, request)| {
                let (keeper, request) = (self.id(), WireTokenRequest::new(request));
                match ask {
                    Ask::User => Command::Get { keeper, request },
                    Ask::Machine => Command::Machine { keeper, request },
                }
            })
            .collect();
        Wasm::all(commands)
            .into_iter()
            .map(|outcome| outcome.map(token))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// configuration, login, sessions

/// The core's client authentication for a harness client.
pub fn client_auth(client: &TestClient) -> ClientAuth {
    use tokenkeeper_integration::ClientAuth as Method;
    let secret = || ClientSecret::new(client.secret.expect("a client secret"));
    match client.auth {
        Method::ClientSecretBasic => ClientAuth::SecretBasic(secret()),
        Method::ClientSecretPost => ClientAuth::SecretPost(secret()),
        Method::None => ClientAuth::None,
        Method::PrivateKeyJwt => ClientAuth::PrivateKeyJwt(pkjwt_key()),
    }
}

/// The `pkjwt` client's ES256 key (the PEM at `PKJWT_PRIVATE_PEM_PATH`),
/// named by its registered `kid`.
pub fn pkjwt_key() -> ClientAssertionKey {
    let pem = std::fs::read_to_string(PKJWT_PRIVATE_PEM_PATH).expect("pkjwt key file");
    let key = DpopKey::from_pkcs8_pem(&pem).expect("pkjwt key");
    ClientAssertionKey::new(P256Signer::new(key)).with_kid(PKJWT_KID)
}

/// `client` at the harness: its token endpoint and issuer (ID tokens are
/// checked), default audience API1, the login scope, RFC 8707 `resource`.
pub fn config_builder(h: &Harness, client: &TestClient) -> ConfigBuilder {
    Config::builder(h.token_endpoint(), client.id)
        .client_auth(client_auth(client))
        .issuer(h.issuer())
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
}

/// [`config_builder`], built.
pub fn config(h: &Harness, client: &TestClient) -> Config {
    config_builder(h, client).build().expect("config")
}

/// A login through the core for `client` (the core builds the authorization
/// URL for both APIs, the harness plays the browser as `alice`, the handle
/// exchanges the code and checks the ID token): the token it returns.
pub fn login<D: Driver>(
    h: &Harness,
    keeper: &D,
    client: &TestClient,
) -> Result<AccessTokenInfo, Failure> {
    let endpoint = h.authorization_endpoint();
    let (url, transaction) = LoginRequest::new(&endpoint, client.id, REDIRECT_URI)
        .scope(LOGIN_SCOPE)
        .resource(API1)
        .resource(API2)
        // oidc-provider issues a refresh token for `offline_access` only
        // with an explicit consent prompt
        .param("prompt", "consent")
        .start(&mut tokenkeeper_ureq::OsEntropy)
        .expect("authorization URL");
    let callback = h.login(&url);
    keeper.login(&transaction, &callback)
}

/// A fresh session of `client` (logged in through a throwaway handle).
pub fn logged_in<D: Driver>(h: &Harness, client: &TestClient) -> Session {
    let keeper = D::build(config(h, client), SharedStore::default(), None);
    login(h, &keeper, client).expect("login");
    keeper.session().expect("a session after login")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn edit(session: &Session, change: impl FnOnce(&mut Value)) -> Session {
    let mut json: Value = serde_json::from_str(&session.to_json()).expect("session JSON");
    change(&mut json);
    Session::from_json(json.to_string().as_bytes(), &Default::default()).expect("edited session")
}

/// `session` with its main access token expired 10 s ago.
pub fn expire(session: &Session) -> Session {
    edit(session, |json| {
        json["tokenSet"]["expiresAt"] = json!(now_secs() - 10);
    })
}

/// `session` with another refresh token.
pub fn with_refresh_token(session: &Session, refresh_token: &str) -> Session {
    edit(session, |json| {
        json["tokenSet"]["refreshToken"] = json!(refresh_token);
    })
}

pub fn refresh_token(session: &Session) -> String {
    session
        .token_set()
        .refresh_token
        .as_ref()
        .expect("a refresh token")
        .secret()
        .to_owned()
}

pub fn access_token(session: &Session) -> String {
    session.token_set().access_token.secret().to_owned()
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A fresh ES256 DPoP signer (key from the OS random source).
pub fn dpop_signer() -> Arc<P256Signer> {
    Arc::new(P256Signer::new(
        DpopKey::generate(&mut tokenkeeper_ureq::OsEntropy).expect("DPoP key"),
    ))
}

/// The `refresh_token` parameter of every refresh request the harness
/// still remembers (its last 100 token requests), in order.
pub fn refresh_tokens_sent(h: &Harness) -> Vec<String> {
    h.stats()
        .recent_token_requests
        .iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .map(|r| {
            r["params"]["refresh_token"]
                .as_str()
                .expect("refresh_token param")
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// store

pub use tokenkeeper_integration::adapter_support::SharedStore;
