//! The wire between the scenario suite's Wasm driver (native, in the test
//! process) and the bridge (wasm, in the Node host): JSON lines.
//!
//! ```text
//! test process                          Node host (host.cjs + bridge wasm)
//!   [Request, …] one line on stdin  ──>  each started at once (same tick)
//!   Reply (id, outcome) per line    <──  as each call ends
//!   store thread: StoreRequest      <──  SessionStore op (blocking FIFO)
//!                 StoreReply        ──>  the op's answer
//! ```
//!
//! Everything the scenarios read crosses faithfully: sessions as their
//! JSON, tokens field by field, token and discovery responses in their wire
//! shape (parsed again by the core), the configuration as the builder
//! calls that made it ([`ConfigDescription`]), and the core's error as a
//! [`WireCoreError`] rebuilt into the same `tokenkeeper::Error` on the
//! other side (for the variants listed there; the others cross as code and
//! message only).

use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::{
    ClientAssertionKey, ClientAuth, TargetParameter, TokenExchangeError, TokenExchangeRequest,
};
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessToken, AccessTokenInfo, ClientSecret, Config, ConfigBuilder, ConnectionRequest,
    HttpResponse, Limits, ResponseError, ServerError, Session, StoreError, TokenRequest,
    TokenResponse, TokenType, UnixTime,
};

// ---------------------------------------------------------------------------
// commands

/// One call for the bridge, tagged with the id its [`Reply`] carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub command: Command,
}

/// What the bridge does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A `tokenkeeper_wasm::TokenKeeper` on `config`, its store the test
    /// process's store `store`, with DPoP on the key `dpop_jwk` (a private
    /// JWK) imported into Web Crypto.
    Build {
        keeper: u64,
        store: u64,
        config: ConfigDescription,
        dpop_jwk: Option<String>,
    },
    /// Forget keeper `keeper`.
    Drop { keeper: u64 },
    /// `tokenkeeper_wasm::discover`.
    Discover { issuer: String },
    /// `get_access_token`.
    Get {
        keeper: u64,
        request: WireTokenRequest,
    },
    /// `get_client_credentials_token`.
    Machine {
        keeper: u64,
        request: WireTokenRequest,
    },
    /// `get_connection_token`.
    Connection {
        keeper: u64,
        request: WireConnectionRequest,
    },
    /// `login`.
    Login {
        keeper: u64,
        transaction: LoginTransaction,
        callback: String,
    },
    /// `logout`.
    Logout { keeper: u64 },
    /// `exchange_token`.
    Exchange {
        keeper: u64,
        request: WireExchangeRequest,
    },
    /// `send_authorized` of `GET url` (`accept: application/json`).
    CallApi {
        keeper: u64,
        request: WireTokenRequest,
        url: String,
    },
    /// `session()`.
    Session { keeper: u64 },
    /// The DPoP key's thumbprint.
    DpopThumbprint { keeper: u64 },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub outcome: Result<Answer, WireFailure>,
}

/// A successful call's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `Build`, `Drop`, `Logout`.
    Done,
    /// `Discover`: the metadata as a discovery document.
    Metadata { json: String },
    /// `Get`, `Machine`, `Connection`, `Login`.
    Token(WireToken),
    /// `Exchange`: the token response in its wire shape.
    Exchanged { json: String },
    /// `CallApi`.
    Api {
        status: u16,
        body: String,
        www_authenticate: Option<String>,
    },
    /// `Session`: its JSON.
    Session { json: Option<String> },
    /// `DpopThumbprint`.
    Thumbprint { jkt: Option<String> },
}

/// A failed call: the adapter error's code, `requires_login`, `Display`,
/// and its core error when it is one of the kinds that cross.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireFailure {
    pub code: String,
    pub requires_login: bool,
    pub message: String,
    pub core: Option<Box<WireCoreError>>,
}

impl WireFailure {
    /// A failure of the bridge itself (a bad command, a keeper it does not
    /// know): code `bridge_error`.
    #[must_use]
    pub fn bridge(message: impl Into<String>) -> Self {
        WireFailure {
            code: String::from("bridge_error"),
            requires_login: false,
            message: message.into(),
            core: None,
        }
    }
}

// ---------------------------------------------------------------------------
// requests

/// A [`TokenRequest`], owned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireTokenRequest {
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub force_refresh: bool,
    pub merge_scopes: Option<bool>,
}

