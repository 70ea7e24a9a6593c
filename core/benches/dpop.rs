//! DPoP proof cost against the bare signature it contains.
//!
//! In one run: (a) a bare ES256 signature with p256 over a message as long
//! as a typical proof's signing input, (b) a whole proof (jti draw, htu
//! normalisation, claims, base64url, `ath` hash, signature, assembly) with
//! `P256Signer`, and with the `ring` feature (c) the same two with ring.
//! The target is (b) ≤ 1.1 × (a).
//!
//! Criterion measures each function on its own, one after the other, so on
//! a loaded machine the ratio of two results also measures the load drift
//! between them. Each pair is therefore also timed interleaved (ABBA
//! rounds) and the median per-round ratio printed.
//!
//! `cargo bench -p tokenkeeper --features ring --bench dpop -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use tokenkeeper::__private::dpop::{NonceCache, ProofBuilder, ProofParams, draw_jti};
use tokenkeeper::AccessToken;
use tokenkeeper::SeededEntropy;
use tokenkeeper::UnixTime;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::{Headers, Method};

const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSmQ9LAZsX7xpkQ+a
JYsHFUrmFP8fBiJlqu8JMlZzAUahRANCAATImjBJYW55ZM1DApQMiut5TYUv7P4+
fF4ytrGzOBd3t1g95yUKngw4N7yn8y1tx91O8HbRxkavv/MzmrY3QksQ
-----END PRIVATE KEY-----
";

const URL: &str = "https://api.example.com/v1/orders/12345?expand=items";
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// A typical resource request proof: nonce and `ath`.
fn build<S: tokenkeeper::dpop::Signer>(
    builder: &ProofBuilder<S>,
    entropy: &mut SeededEntropy,
    nonce: Option<&str>,
    token: &AccessToken,
) -> tokenkeeper::__private::dpop::ProofOutcome {
    let jti = draw_jti(entropy);
    let params = ProofParams::new(&Method::GET, URL, NOW, &jti)
        .with_nonce(nonce)
        .with_access_token(token);
    builder.build(&params).expect("proof")
}

/// The median over `rounds` of time(b) / time(a), `per_round` calls each,
/// alternating which goes first.
fn interleaved_ratio(
    label: &str,
    rounds: usize,
    per_round: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..per_round {
            f();
        }
        start.elapsed()
    };
    let mut ratios = Vec::with_capacity(rounds);
    let (mut total_a, mut total_b) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let (ta, tb) = if round % 2 == 0 {
            let ta = time(&mut a);
            (ta, time(&mut b))
        } else {
            let tb = time(&mut b);
            (time(&mut a), tb)
        };
        total_a += ta;
        total_b += tb;
        ratios.push(tb.as_secs_f64() / ta.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let calls = u32::try_from(rounds * per_round).unwrap();
    println!(
        "{label}: interleaved median ratio whole/bare = {:.3} (mean bare {:.1?}, whole {:.1?}, {rounds} rounds x {per_round})",
        ratios[rounds / 2],
        total_a / calls,
        total_b / calls,
    );
}

fn proofs(c: &mut Criterion) {
    let key = DpopKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    let token = AccessToken::new("eyJhbGciOiJFUzI1NiJ9.".to_owned() + &"x".repeat(600) + ".sig");
    let mut nonces = NonceCache::new();
    let mut headers = Headers::new();
    headers.append("DPoP-Nonce", "eyJ7S_zG.9-0~server-nonce-abcdefghijkl");
    nonces.learn(URL, &headers);
    let nonce = nonces.peek(URL).map(str::to_owned);

    let builder = ProofBuilder::new(P256Signer::new(key.clone())).unwrap();
    let jti = draw_jti(&mut SeededEntropy::new(0));
    let params = ProofParams::new(&Method::GET, URL, NOW, &jti)
        .with_nonce(nonce.as_deref())
        .with_access_token(&token);
    // A message as long as a real signing input.
    let message = builder
        .unsigned(&params)
        .unwrap()
        .signing_input()
        .as_bytes()
        .to_vec();
    println!("signing input: {} bytes", message.len());

    let signing_key = SigningKey::from_pkcs8_pem(TEST_KEY_PEM).unwrap();
    let mut entropy = SeededEntropy::new(1);
    interleaved_ratio(
        "p256",
        40,
        20,
        || {
            let signature: Signature = signing_key.sign(black_box(&message));
            black_box(signature);
        },
        || {
            let _proof = black_box(build(
                &builder,
                &mut entropy,
                black_box(nonce.as_deref()),
                &token,
            ));
        },
    );
    let mut group = c.benchmark_group("dpop");
    group.bench_function("p256/bare_signature", |b| {
        b.iter(|| {
            let signature: Signature = signing_key.sign(black_box(&message));
            black_box(signature)
        });
    });
    group.bench_function("p256/whole_proof", |b| {
        b.iter(|| {
            black_box(build(
                &builder,
                &mut entropy,
                black_box(nonce.as_deref()),
                &token,
            ))
        });
    });
    group.bench_function("overhead/unsigned_proof", |b| {
        b.iter(|| {
            let jti = draw_jti(&mut entropy);
            let params = ProofParams::new(&Method::GET, URL, NOW, &jti)
                .with_nonce(black_box(nonce.as_deref()))
                .with_access_token(&token);
            black_box(builder.unsigned(&params).expect("proof"))
        });
    });

    #[cfg(feature = "ring")]
    {
        use ring::rand::SystemRandom;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let der = key.to_pkcs8_der().unwrap();
        let rng = SystemRandom::new();
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng).unwrap();
        group.bench_function("ring/bare_signature", |b| {
            b.iter(|| black_box(key_pair.sign(&rng, black_box(&message)).unwrap()));
        });
        let ring_builder =
            ProofBuilder::new(tokenkeeper::dpop::RingSigner::from_pkcs8_der(&der).unwrap())
                .unwrap();
        interleaved_ratio(
            "ring",
            40,
            200,
            || {
                black_box(key_pair.sign(&rng, black_box(&message)).unwrap());
            },
            || {
                let _proof = black_box(build(
                    &ring_builder,
                    &mut entropy,
                    black_box(nonce.as_deref()),
                    &token,
                ));
            },
        );
        group.bench_function("ring/whole_proof", |b| {
            b.iter(|| {
                black_box(build(
                    &ring_builder,
                    &mut entropy,
                    black_box(nonce.as_deref()),
                    &token,
                ))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, proofs);
criterion_main!(benches);
