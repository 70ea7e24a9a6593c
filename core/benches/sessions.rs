//! The cached path of many sessions (`Sessions::cached_token`: find the
//! session by id, mount it, decide) against today's single-session cached
//! path (`TokenManager::get_access_token`), with 1 and with 10,000 sessions
//! in memory, in the same run. Each pair is also timed interleaved
//! (alternating rounds; shared machines drift between criterion's separate
//! measurements) and the median per-round ratio printed. "10,000 asked in
//! turn" is also compared with its fair baseline: 10,000 separate
//! `TokenManager`s asked in turn (the same tokens spread over memory the
//! same way), so that ratio compares like with like.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokenkeeper::driver::{Ask, Call, Effect, Sessions};
use tokenkeeper::{
    Action, Config, MemoryStore, SeededEntropy, Session, SessionStore, TokenManager, TokenRequest,
    UnixTime,
};

const ENTRIES: usize = 10;

fn session(i: usize) -> Session {
    let list: Vec<String> = (0..ENTRIES)
        .map(|e| {
            format!(
                r#"{{"accessToken":"at-{i}-{e}","audience":"https://api{e}.example.com","scope":"openid profile email offline_access read:data","requestedScope":"openid profile email offline_access read:data","expiresAt":9999999999,"token_type":"Bearer"}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"tokenSet":{{"accessToken":"main-{i}","refreshToken":"rt","expiresAt":9999999999}},"accessTokens":[{}]}}"#,
        list.join(",")
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

fn config() -> Config {
    Config::builder("https://as.example/oauth/token", "client")
        .max_cache_entries(1000)
        .build()
        .unwrap()
}

/// `n` sessions loaded into memory, their ids.
fn loaded(n: usize, now: UnixTime) -> (Sessions, Vec<String>) {
    let mut sessions = Sessions::new(TokenManager::new(config(), SeededEntropy::new(1)), n);
    let mut store = MemoryStore::new();
    // Ids as the core draws them: 32 hex digits.
    let ids: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        store.save(id, &session(i), None).unwrap();
        let request = TokenRequest::new();
        let mut call = Call::token(Ask::User(&request));
        loop {
            match sessions.poll(id, &mut call, now) {
                Effect::Store(op) => {
                    let answer = op.run(&mut store);
                    sessions.handle_store(id, &mut call, answer);
                }
                Effect::Done(result) => {
                    assert!(result.is_ok());
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(sessions.len(), n);
    (sessions, ids)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sessions_cached_path");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    let now = UnixTime::from_secs(1_800_000_000);
    let audience = format!("https://api{}.example.com", ENTRIES / 2);
    let request = TokenRequest::new().audience(&audience).scope("read:data");

    let mut manager = TokenManager::new(config(), SeededEntropy::new(1));
    manager.set_session(session(0));
    let mut one = || match manager.get_access_token(black_box(&request), now) {
        Action::Ready(token) => token.token.len(),
        other => panic!("{other:?}"),
    };
    group.bench_function("token_manager", |b| b.iter(|| black_box(one())));

    // (sessions in memory, how many of them are asked in turn): one hot
    // session as today's single-session handle has; then every session in
    // turn, where the sessions' tokens no longer fit in the CPU caches.
    for (n, spread) in [(1usize, 1usize), (10_000, 1), (10_000, 10_000)] {
        let (mut sessions, ids) = loaded(n, now);
        let mut next = 0usize;
        let mut many = || {
            next = (next + 1) % spread;
            match sessions.cached_token(black_box(&ids[next]), black_box(&request), now) {
                Some(token) => token.token.len(),
                None => panic!("not cached"),
            }
        };
        let name = format!("{n}_in_memory_{spread}_asked");
        group.bench_with_input(BenchmarkId::new("sessions", &name), &n, |b, _| {
            b.iter(|| black_box(many()))
        });

        println!(
            "sessions_cached_path/{name}: interleaved median ratio sessions/token_manager = {:.2}",
            interleaved_ratio(&mut many, &mut one)
        );

        if spread > 1 {
            // The fair baseline: `spread` separate managers (today's
            // single-session handles), asked in turn.
            let mut managers: Vec<TokenManager> = (0..spread)
                .map(|i| {
                    let mut manager = TokenManager::new(config(), SeededEntropy::new(i as u64 + 1));
                    manager.set_session(session(i));
                    manager
                })
                .collect();
            let mut turn = 0usize;
            let mut separate = || {
                turn = (turn + 1) % spread;
                match managers[turn].get_access_token(black_box(&request), now) {
                    Action::Ready(token) => token.token.len(),
                    other => panic!("{other:?}"),
                }
            };
            let base = format!("{spread}_separate_managers_asked");
            group.bench_function(BenchmarkId::new("token_managers", &base), |b| {
                b.iter(|| black_box(separate()))
            });
            println!(
                "sessions_cached_path/{name}: interleaved median ratio sessions/{base} = {:.2}",
                interleaved_ratio(&mut many, &mut separate)
            );
        }
    }
    group.finish();
}

/// The median, over 200 alternating rounds of 2,000 calls each, of the
/// time `ours` takes over the time `base` takes.
fn interleaved_ratio(ours: &mut impl FnMut() -> usize, base: &mut impl FnMut() -> usize) -> f64 {
    let time = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        for _ in 0..2000 {
            black_box(f());
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios = Vec::new();
    for round in 0..200 {
        let (o, b) = if round % 2 == 0 {
            let o = time(ours);
            (o, time(base))
        } else {
            let b = time(base);
            (time(ours), b)
        };
        ratios.push(o / b);
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

criterion_group!(benches, bench);
criterion_main!(benches);