impl WireTokenRequest {
    #[must_use]
    pub fn new(request: &TokenRequest<'_>) -> Self {
        WireTokenRequest {
            audience: request.audience.map(String::from),
            scope: request.scope.map(String::from),
            force_refresh: request.force_refresh,
            merge_scopes: request.merge_scopes,
        }
    }

    /// The request, borrowing from `self`.
    #[must_use]
    pub fn get(&self) -> TokenRequest<'_> {
        TokenRequest {
            audience: self.audience.as_deref(),
            scope: self.scope.as_deref(),
            force_refresh: self.force_refresh,
            merge_scopes: self.merge_scopes,
        }
    }
}

/// A [`ConnectionRequest`], owned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireConnectionRequest {
    pub connection: String,
    pub login_hint: Option<String>,
    pub force_refresh: bool,
}

impl WireConnectionRequest {
    #[must_use]
    pub fn new(request: &ConnectionRequest<'_>) -> Self {
        WireConnectionRequest {
            connection: request.connection.to_owned(),
            login_hint: request.login_hint.map(String::from),
            force_refresh: request.force_refresh,
        }
    }

    /// The request, borrowing from `self`.
    #[must_use]
    pub fn get(&self) -> ConnectionRequest<'_> {
        ConnectionRequest {
            connection: &self.connection,
            login_hint: self.login_hint.as_deref(),
            force_refresh: self.force_refresh,
        }
    }
}

/// A [`TokenExchangeRequest`], owned. Its fields are private, so it crosses
/// as what it builds: the token endpoint and the form it posts (read back
/// into the builder's calls), plus its client and authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireExchangeRequest {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_auth: WireClientAuth,
    pub subject_token: String,
    pub subject_token_type: String,
    pub actor: Option<(String, String)>,
    pub requested_token_type: Option<String>,
    pub scope: Option<String>,
    pub target: Option<(String, WireTarget)>,
    pub extra: Vec<(String, String)>,
}

/// The form members the exchange sets itself (or the client
/// authentication adds); any other is one of its extra parameters.
const EXCHANGE_OWN: [&str; 13] = [
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "scope",
    "audience",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

impl WireExchangeRequest {
    /// `request`, read back from the request it builds; `client_auth` is
    /// its client authentication, put on the wire.
    ///
    /// # Errors
    /// The request's own refusal to build (an invalid request).
    pub fn new(
        request: &TokenExchangeRequest<'_>,
        client_auth: WireClientAuth,
    ) -> Result<Self, TokenExchangeError> {
        let built = request.build()?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&built.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let one = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let target = match (one("audience"), one("resource")) {
            (Some(a), Some(r)) if a == r => Some((a, WireTarget::Both)),
            (Some(a), None) => Some((a, WireTarget::Audience)),
            (None, Some(r)) => Some((r, WireTarget::Resource)),
            (None, None) => None,
            // `target` names one value; two different ones cannot come
            // from it (only from extras, which the builder refuses).
            (Some(a), Some(_)) => Some((a, WireTarget::Both)),
        };
        Ok(WireExchangeRequest {
            token_endpoint: built.url.clone(),
            client_id: request.client_id().to_owned(),
            client_auth,
            subject_token: one("subject_token").unwrap_or_default(),
            subject_token_type: one("subject_token_type").unwrap_or_default(),
            actor: one("actor_token").zip(one("actor_token_type")),
            requested_token_type: one("requested_token_type"),
            scope: one("scope"),
            target,
            extra: form
                .iter()
                .filter(|(k, _)| !EXCHANGE_OWN.contains(&k.as_str()))
                .cloned()
                .collect(),
        })
    }

    /// The request again, with `auth` (this request's client
    /// authentication, rebuilt) borrowed.
    pub fn get<'a>(&'a self, auth: &'a ClientAuth) -> TokenExchangeRequest<'a> {
        let mut request = TokenExchangeRequest::new(
            &self.token_endpoint,
            &self.client_id,
            auth,
            &self.subject_token,
            &self.subject_token_type,
        );
        if let Some((token, token_type)) = &self.actor {
            request = request.actor(token, token_type);
        }
        if let Some(requested) = &self.requested_token_type {
            request = request.requested_token_type(requested);
        }
        if let Some(scope) = &self.scope {
            request = request.scope(scope);
        }
        if let Some((target, parameter)) = &self.target {
            request = request.target(target, parameter.get());
        }
        for (name, value) in &self.extra {
            request = request.param(name, value);
        }
        request
    }
}

// ---------------------------------------------------------------------------
// configuration

/// How a [`Config`] was made: `Config::builder(token_endpoint, client_id)`
/// then `calls` in order. [`ConfigDescription::build`] replays them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigDescription {
    pub token_endpoint: String,
    pub client_id: String,
    pub calls: Vec<ConfigCall>,
}

