//! A cached token of a session that is not in memory, through the Redis
//! store, against a bare `HGET` of the same key (the session's JSON field of
//! its hash: the same bytes the store reads) with the same kind of client (a
//! RESP3 [`ConnectionManager`] on the same server), in the same run.
//!
//! Three paths, each starting with the session not in memory:
//! - **sessions** (the headline figure): one application-wide
//!   `tokenkeeper_reqwest::Sessions` with one session kept in memory, asked
//!   in turn for two stored sessions, so each call evicts one and loads the
//!   other from Redis — what a web backend with more users than its
//!   in-memory cap pays;
//! - **handle**: a fresh `tokenkeeper_reqwest::TokenKeeper` per call
//!   (`builder(config).client(c).async_store(store).session_key(key)`,
//!   reusing one `reqwest::Client`, as an application does) and one
//!   `get_access_token` of the stored, unexpired token — what a request
//!   handler on an instance that never saw the session pays;
//! - **load + lookup**: `RedisStore::load` and the core's cached lookup
//!   (`TokenManager::set_session`, `get_access_token`): the store's share
//!   alone, without the handle's setup.
//!
//! Round trips per call are counted by the server: its read events
//! (`INFO stats`), one per pipeline or transaction written at once. The ratio is the median of per-round ratios, the rounds
//! alternating which side goes first (target: at most 1.2).
//!
//! The `redis-server` is the bench's own, on a free loopback port.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use redis::aio::ConnectionManager;
use redis::{Client, ProtocolVersion};
use serde_json::json;
use tokenkeeper::store::AsyncSessionStore as _;
use tokenkeeper::{Action, Config, TokenManager, TokenRequest, UnixTime};
use tokenkeeper_redis::{DEFAULT_PREFIX, RedisStore};
use tokenkeeper_reqwest::{OsEntropy, Sessions, TokenKeeper};

use support::{RedisServer, now, session};

const KEY: &str = "bench-session";
/// A second stored session: asking for the two in turn, with one session
/// kept in memory, loads each from Redis on every call.
const OTHER_KEY: &str = "bench-session-2";

struct Setup {
    runtime: tokio::runtime::Runtime,
    store: RedisStore,
    bare: ConnectionManager,
    /// A fresh handle on the shared store (one `reqwest::Client` for all).
    new_handle: Box<dyn Fn() -> TokenKeeper>,
    /// The application-wide sessions object, one session in memory.
    sessions: Sessions,
    /// Which session the next `sessions` call asks for.
    turn: bool,
    manager: TokenManager,
    redis_key: String,
}

fn config() -> Config {
    Config::builder("https://as.invalid/oauth/token", "bench-client")
        .shared_store(true)
        .build()
        .unwrap()
}

fn setup(redis: &RedisServer) -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, bare) = runtime.block_on(async {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        let fresh = session(&json!({
            "tokenSet": {
                "accessToken": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
                "refreshToken": "rt-bench",
                "expiresAt": now() + 24 * 3600,
                "scope": "openid profile email offline_access"
            }
        }));
        store.save(KEY, &fresh, None).await.unwrap();
        store.save(OTHER_KEY, &fresh, None).await.unwrap();
        // The store's kind of connection: RESP3, multiplexed, managed,
        // with the store's default timeouts.
        let mut info = Client::open(redis.url())
            .unwrap()
            .get_connection_info()
            .clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        info = info.set_redis_settings(settings);
        // The store's timeouts too (the `redis` crate wraps each request
        // of such a client in a timer).
        let bare_config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)));
        let bare = ConnectionManager::new_with_config(Client::open(info).unwrap(), bare_config)
            .await
            .unwrap();
        (store, bare)
    });
    let client = tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT).unwrap();
    let client_for_sessions = client.clone();
    let (shared, handle_config) = (store.clone(), config());
    let new_handle = Box::new(move || {
        TokenKeeper::builder(handle_config.clone())
            .client(client.clone())
            .async_store(shared.clone())
            .session_key(KEY)
            .build()
            .unwrap()
    });
    let sessions = Sessions::builder(config())
        .client(client_for_sessions)
        .async_store(store.clone())
        .capacity(1)
        .build()
        .unwrap();
    Setup {
        runtime,
        store,
        bare,
        new_handle,
        sessions,
        turn: false,
        manager: TokenManager::new(config(), OsEntropy),
        redis_key: format!("{DEFAULT_PREFIX}:session:{KEY}"),
    }
}

impl Setup {
    async fn bare_hget(&self) -> usize {
        let json: Vec<u8> = redis::cmd("HGET")
            .arg(&self.redis_key)
            .arg("session")
            .query_async(&mut self.bare.clone())
            .await
            .unwrap();
        json.len()
    }

    async fn handle(&self) -> usize {
        let keeper = (self.new_handle)();
        let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
        token.token.secret().len()
    }

    /// The application-wide object, asked for the session that is not in
    /// memory (the other one is): a load from Redis, then the cached path.
    async fn sessions(&mut self) -> usize {
        self.turn = !self.turn;
        let key = if self.turn { KEY } else { OTHER_KEY };
        let token = self
            .sessions
            .get_access_token(key, &TokenRequest::new())
            .await
            .unwrap();
        token.token.secret().len()
    }

    async fn load_and_lookup(&mut self) -> usize {
        let loaded = self.store.load(KEY).await.unwrap().unwrap();
        self.manager.set_session(loaded);
        let now = UnixTime::from_system_time(std::time::SystemTime::now());
        match self.manager.get_access_token(&TokenRequest::new(), now) {
            Action::Ready(token) => token.token.len(),
            _ => panic!("expected the cached token"),
        }
    }
}

