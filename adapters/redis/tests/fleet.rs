//! Fleets: separate OS processes (this test binary re-spawned, running only
//! `fleet_child`), 16 concurrent callers each (the reqwest adapter on a
//! `RedisStore`), all on one session in a Redis the test starts, against
//! the real authorization server (rotation on every use), refresh grants
//! counted by the server. Then the faults: a claim holder killed before its
//! request leaves, or after the server rotated but before the save; Redis
//! stopped and restarted (its data lost), or paused, mid-run; a foreign
//! value under the session's key.

mod support;

use std::collections::BTreeSet;
use std::error::Error as _;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{Value, json};
use support::{
    RedisServer, Worker, authorization, child_env, expired_next, fleet_config, refresh_token,
    report, wait_for_go,
};
use tokenkeeper::store::{AsyncSessionStore, Changed, SessionKey};
use tokenkeeper::{Session, SessionStore, StoreError, TokenRequest};
use tokenkeeper_integration::adapter_support::config;
use tokenkeeper_integration::{Harness, HarnessOptions};
use tokenkeeper_redis::{BlockingRedisStore, RedisStore, RedisStoreError, RedisStoreOptions};
use tokenkeeper_reqwest::{Error, TokenKeeper};

const KEY: &str = "fleet-user";
const CALLERS: usize = 16;

// ---------------------------------------------------------------- child --

/// What a child does to its store (the faults).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Dies (hangs until killed) right after its claim is saved: the
    /// request never leaves.
    HangAfterClaim,
    /// Hangs when it would save the rotated tokens: the server rotated,
    /// the store never hears of it.
    HangBeforeRotatedSave,
}

/// The child's store: the Redis store, with the fault of its mode.
struct ChildStore {
    inner: RedisStore,
    mode: Mode,
    loaded_refresh_token: Mutex<Option<String>>,
}

impl AsyncSessionStore for ChildStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        let session = self.inner.load(key).await?;
        if let Some(session) = &session {
            let mut loaded = self.loaded_refresh_token.lock().unwrap();
            loaded.get_or_insert_with(|| refresh_token(session));
        }
        Ok(session)
    }

    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let claim = session.refresh_claim().is_some();
        let rotated = self.loaded_refresh_token.lock().unwrap().as_deref()
            != Some(refresh_token(session).as_str());
        let save = self.inner.save(key, session, expected);
        async move {
            if self.mode == Mode::HangBeforeRotatedSave && rotated {
                report("rotated");
                std::future::pending::<()>().await;
            }
            save.await?;
            if self.mode == Mode::HangAfterClaim && claim {
                report("claimed");
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    fn generation(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        self.inner.generation(key)
    }

    fn clear(&self, key: &SessionKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.clear(key)
    }

    fn floor(&self, key: &SessionKey) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.inner.floor(key)
    }

    fn changed(&self, key: &SessionKey, within: Duration) -> impl Future<Output = Changed> + Send {
        self.inner.changed(key, within)
    }
}

/// One caller's answer: its token, or the error's code.
async fn call(keeper: &TokenKeeper) -> Value {
    match keeper.get_access_token(&TokenRequest::new()).await {
        Ok(token) => json!({ "token": token.token.secret() }),
        Err(Error::Core(error)) => {
            json!({ "error": error.code(), "login_required": error.requires_login() })
        }
        Err(error) => json!({ "error": error.to_string() }),
    }
}