/// One `ConfigBuilder` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigCall {
    ClientAuth(WireClientAuth),
    Audience(String),
    Scope(String),
    ScopePerAudience(BTreeMap<String, String>),
    MergeScopes(bool),
    RefreshBuffer(Duration),
    RefreshBufferSecs(f64),
    DefaultLifetime(Duration),
    TargetParameter(WireTarget),
    StrictScopes(bool),
    MaxCacheEntries(usize),
    Lease(Duration),
    Issuer(String),
    RevocationEndpoint(String),
    SharedStore(bool),
    DpopNonceCapacity(usize),
    DpopClockSkew(i64),
    ClockTolerance(Duration),
    JwksUri(String),
    VerifyIdTokenSignatures(bool),
    JwksTtl(Duration),
    JwksRefetchInterval(Duration),
    /// `metadata(&m)`: the document and the issuer it was validated for.
    Metadata {
        json: String,
        issuer: String,
    },
}

impl ConfigCall {
    /// Applies this call to `builder`.
    ///
    /// # Errors
    /// A client authentication or metadata that cannot be rebuilt.
    pub fn apply(&self, builder: ConfigBuilder) -> Result<ConfigBuilder, String> {
        Ok(match self {
            ConfigCall::ClientAuth(auth) => builder.client_auth(auth.get()?),
            ConfigCall::Audience(v) => builder.audience(v.clone()),
            ConfigCall::Scope(v) => builder.scope(v.clone()),
            ConfigCall::ScopePerAudience(v) => builder.scope_per_audience(v.clone()),
            ConfigCall::MergeScopes(v) => builder.merge_scopes(*v),
            ConfigCall::RefreshBuffer(v) => builder.refresh_buffer(*v),
            ConfigCall::RefreshBufferSecs(v) => builder.refresh_buffer_secs(*v),
            ConfigCall::DefaultLifetime(v) => builder.default_lifetime(*v),
            ConfigCall::TargetParameter(v) => builder.target_parameter(v.get()),
            ConfigCall::StrictScopes(v) => builder.strict_scopes(*v),
            ConfigCall::MaxCacheEntries(v) => builder.max_cache_entries(*v),
            ConfigCall::Lease(v) => builder.lease(*v),
            ConfigCall::Issuer(v) => builder.issuer(v.clone()),
            ConfigCall::RevocationEndpoint(v) => builder.revocation_endpoint(v.clone()),
            ConfigCall::SharedStore(v) => builder.shared_store(*v),
            ConfigCall::DpopNonceCapacity(v) => builder.dpop_nonce_capacity(*v),
            ConfigCall::DpopClockSkew(v) => builder.dpop_clock_skew(*v),
            ConfigCall::ClockTolerance(v) => builder.clock_tolerance(*v),
            ConfigCall::JwksUri(v) => builder.jwks_uri(v.clone()),
            ConfigCall::VerifyIdTokenSignatures(v) => builder.verify_id_token_signatures(*v),
            ConfigCall::JwksTtl(v) => builder.jwks_ttl(*v),
            ConfigCall::JwksRefetchInterval(v) => builder.jwks_refetch_interval(*v),
            ConfigCall::Metadata { json, issuer } => {
                builder.metadata(&metadata_from_json(json, issuer)?)
            }
        })
    }
}

