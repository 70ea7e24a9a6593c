//! The store against a real `redis-server` started by the test: compare-
//! and-swap, generations that only grow, the floor across clear, TTL from
//! the session's ceiling, the claim key written as JSON with the lease and
//! read back, wake-ups by pub/sub, AUTH, a restarted Redis, and values this
//! store did not write (typed errors, left as they were).

mod support;

use std::error::Error as _;
use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::{Value, json};
use support::{RedisServer, now, session};
use tokenkeeper::store::{AsyncSessionStore, Changed};
use tokenkeeper::{SessionStore, StoreError};
use tokenkeeper_redis::{BlockingRedisStore, RedisStore, RedisStoreError, RedisStoreOptions};

fn plain(generation: u64) -> tokenkeeper::Session {
    session(&json!({
        "tokenSet": {"accessToken": "a", "refreshToken": "r", "expiresAt": now() + 60},
        "tokenkeeper": {"generation": generation}
    }))
}

fn claimed(generation: u64, owner: &str, lease: u64) -> tokenkeeper::Session {
    session(&json!({
        "tokenSet": {"accessToken": "a", "refreshToken": "r", "expiresAt": now() - 1},
        "tokenkeeper": {"generation": generation, "refreshClaim": {"owner": owner, "until": now() + lease}}
    }))
}

fn backend_source(error: &StoreError) -> &RedisStoreError {
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    error
        .source()
        .and_then(|s| s.downcast_ref::<RedisStoreError>())
        .expect("the store's own error is the source")
}

#[tokio::test]
async fn compare_and_swap_generations_only_grow_and_the_floor_outlives_clear() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    assert_eq!(store.load("s").await.unwrap().map(|s| s.generation()), None);
    store.save("s", &plain(0), None).await.unwrap();
    // A writer that started from nothing loses; one from generation 0 wins once.
    assert_eq!(
        store.save("s", &plain(1), None).await,
        Err(StoreError::Conflict { found: Some(0) })
    );
    store.save("s", &plain(1), Some(0)).await.unwrap();
    assert_eq!(
        store.save("s", &plain(2), Some(0)).await,
        Err(StoreError::Conflict { found: Some(1) })
    );
    // The right expected generation, but a lower one written: refused.
    assert_eq!(
        store.save("s", &plain(0), Some(1)).await,
        Err(StoreError::Conflict { found: Some(1) })
    );
    store.save("s", &plain(7), Some(1)).await.unwrap();
    assert_eq!(store.generation("s").await, Ok(Some(7)));
    assert_eq!(store.load("s").await.unwrap().unwrap().generation(), 7);
    store.clear("s").await.unwrap();
    assert_eq!(store.generation("s").await, Ok(None));
    assert!(store.load("s").await.unwrap().is_none());
    assert_eq!(store.floor("s").await, Ok(7), "the floor outlives clear");
    // A new session below the floor is refused; at or above it, stored.
    assert_eq!(
        store.save("s", &plain(3), None).await,
        Err(StoreError::Conflict { found: None })
    );
    store.save("s", &plain(8), None).await.unwrap();
    // Keys keep sessions apart; the prefix keeps applications apart.
    assert_eq!(store.generation("other").await, Ok(None));
    let other_app =
        RedisStore::connect_with(&redis.url(), RedisStoreOptions::default().prefix("app2"))
            .await
            .unwrap();
    assert_eq!(other_app.generation("s").await, Ok(None));
    let mut raw = redis.connection();
    let keys: Vec<String> = raw.keys("*").unwrap();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["tokenkeeper:floor:s", "tokenkeeper:session:s"]);
}

#[tokio::test]
async fn the_ttl_is_the_session_ceiling() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut with_ceiling = plain(0);
    with_ceiling.set_session_expires_at(Some(tokenkeeper::UnixTime::from_secs(now() + 100)));
    store.save("c", &with_ceiling, None).await.unwrap();
    store.save("n", &plain(0), None).await.unwrap();
    let mut raw = redis.connection();
    let ttl: i64 = raw.pttl("tokenkeeper:session:c").unwrap();
    assert!((98_000..=100_000).contains(&ttl), "{ttl}");
    let none: i64 = raw.pttl("tokenkeeper:session:n").unwrap();
    assert_eq!(none, -1, "no ceiling, no TTL");
    // A save without a ceiling takes the TTL away again.
    store.save("c", &plain(1), Some(0)).await.unwrap();
    let ttl: i64 = raw.pttl("tokenkeeper:session:c").unwrap();
    assert_eq!(ttl, -1);
}

