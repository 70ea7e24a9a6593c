//! A reference model of a session, run in lockstep with real keepers
//! (`tokenkeeper::driver::Keeper`, one `TokenManager` each) that share one
//! `MemoryStore`, against a scripted authorization server.
//!
//! The model is deliberately simple: it does not re-implement the manager,
//! it writes down what the world looks like from the outside and what must
//! hold after every step.
//!
//! - The **server** is the authority on refresh tokens: per login (an
//!   *epoch*) one family with the live refresh token, the spent ones, and
//!   whether the grant is dead (reuse detected, `invalid_grant`, revoked).
//!   It registers every access token it issues (epoch, audience, the scope
//!   it was asked for, its expiry, DPoP-bound or not).
//! - The **wire**: every request handed to the host and not yet answered,
//!   with the refresh token it carries, the DPoP nonce its proof carries,
//!   when it was handed out. A request counts as on the wire until it is
//!   answered, fails in transport, is cancelled, or its transport gives up
//!   (the transport timeout equals the lease: the lease outlasts the
//!   transport). Abandoned flights whose transport has not given up are on
//!   the wire, whatever the manager's own records say. An answer can still
//!   be delivered after that (a late answer); the server then behaves as
//!   if it had processed the request in time.
//! - **Sessions**: which epochs were logged out, cleared or replaced by a new
//!   login, which keeper has seen that, the stored generation.
//!
//! Invariants checked after every step (`World::check`), and predictions
//! made on the spot (`World::apply`):
//!
//! 1. Every refresh token that a successful answer carried is the stored
//!    one, or was spent by a later rotation, or a revocation request
//!    carrying it was handed out, or its grant is dead, or the application
//!    discarded its session (clear, a new login): none is orphaned.
//! 2. A logged-out, cleared or replaced session never comes back: not in
//!    the store, not in a keeper that has seen it end.
//! 3. The stored generation never decreases (a clear starts over), and
//!    every change to the stored session raises it (compare-and-swap on
//!    generations is only sound then); a new login is stored above it.
//! 4. No two refresh requests on the wire carry the same refresh token, and
//!    every refresh request handed out carries the live refresh token of a
//!    live grant (anything else is a replay).
//! 5. Nothing returned as ready is expired at `now`; it was issued for the
//!    audience asked for, for a scope covering the wanted one, and it is
//!    DPoP-bound when DPoP is on (never Bearer).
//! 6. Bad input (a failed answer, a transport error, a cancel) leaves the
//!    whole session JSON as it was, except what the answer proved: a
//!    rotated refresh token, a dead grant; the generation and the refresh
//!    claim may move.
//! 7. Predictions: a forced refresh on a session whose refresh token is
//!    known dead is a login-required error, and so is the `invalid_grant`
//!    answer itself; a `use_dpop_nonce` answer with a nonce the request did
//!    not carry is retried once (judged by what the request carried), and an
//!    abandoned flight is never resent; a token just obtained is served by
//!    the next call without I/O; a logged-out session serves nothing; a
//!    rotated refresh token is kept whatever else the answer fails; the end
//!    of one flight keeps the refresh claim of the flight that replaced it;
//!    a revocation answer removes only the token it revoked; a logout, and a
//!    login, survive a compare-and-swap conflict; an `openid` login without
//!    an ID token starts no session.
//!
//! Violations are tagged with the defect of issue 12 they point at (`D1`…
//! `D14`) or a finding of this model (`N1`…), so a failure names its cause.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokenkeeper::__private::form;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::driver::{Ask, Keeper, Saved, Step};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{
    AccessTokenInfo, Authorization, ClientSecret, Completion, Config, Dispatch, Error, HttpRequest,
    HttpResponse, MemoryStore, Method, RequestId, SeededEntropy, Session, SessionStore,
    TokenManager, TokenRequest, TokenType, UnixTime,
};

pub const TOKEN_ENDPOINT: &str = "https://as.example/oauth/token";
pub const REVOCATION_ENDPOINT: &str = "https://as.example/oauth/revoke";
pub const ISSUER: &str = "https://as.example/";
pub const CLIENT: &str = "client-1";
/// The API a token is for when a request names none.
pub const DEFAULT_RESOURCE: &str = "https://default.example";
/// The configured default scope (the crate's default).
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";
/// What every login's grant allows.
pub const LOGIN_SCOPE: &str = "openid profile email offline_access a b c";
pub const AUDIENCES: [Option<&str>; 3] = [
    None,
    Some("https://api1.example"),
    Some("https://api2.example"),
];
pub const SCOPES: [Option<&str>; 4] = [None, Some("a"), Some("a b"), Some("a b c")];
pub const SUB: &str = "user-1";
/// The start time.
pub const T0: u64 = 100_000;

/// The world a case runs in.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Keepers sharing the store (1–3).
    pub keepers: usize,
    /// `shared_store(true)` (always with more than one keeper).
    pub shared_store: bool,
    pub dpop: bool,
    /// An issuer is configured: refreshed ID tokens are validated.
    pub issuer: bool,
    /// A revocation endpoint is configured (logout revokes).
    pub revocation: bool,
    /// The server reads only RFC 8707 `resource`, never `audience`.
    pub resource_only: bool,
    pub refresh_buffer: u64,
    /// `expires_in` of issued access tokens.
    pub lifetime: u64,
    pub lease: u64,
    /// The server never grants scope `c`.
    pub grant_subset: bool,
    /// The first session holds an expired entry for api1 whose
    /// `requestedScope` is `a b c` (granted `a b`).
    pub seed_entry: bool,
    /// The first session's main access token is fresh (else expired).
    pub fresh_start: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            keepers: 1,
            shared_store: false,
            dpop: false,
            issuer: false,
            revocation: true,
            resource_only: false,
            refresh_buffer: 0,
            lifetime: 600,
            lease: 30,
            grant_subset: false,
            seed_entry: false,
            fresh_start: false,
        }
    }
}

/// A token request, as indices into [`AUDIENCES`] and [`SCOPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Get {
    pub audience: usize,
    pub scope: usize,
    /// `false`: `merge_scopes(false)` for this request.
    pub merge: bool,
    pub force: bool,
}

impl Get {
    pub fn audience(&self) -> Option<&'static str> {
        AUDIENCES[self.audience % AUDIENCES.len()]
    }

    pub fn scope(&self) -> Option<&'static str> {
        SCOPES[self.scope % SCOPES.len()]
    }

    pub fn request(&self) -> TokenRequest<'static> {
        TokenRequest {
            audience: self.audience(),
            scope: self.scope(),
            force_refresh: self.force,
            merge_scopes: (!self.merge).then_some(false),
        }
    }

    /// The scope the caller wants (the SDK's resolution).
    pub fn wanted(&self) -> String {
        let asked = self.scope().unwrap_or("");
        if self.merge {
            format!("{DEFAULT_SCOPE} {asked}")
        } else {
            asked.to_string()
        }
    }
}