impl ConfigDescription {
    /// The configuration: the builder, every call replayed.
    ///
    /// # Errors
    /// A call that cannot be rebuilt, or the builder's refusal.
    pub fn build(&self) -> Result<Config, String> {
        let mut builder = Config::builder(self.token_endpoint.clone(), self.client_id.clone());
        for call in &self.calls {
            builder = call.apply(builder)?;
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// [`TargetParameter`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireTarget {
    Audience,
    Resource,
    Both,
}

impl WireTarget {
    /// `parameter` on the wire (`None` for a kind this protocol does not
    /// know).
    #[must_use]
    pub fn new(parameter: TargetParameter) -> Option<Self> {
        match parameter {
            TargetParameter::Audience => Some(WireTarget::Audience),
            TargetParameter::Resource => Some(WireTarget::Resource),
            TargetParameter::Both => Some(WireTarget::Both),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    #[must_use]
    pub fn get(self) -> TargetParameter {
        match self {
            WireTarget::Audience => TargetParameter::Audience,
            WireTarget::Resource => TargetParameter::Resource,
            WireTarget::Both => TargetParameter::Both,
        }
    }
}

/// [`ClientAuth`] on the wire: secrets as strings, a `private_key_jwt`
/// key as its PKCS#8 PEM. A key whose private half the caller cannot name
/// crosses as `Unavailable`, which the bridge refuses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireClientAuth {
    None,
    SecretBasic(String),
    SecretPost(String),
    PrivateKeyJwt {
        pkcs8_pem: String,
        kid: Option<String>,
    },
    /// Why it cannot cross.
    Unavailable(String),
}

impl WireClientAuth {
    /// `auth` on the wire; `key_pem` names the PKCS#8 PEM and `kid` of a
    /// `private_key_jwt` key (the key itself keeps its private half).
    pub fn new(
        auth: &ClientAuth,
        key_pem: impl FnOnce(&ClientAssertionKey) -> Option<(String, Option<String>)>,
    ) -> Self {
        match auth {
            ClientAuth::None => WireClientAuth::None,
            ClientAuth::SecretBasic(s) => WireClientAuth::SecretBasic(s.secret().to_owned()),
            ClientAuth::SecretPost(s) => WireClientAuth::SecretPost(s.secret().to_owned()),
            ClientAuth::PrivateKeyJwt(key) => match key_pem(key) {
                Some((pkcs8_pem, kid)) => WireClientAuth::PrivateKeyJwt { pkcs8_pem, kid },
                None => WireClientAuth::Unavailable(String::from(
                    "a private_key_jwt key whose PKCS#8 the driver does not know",
                )),
            },
            other => WireClientAuth::Unavailable(format!(
                "client authentication {} is not on the wire",
                other.method_name()
            )),
        }
    }

    /// The client authentication again.
    ///
    /// # Errors
    /// `Unavailable`, or a PEM that is not a P-256 key.
    pub fn get(&self) -> Result<ClientAuth, String> {
        Ok(match self {
            WireClientAuth::None => ClientAuth::None,
            WireClientAuth::SecretBasic(s) => ClientAuth::SecretBasic(ClientSecret::new(s.clone())),
            WireClientAuth::SecretPost(s) => ClientAuth::SecretPost(ClientSecret::new(s.clone())),
            WireClientAuth::PrivateKeyJwt { pkcs8_pem, kid } => {
                let key = DpopKey::from_pkcs8_pem(pkcs8_pem)
                    .map_err(|e| format!("the private_key_jwt key: {e}"))?;
                let mut key = ClientAssertionKey::new(P256Signer::new(key));
                if let Some(kid) = kid {
                    key = key.with_kid(kid.clone());
                }
                ClientAuth::PrivateKeyJwt(key)
            }
            WireClientAuth::Unavailable(why) => return Err(why.clone()),
        })
    }
}

// ---------------------------------------------------------------------------
// results

/// An [`AccessTokenInfo`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireToken {
    pub token: String,
    pub expires_at: u64,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub token_type: String,
}

impl WireToken {
    #[must_use]
    pub fn new(token: &AccessTokenInfo) -> Self {
        WireToken {
            token: token.token.secret().to_owned(),
            expires_at: token.expires_at.as_secs(),
            scope: token.scope.clone(),
            audience: token.audience.clone(),
            token_type: token.token_type.as_str().to_owned(),
        }
    }

    #[must_use]
    pub fn get(&self) -> AccessTokenInfo {
        AccessTokenInfo {
            token: AccessToken::new(self.token.clone()),
            expires_at: UnixTime::from_secs(self.expires_at),
            scope: self.scope.clone(),
            audience: self.audience.clone(),
            token_type: TokenType::parse(&self.token_type),
        }
    }
}

/// `response` in the token endpoint's wire shape (its unknown members
/// kept), for [`token_response_from_json`].
#[must_use]
pub fn token_response_to_json(response: &TokenResponse) -> String {
    let mut json = response.extra.clone();
    json.insert("access_token".into(), response.access_token.secret().into());
    json.insert("token_type".into(), response.token_type.as_str().into());
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            json.insert(name.into(), value);
        }
    };
    put("expires_in", response.expires_in.map(Value::from));
    put(
        "refresh_token",
        response.refresh_token.as_ref().map(|t| t.secret().into()),
    );
    put(
        "id_token",
        response.id_token.as_ref().map(|t| t.secret().into()),
    );
    put("scope", response.scope.clone().map(Value::from));
    put(
        "issued_token_type",
        response.issued_token_type.clone().map(Value::from),
    );
    Value::Object(json).to_string()
}