#[tokio::test]
async fn the_claim_is_a_key_with_the_lease_written_as_json_and_read_back() {
    let redis = RedisServer::start();
    let a = RedisStore::connect(&redis.url()).await.unwrap();
    let b = RedisStore::connect(&redis.url()).await.unwrap();
    let mut raw = redis.connection();
    a.save("s", &plain(0), None).await.unwrap();
    a.save("s", &claimed(1, "owner-a", 30), Some(0))
        .await
        .unwrap();

    let claim: String = raw.get("tokenkeeper:claim:s").unwrap();
    let claim: Value = serde_json::from_str(&claim).unwrap();
    assert_eq!(claim["owner"], "owner-a");
    assert_eq!(claim["generation"], 1);
    let pttl: i64 = raw.pttl("tokenkeeper:claim:s").unwrap();
    assert!(
        (28_000..=30_000).contains(&pttl),
        "the lease is the key's TTL: {pttl}"
    );
    assert_eq!(a.counters().claims_written, 1);

    // Read back: the claim's end is the key's remaining lease on this
    // host's clock, whatever the session JSON says.
    let _: () = raw.pexpire("tokenkeeper:claim:s", 5_000).unwrap();
    let loaded = b.load("s").await.unwrap().unwrap();
    let read = loaded.refresh_claim().unwrap();
    assert_eq!(read.owner, "owner-a");
    assert!(
        (now() + 4..=now() + 6).contains(&read.until.as_secs()),
        "{read:?}"
    );
    assert_eq!(b.counters().claims_read, 1);

    // Another instance cannot claim over a live claim, even with the right
    // generation (a clock that thinks the claim is over).
    assert_eq!(
        b.save("s", &claimed(2, "owner-b", 30), Some(1)).await,
        Err(StoreError::Conflict { found: Some(1) })
    );
    let still: String = raw.get("tokenkeeper:claim:s").unwrap();
    assert!(still.contains("owner-a"));

    // The lease runs out in Redis: the claim is gone from what is loaded,
    // and another instance claims.
    let _: () = raw.pexpire("tokenkeeper:claim:s", 1).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let loaded = b.load("s").await.unwrap().unwrap();
    assert!(
        loaded.refresh_claim().is_none(),
        "{:?}",
        loaded.refresh_claim()
    );
    b.save("s", &claimed(2, "owner-b", 30), Some(1))
        .await
        .unwrap();
    let claim: String = raw.get("tokenkeeper:claim:s").unwrap();
    assert!(claim.contains("owner-b"));

    // The owner's release (a save without a claim) deletes it.
    b.save("s", &plain(3), Some(2)).await.unwrap();
    let gone: Option<String> = raw.get("tokenkeeper:claim:s").unwrap();
    assert_eq!(gone, None);
    assert!(
        b.load("s")
            .await
            .unwrap()
            .unwrap()
            .refresh_claim()
            .is_none()
    );
}

