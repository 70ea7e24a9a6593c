//! Shared test helpers: a real login turned into a session, the harness
//! client's configuration, and a store that two handles can share.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{API1, API2, CONFIDENTIAL_POST, Harness, REDIRECT_URI};
use serde_json::{Value, json};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::login::{LoginRequest, LoginTransaction};
use tokenkeeper::{ClientSecret, Config, MemoryStore, Session, SessionStore, StoreError};

pub const LOGIN_SCOPE: &str = "openid profile email offline_access read:data write:data";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The authorization URL of a login for both APIs (the core builds it),
/// and its transaction; the harness then plays the browser.
pub fn authorization(h: &Harness) -> (String, LoginTransaction) {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut entropy = tokenkeeper::SeededEntropy::new(seed.as_nanos() as u64);
    LoginRequest::new(
        &h.authorization_endpoint(),
        CONFIDENTIAL_POST.id,
        REDIRECT_URI,
    )
    .scope(LOGIN_SCOPE)
    .resource(API1)
    .resource(API2)
    .param("prompt", "consent")
    .start(&mut entropy)
    .unwrap()
}

/// `session` with its access token expired.
pub fn expire(session: &Session) -> Session {
    let mut json: Value = serde_json::from_str(&session.to_json()).unwrap();
    json["tokenSet"]["expiresAt"] = json!(now() - 10);
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

/// A session from a token response (for scripted servers).
/// `expired`: `expiresAt` in the past.
pub fn session_from(tokens: &Value, expired: bool) -> Session {
    let expires_at = if expired {
        now() - 10
    } else {
        now() + tokens["expires_in"].as_u64().unwrap()
    };
    let json = json!({
        "tokenSet": {
            "accessToken": tokens["access_token"],
            "refreshToken": tokens["refresh_token"],
            "idToken": tokens["id_token"],
            "expiresAt": expires_at,
            "scope": tokens["scope"],
            "token_type": tokens["token_type"],
        }
    });
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

/// The harness's `confidential-post` client, default audience API1,
/// RFC 8707 `resource` parameters.
pub fn config_for(token_endpoint: &str) -> Config {
    Config::builder(token_endpoint, CONFIDENTIAL_POST.id)
        .client_auth(ClientAuth::SecretPost(ClientSecret::new(
            CONFIDENTIAL_POST.secret.unwrap(),
        )))
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
        .build()
        .unwrap()
}

/// [`config_for`] the harness, with its issuer (ID tokens are checked).
pub fn config(h: &Harness) -> Config {
    builder(h).build().unwrap()
}

/// [`config`] for a session several processes share through one store
/// (refresh claims).
pub fn shared_config(h: &Harness) -> Config {
    builder(h).shared_store(true).build().unwrap()
}

fn builder(h: &Harness) -> tokenkeeper::ConfigBuilder {
    Config::builder(h.token_endpoint(), CONFIDENTIAL_POST.id)
        .client_auth(ClientAuth::SecretPost(ClientSecret::new(
            CONFIDENTIAL_POST.secret.unwrap(),
        )))
        .issuer(h.issuer())
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
}

/// A [`MemoryStore`] behind an `Arc<Mutex>`, so several handles (standing
/// for several processes) share it, remembering every session saved.
#[derive(Clone, Default)]
pub struct SharedStore(Arc<Mutex<(MemoryStore, Vec<Session>)>>);

impl SharedStore {
    pub fn with_session(session: Session) -> Self {
        SharedStore(Arc::new(Mutex::new((
            MemoryStore::with_session(session),
            Vec::new(),
        ))))
    }

    fn lock(&self) -> MutexGuard<'_, (MemoryStore, Vec<Session>)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The stored session.
    pub fn stored(&self) -> Option<Session> {
        self.lock().0.session().cloned()
    }

    /// Every session saved so far, in order.
    pub fn history(&self) -> Vec<Session> {
        self.lock().1.clone()
    }
}

impl SessionStore for SharedStore {
    fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
        self.lock().0.load(key)
    }

    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut guard = self.lock();
        guard.0.save(key, session, expected)?;
        guard.1.push(session.clone());
        Ok(())
    }

    fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        self.lock().0.clear(key)
    }
}

pub fn refresh_token(session: &Session) -> String {
    session
        .token_set()
        .refresh_token
        .as_ref()
        .unwrap()
        .secret()
        .to_owned()
}

pub fn access_token(session: &Session) -> String {
    session.token_set().access_token.secret().to_owned()
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