/// The core's parse of a token response written by
/// [`token_response_to_json`].
///
/// # Errors
/// The core's refusal.
pub fn token_response_from_json(json: &str) -> Result<TokenResponse, ResponseError> {
    let response = HttpResponse::new(200, json.as_bytes().to_vec())
        .with_header("content-type", "application/json");
    TokenResponse::parse(&response, &Limits::default())
}

/// `metadata` as a discovery document (its unknown members kept), for
/// [`metadata_from_json`].
#[must_use]
pub fn metadata_to_json(metadata: &AuthorizationServerMetadata) -> String {
    let mut json: Map<String, Value> = metadata.extra.clone();
    json.insert("issuer".into(), metadata.issuer.clone().into());
    json.insert(
        "token_endpoint".into(),
        metadata.token_endpoint.clone().into(),
    );
    let strings = [
        ("authorization_endpoint", &metadata.authorization_endpoint),
        ("revocation_endpoint", &metadata.revocation_endpoint),
        ("jwks_uri", &metadata.jwks_uri),
        ("userinfo_endpoint", &metadata.userinfo_endpoint),
        ("end_session_endpoint", &metadata.end_session_endpoint),
    ];
    for (name, value) in strings {
        if let Some(value) = value {
            json.insert(name.into(), value.clone().into());
        }
    }
    let lists = [
        (
            "token_endpoint_auth_methods_supported",
            &metadata.token_endpoint_auth_methods_supported,
        ),
        (
            "dpop_signing_alg_values_supported",
            &metadata.dpop_signing_alg_values_supported,
        ),
        (
            "code_challenge_methods_supported",
            &metadata.code_challenge_methods_supported,
        ),
        ("grant_types_supported", &metadata.grant_types_supported),
        ("scopes_supported", &metadata.scopes_supported),
    ];
    for (name, value) in lists {
        if let Some(value) = value {
            json.insert(name.into(), value.clone().into());
        }
    }
    json.insert(
        "authorization_response_iss_parameter_supported".into(),
        metadata
            .authorization_response_iss_parameter_supported
            .into(),
    );
    Value::Object(json).to_string()
}

/// The core's validation of a document written by [`metadata_to_json`].
///
/// # Errors
/// The core's refusal, as text.
pub fn metadata_from_json(json: &str, issuer: &str) -> Result<AuthorizationServerMetadata, String> {
    AuthorizationServerMetadata::from_json(json.as_bytes(), issuer, &Limits::default())
        .map_err(|e| format!("discovery metadata: {e}"))
}

/// The session stored as `json`.
///
/// # Errors
/// The core's refusal, as text.
pub fn session_from_json(json: &str) -> Result<Session, String> {
    Session::from_json(json.as_bytes(), &Limits::default()).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// core errors

/// A `tokenkeeper::Error` on the wire. Every variant whose content is plain
/// data crosses; those holding nested error types of their own (ID token,
/// login, discovery, revocation, signing, DPoP, MFA) do not (the failure's
/// code and message still do).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireCoreError {
    MissingSession,
    MissingRefreshToken { access_token_expired: bool },
    SessionExpired,
    ReauthenticationRequired,
    LoggedOut,
    FailedToRefreshToken(WireResponseError),
    FailedToExchangeRefreshToken(WireResponseError),
    TokenRequestFailed(WireResponseError),
    MissingScopes { missing: String },
    SubjectMismatch,
    TokenTypeMismatch { received: String },
    AccessTokenAudienceMismatch { requested: String },
    Transport,
    RequestAbandoned,
    UnknownRequest,
    InvalidConfiguration(String),
    InvalidSession(String),
    TokenExchange(WireExchangeError),
}

/// A [`ResponseError`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireResponseError {
    Server {
        status: u16,
        error: String,
        error_description: Option<String>,
        error_uri: Option<String>,
    },
    TooLarge {
        limit: usize,
    },
    HeadersTooLarge {
        what: String,
        limit: usize,
    },
    NotJson {
        status: u16,
    },
    Malformed {
        status: u16,
        reason: String,
    },
    UnexpectedStatus {
        status: u16,
    },
}

