//! The persistence rules, against a scripted local token endpoint and
//! scripted stores: a failed save is reported and retried, a conflicting
//! save adopts the other writer's session, except when this handle's change
//! rotated the refresh token (then it overwrites).

mod support;

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use support::{SharedStore, access_token, config_for, refresh_token};
use tokenkeeper::{MemoryStore, Session, SessionStore, StoreError, TokenRequest};
use tokenkeeper_ureq::{Error, TokenKeeper};

/// A token endpoint answering request `n` (from 1) with `answer(n)`'s JSON.
fn token_endpoint(answer: impl Fn(usize) -> String + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { break };
            let _ = tokenkeeper_integration::util::read_http_request(&mut stream);
            let body = answer(i + 1);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn rotating(n: usize) -> String {
    format!(
        r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{n}"}}"#
    )
}

fn session(access_token: &str, refresh_token: &str, generation: u64, expired: bool) -> Session {
    let expires_at = if expired { 1 } else { 9_999_999_999u64 };
    let json = format!(
        r#"{{"tokenSet":{{"accessToken":"{access_token}","refreshToken":"{refresh_token}","expiresAt":{expires_at}}},"tokenkeeper":{{"generation":{generation}}}}}"#
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

/// A store whose saves fail while `down` is set.
#[derive(Clone)]
struct FlakyStore {
    inner: Arc<Mutex<MemoryStore>>,
    down: Arc<AtomicBool>,
}

impl SessionStore for FlakyStore {
    fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
        self.inner.lock().unwrap().load(key)
    }
    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::backend("database unavailable"));
        }
        self.inner.lock().unwrap().save(key, session, expected)
    }
    fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        self.inner.lock().unwrap().clear(key)
    }
}

#[test]
fn a_failed_save_is_reported_and_retried_with_the_next_call() {
    let url = token_endpoint(rotating);
    let store = FlakyStore {
        inner: Arc::new(Mutex::new(MemoryStore::with_session(session(
            "at-0", "rt-0", 0, true,
        )))),
        down: Arc::new(AtomicBool::new(true)),
    };
    let keeper = TokenKeeper::builder(config_for(&url))
        .store(store.clone())
        .build()
        .unwrap();

    // The refresh worked, but its rotated refresh token could not be saved:
    // the caller is told, and the session here keeps it.
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Backend(_))),
        "{error:?}"
    );
    assert_eq!(refresh_token(&keeper.session().unwrap()), "rt-1");
    let stored = store.inner.lock().unwrap().session().cloned().unwrap();
    assert_eq!(refresh_token(&stored), "rt-0");

    // The next call (a cached token, no I/O) saves it.
    store.down.store(false, Ordering::SeqCst);
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "at-1");
    let stored = store.inner.lock().unwrap().session().cloned().unwrap();
    assert_eq!(refresh_token(&stored), "rt-1");
}

#[test]
fn a_conflicting_save_with_a_rotated_refresh_token_overwrites() {
    let store = SharedStore::with_session(session("at-0", "rt-0", 0, true));
    // While the refresh is in flight, another writer saves a change made
    // from the same starting point (its refresh token, rt-0, is now spent).
    let other = store.clone();
    let url = token_endpoint(move |n| {
        let mut other = other.clone();
        other
            .save("default", &session("at-other", "rt-0", 1, false), Some(0))
            .unwrap();
        rotating(n)
    });
    let keeper = TokenKeeper::builder(config_for(&url))
        .store(store.clone())
        .build()
        .unwrap();

    keeper.get_access_token(&TokenRequest::new()).unwrap();
    let stored = store.stored().unwrap();
    assert_eq!(refresh_token(&stored), "rt-1", "the live refresh token won");
    assert_eq!(access_token(&stored), "at-1");
}

#[test]
fn a_conflicting_save_without_rotation_adopts_the_stored_session() {
    let store = SharedStore::with_session(session("at-0", "rt-0", 0, true));
    let other = store.clone();
    let url = token_endpoint(move |_| {
        let mut other = other.clone();
        other
            .save("default", &session("at-other", "rt-0", 1, false), Some(0))
            .unwrap();
        // No refresh token in the response: no rotation.
        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#.to_owned()
    });
    let keeper = TokenKeeper::builder(config_for(&url))
        .store(store.clone())
        .build()
        .unwrap();

    // This caller gets the token it refreshed; the handle then holds what
    // the other writer stored.
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "at-1");
    assert_eq!(access_token(&keeper.session().unwrap()), "at-other");
    assert_eq!(access_token(&store.stored().unwrap()), "at-other");
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "at-other");
}

#[test]
fn a_store_emptied_elsewhere_is_a_logout_here() {
    let store = SharedStore::with_session(session("at-0", "rt-0", 0, true));
    let url = token_endpoint(rotating);
    let keeper = TokenKeeper::builder(config_for(&url))
        .store(store.clone())
        .build()
        .unwrap();
    store.clone().clear("default").unwrap();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code(), "missing_session");
    assert!(error.requires_login());
}

#[test]
fn set_session_replaces_what_the_store_holds() {
    let store = SharedStore::with_session(session("at-0", "rt-0", 5, false));
    let keeper = TokenKeeper::builder(config_for("http://127.0.0.1:9/token"))
        .store(store.clone())
        .build()
        .unwrap();
    keeper
        .set_session(session("at-login", "rt-login", 0, false))
        .unwrap();
    assert_eq!(access_token(&store.stored().unwrap()), "at-login");
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token.token.secret(), "at-login");
    assert!(keeper.clear_session().unwrap().is_some());
    assert!(store.stored().is_none());
}
