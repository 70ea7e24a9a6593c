//! Wake-up latency: one store instance waits in `changed(key, within)` for
//! the session another instance (its own connection) saves, as a waiting
//! instance does while another refreshes. Measured from the saver's reply
//! (and, for reference, from the save's start) to the waiter's wake-up, on
//! loopback; p50 and p99 over many saves (target: p99 under 5 ms). A plain
//! timing loop: criterion reports means, not percentiles.
//!
//! The `redis-server` is the bench's own, on a free loopback port.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper::store::{AsyncSessionStore as _, Changed};
use tokenkeeper_redis::RedisStore;

use support::{RedisServer, now, session};

const KEY: &str = "bench-session";

fn tokens(generation: u64) -> tokenkeeper::Session {
    session(&json!({
        "tokenSet": {"accessToken": format!("at-{generation}"), "refreshToken": "rt", "expiresAt": now() + 3600},
        "tokenkeeper": {"generation": generation}
    }))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    // `cargo test --benches` runs bench targets once: keep that short.
    let saves: usize = if std::env::args().any(|a| a == "--bench") {
        2000
    } else {
        20
    };
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (from_reply, from_start, timed_out) = runtime.block_on(async {
        let waiter = RedisStore::connect(&redis.url()).await.unwrap();
        let saver = RedisStore::connect(&redis.url()).await.unwrap();
        saver.save(KEY, &tokens(0), None).await.unwrap();
        // The first save's own message reaches the waiter before it loads.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut from_reply = Vec::with_capacity(saves);
        let mut from_start = Vec::with_capacity(saves);
        let mut timed_out = 0usize;
        for generation in 0..saves as u64 + 50 {
            waiter.load(KEY).await.unwrap();
            let wait = {
                let waiter = waiter.clone();
                tokio::spawn(async move {
                    let changed = waiter.changed(KEY, Duration::from_secs(1)).await;
                    (changed, Instant::now())
                })
            };
            // Let the waiter park in `changed` before the save.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let started = Instant::now();
            saver
                .save(KEY, &tokens(generation + 1), Some(generation))
                .await
                .unwrap();
            let replied = Instant::now();
            let (changed, woken) = wait.await.unwrap();
            if generation < 50 {
                continue; // warm-up
            }
            if changed != Changed::Woken {
                timed_out += 1;
                continue;
            }
            // The message may overtake the saver's reply: then 0.
            from_reply.push(woken.saturating_duration_since(replied));
            from_start.push(woken.saturating_duration_since(started));
        }
        (from_reply, from_start, timed_out)
    });
    let report = |what: &str, mut times: Vec<Duration>| {
        times.sort();
        println!(
            "redis wake-up {what}: p50 {:?}, p99 {:?}, max {:?} ({} saves)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1],
            times.len()
        );
        percentile(&times, 0.99)
    };
    let p99 = report("after the save's reply", from_reply);
    report("after the save's start", from_start);
    println!(
        "redis wake-up: {timed_out} waits timed out; p99 {} 5 ms",
        if p99 < Duration::from_millis(5) {
            "within"
        } else {
            "OVER"
        }
    );
    assert_eq!(timed_out, 0, "a waiter missed a save");
}