/// A [`TokenExchangeError`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireExchangeError {
    MissingSubjectToken,
    InvalidSubjectTokenType,
    MissingActorTokenType,
    MissingActorToken,
    InvalidActorTokenType,
    InvalidRequestedTokenType,
    ReservedParameter(String),
    Failed(WireResponseError),
    MissingIssuedTokenType,
}

/// `text` as a `&'static str`, each distinct text leaked once: the core's
/// errors hold a few `&'static str` (reasons, limit names) and the tests'
/// `Failure` its code as one.
#[must_use]
pub fn intern(text: &str) -> &'static str {
    static TEXTS: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = texts.iter().find(|t| **t == text) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.push(leaked);
    leaked
}

impl WireResponseError {
    #[must_use]
    pub fn new(error: &ResponseError) -> Option<Self> {
        Some(match error {
            ResponseError::Server(e) => WireResponseError::Server {
                status: e.status,
                error: e.error.clone(),
                error_description: e.error_description.clone(),
                error_uri: e.error_uri.clone(),
            },
            ResponseError::TooLarge { limit } => WireResponseError::TooLarge { limit: *limit },
            ResponseError::HeadersTooLarge { what, limit } => WireResponseError::HeadersTooLarge {
                what: (*what).to_owned(),
                limit: *limit,
            },
            ResponseError::NotJson { status } => WireResponseError::NotJson { status: *status },
            ResponseError::Malformed { status, reason } => WireResponseError::Malformed {
                status: *status,
                reason: (*reason).to_owned(),
            },
            ResponseError::UnexpectedStatus { status } => {
                WireResponseError::UnexpectedStatus { status: *status }
            }
            _ => return None,
        })
    }

    #[must_use]
    pub fn get(&self) -> ResponseError {
        match self {
            WireResponseError::Server {
                status,
                error,
                error_description,
                error_uri,
            } => ResponseError::Server(ServerError {
                status: *status,
                error: error.clone(),
                error_description: error_description.clone(),
                error_uri: error_uri.clone(),
            }),
            WireResponseError::TooLarge { limit } => ResponseError::TooLarge { limit: *limit },
            WireResponseError::HeadersTooLarge { what, limit } => ResponseError::HeadersTooLarge {
                what: intern(what),
                limit: *limit,
            },
            WireResponseError::NotJson { status } => ResponseError::NotJson { status: *status },
            WireResponseError::Malformed { status, reason } => ResponseError::Malformed {
                status: *status,
                reason: intern(reason),
            },
            WireResponseError::UnexpectedStatus { status } => {
                ResponseError::UnexpectedStatus { status: *status }
            }
        }
    }
}

impl WireExchangeError {
    #[must_use]
    pub fn new(error: &TokenExchangeError) -> Option<Self> {
        use TokenExchangeError as E;
        Some(match error {
            E::MissingSubjectToken => WireExchangeError::MissingSubjectToken,
            E::InvalidSubjectTokenType => WireExchangeError::InvalidSubjectTokenType,
            E::MissingActorTokenType => WireExchangeError::MissingActorTokenType,
            E::MissingActorToken => WireExchangeError::MissingActorToken,
            E::InvalidActorTokenType => WireExchangeError::InvalidActorTokenType,
            E::InvalidRequestedTokenType => WireExchangeError::InvalidRequestedTokenType,
            E::ReservedParameter(p) => WireExchangeError::ReservedParameter(p.clone()),
            E::Failed(e) => WireExchangeError::Failed(WireResponseError::new(e)?),
            E::MissingIssuedTokenType => WireExchangeError::MissingIssuedTokenType,
            _ => return None,
        })
    }

    #[must_use]
    pub fn get(&self) -> TokenExchangeError {
        use TokenExchangeError as E;
        match self {
            WireExchangeError::MissingSubjectToken => E::MissingSubjectToken,
            WireExchangeError::InvalidSubjectTokenType => E::InvalidSubjectTokenType,
            WireExchangeError::MissingActorTokenType => E::MissingActorTokenType,
            WireExchangeError::MissingActorToken => E::MissingActorToken,
            WireExchangeError::InvalidActorTokenType => E::InvalidActorTokenType,
            WireExchangeError::InvalidRequestedTokenType => E::InvalidRequestedTokenType,
            WireExchangeError::ReservedParameter(p) => E::ReservedParameter(p.clone()),
            WireExchangeError::Failed(e) => E::Failed(e.get()),
            WireExchangeError::MissingIssuedTokenType => E::MissingIssuedTokenType,
        }
    }
}