/// What the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTok {
    None,
    Good,
    /// `iat` an hour ahead.
    IatInFuture,
    /// Another user.
    OtherSub,
    /// Not a JWT.
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200 with a token (DPoP-bound when the request had a proof).
    Ok {
        rotate: bool,
        id_token: IdTok,
        omit_scope: bool,
    },
    /// 200 with a Bearer token even though the request had a proof.
    Bearer {
        rotate: bool,
    },
    /// The grant is dead.
    InvalidGrant,
    ServerError,
    /// 400 `use_dpop_nonce` with a `DPoP-Nonce` (a new one when `fresh`).
    UseDpopNonce {
        fresh: bool,
    },
    /// 200 that is no token response (a proxy's).
    Malformed,
}

impl Reply {
    fn is_grant(&self) -> bool {
        matches!(
            self,
            Reply::Ok { .. } | Reply::Bearer { .. } | Reply::InvalidGrant
        )
    }
}

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get {
        keeper: usize,
        get: Get,
    },
    /// Answer an outstanding request (by its index among the outstanding
    /// ones): in time while it is on the wire, late after that.
    Answer {
        which: usize,
        reply: Reply,
    },
    TransportError {
        which: usize,
    },
    Cancel {
        which: usize,
    },
    Advance(u64),
    Timeout {
        keeper: usize,
    },
    Logout {
        keeper: usize,
    },
    Clear {
        keeper: usize,
    },
    /// A new login installed through this keeper.
    Login {
        keeper: usize,
    },
    /// A login through the authorization code flow on this keeper's
    /// manager (with or without an ID token in the answer), answered at
    /// once, then persisted.
    CodeLogin {
        keeper: usize,
        id_token: bool,
    },
    /// `Keeper::moved_on`: adopt what the store holds.
    Reload {
        keeper: usize,
    },
    /// The process restarts: a new keeper loads the store; its requests
    /// are lost before they reach the server.
    Restart {
        keeper: usize,
    },
    /// Authorize a resource request with the last ready token.
    Authorize {
        keeper: usize,
    },
}

/// A refresh family: one login's grant.
#[derive(Debug, Default)]
struct Family {
    current: Option<String>,
    spent: BTreeSet<String>,
    dead: bool,
    next: u32,
}

/// An access token the server issued.
#[derive(Debug, Clone)]
struct Issued {
    epoch: u32,
    aud: String,
    /// The scope asked for (what the token covers for lookups).
    asked: String,
    expires_at: u64,
    dpop: bool,
}

/// The scripted authorization server.
#[derive(Debug, Default)]
struct Server {
    families: BTreeMap<u32, Family>,
    issued: BTreeMap<String, Issued>,
    nonce: Option<String>,
    nonces: u32,
    counter: u32,
}

/// A request handed to the host and not answered yet.
#[derive(Debug, Clone)]
struct Pending {
    keeper: usize,
    id: RequestId,
    revocation: bool,
    /// The refresh token it carries.
    rt: String,
    /// When the flight started (the base of `expiresAt` and the lease).
    sent_at: u64,
    /// When this attempt was handed out.
    handed_at: u64,
    /// The DPoP nonce its proof carries.
    nonce: Option<String>,
    attempt: u8,
    get: Option<Get>,
    request: HttpRequest,
}

/// The real keepers and the model, in lockstep.
pub struct World {
    pub setup: Setup,
    pub now: u64,
    store: Arc<Mutex<MemoryStore>>,
    keepers: Vec<Keeper>,
    seeds: u64,
    server: Server,
    outstanding: Vec<Pending>,
    /// Refresh tokens carried by successful answers that reached a manager.
    carried: Vec<String>,
    /// Refresh tokens carried by revocation requests handed out.
    revoked: BTreeSet<String>,
    logged_out: BTreeSet<u32>,
    /// Cleared, or replaced by a new login.
    gone: BTreeSet<u32>,
    /// Replaced by a new login.
    replaced: BTreeSet<u32>,
    /// Per keeper: the epochs it has seen end.
    seen_ended: Vec<BTreeSet<u32>>,
    watermark: Option<u64>,
    /// `unrevocable()` of keepers that restarted.
    unrevocable: u64,
    stored_json: Option<String>,
    last_ready: Vec<Option<AccessTokenInfo>>,
    next_epoch: u32,
}

