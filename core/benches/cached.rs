//! The cached path (token ready, no I/O) with 1, 10 and 100 cache entries,
//! against a bare `BTreeMap<String, String>` lookup of the same size,
//! measured in the same run. Shared machines drift between criterion's
//! separate measurements, so each pair is also timed interleaved
//! (alternating rounds) and the median per-round ratio printed.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokenkeeper::{Action, Config, SeededEntropy, Session, TokenManager, TokenRequest, UnixTime};

fn session_with(entries: usize) -> Session {
    let list: Vec<String> = (0..entries)
        .map(|i| {
            format!(
                r#"{{"accessToken":"at-{i}","audience":"https://api{i}.example.com","scope":"openid profile email offline_access read:data","requestedScope":"openid profile email offline_access read:data","expiresAt":9999999999,"token_type":"Bearer"}}"#
            )
        })
        .collect();
    let json = format!(
        r#"{{"tokenSet":{{"accessToken":"main","refreshToken":"rt","expiresAt":9999999999}},"accessTokens":[{}]}}"#,
        list.join(",")
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("cached_path");
    for n in [1usize, 10, 100] {
        let config = Config::builder("https://as.example/oauth/token", "client")
            .max_cache_entries(1000)
            .build()
            .unwrap();
        let mut manager = TokenManager::new(config, SeededEntropy::new(1));
        manager.set_session(session_with(n));
        let audience = format!("https://api{}.example.com", n / 2);
        let request = TokenRequest::new().audience(&audience).scope("read:data");
        let now = UnixTime::from_secs(1_800_000_000);
        group.bench_with_input(BenchmarkId::new("tokenkeeper", n), &n, |b, _| {
            b.iter(
                || match manager.get_access_token(black_box(&request), now) {
                    Action::Ready(token) => {
                        black_box(token.token.len());
                    }
                    other => panic!("{other:?}"),
                },
            )
        });

        let map: BTreeMap<String, String> = (0..n)
            .map(|i| (format!("https://api{i}.example.com"), format!("at-{i}")))
            .collect();
        group.bench_with_input(BenchmarkId::new("btreemap_baseline", n), &n, |b, _| {
            b.iter(|| black_box(map.get(black_box(audience.as_str())).map(String::len)))
        });

        // Interleaved: alternate rounds of each, median of per-round ratios.
        let mut ratios = Vec::new();
        for round in 0..200 {
            let mut time_ours = || {
                let start = Instant::now();
                for _ in 0..2000 {
                    if let Action::Ready(token) = manager.get_access_token(black_box(&request), now)
                    {
                        black_box(token.token.len());
                    }
                }
                start.elapsed().as_secs_f64()
            };
            let time_map = || {
                let start = Instant::now();
                for _ in 0..2000 {
                    black_box(map.get(black_box(audience.as_str())).map(String::len));
                }
                start.elapsed().as_secs_f64()
            };
            let (ours, base) = if round % 2 == 0 {
                let o = time_ours();
                (o, time_map())
            } else {
                let b = time_map();
                (time_ours(), b)
            };
            ratios.push(ours / base);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "cached_path/{n} entries: interleaved median ratio tokenkeeper/btreemap = {:.2}",
            ratios[ratios.len() / 2]
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