/// The child process: runs only when spawned by a test below.
#[test]
fn fleet_child() {
    let Some(url) = child_env("TK_REDIS_URL") else {
        return;
    };
    let env = |name: &str| std::env::var(name).unwrap();
    let mode = match env("TK_MODE").as_str() {
        "hang_after_claim" => Mode::HangAfterClaim,
        "hang_before_rotated_save" => Mode::HangBeforeRotatedSave,
        _ => Mode::Normal,
    };
    let lease = Duration::from_secs(env("TK_LEASE_SECS").parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(RedisStore::connect(&url)).unwrap();
    let keeper = TokenKeeper::builder(fleet_config(
        &env("TK_TOKEN_ENDPOINT"),
        &env("TK_ISSUER"),
        lease,
    ))
    .async_store(ChildStore {
        inner: store.clone(),
        mode,
        loaded_refresh_token: Mutex::new(None),
    })
    .session_key(KEY)
    .build()
    .unwrap();
    report("ready");
    wait_for_go();
    let results = runtime.block_on(async {
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let keeper = keeper.clone();
                tokio::spawn(async move { call(&keeper).await })
            })
            .collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await.unwrap());
        }
        // And once more each, after the first answers.
        let again: Vec<_> = (0..CALLERS)
            .map(|_| {
                let keeper = keeper.clone();
                tokio::spawn(async move { call(&keeper).await })
            })
            .collect();
        let mut second = Vec::new();
        for call in again {
            second.push(call.await.unwrap());
        }
        (results, second)
    });
    let counters = store.counters();
    report(
        &json!({
            "results": results.0,
            "again": results.1,
            "claims_written": counters.claims_written,
            "claims_read": counters.claims_read,
            "conflicts": counters.conflicts,
            "messages": counters.messages,
        })
        .to_string(),
    );
}

// --------------------------------------------------------------- parent --

struct Fleet {
    h: Harness,
    redis: RedisServer,
    lease: Duration,
}