/// Round trips per call: the server's read events (`total_reads_processed`
/// of `INFO stats`) during `calls` calls. A pipeline or a transaction,
/// written at once, is one read however many commands it holds; the
/// closing `INFO` adds one read of its own, taken off.
fn round_trips(redis: &RedisServer, calls: usize, call: impl FnOnce()) -> f64 {
    let mut info = redis.connection();
    let mut reads = || -> u64 {
        let stats: String = redis::cmd("INFO").arg("stats").query(&mut info).unwrap();
        stats
            .lines()
            .find_map(|line| line.strip_prefix("total_reads_processed:"))
            .expect("total_reads_processed in INFO stats")
            .trim()
            .parse()
            .unwrap()
    };
    let before = reads();
    call();
    let after = reads();
    (after - before - 1) as f64 / calls as f64
}

fn bench(c: &mut Criterion) {
    let redis = RedisServer::start();
    let mut setup = setup(&redis);
    let runtime = setup.runtime.handle().clone();
    let mut group = c.benchmark_group("redis_cached_not_in_memory");
    group.bench_function("bare_hget", |b| {
        b.iter(|| black_box(runtime.block_on(setup.bare_hget())))
    });
    group.bench_function("sessions_get_access_token", |b| {
        b.iter(|| black_box(runtime.block_on(setup.sessions())))
    });
    group.bench_function("handle_get_access_token", |b| {
        b.iter(|| black_box(runtime.block_on(setup.handle())))
    });
    group.bench_function("store_load_and_core_lookup", |b| {
        b.iter(|| black_box(runtime.block_on(setup.load_and_lookup())))
    });
    group.finish();
}

fn interleaved() {
    let redis = RedisServer::start();
    let mut setup = setup(&redis);
    let runtime = setup.runtime.handle().clone();

    // Loads the scripts into Redis' cache first (the first EVALSHA of a
    // script is refused with NOSCRIPT and sent again as EVAL).
    runtime.block_on(async {
        setup.handle().await;
        setup.sessions().await;
        setup.load_and_lookup().await;
    });
    const COUNTED: usize = 100;
    let sessions_trips = round_trips(&redis, COUNTED, || {
        runtime.block_on(async {
            for _ in 0..COUNTED {
                black_box(setup.sessions().await);
            }
        })
    });
    let handle_trips = round_trips(&redis, COUNTED, || {
        runtime.block_on(async {
            for _ in 0..COUNTED {
                black_box(setup.handle().await);
            }
        })
    });
    let lookup_trips = round_trips(&redis, COUNTED, || {
        runtime.block_on(async {
            for _ in 0..COUNTED {
                black_box(setup.load_and_lookup().await);
            }
        })
    });

    const ROUNDS: usize = 200;
    const CALLS: usize = 50;
    let mut sessions_ratios = Vec::with_capacity(ROUNDS);
    let mut handle_ratios = Vec::with_capacity(ROUNDS);
    let mut lookup_ratios = Vec::with_capacity(ROUNDS);
    let mut per_call = [(); 4].map(|()| Vec::with_capacity(ROUNDS));
    runtime.block_on(async {
        for _ in 0..CALLS * 4 {
            black_box(setup.bare_hget().await);
            black_box(setup.handle().await);
            black_box(setup.sessions().await);
            black_box(setup.load_and_lookup().await);
        }
        for round in 0..ROUNDS {
            let mut times = [0f64; 4];
            // Rotate which side goes first, so drift hits each alike.
            for side in (0..4).map(|i| (i + round) % 4) {
                let started = Instant::now();
                for _ in 0..CALLS {
                    match side {
                        0 => black_box(setup.bare_hget().await),
                        1 => black_box(setup.handle().await),
                        2 => black_box(setup.load_and_lookup().await),
                        _ => black_box(setup.sessions().await),
                    };
                }
                times[side] = started.elapsed().as_secs_f64();
            }
            handle_ratios.push(times[1] / times[0]);
            sessions_ratios.push(times[3] / times[0]);
            lookup_ratios.push(times[2] / times[0]);
            for (all, time) in per_call.iter_mut().zip(times) {
                all.push(time / CALLS as f64 * 1e6);
            }
        }
    });
    // Where the time goes on the server: the script against the HGET.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.connection())
        .unwrap();
    for line in stats.lines() {
        if [
            "cmdstat_evalsha:",
            "cmdstat_hget:",
            "cmdstat_exec:",
            "cmdstat_hmget:",
        ]
        .iter()
        .any(|name| line.starts_with(name))
        {
            println!("redis server time: {line}");
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [bare, handle, lookup, sessions] = per_call.map(median);
    println!(
        "redis cached token, not in memory: interleaved medians of {ROUNDS} rounds of {CALLS} calls: \
         bare HGET {bare:.1} µs, sessions {sessions:.1} µs, handle {handle:.1} µs, \
         load + lookup {lookup:.1} µs; round trips per call: sessions = {sessions_trips:.2}, \
         handle = {handle_trips:.2}, load + lookup = {lookup_trips:.2}; \
         sessions/bare = {:.3}, handle/bare = {:.3}, lookup/bare = {:.3}",
        median(sessions_ratios),
        median(handle_ratios),
        median(lookup_ratios),
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs each once.
    if std::env::args().any(|a| a == "--bench") {
        interleaved();
    }
}