#[tokio::test]
async fn a_save_wakes_a_waiting_instance_by_pub_sub() {
    let redis = RedisServer::start();
    let waiter = RedisStore::connect(&redis.url()).await.unwrap();
    let saver = RedisStore::connect(&redis.url()).await.unwrap();
    saver.save("s", &plain(0), None).await.unwrap();
    // (The save's own message is heard first: a load before it arrives
    // would count it as a change, which costs one extra load.)
    tokio::time::sleep(Duration::from_millis(50)).await;
    waiter.load("s").await.unwrap();
    // Nothing changes: the wait ends at its bound.
    let started = Instant::now();
    assert_eq!(
        waiter.changed("s", Duration::from_millis(100)).await,
        Changed::TimedOut
    );
    assert!(started.elapsed() >= Duration::from_millis(100));

    waiter.load("s").await.unwrap();
    let wait = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (
                waiter.changed("s", Duration::from_secs(5)).await,
                started.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    saver.save("s", &plain(1), Some(0)).await.unwrap();
    let (changed, waited) = wait.await.unwrap();
    assert_eq!(changed, Changed::Woken);
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    assert!(waiter.counters().messages >= 1);

    // A save made between the load and the wait is not lost.
    waiter.load("s").await.unwrap();
    saver.save("s", &plain(2), Some(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        waiter.changed("s", Duration::from_secs(5)).await,
        Changed::Woken
    );
}

#[tokio::test]
async fn auth_urls_and_a_typed_error_for_a_wrong_password() {
    let redis = RedisServer::with_password("s3cret");
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    store.save("s", &plain(0), None).await.unwrap();
    assert_eq!(store.generation("s").await, Ok(Some(0)));
    let wrong = format!("redis://:wrong@127.0.0.1:{}", redis.port());
    let error = RedisStore::connect(&wrong).await.unwrap_err();
    assert!(matches!(error, RedisStoreError::Redis(_)), "{error:?}");
    let none = format!("redis://127.0.0.1:{}", redis.port());
    assert!(RedisStore::connect(&none).await.is_err());
    let mut blocking = BlockingRedisStore::connect(&redis.url()).unwrap();
    assert_eq!(blocking.generation("s"), Ok(Some(0)));
    assert!(BlockingRedisStore::connect(&wrong).is_err());
}

/// `rediss://`: a redis-server that speaks only TLS, its certificate from
/// a throwaway CA given as the store's roots. Compare-and-swap, the claim
/// and wake-ups work over it; without the CA, or in plain text, the
/// connection is refused with a typed error.
#[tokio::test]
async fn rediss_urls_with_a_private_ca() {
    let redis = RedisServer::with_tls();
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let options = || RedisStoreOptions::default().root_certificates_pem(redis.ca_pem());
    let store = RedisStore::connect_with(&url, options()).await.unwrap();
    let waiter = RedisStore::connect_with(&url, options()).await.unwrap();
    store.save("s", &plain(0), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        waiter.load("s").await.unwrap().map(|s| s.generation()),
        Some(0)
    );
    let wait = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.changed("s", Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        store.save("s", &plain(1), Some(5)).await,
        Err(StoreError::Conflict { found: Some(0) })
    ));
    store.save("s", &plain(1), Some(0)).await.unwrap();
    assert_eq!(wait.await.unwrap(), Changed::Woken, "pub/sub over TLS");
    let mut blocking = BlockingRedisStore::connect_with(&url, options()).unwrap();
    assert_eq!(blocking.generation("s"), Ok(Some(1)));

    // The system's trust store does not know the throwaway CA.
    let untrusted = RedisStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(untrusted, RedisStoreError::Redis(_)),
        "{untrusted:?}"
    );
    assert!(BlockingRedisStore::connect(&url).is_err());
    // Plain text to the TLS port.
    let plain_text = url.replacen("rediss://", "redis://", 1);
    let refused = RedisStore::connect_with(
        &plain_text,
        RedisStoreOptions::default().connection_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, RedisStoreError::Redis(_)), "{refused:?}");
}