impl WireCoreError {
    /// `error` on the wire, when it is a kind that crosses.
    #[must_use]
    pub fn new(error: &tokenkeeper::Error) -> Option<Self> {
        use tokenkeeper::Error as E;
        Some(match error {
            E::MissingSession => WireCoreError::MissingSession,
            E::MissingRefreshToken {
                access_token_expired,
            } => WireCoreError::MissingRefreshToken {
                access_token_expired: *access_token_expired,
            },
            E::SessionExpired => WireCoreError::SessionExpired,
            E::ReauthenticationRequired => WireCoreError::ReauthenticationRequired,
            E::LoggedOut => WireCoreError::LoggedOut,
            E::FailedToRefreshToken(e) => {
                WireCoreError::FailedToRefreshToken(WireResponseError::new(e)?)
            }
            E::FailedToExchangeRefreshToken(e) => {
                WireCoreError::FailedToExchangeRefreshToken(WireResponseError::new(e)?)
            }
            E::TokenRequestFailed(e) => {
                WireCoreError::TokenRequestFailed(WireResponseError::new(e)?)
            }
            E::MissingScopes { missing } => WireCoreError::MissingScopes {
                missing: missing.clone(),
            },
            E::SubjectMismatch => WireCoreError::SubjectMismatch,
            E::TokenTypeMismatch { received } => WireCoreError::TokenTypeMismatch {
                received: received.clone(),
            },
            E::AccessTokenAudienceMismatch { requested } => {
                WireCoreError::AccessTokenAudienceMismatch {
                    requested: requested.clone(),
                }
            }
            E::Transport => WireCoreError::Transport,
            E::RequestAbandoned => WireCoreError::RequestAbandoned,
            E::UnknownRequest => WireCoreError::UnknownRequest,
            E::InvalidConfiguration(m) => WireCoreError::InvalidConfiguration(m.clone()),
            E::InvalidSession(m) => WireCoreError::InvalidSession(m.clone()),
            E::TokenExchange(e) => WireCoreError::TokenExchange(WireExchangeError::new(e)?),
            _ => return None,
        })
    }

    /// The core's error again.
    #[must_use]
    pub fn get(&self) -> tokenkeeper::Error {
        use tokenkeeper::Error as E;
        match self {
            WireCoreError::MissingSession => E::MissingSession,
            WireCoreError::MissingRefreshToken {
                access_token_expired,
            } => E::MissingRefreshToken {
                access_token_expired: *access_token_expired,
            },
            WireCoreError::SessionExpired => E::SessionExpired,
            WireCoreError::ReauthenticationRequired => E::ReauthenticationRequired,
            WireCoreError::LoggedOut => E::LoggedOut,
            WireCoreError::FailedToRefreshToken(e) => E::FailedToRefreshToken(e.get()),
            WireCoreError::FailedToExchangeRefreshToken(e) => {
                E::FailedToExchangeRefreshToken(e.get())
            }
            WireCoreError::TokenRequestFailed(e) => E::TokenRequestFailed(e.get()),
            WireCoreError::MissingScopes { missing } => E::MissingScopes {
                missing: missing.clone(),
            },
            WireCoreError::SubjectMismatch => E::SubjectMismatch,
            WireCoreError::TokenTypeMismatch { received } => E::TokenTypeMismatch {
                received: received.clone(),
            },
            WireCoreError::AccessTokenAudienceMismatch { requested } => {
                E::AccessTokenAudienceMismatch {
                    requested: requested.clone(),
                }
            }
            WireCoreError::Transport => E::Transport,
            WireCoreError::RequestAbandoned => E::RequestAbandoned,
            WireCoreError::UnknownRequest => E::UnknownRequest,
            WireCoreError::InvalidConfiguration(m) => E::InvalidConfiguration(m.clone()),
            WireCoreError::InvalidSession(m) => E::InvalidSession(m.clone()),
            WireCoreError::TokenExchange(e) => E::TokenExchange(e.get()),
        }
    }
}

// ---------------------------------------------------------------------------
// the store

/// A `SessionStore` operation the bridge's store asks of the test process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreRequest {
    pub store: u64,
    pub key: String,
    pub op: StoreOp,
}

/// The `SessionStore` method.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreOp {
    Load,
    Save {
        session: String,
        expected: Option<u64>,
    },
    Generation,
    Clear,
    Floor,
}

/// Its result.
pub type StoreReply = Result<StoreAnswer, WireStoreError>;

