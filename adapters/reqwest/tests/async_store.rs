//! The reqwest adapter on an [`AsyncSessionStore`] whose operations really
//! await (they sleep, or wait for the test), against the real authorization
//! server: one refresh for many tasks, no lock held across a store
//! operation, a slow store never delays a cached token, and a backend's
//! error kept as the source of the caller's error.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{authorization, config, expire, refresh_token};
use tokenkeeper::store::{AsyncSessionStore, DEFAULT_KEY, SessionKey, StoreError};
use tokenkeeper::{MemoryStore, Session, SessionStore, TokenRequest};
use tokenkeeper_integration::{Harness, HarnessOptions};
use tokenkeeper_reqwest::{Error, TokenKeeper};

/// The database's own error type.
#[derive(Debug, thiserror::Error)]
#[error("database unavailable (connection refused)")]
struct DatabaseError;

/// A store that sleeps `delay` before each operation, fails saves while
/// `down`, and holds each operation while `held` (until the test lets go).
#[derive(Default)]
struct SlowStore {
    memory: Mutex<MemoryStore>,
    delay: Duration,
    down: AtomicBool,
    held: AtomicBool,
    /// Operations started, and those waiting on `held` now.
    started: AtomicUsize,
    holding: AtomicUsize,
}

impl SlowStore {
    fn new(delay: Duration, session: Option<Session>) -> Arc<Self> {
        let memory = match session {
            Some(session) => MemoryStore::with_session(session),
            None => MemoryStore::new(),
        };
        Arc::new(SlowStore {
            memory: Mutex::new(memory),
            delay,
            ..SlowStore::default()
        })
    }

    fn stored(&self) -> Option<Session> {
        self.memory.lock().unwrap().session().cloned()
    }

    /// Really awaits: a timer, then (while held) polling for the release.
    async fn pause(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.held.load(Ordering::SeqCst) {
            self.holding.fetch_add(1, Ordering::SeqCst);
            while self.held.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            self.holding.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl AsyncSessionStore for SlowStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        self.pause().await;
        self.memory.lock().unwrap().load(key)
    }

    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        // What is written is taken before the first await (a database
        // client would serialize it here).
        let session = session.clone();
        async move {
            self.pause().await;
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::backend(DatabaseError));
            }
            self.memory.lock().unwrap().save(key, &session, expected)
        }
    }

    async fn clear(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.pause().await;
        self.memory.lock().unwrap().clear(key)
    }
}