impl Fleet {
    fn start(lease: Duration) -> Fleet {
        let fleet = Fleet {
            h: Harness::start(HarnessOptions::default()),
            redis: RedisServer::start(),
            lease,
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let session = runtime.block_on(async {
            let keeper = TokenKeeper::builder(config(&fleet.h)).build().unwrap();
            let (url, transaction) = authorization(&fleet.h);
            keeper
                .login(&transaction, &fleet.h.login(&url))
                .await
                .unwrap();
            keeper.session().unwrap()
        });
        let mut store = fleet.store();
        store.save(KEY, &expired_next(&session), None).unwrap();
        fleet.h.reset_stats();
        fleet
    }

    fn store(&self) -> BlockingRedisStore {
        BlockingRedisStore::connect(&self.redis.url()).unwrap()
    }

    fn stored(&self) -> Session {
        self.store().load(KEY).unwrap().unwrap()
    }

    /// Expires the stored access token (a save with compare-and-swap).
    fn expire(&self) {
        let mut store = self.store();
        let stored = store.load(KEY).unwrap().unwrap();
        store
            .save(KEY, &expired_next(&stored), Some(stored.generation()))
            .unwrap();
    }

    fn refresh_grants(&self) -> u64 {
        self.h.stats().grant("refresh_token")
    }

    fn spawn(&self, mode: &str) -> Worker {
        let worker = Worker::spawn(
            "fleet_child",
            &[
                ("TK_REDIS_URL", self.redis.url()),
                ("TK_TOKEN_ENDPOINT", self.h.token_endpoint().to_owned()),
                ("TK_ISSUER", self.h.issuer().to_owned()),
                ("TK_MODE", mode.to_owned()),
                ("TK_LEASE_SECS", self.lease.as_secs().to_string()),
            ],
        );
        assert_eq!(worker.line(Duration::from_secs(60)), "ready");
        worker
    }

    /// `n` normal processes, started together; their reports.
    fn run(&self, n: usize) -> Vec<Value> {
        let mut workers: Vec<Worker> = (0..n).map(|_| self.spawn("normal")).collect();
        for worker in &mut workers {
            worker.go();
        }
        workers
            .iter_mut()
            .map(|worker| {
                let report = serde_json::from_str(&worker.line(Duration::from_secs(60))).unwrap();
                assert!(worker.wait(), "the child exits cleanly");
                report
            })
            .collect()
    }

    fn claim_key(&self) -> Option<String> {
        self.redis
            .connection()
            .get(format!("tokenkeeper:claim:{KEY}"))
            .unwrap()
    }
}

fn sum(reports: &[Value], field: &str) -> u64 {
    reports.iter().map(|r| r[field].as_u64().unwrap()).sum()
}

/// Every caller's token (panics on an error).
fn tokens(reports: &[Value]) -> BTreeSet<String> {
    reports
        .iter()
        .flat_map(|r| {
            r["results"]
                .as_array()
                .unwrap()
                .iter()
                .chain(r["again"].as_array().unwrap())
        })
        .map(|result| {
            result["token"]
                .as_str()
                .unwrap_or_else(|| panic!("a caller failed: {result}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn four_processes_of_sixteen_callers_make_one_refresh_then_twenty_rounds() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let fleet = Fleet::start(Duration::from_secs(30));
    let mut refresh_tokens = BTreeSet::from([refresh_token(&fleet.stored())]);
    let mut access_tokens = BTreeSet::new();
    let mut claims_read = 0;
    let started = Instant::now();
    for round in 0..=20_u64 {
        if round > 0 {
            fleet.expire();
        }
        let reports = fleet.run(4);
        for r in &reports {
            eprintln!(
                "round {round}: written {} read {} conflicts {} messages {} first {}",
                r["claims_written"],
                r["claims_read"],
                r["conflicts"],
                r["messages"],
                r["results"][0]
                    .to_string()
                    .chars()
                    .take(60)
                    .collect::<String>()
            );
        }
        if reports.iter().any(|r| r["results"][0]["token"].is_null()) {
            let stats = fleet.h.stats();
            for t in &stats.recent_token_requests {
                eprintln!("{}", t.to_string().chars().take(300).collect::<String>());
            }
        }
        let tokens = tokens(&reports);
        assert_eq!(tokens.len(), 1, "round {round}: all 64 callers, one token");
        assert!(
            access_tokens.insert(tokens.into_iter().next().unwrap()),
            "round {round}: a new token"
        );
        assert_eq!(
            fleet.refresh_grants(),
            round + 1,
            "round {round}: one refresh grant reached the server"
        );
        assert_eq!(
            sum(&reports, "claims_written"),
            1,
            "round {round}: one claim"
        );
        claims_read += sum(&reports, "claims_read");
        let stored = fleet.stored();
        assert!(
            refresh_tokens.insert(refresh_token(&stored)),
            "round {round}: the refresh token rotated (never one seen before)"
        );
        assert!(stored.refresh_claim().is_none());
        assert_eq!(fleet.claim_key(), None, "round {round}: the claim released");
    }
    eprintln!(
        "21 rounds of 4 x 16 callers in {:?}; claims read back {claims_read}",
        started.elapsed()
    );
    assert!(claims_read > 0, "the claim was read back from Redis");
    let stats = fleet.h.stats();
    assert_eq!(
        stats.token_responses_by_status.keys().collect::<Vec<_>>(),
        ["200"],
        "no refresh refused: {stats:?}"
    );
    assert!(
        !fleet.h.server_log().contains("grant revoked"),
        "the grant is not revoked"
    );
}

#[test]
fn a_claim_holder_killed_before_its_request_leaves_delays_the_fleet_one_lease() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let fleet = Fleet::start(Duration::from_secs(3));
    let mut holder = fleet.spawn("hang_after_claim");
    holder.go();
    assert_eq!(holder.line(Duration::from_secs(30)), "claimed");
    let claim: Value = serde_json::from_str(&fleet.claim_key().expect("the claim key")).unwrap();
    assert!(claim["owner"].is_string());
    let pttl: i64 = fleet
        .redis
        .connection()
        .pttl(format!("tokenkeeper:claim:{KEY}"))
        .unwrap();
    holder.kill();
    let killed = Instant::now();
    assert_eq!(fleet.refresh_grants(), 0, "the request never left");

    let reports = fleet.run(2);
    assert_eq!(tokens(&reports).len(), 1);
    assert_eq!(fleet.refresh_grants(), 1, "one refresh, after the lease");
    assert!(
        killed.elapsed()
            >= Duration::from_millis(u64::try_from(pttl).unwrap()) - Duration::from_millis(300),
        "waited for the lease ({pttl} ms): {:?}",
        killed.elapsed()
    );
    assert!(
        sum(&reports, "claims_read") > 0,
        "the dead holder's claim was read back"
    );
}

#[test]
fn a_holder_killed_after_the_rotation_leaves_login_required_once_without_a_storm() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let fleet = Fleet::start(Duration::from_secs(3));
    let mut holder = fleet.spawn("hang_before_rotated_save");
    holder.go();
    assert_eq!(holder.line(Duration::from_secs(30)), "rotated");
    assert_eq!(fleet.refresh_grants(), 1, "the server rotated");
    holder.kill();

    let reports = fleet.run(4);
    let mut codes = BTreeSet::new();
    for report in &reports {
        for result in report["results"]
            .as_array()
            .unwrap()
            .iter()
            .chain(report["again"].as_array().unwrap())
        {
            assert_eq!(result["login_required"], true, "{result}");
            codes.insert(result["error"].as_str().unwrap().to_owned());
        }
    }
    eprintln!("codes: {codes:?}");
    assert_eq!(
        fleet.refresh_grants(),
        2,
        "one refresh with the spent token, refused; no storm"
    );
    let stats = fleet.h.stats();
    assert_eq!(
        stats.token_responses_by_status.get("400"),
        Some(&1),
        "{stats:?}"
    );
    assert!(fleet.stored().is_reauthentication_required());
}

#[test]
fn redis_paused_mid_run_gives_typed_errors_and_service_resumes_by_itself() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let fleet = Fleet::start(Duration::from_secs(30));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect_with(
            &fleet.redis.url(),
            RedisStoreOptions::default().response_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap();
        let keeper = TokenKeeper::builder(fleet_config(
            fleet.h.token_endpoint(),
            fleet.h.issuer(),
            Duration::from_secs(30),
        ))
        .async_store(store)
        .session_key(KEY)
        .build()
        .unwrap();
        let first = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
        assert_eq!(fleet.refresh_grants(), 1);

        fleet.redis.signal("-STOP");
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let keeper = keeper.clone();
                tokio::spawn(async move {
                    keeper
                        .get_access_token(&TokenRequest::new().force_refresh())
                        .await
                })
            })
            .collect();
        for call in calls {
            let error = call.await.expect("no panic").unwrap_err();
            let Error::Store(store_error) = &error else {
                panic!("a store error: {error:?}");
            };
            let source = store_error.source().unwrap();
            assert!(
                matches!(source.downcast_ref(), Some(RedisStoreError::Redis(_))),
                "{source:?}"
            );
        }
        assert_eq!(
            fleet.refresh_grants(),
            1,
            "no refresh left without its claim saved"
        );

        fleet.redis.signal("-CONT");
        let resumed = Instant::now();
        let token = loop {
            match keeper
                .get_access_token(&TokenRequest::new().force_refresh())
                .await
            {
                Ok(token) => break token,
                Err(Error::Store(_)) if resumed.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("{error:?}"),
            }
        };
        eprintln!("resumed after {:?}", resumed.elapsed());
        assert_ne!(token.token.secret(), first.token.secret());
        assert_eq!(fleet.refresh_grants(), 2);
        assert_eq!(
            refresh_token(&fleet.stored()),
            refresh_token(&keeper.session().unwrap())
        );
    });
}