/// How many times the server ran `command` since the last `CONFIG
/// RESETSTAT`.
fn calls(raw: &mut redis::Connection, command: &str) -> u64 {
    let stats: String = redis::cmd("INFO").arg("commandstats").query(raw).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

fn reset_stats(raw: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(raw).unwrap();
}

#[tokio::test]
async fn a_load_without_a_claim_is_one_command_and_a_recorded_claim_is_read_in_a_transaction() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut blocking = BlockingRedisStore::connect(&redis.url()).unwrap();
    let mut raw = redis.connection();
    store.save("s", &plain(0), None).await.unwrap();

    // No claim recorded: one `HMGET`, nothing else (the claim key is not
    // read at all).
    reset_stats(&mut raw);
    assert!(
        store
            .load("s")
            .await
            .unwrap()
            .unwrap()
            .refresh_claim()
            .is_none()
    );
    assert!(
        blocking
            .load("s")
            .unwrap()
            .unwrap()
            .refresh_claim()
            .is_none()
    );
    assert_eq!(calls(&mut raw, "hmget"), 2);
    for other in ["get", "pttl", "multi", "exec", "type"] {
        assert_eq!(calls(&mut raw, other), 0, "{other}");
    }

    // A claim recorded: the claim key and its lease are read with the
    // session in one transaction (a second round trip, only while a
    // refresh is under way).
    store
        .save("s", &claimed(1, "owner-a", 30), Some(0))
        .await
        .unwrap();
    reset_stats(&mut raw);
    let loaded = store.load("s").await.unwrap().unwrap();
    assert_eq!(loaded.refresh_claim().unwrap().owner, "owner-a");
    let loaded = blocking.load("s").unwrap().unwrap();
    assert_eq!(loaded.refresh_claim().unwrap().owner, "owner-a");
    assert_eq!(calls(&mut raw, "multi"), 2);
    assert_eq!(calls(&mut raw, "pttl"), 2);

    // Nothing stored: the `HMGET` finds neither field, and the
    // transaction tells a missing key from a foreign one.
    reset_stats(&mut raw);
    assert!(store.load("none").await.unwrap().is_none());
    assert_eq!(calls(&mut raw, "multi"), 1);
    assert!(blocking.load("none").unwrap().is_none());
    assert_eq!(calls(&mut raw, "multi"), 2);

    // A claim key the session does not record (another owner's key beside
    // the session's own claim) is not the session's claim.
    let other = json!({"owner": "owner-b", "until": now() + 30, "generation": 2}).to_string();
    let _: () = raw.pset_ex("tokenkeeper:claim:s", &other, 30_000).unwrap();
    let loaded = store.load("s").await.unwrap().unwrap();
    assert_eq!(loaded.generation(), 1);
    assert!(
        loaded.refresh_claim().is_none(),
        "{:?}",
        loaded.refresh_claim()
    );
}

/// A session that expired in Redis (its ceiling) while its claim key was
/// live, then a new login under the same key: the old claim key is
/// nobody's claim. Loads see no claim, and the new session's refresh
/// claims at once — not a conflict on every try until the old lease ends
/// (the loads and the save script agree on what a live claim is).
#[tokio::test]
async fn a_claim_key_left_by_an_expired_session_does_not_block_the_next_one() {
    let redis = RedisServer::start();
    let a = RedisStore::connect(&redis.url()).await.unwrap();
    let b = RedisStore::connect(&redis.url()).await.unwrap();
    let mut raw = redis.connection();
    a.save("s", &plain(0), None).await.unwrap();
    a.save("s", &claimed(1, "owner-a", 30), Some(0))
        .await
        .unwrap();
    // The session hash expires; the claim key lives on.
    let _: () = raw.del("tokenkeeper:session:s").unwrap();
    let live: i64 = raw.pttl("tokenkeeper:claim:s").unwrap();
    assert!(live > 0);

    // A new login saves the session again (above the floor).
    b.save("s", &plain(5), None).await.unwrap();
    let loaded = b.load("s").await.unwrap().unwrap();
    assert!(
        loaded.refresh_claim().is_none(),
        "{:?}",
        loaded.refresh_claim()
    );
    // Its refresh claims: saved, the claim key now the new owner's.
    b.save("s", &claimed(6, "owner-b", 30), Some(5))
        .await
        .unwrap();
    let claim: String = raw.get("tokenkeeper:claim:s").unwrap();
    assert!(claim.contains("owner-b"), "{claim}");
    assert_eq!(
        b.load("s")
            .await
            .unwrap()
            .unwrap()
            .refresh_claim()
            .unwrap()
            .owner,
        "owner-b"
    );
}