/// A store operation's success.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreAnswer {
    Session(Option<String>),
    Generation(Option<u64>),
    Floor(u64),
    Done,
}

/// A [`StoreError`] on the wire (a backend error as its message).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireStoreError {
    Conflict { found: Option<u64> },
    Backend(String),
}

impl WireStoreError {
    #[must_use]
    pub fn new(error: &StoreError) -> Self {
        match error {
            StoreError::Conflict { found } => WireStoreError::Conflict { found: *found },
            other => WireStoreError::Backend(
                std::error::Error::source(other)
                    .map_or_else(|| other.to_string(), ToString::to_string),
            ),
        }
    }

    #[must_use]
    pub fn get(&self) -> StoreError {
        match self {
            WireStoreError::Conflict { found } => StoreError::Conflict { found: *found },
            WireStoreError::Backend(message) => StoreError::backend(message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, error: &str) -> ResponseError {
        ResponseError::Server(ServerError {
            status,
            error: error.into(),
            error_description: Some("why".into()),
            error_uri: None,
        })
    }

    #[test]
    fn core_errors_cross_unchanged() {
        use tokenkeeper::Error as E;
        let errors = [
            E::MissingSession,
            E::MissingRefreshToken {
                access_token_expired: true,
            },
            E::SessionExpired,
            E::ReauthenticationRequired,
            E::LoggedOut,
            E::FailedToRefreshToken(server(400, "invalid_grant")),
            E::FailedToRefreshToken(ResponseError::NotJson { status: 500 }),
            E::FailedToRefreshToken(ResponseError::Malformed {
                status: 200,
                reason: "no access_token",
            }),
            E::FailedToRefreshToken(ResponseError::HeadersTooLarge {
                what: "count",
                limit: 3,
            }),
            E::FailedToExchangeRefreshToken(server(400, "invalid_request")),
            E::TokenRequestFailed(ResponseError::UnexpectedStatus { status: 502 }),
            E::TokenRequestFailed(ResponseError::TooLarge { limit: 9 }),
            E::MissingScopes {
                missing: "a b".into(),
            },
            E::SubjectMismatch,
            E::TokenTypeMismatch {
                received: "Bearer".into(),
            },
            E::AccessTokenAudienceMismatch {
                requested: "x".into(),
            },
            E::Transport,
            E::RequestAbandoned,
            E::UnknownRequest,
            E::InvalidConfiguration("c".into()),
            E::InvalidSession("s".into()),
            E::TokenExchange(TokenExchangeError::Failed(server(400, "invalid_target"))),
            E::TokenExchange(TokenExchangeError::ReservedParameter("scope".into())),
        ];
        for error in errors {
            let wire = WireCoreError::new(&error).expect("crosses");
            let json = serde_json::to_string(&wire).unwrap();
            let back: WireCoreError = serde_json::from_str(&json).unwrap();
            assert_eq!(back.get(), error, "{json}");
        }
    }

    #[test]
    fn an_exchange_request_crosses_unchanged() {
        let auth = ClientAuth::SecretBasic(ClientSecret::new("s3cret"));
        let request = TokenExchangeRequest::new(
            "http://127.0.0.1:1/token",
            "client",
            &auth,
            "subject",
            "urn:ietf:params:oauth:token-type:access_token",
        )
        .actor("actor", "urn:ietf:params:oauth:token-type:jwt")
        .requested_token_type("urn:ietf:params:oauth:token-type:access_token")
        .scope("read write")
        .target("https://api.example.com", TargetParameter::Resource)
        .param("organization", "org_1");
        let wire =
            WireExchangeRequest::new(&request, WireClientAuth::new(&auth, |_| None)).unwrap();
        let json = serde_json::to_string(&wire).unwrap();
        let wire: WireExchangeRequest = serde_json::from_str(&json).unwrap();
        let auth_again = wire.client_auth.get().unwrap();
        assert_eq!(auth_again, auth);
        let again = wire.get(&auth_again);
        assert_eq!(again.build().unwrap(), request.build().unwrap());
    }

    #[test]
    fn a_token_response_crosses_unchanged() {
        let json = r#"{"access_token":"at","token_type":"Bearer","expires_in":60,
            "refresh_token":"rt","scope":"a b","issued_token_type":"urn:x:y:z","custom":[1]}"#;
        let response = token_response_from_json(json).unwrap();
        let again = token_response_from_json(&token_response_to_json(&response)).unwrap();
        assert_eq!(again, response);
    }
}