/// Whether `error` is a store error whose source is the Redis client's.
fn is_redis_error(error: &Error) -> bool {
    let Error::Store(store_error) = error else {
        return false;
    };
    matches!(
        store_error.source().and_then(|s| s.downcast_ref()),
        Some(RedisStoreError::Redis(_))
    )
}

/// Redis stopped (killed) and started again on the same port, with no
/// persistence: its data is gone. Meanwhile every call is a typed store
/// error; after, without restarting anything here, the session the store
/// lost reads as gone (login required, typed), a session installed again
/// is saved and refreshed, and wake-ups are heard again.
#[test]
fn redis_stopped_and_restarted_gives_typed_errors_and_service_resumes_by_itself() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let mut fleet = Fleet::start(Duration::from_secs(30));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = || RedisStoreOptions::default().response_timeout(Duration::from_millis(300));
    let (store, watcher) = runtime.block_on(async {
        let store = RedisStore::connect_with(&fleet.redis.url(), options())
            .await
            .unwrap();
        let watcher = RedisStore::connect_with(&fleet.redis.url(), options())
            .await
            .unwrap();
        (store, watcher)
    });
    let keeper = TokenKeeper::builder(fleet_config(
        fleet.h.token_endpoint(),
        fleet.h.issuer(),
        Duration::from_secs(30),
    ))
    .async_store(store)
    .session_key(KEY)
    .build()
    .unwrap();
    let first = runtime
        .block_on(keeper.get_access_token(&TokenRequest::new()))
        .unwrap();
    assert_eq!(fleet.refresh_grants(), 1);
    let session = keeper.session().unwrap();

    fleet.redis.stop();
    runtime.block_on(async {
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let keeper = keeper.clone();
                tokio::spawn(async move {
                    keeper
                        .get_access_token(&TokenRequest::new().force_refresh())
                        .await
                })
            })
            .collect();
        for call in calls {
            let error = call.await.expect("no panic").unwrap_err();
            assert!(is_redis_error(&error), "a typed store error: {error:?}");
        }
    });
    assert_eq!(
        fleet.refresh_grants(),
        1,
        "no refresh left without its claim saved"
    );

    fleet.redis.restart();
    let resumed = Instant::now();
    runtime.block_on(async {
        // The store lost the session: once the connection is back, the
        // session here is found gone (as if logged out elsewhere).
        let gone = loop {
            match keeper
                .get_access_token(&TokenRequest::new().force_refresh())
                .await
            {
                Err(error) if is_redis_error(&error) => {
                    assert!(resumed.elapsed() < Duration::from_secs(10), "{error:?}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other,
            }
        };
        eprintln!("reconnected after {:?}: {gone:?}", resumed.elapsed());
        match &gone {
            Err(Error::Core(error)) => assert!(error.requires_login(), "{error:?}"),
            other => panic!("the lost session reads as gone: {other:?}"),
        }
        assert_eq!(fleet.refresh_grants(), 1, "nothing spent on a lost session");

        // The application installs the session again: saved, refreshed,
        // and a waiting instance hears the save.
        keeper.set_session(session.clone()).await.unwrap();
        assert_eq!(
            refresh_token(&fleet.stored()),
            refresh_token(&session),
            "installed in the restarted Redis"
        );
        loop {
            match watcher.load(KEY).await {
                Ok(found) => break assert!(found.is_some()),
                Err(_) if resumed.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("the watcher reconnects: {error:?}"),
            }
        }
        let heard = tokio::spawn({
            let watcher = watcher.clone();
            async move { watcher.changed(KEY, Duration::from_secs(5)).await }
        });
        let token = keeper
            .get_access_token(&TokenRequest::new().force_refresh())
            .await
            .unwrap();
        assert_ne!(token.token.secret(), first.token.secret());
        assert_eq!(heard.await.unwrap(), Changed::Woken, "wake-ups resumed");
    });
    assert_eq!(fleet.refresh_grants(), 2);
    assert_eq!(
        refresh_token(&fleet.stored()),
        refresh_token(&keeper.session().unwrap())
    );
    assert_ne!(refresh_token(&fleet.stored()), refresh_token(&session));
}

#[test]
fn a_foreign_value_under_the_session_key_is_a_typed_error_and_stays() {
    if child_env("TK_REDIS_URL").is_some() {
        return;
    }
    let redis = RedisServer::start();
    let h = Harness::start(HarnessOptions::default());
    let mut raw = redis.connection();
    let _: () = raw
        .set(format!("tokenkeeper:session:{KEY}"), "{\"not\":\"ours\"}")
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        let keeper = TokenKeeper::builder(fleet_config(
            h.token_endpoint(),
            h.issuer(),
            Duration::from_secs(30),
        ))
        .async_store(store)
        .session_key(KEY)
        .build()
        .unwrap();
        for _ in 0..2 {
            let error = keeper
                .get_access_token(&TokenRequest::new())
                .await
                .unwrap_err();
            let Error::Store(store_error) = &error else {
                panic!("a store error: {error:?}");
            };
            assert!(matches!(
                store_error.source().unwrap().downcast_ref(),
                Some(RedisStoreError::Foreign { .. })
            ));
        }
    });
    let value: String = raw.get(format!("tokenkeeper:session:{KEY}")).unwrap();
    assert_eq!(value, "{\"not\":\"ours\"}");
    assert_eq!(h.stats().token_requests_total, 0);
}