fn t(secs: u64) -> UnixTime {
    UnixTime::from_secs(secs)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// A compact JWS-shaped token (signature not checked anywhere here).
pub fn jwt(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.c2ln",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&unb64(payload)?).ok()
}

/// Scope set inclusion.
fn covers(have: &str, wanted: &str) -> bool {
    let have: BTreeSet<&str> = have.split_whitespace().collect();
    wanted.split_whitespace().all(|w| have.contains(w))
}

fn field(request: &HttpRequest, name: &str) -> Option<String> {
    let body = std::str::from_utf8(&request.body).ok()?;
    form::parse(body)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The epoch a refresh token belongs to (`e<epoch>-rt-<n>`).
fn epoch_of(rt: &str) -> Option<u32> {
    rt.strip_prefix('e')?.split('-').next()?.parse().ok()
}

/// The epoch of a session: its `sid`, else its refresh token's.
fn session_epoch(session: &Session) -> Option<u32> {
    session
        .extra()
        .get("internal")
        .and_then(|i| i.get("sid"))
        .and_then(Value::as_str)
        .and_then(|sid| sid.strip_prefix('e')?.parse().ok())
        .or_else(|| epoch_of(session.token_set().refresh_token.as_ref()?.secret()))
}

fn session_rt(session: Option<&Session>) -> Option<String> {
    session?
        .token_set()
        .refresh_token
        .as_ref()
        .map(|r| r.secret().to_string())
}

/// The session JSON without what may move on bad input: the generation and
/// the refresh claim; the refresh token when the answer proved a new one
/// (`rt_proved`), the re-authentication flag when it proved the grant dead.
pub fn normalized(json: Option<&str>, rt_proved: bool, grant_dead: bool) -> Value {
    let Some(json) = json else {
        return Value::Null;
    };
    let mut v: Value = serde_json::from_str(json).expect("sessions serialize as JSON");
    if let Some(state) = v.get_mut("tokenkeeper").and_then(Value::as_object_mut) {
        state.remove("generation");
        state.remove("refreshClaim");
        if grant_dead {
            state.remove("reauthenticationRequired");
        }
    }
    if rt_proved && let Some(set) = v.get_mut("tokenSet").and_then(Value::as_object_mut) {
        set.remove("refreshToken");
    }
    v
}

fn dpop_nonce_of(request: &HttpRequest) -> Option<String> {
    let proof = request.headers.get("dpop")?;
    jwt_claims(proof)?.get("nonce")?.as_str().map(String::from)
}

impl Server {
    fn nonce_header(&self, dpop: bool, mut response: HttpResponse) -> HttpResponse {
        if let (true, Some(nonce)) = (dpop, &self.nonce) {
            response.headers.append("DPoP-Nonce", nonce);
        }
        response
    }

    /// A new login: a new family.
    fn login(&mut self, epoch: u32) -> String {
        let rt = format!("e{epoch}-rt-0");
        self.families.insert(
            epoch,
            Family {
                current: Some(rt.clone()),
                next: 1,
                ..Family::default()
            },
        );
        rt
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &mut self,
        epoch: u32,
        aud: &str,
        asked: &str,
        granted: &str,
        now: u64,
        lifetime: u64,
        dpop: bool,
    ) -> String {
        self.counter += 1;
        let token = jwt(
            &json!({"typ": "at+jwt", "alg": "ES256"}),
            &json!({
                "iss": ISSUER, "sub": SUB, "aud": aud, "client_id": CLIENT,
                "iat": now, "exp": now + lifetime, "scope": granted,
                "jti": format!("e{epoch}-at-{}", self.counter),
            }),
        );
        self.issued.insert(
            token.clone(),
            Issued {
                epoch,
                aud: aud.to_string(),
                asked: asked.to_string(),
                expires_at: now + lifetime,
                dpop,
            },
        );
        token
    }

    /// Answers a refresh grant; gives the refresh token the answer carries.
    fn refresh(
        &mut self,
        setup: &Setup,
        request: &HttpRequest,
        reply: Reply,
        now: u64,
    ) -> (HttpResponse, Option<String>) {
        let with_proof = request.headers.get("dpop").is_some();
        let error = |status: u16, error: &str| {
            HttpResponse::new(
                status,
                format!(r#"{{"error":"{error}","error_description":"scripted"}}"#),
            )
            .with_header("Content-Type", "application/json")
        };
        let presented = field(request, "refresh_token").unwrap_or_default();
        let epoch = epoch_of(&presented).unwrap_or(0);
        let (response, carried) = match reply {
            Reply::ServerError => (HttpResponse::new(503, "busy"), None),
            Reply::Malformed => (HttpResponse::new(200, r#"{"access_token":5}"#), None),
            Reply::UseDpopNonce { fresh } => {
                if fresh || self.nonce.is_none() {
                    self.nonces += 1;
                    self.nonce = Some(format!("sn-{}", self.nonces));
                }
                let nonce = self.nonce.clone().unwrap_or_default();
                let response = error(400, "use_dpop_nonce").with_header("DPoP-Nonce", &nonce);
                return (response, None);
            }
            Reply::InvalidGrant => {
                if let Some(family) = self.families.get_mut(&epoch) {
                    family.dead = true;
                }
                (error(400, "invalid_grant"), None)
            }
            Reply::Ok { .. } | Reply::Bearer { .. } => {
                let Some(family) = self.families.get_mut(&epoch) else {
                    return (error(400, "invalid_grant"), None);
                };
                if family.spent.contains(&presented) {
                    // Reuse detection: the whole grant dies.
                    family.dead = true;
                }
                if family.dead || family.current.as_deref() != Some(presented.as_str()) {
                    (error(400, "invalid_grant"), None)
                } else {
                    let (rotate, id_token, omit_scope, bound) = match reply {
                        Reply::Ok {
                            rotate,
                            id_token,
                            omit_scope,
                        } => (rotate, id_token, omit_scope, with_proof),
                        Reply::Bearer { rotate } => (rotate, IdTok::None, false, false),
                        _ => unreachable!(),
                    };
                    let carried = rotate.then(|| {
                        let next = format!("e{epoch}-rt-{}", family.next);
                        family.next += 1;
                        family.spent.insert(presented.clone());
                        family.current = Some(next.clone());
                        next
                    });
                    let target = if setup.resource_only {
                        field(request, "resource")
                    } else {
                        field(request, "audience").or_else(|| field(request, "resource"))
                    };
                    let aud = target.unwrap_or_else(|| DEFAULT_RESOURCE.to_string());
                    let asked = field(request, "scope").unwrap_or_else(|| LOGIN_SCOPE.into());
                    let granted: Vec<&str> = asked
                        .split_whitespace()
                        .filter(|s| covers(LOGIN_SCOPE, s))
                        .filter(|s| !(setup.grant_subset && *s == "c"))
                        .collect();
                    let granted = granted.join(" ");
                    let token =
                        self.issue(epoch, &aud, &asked, &granted, now, setup.lifetime, bound);
                    let mut body = json!({
                        "access_token": token,
                        "token_type": if bound { "DPoP" } else { "Bearer" },
                        "expires_in": setup.lifetime,
                    });
                    if !omit_scope {
                        body["scope"] = granted.into();
                    }
                    if let Some(rt) = &carried {
                        body["refresh_token"] = rt.clone().into();
                    }
                    let claims = |sub: &str, iat: u64| {
                        jwt(
                            &json!({"alg": "none"}),
                            &json!({"iss": ISSUER, "aud": CLIENT, "sub": sub, "iat": iat, "exp": iat + 3600}),
                        )
                    };
                    let id = match id_token {
                        IdTok::None => None,
                        IdTok::Good => Some(claims(SUB, now)),
                        IdTok::IatInFuture => Some(claims(SUB, now + 3600)),
                        IdTok::OtherSub => Some(claims("user-2", now)),
                        IdTok::Opaque => Some("opaque-id-token".to_string()),
                    };
                    if let Some(id) = id {
                        body["id_token"] = id.into();
                    }
                    let response = HttpResponse::new(200, body.to_string())
                        .with_header("Content-Type", "application/json");
                    (response, carried)
                }
            }
        };
        (self.nonce_header(setup.dpop, response), carried)
    }

    /// Answers a revocation (RFC 7009): revoking the live refresh token
    /// kills the grant; revoking a spent or unknown one changes nothing.
    fn revoke(&mut self, request: &HttpRequest, reply: Reply) -> HttpResponse {
        match reply {
            Reply::Ok { .. } | Reply::Bearer { .. } => {
                let token = field(request, "token").unwrap_or_default();
                if let Some(family) = epoch_of(&token).and_then(|e| self.families.get_mut(&e))
                    && family.current.as_deref() == Some(token.as_str())
                {
                    family.dead = true;
                }
                HttpResponse::new(200, "")
            }
            Reply::InvalidGrant => HttpResponse::new(400, r#"{"error":"invalid_request"}"#)
                .with_header("Content-Type", "application/json"),
            _ => HttpResponse::new(503, "busy"),
        }
    }
}

/// Why a step broke the model.
pub type Violation = String;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

impl World {
    /// A world with one login (epoch 1) in the store and `setup.keepers`
    /// keepers that loaded it.
    pub fn new(setup: Setup) -> Self {
        let mut setup = setup;
        setup.keepers = setup.keepers.clamp(1, 3);
        if setup.keepers > 1 {
            setup.shared_store = true;
        }
        let mut world = World {
            now: T0,
            store: Arc::new(Mutex::new(MemoryStore::new())),
            keepers: Vec::new(),
            seeds: 0,
            server: Server {
                nonce: Some("sn-0".into()),
                ..Server::default()
            },
            outstanding: Vec::new(),
            carried: Vec::new(),
            revoked: BTreeSet::new(),
            logged_out: BTreeSet::new(),
            gone: BTreeSet::new(),
            replaced: BTreeSet::new(),
            seen_ended: vec![BTreeSet::new(); setup.keepers],
            watermark: None,
            unrevocable: 0,
            stored_json: None,
            last_ready: vec![None; setup.keepers],
            next_epoch: 2,
            setup,
        };
        let session = world.login_session(1);
        world
            .store
            .lock()
            .unwrap()
            .save(tokenkeeper::store::DEFAULT_KEY, &session, None)
            .expect("an empty store takes the first session");
        for _ in 0..world.setup.keepers {
            let keeper = world.new_keeper();
            world.keepers.push(keeper);
        }
        world
    }

    fn new_keeper(&mut self) -> Keeper {
        self.seeds += 1;
        let s = &self.setup;
        let mut builder = Config::builder(TOKEN_ENDPOINT, CLIENT)
            .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret-1")))
            .lease(Duration::from_secs(s.lease))
            .refresh_buffer(Duration::from_secs(s.refresh_buffer))
            .shared_store(s.shared_store);
        if s.issuer {
            builder = builder.issuer(ISSUER);
        }
        if s.revocation {
            builder = builder.revocation_endpoint(REVOCATION_ENDPOINT);
        }
        let mut manager =
            TokenManager::new(builder.build().unwrap(), SeededEntropy::new(self.seeds));
        if s.dpop {
            static KEY: std::sync::OnceLock<DpopKey> = std::sync::OnceLock::new();
            let key = KEY.get_or_init(|| DpopKey::generate(&mut SeededEntropy::new(42)).unwrap());
            manager.enable_dpop(P256Signer::new(key.clone())).unwrap();
        }
        let store: Box<dyn SessionStore + Send> = Box::new(self.store.clone());
        Keeper::new(manager, store, None).expect("a memory store loads")
    }

    /// The session of a fresh login (epoch `epoch`), registered with the
    /// server.
    fn login_session(&mut self, epoch: u32) -> Session {
        let now = self.now;
        let s = self.setup.clone();
        let rt = self.server.login(epoch);
        let main_exp = if s.fresh_start {
            now + s.lifetime
        } else {
            now - 1
        };
        let access_token = self.server.issue(
            epoch,
            DEFAULT_RESOURCE,
            DEFAULT_SCOPE,
            DEFAULT_SCOPE,
            now - 1,
            main_exp + 1 - now,
            s.dpop,
        );
        let id_token = jwt(
            &json!({"alg": "none"}),
            &json!({"iss": ISSUER, "aud": CLIENT, "sub": SUB, "iat": now - 10, "exp": now + 36_000}),
        );
        let token_type = if s.dpop { "DPoP" } else { "Bearer" };
        let mut json = json!({
            "user": {"sub": SUB},
            "tokenSet": {
                "accessToken": access_token, "refreshToken": rt, "idToken": id_token,
                "expiresAt": main_exp, "scope": DEFAULT_SCOPE, "requestedScope": DEFAULT_SCOPE,
                "token_type": token_type,
            },
            "internal": {"sid": format!("e{epoch}"), "createdAt": now},
        });
        if s.seed_entry {
            let entry_token = self.server.issue(
                epoch,
                "https://api1.example",
                "a b c",
                "a b",
                now - 100,
                99,
                s.dpop,
            );
            json["accessTokens"] = json!([{
                "accessToken": entry_token, "audience": "https://api1.example",
                "requestedScope": "a b c", "scope": "a b", "expiresAt": now - 1,
                "token_type": token_type,
            }]);
        }
        Session::from_json(json.to_string().as_bytes(), &Default::default())
            .expect("the model's sessions are valid")
    }

    fn session(&self, k: usize) -> Option<&Session> {
        self.keepers[k].manager.session()
    }

    fn session_json(&self, k: usize) -> Option<String> {
        self.session(k).map(Session::to_json)
    }

    /// Runs one step on the real keepers and the model.
    ///
    /// # Errors
    /// The first broken invariant or prediction.
    pub fn apply(&mut self, op: Op) -> Result<(), Violation> {
        self.step(op)?;
        self.drain_revocations()
    }

    /// Hands out the revocations the keepers queued: refresh tokens an
    /// answer proved live that could not be stored (a refresh answered after
    /// a logout, a new login, a session another keeper ended).
    fn drain_revocations(&mut self) -> Result<(), Violation> {
        for k in 0..self.keepers.len() {
            while let Some(next) = self.keepers[k].manager.poll_revocation(t(self.now)) {
                match next {
                    Ok(Dispatch::Send(out)) => self.hand_out(k, out.id, out.request, None, None)?,
                    Ok(_) => return Err("a revocation asked to sign".into()),
                    Err(error) => {
                        return Err(format!("a queued revocation failed: {}", error.code()));
                    }
                }
            }
            self.persist(k)?;
        }
        Ok(())
    }

    fn step(&mut self, op: Op) -> Result<(), Violation> {
        let n = self.keepers.len();
        match op {
            Op::Get { keeper, get } => self.get(keeper % n, get)?,
            Op::Answer { which, reply } => self.answer(which, reply)?,
            Op::TransportError { which } | Op::Cancel { which } => {
                if self.outstanding.is_empty() {
                    return Ok(());
                }
                let p = self.outstanding.remove(which % self.outstanding.len());
                let before = self.session_json(p.keeper);
                let keeper = &mut self.keepers[p.keeper];
                if matches!(op, Op::Cancel { .. }) {
                    let _ = keeper.manager.cancel(p.id);
                } else {
                    let _ = keeper.manager.handle_transport_error(p.id, t(self.now));
                }
                let after = self.session_json(p.keeper);
                ensure!(
                    normalized(before.as_deref(), false, false)
                        == normalized(after.as_deref(), false, false),
                    "[inv 6] a transport error / cancel changed the session:\n before {before:?}\n after  {after:?}"
                );
                self.persist(p.keeper)?;
                self.claim_kept(&p)?;
            }
            Op::Advance(secs) => self.now += secs,
            Op::Timeout { keeper } => {
                self.keepers[keeper % n].manager.handle_timeout(t(self.now));
                self.persist(keeper % n)?;
            }
            Op::Logout { keeper } => self.logout(keeper % n)?,
            Op::Clear { keeper } => {
                let k = keeper % n;
                let mut ended: Vec<u32> = self
                    .session(k)
                    .and_then(session_epoch)
                    .into_iter()
                    .collect();
                ended.extend(self.stored_epoch());
                self.keepers[k]
                    .clear()
                    .map_err(|e| format!("clear failed: {e}"))?;
                self.gone.extend(&ended);
                self.seen_ended[k].extend(ended);
            }
            Op::Login { keeper } => {
                let k = keeper % n;
                let epoch = self.next_epoch;
                self.next_epoch += 1;
                let mut replaced: Vec<u32> = self
                    .session(k)
                    .and_then(session_epoch)
                    .into_iter()
                    .collect();
                replaced.extend(self.stored_epoch());
                replaced.retain(|&e| e != epoch);
                let session = self.login_session(epoch);
                self.keepers[k]
                    .install(session)
                    .map_err(|e| format!("install failed: {e}"))?;
                let generation = self
                    .store
                    .lock()
                    .unwrap()
                    .session()
                    .map(Session::generation);
                // Strictly above: a keeper that last saw the old session at
                // the same generation would otherwise win its compare-and-swap
                // and write the old session over the new login.
                ensure!(
                    self.watermark.is_none() || generation > self.watermark,
                    "[inv 3 N1] a new login installed over generation {:?} wrote generation {generation:?}",
                    self.watermark
                );
                self.gone.extend(&replaced);
                self.replaced.extend(&replaced);
                self.seen_ended[k].extend(replaced);
            }
            Op::CodeLogin { keeper, id_token } => self.code_login(keeper % n, id_token)?,
            Op::Reload { keeper } => {
                self.keepers[keeper % n]
                    .moved_on()
                    .map_err(|e| format!("reload failed: {e}"))?;
            }
            Op::Restart { keeper } => {
                let k = keeper % n;
                self.outstanding.retain(|p| p.keeper != k);
                self.unrevocable += self.keepers[k].manager.unrevocable();
                self.keepers[k] = self.new_keeper();
                self.seen_ended[k].clear();
                self.last_ready[k] = None;
            }
            Op::Authorize { keeper } => {
                let k = keeper % n;
                if let Some(token) = self.last_ready[k].clone() {
                    let result = self.keepers[k].manager.authorize(
                        &Method::new("GET"),
                        "https://api1.example/data",
                        &token,
                        t(self.now),
                    );
                    if let Ok(Authorization::Ready(headers)) = result {
                        let scheme = headers.get("authorization").unwrap_or("");
                        if token.token_type == TokenType::DPoP {
                            ensure!(
                                scheme.starts_with("DPoP ") && headers.get("dpop").is_some(),
                                "[inv 5] a DPoP-bound token was sent as {scheme:?}"
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn stored_epoch(&self) -> Option<u32> {
        self.store.lock().unwrap().session().and_then(session_epoch)
    }

    fn persist(&mut self, k: usize) -> Result<Saved, Violation> {
        self.keepers[k]
            .persist()
            .map_err(|e| format!("persist failed: {e}"))
    }

    fn get(&mut self, k: usize, get: Get) -> Result<(), Violation> {
        let (inactive, dead) = match self.session(k) {
            None => (true, false),
            Some(s) => (s.is_logged_out(), s.is_reauthentication_required()),
        };
        let request = get.request();
        let step = self.keepers[k]
            .step(Ask::User(&request), None, t(self.now))
            .map_err(|e| format!("step failed: {e}"))?;
        match step {
            Step::Ready(token) => {
                ensure!(
                    !inactive,
                    "[pred] a logged-out or missing session served a token"
                );
                ensure!(
                    !(dead && get.force),
                    "[pred D12] a forced refresh on a session whose refresh token is dead returned the cached token"
                );
                self.check_ready(k, get, &token)?;
                self.last_ready[k] = Some(token);
            }
            Step::Own(Dispatch::Send(out)) => {
                ensure!(
                    !inactive,
                    "[pred] a logged-out or missing session sent a refresh"
                );
                self.hand_out(k, out.id, out.request, Some(get), None)?;
            }
            Step::Own(_) => return Err("an immediate signer asked to sign".into()),
            Step::Wait(..) | Step::Reload(_) => {}
            Step::Failed(error) => {
                ensure!(
                    !(dead && get.force) || error.requires_login(),
                    "[pred D12] a forced refresh on a dead refresh token failed with {} (requires_login false)",
                    error.code()
                );
            }
        }
        Ok(())
    }

    fn code_login(&mut self, k: usize, with_id_token: bool) -> Result<(), Violation> {
        let now = self.now;
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let mut entropy = SeededEntropy::new(u64::from(epoch));
        let (url, transaction) = LoginRequest::new(
            "https://as.example/authorize",
            CLIENT,
            "https://app.example/cb",
        )
        .scope(LOGIN_SCOPE)
        .start(&mut entropy)
        .map_err(|e| format!("login start: {e}"))?;
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let state = form::parse(query)
            .into_iter()
            .find(|(n, _)| n == "state")
            .map(|(_, v)| v)
            .unwrap_or_default();
        let callback = format!(
            "https://app.example/cb?code=c{epoch}&state={}",
            form::encode(&state)
        );
        let out = match self.keepers[k]
            .manager
            .exchange_code(&transaction, &callback, t(now))
        {
            Ok(Dispatch::Send(out)) => out,
            Ok(_) => return Err("a code exchange asked to sign".into()),
            Err(error) => return Err(format!("exchange_code: {}", error.code())),
        };
        let bound = out.request.headers.get("dpop").is_some();
        let rt = self.server.login(epoch);
        let token = self.server.issue(
            epoch,
            DEFAULT_RESOURCE,
            LOGIN_SCOPE,
            LOGIN_SCOPE,
            now,
            self.setup.lifetime,
            bound,
        );
        let mut body = json!({
            "access_token": token, "token_type": if bound { "DPoP" } else { "Bearer" },
            "expires_in": self.setup.lifetime, "refresh_token": rt, "scope": LOGIN_SCOPE,
        });
        if with_id_token {
            body["id_token"] = jwt(
                &json!({"alg": "none"}),
                &json!({
                    "iss": ISSUER, "aud": CLIENT, "sub": SUB, "iat": now, "exp": now + 3600,
                    "nonce": transaction.nonce().secret(), "sid": format!("e{epoch}"),
                }),
            )
            .into();
        }
        let response = self
            .server
            .nonce_header(self.setup.dpop, HttpResponse::new(200, body.to_string()))
            .with_header("Content-Type", "application/json");
        let mut replaced: Vec<u32> = self
            .session(k)
            .and_then(session_epoch)
            .into_iter()
            .collect();
        replaced.extend(self.stored_epoch());
        let before = self.session_json(k);
        let completion = self.keepers[k]
            .manager
            .handle_response(out.id, response, t(now));
        let started = match completion {
            Completion::Ready(_) => true,
            Completion::Failed(_) => false,
            other => return Err(format!("unexpected login completion {other:?}")),
        };
        ensure!(
            with_id_token || !started,
            "[pred D9] a login for scope openid without an ID token started a session"
        );
        ensure!(
            started || !(with_id_token && self.setup.issuer),
            "[pred] a valid login failed"
        );
        if !started {
            let after = self.session_json(k);
            ensure!(
                normalized(before.as_deref(), false, false)
                    == normalized(after.as_deref(), false, false),
                "[inv 6] a failed login changed the session"
            );
            self.server.families.remove(&epoch);
            return Ok(());
        }
        self.carried.push(format!("e{epoch}-rt-0"));
        replaced.retain(|&e| e != epoch);
        self.gone.extend(&replaced);
        self.replaced.extend(&replaced);
        self.seen_ended[k].extend(replaced);
        self.persist(k)?;
        ensure!(
            self.stored_epoch() == Some(epoch),
            "[pred N7] keeper {k} persisted a new login (e{epoch}) and the store holds {:?}",
            self.stored_epoch()
        );
        Ok(())
    }

    fn logout(&mut self, k: usize) -> Result<(), Violation> {
        let epoch = self.session(k).and_then(session_epoch);
        match self.keepers[k].manager.logout(t(self.now)) {
            Ok(Some(Dispatch::Send(out))) => self.hand_out(k, out.id, out.request, None, None)?,
            Ok(Some(_)) => return Err("a revocation asked to sign".into()),
            Ok(None) | Err(_) => {}
        }
        if let Some(epoch) = epoch {
            self.logged_out.insert(epoch);
            self.seen_ended[k].insert(epoch);
        }
        self.persist(k)?;
        let store = self.store.lock().unwrap();
        if let Some(stored) = store.session()
            && epoch.is_some()
            && session_epoch(stored) == epoch
        {
            ensure!(
                stored.is_logged_out(),
                "[pred N2] keeper {k} logged session e{} out and persisted, and the store holds it alive (the save conflicted and the keeper adopted the stored session: {})",
                epoch.unwrap_or(0),
                self.keepers[k]
                    .manager
                    .session()
                    .is_some_and(|s| !s.is_logged_out())
            );
        }
        Ok(())
    }

    /// A request leaves through the host: record it on the wire, check it
    /// spends the live refresh token.
    fn hand_out(
        &mut self,
        k: usize,
        id: RequestId,
        request: HttpRequest,
        get: Option<Get>,
        resend_of: Option<Pending>,
    ) -> Result<(), Violation> {
        let revocation = request.url == REVOCATION_ENDPOINT;
        let nonce = dpop_nonce_of(&request);
        let rt = if revocation {
            let token = field(&request, "token").unwrap_or_default();
            self.revoked.insert(token.clone());
            token
        } else {
            ensure!(
                field(&request, "grant_type").as_deref() == Some("refresh_token"),
                "unexpected grant {:?}",
                field(&request, "grant_type")
            );
            let rt = field(&request, "refresh_token").unwrap_or_default();
            let epoch = epoch_of(&rt).unwrap_or(0);
            let family = self.server.families.get(&epoch);
            let ended = self.logged_out.contains(&epoch) || self.gone.contains(&epoch);
            let live = family.is_some_and(|f| !f.dead && f.current.as_deref() == Some(rt.as_str()));
            let tag = if resend_of.is_some() && (ended || !live) {
                " N3: a use_dpop_nonce retry of a refresh token the session no longer holds"
            } else if family.is_some_and(|f| f.dead && f.current.as_deref() == Some(rt.as_str())) {
                " N9: a refresh token whose grant an answer proved dead is spent again"
            } else if self.gone.contains(&epoch) && self.stored_epoch() == Some(epoch) {
                " N1: its claim won a compare-and-swap against a newer session at the same generation"
            } else {
                ""
            };
            ensure!(
                live,
                "[inv 4{tag}] keeper {k} sent refresh token {rt} that the server no longer accepts (family {family:?}): a replay"
            );
            ensure!(
                !ended,
                "[inv 2{tag}] keeper {k} refreshes session e{epoch}, which was logged out or cleared"
            );
            rt
        };
        let pending = match resend_of {
            Some(mut p) => {
                p.handed_at = self.now;
                p.attempt += 1;
                p.nonce = nonce;
                p.request = request;
                p
            }
            None => Pending {
                keeper: k,
                id,
                revocation,
                rt,
                sent_at: self.now,
                handed_at: self.now,
                nonce,
                attempt: 0,
                get,
                request,
            },
        };
        self.outstanding.push(pending);
        Ok(())
    }

    fn on_wire(&self, p: &Pending) -> bool {
        p.handed_at + self.setup.lease > self.now
    }

    fn answer(&mut self, which: usize, reply: Reply) -> Result<(), Violation> {
        if self.outstanding.is_empty() {
            return Ok(());
        }
        let p = self.outstanding.remove(which % self.outstanding.len());
        let k = p.keeper;
        let now = self.now;
        let mut reply = reply;
        // A late answer: the server processed the request while it was on
        // the wire, so only when nothing else spent its token since.
        if !self.on_wire(&p) && reply.is_grant() {
            let current = epoch_of(&p.rt)
                .and_then(|e| self.server.families.get(&e))
                .is_some_and(|f| f.current.as_deref() == Some(p.rt.as_str()));
            let raced = self
                .outstanding
                .iter()
                .any(|o| !o.revocation && o.rt == p.rt && self.on_wire(o));
            if !current || raced {
                reply = Reply::ServerError;
            }
        }
        let abandoned = !self.keepers[k].manager.is_in_flight(p.id);
        let past_deadline = now >= p.sent_at + self.setup.lease;
        let before = self.session_json(k);
        let rt_before = session_rt(self.session(k));
        let logged_out_before = self.session(k).is_some_and(Session::is_logged_out);
        let setup = self.setup.clone();
        let (response, carried) = if p.revocation {
            (self.server.revoke(&p.request, reply), None)
        } else {
            self.server.refresh(&setup, &p.request, reply, now)
        };
        let status = response.status;
        let invalid_grant = status == 400
            && std::str::from_utf8(&response.body).is_ok_and(|b| b.contains("\"invalid_grant\""));
        let header_nonce = response.headers.get("dpop-nonce").map(String::from);
        let expect_resend = match reply {
            Reply::UseDpopNonce { .. } if setup.dpop && !p.revocation => {
                if abandoned || logged_out_before || rt_before.as_deref() != Some(p.rt.as_str()) {
                    // N3: never for a session logged out meanwhile, nor with
                    // a refresh token that is no longer the live one.
                    Some(false)
                } else if past_deadline {
                    None
                } else {
                    Some(p.attempt == 0 && header_nonce != p.nonce)
                }
            }
            _ => Some(false),
        };
        if let Some(rt) = &carried {
            self.carried.push(rt.clone());
        }
        let completion = self.keepers[k]
            .manager
            .handle_response(p.id, response, t(now));
        let mut ready = None;
        let mut resend = None;
        let mut failed: Option<Error> = None;
        let mut withdrawn = false;
        match completion {
            Completion::Ready(token) => ready = Some(token.to_owned()),
            // As the adapters do: a retry of a refresh goes out only while
            // the stored session has not moved on.
            Completion::Resend(out) => {
                let confirmed = self.keepers[k]
                    .confirm_resend(out.id)
                    .map_err(|e| format!("confirm_resend failed: {e}"))?;
                if confirmed {
                    resend = Some(out);
                } else {
                    withdrawn = true;
                    failed = Some(Error::RequestAbandoned);
                }
            }
            Completion::Failed(error) => failed = Some(error),
            Completion::Revoked => {
                let rt_now = session_rt(self.session(k));
                ensure!(
                    rt_now == rt_before || rt_before.as_deref() == Some(p.rt.as_str()),
                    "[pred N5] the revocation of {} removed the session's refresh token {rt_before:?}",
                    p.rt
                );
            }
            other => return Err(format!("unexpected completion {other:?}")),
        }
        let after = self.session_json(k);
        match (expect_resend, resend.is_some()) {
            // Withdrawn because the store moved on: not the manager's call.
            (Some(true), false) if withdrawn => {}
            (Some(true), false) => {
                return Err(format!(
                    "[pred D5] use_dpop_nonce with nonce {header_nonce:?} to a request that carried {:?} (attempt {}) was not retried: {}",
                    p.nonce,
                    p.attempt,
                    failed.as_ref().map_or("", Error::code)
                ));
            }
            (Some(false), true) if abandoned => {
                return Err(format!(
                    "[pred D4] a use_dpop_nonce answer to flight {} abandoned at its lease deadline was resent",
                    p.id
                ));
            }
            (Some(false), true) => {
                return Err(format!("[pred] unexpected resend after {reply:?}"));
            }
            _ => {}
        }
        if let Some(out) = resend {
            let id = out.id;
            self.hand_out(k, id, out.request, None, Some(p.clone()))?;
        }
        let rt_after = session_rt(self.session(k));
        let logged_out = self.session(k).is_some_and(Session::is_logged_out);
        if carried.is_some() && rt_before.as_deref() == Some(p.rt.as_str()) && !logged_out {
            ensure!(
                rt_after == carried,
                "[pred D1] the answer carried rotated refresh token {carried:?} and the session kept {rt_after:?} (the answer {})",
                failed.as_ref().map_or("succeeded", Error::code)
            );
        }
        // A withdrawn retry adopted what the store holds: a store sync,
        // not something the answer did.
        if let Some(error) = failed.as_ref().filter(|_| !withdrawn) {
            // Bad input: the session as it was, except what it proved.
            let rt_proved = carried.is_some() && rt_after == carried;
            let b = normalized(before.as_deref(), rt_proved, invalid_grant);
            let a = normalized(after.as_deref(), rt_proved, invalid_grant);
            ensure!(
                b == a,
                "[inv 6] a failed answer ({}) after {reply:?} changed the session beyond what it proved:\n before {before:?}\n after  {after:?}",
                error.code()
            );
            if invalid_grant
                && !p.revocation
                && !logged_out_before
                && rt_before.as_deref() == Some(p.rt.as_str())
            {
                ensure!(
                    error.requires_login(),
                    "[pred D12] invalid_grant for the live refresh token gave {} with requires_login() false",
                    error.code()
                );
            }
        }
        if let (Some(token), Some(get)) = (&ready, p.get) {
            self.check_token(k, get, token)?;
            self.last_ready[k] = Some(token.clone());
        }
        let saved = self.persist(k)?;
        self.claim_kept(&p)?;
        // A token just obtained is served by the next call, without I/O.
        if let (Some(_), Some(get), true) = (&ready, p.get, saved != Saved::Adopted)
            && now == p.sent_at
            && self.session(k).is_some_and(|s| !s.is_logged_out())
        {
            let again = Get {
                force: false,
                ..get
            };
            let request = again.request();
            let step = self.keepers[k]
                .step(Ask::User(&request), None, t(now))
                .map_err(|e| format!("step failed: {e}"))?;
            match step {
                Step::Ready(token) => self.check_ready(k, again, &token)?,
                Step::Own(Dispatch::Send(out)) => {
                    let _ = self.keepers[k].manager.cancel(out.id);
                    return Err(format!(
                        "[pred {}] the token just obtained for {again:?} is not served: the next call refreshes again (buffer {} s, lifetime {} s)",
                        if setup.refresh_buffer >= setup.lifetime {
                            "D14"
                        } else {
                            "D2-liveness"
                        },
                        setup.refresh_buffer,
                        setup.lifetime
                    ));
                }
                other => {
                    return Err(format!(
                        "[pred] the token just obtained for {again:?} is not served: {other:?}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// With a shared store, the end of one flight (answered, failed in
    /// transport, cancelled) keeps the claim of the refresh that replaced it.
    fn claim_kept(&self, p: &Pending) -> Result<(), Violation> {
        let k = p.keeper;
        if !self.setup.shared_store || p.revocation {
            return Ok(());
        }
        // Only a flight of the session's live refresh token holds a claim:
        // a login replaces the session, claim and all, and a logout ends it.
        if self.session(k).is_some_and(Session::is_logged_out) {
            return Ok(());
        }
        let live_rt = session_rt(self.session(k));
        let other_live = self.outstanding.iter().any(|o| {
            o.keeper == k
                && !o.revocation
                && live_rt.as_deref() == Some(o.rt.as_str())
                && self.keepers[k].manager.is_in_flight(o.id)
                // A claim lasts the lease: past it, another keeper may
                // rightly have taken the refresh over.
                && self.now < o.sent_at + self.setup.lease
        });
        let claimed = self.session(k).is_some_and(|s| s.refresh_claim().is_some());
        ensure!(
            !other_live || claimed,
            "[pred N6] the end of flight {} released the refresh claim of the flight still in flight after it",
            p.id
        );
        Ok(())
    }

    /// A ready token must be one the server issued, unexpired, for the
    /// audience asked, covering the wanted scope, DPoP-bound when DPoP is on.
    fn check_ready(&self, k: usize, get: Get, token: &AccessTokenInfo) -> Result<(), Violation> {
        self.check_token(k, get, token)?;
        let epoch = self
            .server
            .issued
            .get(token.token.secret())
            .map_or(0, |i| i.epoch);
        ensure!(
            !self.seen_ended[k].contains(&epoch),
            "[inv 2] keeper {k} served a token of session e{epoch}, which it saw end"
        );
        Ok(())
    }

    /// [`World::check_ready`] for the answer to a request made before the
    /// session ended (no prediction on whether the waiting caller gets it).
    fn check_token(&self, k: usize, get: Get, token: &AccessTokenInfo) -> Result<(), Violation> {
        let now = self.now;
        let secret = token.token.secret();
        let Some(issued) = self.server.issued.get(secret) else {
            return Err(format!(
                "[inv 5] keeper {k} served a token the server never issued"
            ));
        };
        ensure!(
            token.expires_at > t(now) && issued.expires_at > now,
            "[inv 5 D2] keeper {k} served an expired token for {get:?}: expires_at {:?} (issued to expire at {}), now {now}",
            token.expires_at,
            issued.expires_at
        );
        let audience = get.audience().unwrap_or(DEFAULT_RESOURCE);
        ensure!(
            issued.aud == audience,
            "[inv 5 D13] keeper {k} served a token for {} as one for {audience}",
            issued.aud
        );
        ensure!(
            covers(&issued.asked, &get.wanted()),
            "[inv 5] keeper {k} served a token asked for {:?} for the wanted scope {:?}",
            issued.asked,
            get.wanted()
        );
        let expected = if issued.dpop {
            TokenType::DPoP
        } else {
            TokenType::Bearer
        };
        ensure!(
            token.token_type == expected,
            "[inv 5] token type {:?}, issued as {expected:?}",
            token.token_type
        );
        ensure!(
            !self.setup.dpop || issued.dpop,
            "[inv 5] DPoP is on and keeper {k} served a Bearer token"
        );
        Ok(())
    }

    /// The invariants that hold between steps.
    ///
    /// # Errors
    /// The first broken one.
    pub fn check(&mut self) -> Result<(), Violation> {
        // 4. Never two refresh requests on the wire with one refresh token.
        let mut on_wire: BTreeMap<&str, &Pending> = BTreeMap::new();
        for p in self.outstanding.iter().filter(|p| !p.revocation) {
            if self.on_wire(p)
                && let Some(other) = on_wire.insert(&p.rt, p)
            {
                return Err(format!(
                    "[inv 4{}] two refresh requests on the wire carry {}: {other:?} and {p:?}",
                    if other.attempt + p.attempt > 0 {
                        " N4: a use_dpop_nonce retry outlives its lease"
                    } else {
                        ""
                    },
                    p.rt
                ));
            }
        }
        let store = self.store.lock().unwrap();
        let stored = store.session();
        // 3. The stored generation only grows (a clear starts over), and
        // every change to the stored session raises it: compare-and-swap
        // on generations is only sound then.
        match stored {
            Some(session) => {
                let generation = session.generation();
                let json = session.to_json();
                ensure!(
                    self.watermark.is_none_or(|w| generation >= w),
                    "[inv 3 D3] the stored generation went back from {:?} to {generation}",
                    self.watermark
                );
                ensure!(
                    self.watermark != Some(generation)
                        || self.stored_json.as_deref() == Some(json.as_str()),
                    "[inv 3 D3] the stored session changed and kept generation {generation}:\n before {:?}\n after  {json:?}",
                    self.stored_json
                );
                self.watermark = Some(generation);
                self.stored_json = Some(json);
            }
            None => {
                self.watermark = None;
                self.stored_json = None;
            }
        }
        // 2. Ended sessions never come back.
        if let Some(session) = stored {
            let epoch = session_epoch(session).unwrap_or(0);
            ensure!(
                !self.gone.contains(&epoch),
                "[inv 2 {}] the store holds session e{epoch} again after it was cleared or replaced (logged out: {})",
                if session.is_logged_out() {
                    "N8: a stale logout written over what replaced it"
                } else if self.replaced.contains(&epoch) || self.next_epoch - 1 > epoch {
                    "D3b: a late save over a new login"
                } else {
                    "D3"
                },
                session.is_logged_out()
            );
            ensure!(
                !self.logged_out.contains(&epoch) || session.is_logged_out(),
                "[inv 2 D3] the store holds session e{epoch} alive again after it was logged out"
            );
        }
        // 1. No rotated refresh token orphaned. Without a revocation
        // endpoint a proven token of an ended session cannot be revoked:
        // the keepers count those (`unrevocable`).
        let stored_rt = session_rt(stored);
        let unrevocable = self.unrevocable
            + self
                .keepers
                .iter()
                .map(|k| k.manager.unrevocable())
                .sum::<u64>();
        let mut dropped = 0;
        for rt in &self.carried {
            let epoch = epoch_of(rt).unwrap_or(0);
            let family = self.server.families.get(&epoch);
            let accounted = stored_rt.as_deref() == Some(rt.as_str())
                || family.is_some_and(|f| f.dead || f.spent.contains(rt))
                || self.revoked.contains(rt)
                || self.gone.contains(&epoch);
            if !accounted && !self.setup.revocation && self.logged_out.contains(&epoch) {
                dropped += 1;
                continue;
            }
            ensure!(
                accounted,
                "[inv 1{}] refresh token {rt} from a successful answer is orphaned: not stored (the store holds {stored_rt:?}), not rotated, not revoked",
                if self.logged_out.contains(&epoch) {
                    " D10: its session was logged out"
                } else {
                    ""
                }
            );
        }
        ensure!(
            dropped <= unrevocable,
            "[inv 1] {dropped} refresh tokens of logged-out sessions dropped, {unrevocable} counted as unrevocable"
        );
        drop(store);
        // 2. A keeper that saw its session end never holds it alive again.
        for k in 0..self.keepers.len() {
            if let Some(session) = self.session(k) {
                let epoch = session_epoch(session).unwrap_or(0);
                if session.is_logged_out() {
                    self.seen_ended[k].insert(epoch);
                } else {
                    ensure!(
                        !self.seen_ended[k].contains(&epoch),
                        "[inv 2 D3] keeper {k} holds session e{epoch} alive again after it saw it end"
                    );
                }
            }
        }
        Ok(())
    }

    /// Runs `ops`, checking after each; the error names the step.
    ///
    /// # Errors
    /// The first violation, with its step number.
    pub fn run(setup: Setup, ops: &[Op]) -> Result<(), Violation> {
        let mut world = World::new(setup);
        world.check().map_err(|e| format!("at start: {e}"))?;
        for (i, op) in ops.iter().enumerate() {
            world
                .apply(*op)
                .and_then(|()| world.check())
                .map_err(|e| format!("step {i} ({op:?}) at t={}: {e}", world.now))?;
        }
        Ok(())
    }
}

/// Bytes to a setup and operations (the fuzz target's input format, also
/// used to replay fuzz inputs in `cargo test`).
pub fn decode(data: &[u8]) -> (Setup, Vec<Op>) {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let a = next().unwrap_or(0);
    let b = next().unwrap_or(0);
    let setup = Setup {
        keepers: 1 + usize::from(a % 3),
        shared_store: a & 0x04 != 0,
        dpop: a & 0x08 != 0,
        issuer: a & 0x10 != 0,
        revocation: a & 0x20 == 0,
        resource_only: a & 0xc0 == 0xc0,
        refresh_buffer: [0, 0, 30, 120][usize::from(b & 3)],
        lifetime: if b & 0x04 != 0 { 60 } else { 600 },
        lease: 30,
        grant_subset: b & 0x08 != 0,
        seed_entry: b & 0x10 != 0,
        fresh_start: b & 0x20 != 0,
    };
    let mut ops = Vec::new();
    while let Some(tag) = next() {
        let arg = next().unwrap_or(0);
        let k = usize::from(arg & 3);
        let op = match tag % 16 {
            0..=3 => Op::Get {
                keeper: k,
                get: Get {
                    audience: usize::from(arg >> 2) % AUDIENCES.len(),
                    scope: usize::from(arg >> 4) % SCOPES.len(),
                    merge: tag & 0x10 == 0,
                    force: tag & 0x20 != 0,
                },
            },
            4..=7 => Op::Answer {
                which: usize::from(arg & 7),
                reply: match (tag >> 4) % 8 {
                    0..=2 => Op::ok_reply(arg >> 3),
                    3 => Reply::Bearer {
                        rotate: arg & 0x80 != 0,
                    },
                    4 => Reply::InvalidGrant,
                    5 => Reply::ServerError,
                    6 => Reply::UseDpopNonce {
                        fresh: arg & 0x80 != 0,
                    },
                    _ => Reply::Malformed,
                },
            },
            8 => Op::TransportError {
                which: usize::from(arg),
            },
            9 => Op::Cancel {
                which: usize::from(arg),
            },
            10 => Op::Advance([1, 5, 15, 30, 31, 60, 300, 601][usize::from(arg & 7)]),
            11 => Op::Timeout { keeper: k },
            12 => match (tag >> 4) % 6 {
                0 => Op::Logout { keeper: k },
                1 => Op::Clear { keeper: k },
                2 => Op::Login { keeper: k },
                3 => Op::CodeLogin {
                    keeper: k,
                    id_token: arg & 0x80 == 0,
                },
                4 => Op::CodeLogin {
                    keeper: k,
                    id_token: false,
                },
                _ => Op::Restart { keeper: k },
            },
            13 => Op::Reload { keeper: k },
            14 => Op::Authorize { keeper: k },
            _ => Op::Advance(u64::from(arg)),
        };
        ops.push(op);
    }
    (setup, ops)
}

impl Op {
    /// A successful answer from five bits.
    pub fn ok_reply(bits: u8) -> Reply {
        Reply::Ok {
            rotate: bits & 1 == 0,
            id_token: [
                IdTok::None,
                IdTok::None,
                IdTok::Good,
                IdTok::IatInFuture,
                IdTok::OtherSub,
                IdTok::Opaque,
                IdTok::None,
                IdTok::Good,
            ][usize::from((bits >> 1) & 7)],
            omit_scope: bits & 0x10 != 0,
        }
    }
}