async fn login(h: &Harness) -> Session {
    let keeper = TokenKeeper::builder(config(h)).build().unwrap();
    let (url, transaction) = authorization(h);
    keeper.login(&transaction, &h.login(&url)).await.unwrap();
    keeper.session().unwrap()
}

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_a_slow_async_store_make_one_refresh() {
    let h = harness();
    let session = login(&h).await;
    let store = SlowStore::new(Duration::from_millis(20), Some(expire(&session)));
    let keeper = TokenKeeper::builder(config(&h))
        .async_store(store.clone())
        .build()
        .unwrap();
    h.reset_stats();

    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let keeper = keeper.clone();
            tokio::spawn(async move { keeper.get_access_token(&TokenRequest::new()).await })
        })
        .collect();
    let mut tokens = BTreeSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().unwrap().token.secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every task got the one refreshed token");
    assert_eq!(
        h.stats().grant("refresh_token"),
        1,
        "one refresh reached the server"
    );
    let stored = store.stored().unwrap();
    assert_eq!(
        refresh_token(&stored),
        refresh_token(&keeper.session().unwrap())
    );
    assert_ne!(
        refresh_token(&stored),
        refresh_token(&session),
        "the rotation was saved"
    );
    assert!(
        store.started.load(Ordering::SeqCst) >= 2,
        "the store was awaited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lock_is_held_across_a_store_operation_and_cached_tokens_do_not_wait() {
    let h = harness();
    let session = login(&h).await;
    let store = SlowStore::new(Duration::ZERO, Some(session.clone()));
    let keeper = TokenKeeper::builder(config(&h))
        .async_store(store.clone())
        .build()
        .unwrap();
    // The first call loads the session (the store answers at once).
    let cached = keeper.get_access_token(&TokenRequest::new()).await.unwrap();

    // A login's install is under way and its store operation cannot end
    // until this test lets go, which it does only after another caller of
    // the same handle got its cached token: a lock held across the store
    // operation would deadlock here.
    store.held.store(true, Ordering::SeqCst);
    let installer = {
        let keeper = keeper.clone();
        tokio::spawn(async move { keeper.set_session(session).await })
    };
    while store.holding.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = Instant::now();
    let again = tokio::time::timeout(
        Duration::from_secs(2),
        keeper.get_access_token(&TokenRequest::new()),
    )
    .await
    .expect("a cached token while the store is busy (no lock held across its operation)")
    .unwrap();
    assert_eq!(again.token.secret(), cached.token.secret());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        store.holding.load(Ordering::SeqCst),
        1,
        "the store operation still runs"
    );

    store.held.store(false, Ordering::SeqCst);
    installer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_error_is_the_source_and_the_rotation_is_saved_later() {
    let h = harness();
    let session = login(&h).await;
    let store = SlowStore::new(Duration::from_millis(5), Some(expire(&session)));
    let keeper = TokenKeeper::builder(config(&h))
        .async_store(store.clone())
        .build()
        .unwrap();
    store.down.store(true, Ordering::SeqCst);

    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    let Error::Store(store_error) = &error else {
        panic!("{error:?}");
    };
    assert!(matches!(store_error, StoreError::Backend(_)));
    assert_eq!(error.code(), "store_error");
    // The database's own error is in the chain (the adapter's store error
    // is the core's, transparently: its source is the database's).
    let mut chain = Some(&error as &(dyn std::error::Error + 'static));
    let mut found = false;
    while let Some(e) = chain {
        found |= e.is::<DatabaseError>();
        chain = e.source();
    }
    assert!(found, "the database's error is a source: {error:?}");
    assert_eq!(error.to_string(), "session store failed");
    assert!(
        !error.to_string().contains("connection refused"),
        "no repetition"
    );

    // The rotated refresh token stays pending in memory...
    let rotated = refresh_token(&keeper.session().unwrap());
    assert_ne!(rotated, refresh_token(&session));
    assert_eq!(
        refresh_token(&store.stored().unwrap()),
        refresh_token(&session)
    );
    // ...and is saved with the next call once the database is back.
    store.down.store(false, Ordering::SeqCst);
    keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(refresh_token(&store.stored().unwrap()), rotated);
    assert_eq!(h.stats().grant("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_store_keys_sessions_apart() {
    let h = harness();
    let session = login(&h).await;
    let store = SlowStore::new(Duration::from_millis(1), None);
    store
        .memory
        .lock()
        .unwrap()
        .save("alice", &session, None)
        .unwrap();
    let alice = TokenKeeper::builder(config(&h))
        .async_store(store.clone())
        .session_key("alice")
        .build()
        .unwrap();
    let bob = TokenKeeper::builder(config(&h))
        .async_store(store.clone())
        .session_key("bob")
        .build()
        .unwrap();
    alice.get_access_token(&TokenRequest::new()).await.unwrap();
    let error = bob
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(error.requires_login(), "bob has no session: {error:?}");
    assert!(store.memory.lock().unwrap().get(DEFAULT_KEY).is_none());
}

/// `session` with a live refresh claim of another process until `until`
/// (seconds since the epoch), as that process saved it.
fn claimed_by_another_process(session: &Session, until: u64) -> Session {
    let mut json: serde_json::Value = serde_json::from_str(&session.to_json()).unwrap();
    json["tokenkeeper"]["refreshClaim"] =
        serde_json::json!({"owner": "another-process", "until": until});
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_for_another_process_do_not_wake_each_other_into_a_store_storm() {
    // Sixteen callers here wait while another process refreshes. Each
    // reads the store again now and then (this store cannot announce
    // changes); a read must not wake the other waiters into reading it
    // again at once, round after round, for the whole lease.
    let h = harness();
    let session = login(&h).await;
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3;
    let store = SlowStore::new(
        Duration::ZERO,
        Some(claimed_by_another_process(&expire(&session), until)),
    );
    let keeper = TokenKeeper::builder(support::shared_config(&h))
        .async_store(store.clone())
        .build()
        .unwrap();
    let waiters: Vec<_> = (0..16)
        .map(|_| {
            let keeper = keeper.clone();
            tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_secs(1),
                    keeper.get_access_token(&TokenRequest::new()),
                )
                .await
            })
        })
        .collect();
    for waiter in waiters {
        assert!(
            waiter.await.unwrap().is_err(),
            "still waiting for the claim"
        );
    }
    let reads = store.started.load(Ordering::SeqCst);
    eprintln!("{reads} store operations while 16 callers waited one second");
    // One read per caller every 50 ms at most: about 16 × 20 in the second.
    assert!(reads <= 16 * 25, "{reads} store operations in one second");
    assert_eq!(
        h.stats().grant("refresh_token"),
        0,
        "nobody spent the claimed token"
    );
}
