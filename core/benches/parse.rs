//! Parsing a typical token response (a JWT access token of about 800
//! bytes, an ID token of about 900, a refresh token, `scope`,
//! `expires_in`): `TokenResponse::parse` (the limits, the JSON depth scan,
//! one serde pass, owned tokens) against oauth2-rs 5 deserializing the same
//! body into its `BasicTokenResponse`, in the same run.
//!
//! Two figures: the parse alone (each result dropped outside the timing),
//! and parse plus drop (ours wipes its tokens when dropped, oauth2's do
//! not). Shared machines drift between criterion's separate measurements,
//! so each pair is also timed interleaved (alternating rounds) and the
//! median per-round ratio printed.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth2::basic::BasicTokenResponse;
use tokenkeeper::HttpResponse;
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;

/// `len` characters of base64url, deterministic.
fn b64url(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(ALPHABET[(state >> 58) as usize])
        })
        .collect()
}

/// A JWT-shaped string: header, claims and an ES256 signature.
fn jwt(seed: u64, claims_len: usize) -> String {
    format!(
        "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.{}.{}",
        b64url(seed, claims_len),
        b64url(seed + 1, 86)
    )
}

fn body() -> String {
    let access_token = jwt(1, 660);
    let id_token = jwt(3, 760);
    assert!((780..820).contains(&access_token.len()));
    assert!((880..920).contains(&id_token.len()));
    format!(
        r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":86400,"scope":"openid profile email offline_access read:data","refresh_token":"{}","id_token":"{id_token}"}}"#,
        b64url(5, 43),
    )
}

fn ours(response: &HttpResponse, limits: &Limits) -> TokenResponse {
    TokenResponse::parse(black_box(response), limits).unwrap()
}

fn oauth2(body: &[u8]) -> BasicTokenResponse {
    serde_json::from_slice(black_box(body)).unwrap()
}

/// The median over alternating rounds of `ours` time / `theirs` time;
/// with `keep`, results are dropped after the clock stops.
fn interleaved<A, B>(
    mut ours: impl FnMut() -> A,
    mut theirs: impl FnMut() -> B,
    keep: bool,
) -> f64 {
    const PER_ROUND: usize = 200;
    let mut kept_a = Vec::with_capacity(PER_ROUND);
    let mut kept_b = Vec::with_capacity(PER_ROUND);
    let mut ratios = Vec::new();
    for round in 0..300 {
        let mut time_a = || {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                let a = black_box(ours());
                if keep {
                    kept_a.push(a);
                }
            }
            let elapsed = start.elapsed().as_secs_f64();
            kept_a.clear();
            elapsed
        };
        let mut time_b = || {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                let b = black_box(theirs());
                if keep {
                    kept_b.push(b);
                }
            }
            let elapsed = start.elapsed().as_secs_f64();
            kept_b.clear();
            elapsed
        };
        let (a, b) = if round % 2 == 0 {
            let a = time_a();
            (a, time_b())
        } else {
            let b = time_b();
            (time_a(), b)
        };
        ratios.push(a / b);
    }
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn bench(c: &mut Criterion) {
    let body = body();
    let response = HttpResponse::new(200, body.clone());
    let limits = Limits::default();
    assert_eq!(
        ours(&response, &limits).access_token.secret(),
        oauth2::TokenResponse::access_token(&oauth2(body.as_bytes())).secret()
    );

    let mut group = c.benchmark_group("token_response_parse");
    group.bench_function("tokenkeeper", |b| {
        b.iter_with_large_drop(|| ours(&response, &limits))
    });
    group.bench_function("oauth2_basic_token_response", |b| {
        b.iter_with_large_drop(|| oauth2(body.as_bytes()))
    });
    group.finish();
    let mut group = c.benchmark_group("token_response_parse_and_drop");
    group.bench_function("tokenkeeper", |b| b.iter(|| ours(&response, &limits)));
    group.bench_function("oauth2_basic_token_response", |b| {
        b.iter(|| oauth2(body.as_bytes()))
    });
    group.finish();

    let parse = interleaved(
        || ours(&response, &limits),
        || oauth2(body.as_bytes()),
        true,
    );
    let with_drop = interleaved(
        || ours(&response, &limits),
        || oauth2(body.as_bytes()),
        false,
    );
    println!(
        "token_response_parse ({} bytes): interleaved median ratio tokenkeeper/oauth2 = {parse:.3} \
         (parse), {with_drop:.3} (parse and drop)",
        body.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
