//! Back-channel logout marks in Redis, shared by two instances: a logout
//! one instance records ends the session for the other, a logout token's
//! `jti` is accepted once across the fleet, and marks expire.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{RedisServer, now, session};
use tokenkeeper::UnixTime;
use tokenkeeper::store::LogoutMarks;
use tokenkeeper::store::logout_marks::{is_ended, sid_key, sub_key};
use tokenkeeper_redis::RedisLogoutMarks;

fn alice(sid: &str, created: u64) -> tokenkeeper::Session {
    session(&json!({
        "user": {"sub": "alice"},
        "internal": {"sid": sid, "createdAt": created},
        "tokenSet": {"accessToken": "at", "expiresAt": now() + 60},
    }))
}

#[test]
fn a_mark_written_by_one_instance_ends_the_session_for_another() {
    let redis = RedisServer::start();
    let mut a = RedisLogoutMarks::connect(&redis.url(), "app").unwrap();
    let mut b = RedisLogoutMarks::connect(&redis.url(), "app").unwrap();
    let t = UnixTime::from_secs(now());
    let until = t.saturating_add(Duration::from_secs(3600));
    let session = alice("s1", now() - 10);
    assert!(!is_ended(&mut b, &session, t).unwrap());

    a.mark(&sid_key("s1"), t, until).unwrap();
    assert!(is_ended(&mut b, &session, t).unwrap(), "seen by the other");
    assert!(!is_ended(&mut b, &alice("s2", now() - 10), t).unwrap());

    // A sub mark ends every older session of the user, not a newer one.
    a.mark(&sub_key("alice"), t, until).unwrap();
    assert!(is_ended(&mut b, &alice("s3", now() - 10), t).unwrap());
    assert!(!is_ended(&mut b, &alice("s4", now() + 10), t).unwrap());
    // An earlier mark does not move a later one back.
    a.mark(&sub_key("alice"), UnixTime::from_secs(1), until)
        .unwrap();
    assert_eq!(b.marked_at(&sub_key("alice"), t).unwrap(), Some(t));
    // A different prefix is another app.
    let mut other_app = RedisLogoutMarks::connect(&redis.url(), "other").unwrap();
    assert!(!is_ended(&mut other_app, &session, t).unwrap());

    // The check every request makes reads the sid and sub marks together:
    // one MGET, no GET.
    let mut raw = redis.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut raw)
        .unwrap();
    assert!(is_ended(&mut b, &alice("s5", now() - 10), t).unwrap());
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut raw)
        .unwrap();
    assert!(stats.contains("cmdstat_mget:calls=1,"), "{stats}");
    assert!(!stats.contains("cmdstat_get:"), "{stats}");
}

#[test]
fn a_jti_is_accepted_once_across_instances_until_it_expires() {
    let redis = RedisServer::start();
    let mut a = RedisLogoutMarks::connect(&redis.url(), "app").unwrap();
    let mut b = RedisLogoutMarks::connect(&redis.url(), "app").unwrap();
    let t = UnixTime::from_secs(now());
    let until = t.saturating_add(Duration::from_secs(1));
    assert!(a.record_once("jti-1", until, t).unwrap());
    assert!(!b.record_once("jti-1", until, t).unwrap(), "a replay");
    assert!(b.record_once("jti-2", until, t).unwrap());
    std::thread::sleep(Duration::from_millis(2100));
    let later = UnixTime::from_secs(now());
    assert!(
        a.record_once("jti-1", later.saturating_add(Duration::from_secs(5)), later)
            .unwrap()
    );
}

#[test]
fn marks_expire_with_their_retention() {
    let redis = RedisServer::start();
    let mut a = RedisLogoutMarks::connect(&redis.url(), "app").unwrap();
    let t = UnixTime::from_secs(now());
    a.mark(&sid_key("s9"), t, t.saturating_add(Duration::from_secs(1)))
        .unwrap();
    assert!(a.marked_at(&sid_key("s9"), t).unwrap().is_some());
    std::thread::sleep(Duration::from_millis(2100));
    assert!(a.marked_at(&sid_key("s9"), t).unwrap().is_none());
}