#[tokio::test]
async fn foreign_and_corrupt_values_are_typed_errors_and_left_as_they_were() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut blocking = BlockingRedisStore::connect(&redis.url()).unwrap();
    let mut raw = redis.connection();
    let _: () = raw.set("tokenkeeper:session:str", "not a session").unwrap();
    let _: () = raw.rpush("tokenkeeper:session:list", "x").unwrap();
    let _: () = raw
        .hset_multiple(
            "tokenkeeper:session:bad",
            &[("session", "{not json"), ("generation", "3")],
        )
        .unwrap();
    let _: () = raw
        .hset("tokenkeeper:session:nogen", "session", "{}")
        .unwrap();
    // A hash of other fields: the quick load's `HMGET` finds neither of
    // its fields, and the transaction's `TYPE` keeps it from being taken
    // for a missing key.
    let _: () = raw.hset("tokenkeeper:session:other", "x", "y").unwrap();

    for key in ["str", "list", "nogen", "other"] {
        for error in [
            store.load(key).await.unwrap_err(),
            store.save(key, &plain(0), None).await.unwrap_err(),
            store.save(key, &plain(9), Some(3)).await.unwrap_err(),
            store.generation(key).await.unwrap_err(),
            store.clear(key).await.unwrap_err(),
            blocking.load(key).unwrap_err(),
            blocking.save(key, &plain(0), None).unwrap_err(),
        ] {
            assert!(
                matches!(backend_source(&error), RedisStoreError::Foreign { .. }),
                "{key}: {error:?}"
            );
        }
    }
    let error = store.load("bad").await.unwrap_err();
    assert!(
        matches!(backend_source(&error), RedisStoreError::Corrupt { .. }),
        "{error:?}"
    );
    let error = blocking.load("bad").unwrap_err();
    assert!(matches!(
        backend_source(&error),
        RedisStoreError::Corrupt { .. }
    ));
    // The corrupt session's generation still guards its key.
    assert!(matches!(
        store.save("bad", &plain(4), Some(2)).await,
        Err(StoreError::Conflict { found: Some(3) })
    ));

    let value: String = raw.get("tokenkeeper:session:str").unwrap();
    assert_eq!(value, "not a session");
    let list: Vec<String> = raw.lrange("tokenkeeper:session:list", 0, -1).unwrap();
    assert_eq!(list, ["x"]);
    let bad: String = raw.hget("tokenkeeper:session:bad", "session").unwrap();
    assert_eq!(bad, "{not json");
    let nogen: Vec<String> = raw.hkeys("tokenkeeper:session:nogen").unwrap();
    assert_eq!(nogen, ["session"]);
}

#[tokio::test]
async fn a_restarted_redis_gives_typed_errors_then_the_same_store_works_again() {
    let mut redis = RedisServer::start();
    let store = RedisStore::connect_with(
        &redis.url(),
        RedisStoreOptions::default().response_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    let mut blocking = BlockingRedisStore::connect(&redis.url()).unwrap();
    store.save("s", &plain(0), None).await.unwrap();
    redis.stop();
    let error = store.load("s").await.unwrap_err();
    assert!(
        matches!(backend_source(&error), RedisStoreError::Redis(_)),
        "{error:?}"
    );
    let error = blocking.load("s").unwrap_err();
    assert!(matches!(backend_source(&error), RedisStoreError::Redis(_)));
    redis.restart();
    // The connection manager reconnects by itself (a few tries).
    let started = Instant::now();
    loop {
        match store.save("s", &plain(0), None).await {
            Ok(()) => break,
            Err(error) => {
                backend_source(&error);
                assert!(started.elapsed() < Duration::from_secs(10), "{error:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(blocking.generation("s"), Ok(Some(0)));
    // And the subscription came back: a save wakes a waiter again.
    let waiter = store.clone();
    waiter.load("s").await.unwrap();
    let started = Instant::now();
    let wait = tokio::spawn(async move { waiter.changed("s", Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    blocking.save("s", &plain(1), Some(0)).unwrap();
    assert_eq!(wait.await.unwrap(), Changed::Woken);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn the_blocking_store_keeps_the_same_rules() {
    let redis = RedisServer::start();
    let mut store = BlockingRedisStore::connect(&redis.url()).unwrap();
    store.save("s", &plain(0), None).unwrap();
    assert_eq!(
        store.save("s", &plain(1), None),
        Err(StoreError::Conflict { found: Some(0) })
    );
    store.save("s", &claimed(1, "me", 30), Some(0)).unwrap();
    assert_eq!(
        store
            .load("s")
            .unwrap()
            .unwrap()
            .refresh_claim()
            .unwrap()
            .owner,
        "me"
    );
    assert_eq!(store.counters().claims_written, 1);
    store.clear("s").unwrap();
    assert_eq!(store.floor("s"), Ok(1));
    let mut raw = redis.connection();
    let claim: Option<String> = raw.get("tokenkeeper:claim:s").unwrap();
    assert_eq!(claim, None, "a clear takes the claim with it");
}
