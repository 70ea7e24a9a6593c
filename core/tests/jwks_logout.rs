//! Issue 18: ID token and logout token signatures by JWKS (RS256 and
//! ES256, keys generated here from seeded entropy), the sans-IO JWKS cache
//! (TTL, one rate-limited refetch on an unknown `kid`), and back-channel
//! logout token validation: every refusal has its own code and ends
//! nothing.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use proptest::prelude::*;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokenkeeper::__private::form;
use tokenkeeper::__private::jws;
use tokenkeeper::__private::jws::Algorithm;
use tokenkeeper::Limits;
use tokenkeeper::id_token::{IdTokenError, IdTokenValidator};
use tokenkeeper::id_token::{Jwks, JwksCache, KeyLookup};
use tokenkeeper::logout_token::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutTarget, LogoutTokenError, LogoutTokenValidator, ReplayCache,
    logout_token_from_form,
};
use tokenkeeper::{Entropy, HttpResponse, IdToken, Method, SeededEntropy, Session, UnixTime};

const ISSUER: &str = "https://as.example/";
const CLIENT: &str = "client-1";
const NOW: u64 = 1_700_000_000;
const JWKS_URI: &str = "https://as.example/jwks";

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

// ---- keys and signing ----

/// rand_core's RNG over the crate's seeded entropy (RSA key generation).
struct TestRng(SeededEntropy);

impl rsa::rand_core::TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rsa::rand_core::TryCryptoRng for TestRng {}

/// Three 2048-bit RSA keys, generated once from seeds 1, 2, 3.
fn rsa_keys() -> &'static [rsa::PrivateKey; 3] {
    static KEYS: OnceLock<[rsa::PrivateKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [1, 2, 3].map(|seed| {
            rsa::PrivateKey::new(&mut TestRng(SeededEntropy::new(seed)), 2048)
                .expect("key generation")
        })
    })
}

fn ec_key(seed: u64) -> p256::ecdsa::SigningKey {
    let mut entropy = SeededEntropy::new(seed);
    loop {
        let mut bytes = [0u8; 32];
        entropy.fill(&mut bytes);
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_jwk(key: &rsa::PrivateKey, kid: Option<&str>) -> Value {
    let mut jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256",
        "n": b64(&key.n_bytes()), "e": b64(&key.e_bytes()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

fn ec_jwk(key: &p256::ecdsa::SigningKey, kid: Option<&str>) -> Value {
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let mut jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65]),
    });
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

fn jwks_doc(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn jwks(keys: &[Value]) -> Jwks {
    Jwks::from_json(jwks_doc(keys).as_bytes(), &Limits::default()).expect("valid JWKS")
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn sign_rs256(key: &rsa::PrivateKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = key
        .sign(
            rsa::pkcs1v15::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(input.as_bytes()),
        )
        .expect("RSA signature");
    format!("{input}.{}", b64(&signature))
}

fn sign_es256(key: &p256::ecdsa::SigningKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// HMAC-SHA256 (RFC 2104), for the key-confusion attack.
fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 64];
    if secret.len() > 64 {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let pad = |byte: u8| key.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn sign_hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    format!("{input}.{}", b64(&hmac_sha256(secret, input.as_bytes())))
}

/// The RSA public key in the forms an attacker would try as the HMAC
/// secret: its JWK `n`, its raw modulus, the whole JWK JSON.
fn public_key_secrets(key: &rsa::PrivateKey) -> Vec<Vec<u8>> {
    let jwk = rsa_jwk(key, Some("r1"));
    vec![
        jwk["n"].as_str().unwrap().as_bytes().to_vec(),
        key.n_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ]
}

fn id_claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "auth0|alice", "aud": CLIENT,
        "exp": NOW + 3600, "iat": NOW, "nonce": "n-1", "sid": "sid-1",
    })
}

fn rs_header(kid: &str) -> Value {
    json!({ "alg": "RS256", "kid": kid, "typ": "JWT" })
}

fn es_header(kid: &str) -> Value {
    json!({ "alg": "ES256", "kid": kid })
}

/// The two-algorithm key set of most tests: RSA `r1`, EC `e1`.
fn mixed_set() -> Jwks {
    static SET: OnceLock<Jwks> = OnceLock::new();
    SET.get_or_init(|| {
        jwks(&[
            rsa_jwk(&rsa_keys()[0], Some("r1")),
            ec_jwk(&ec_key(1), Some("e1")),
        ])
    })
    .clone()
}

fn id_code(set: &Jwks, token: &str) -> &'static str {
    IdTokenValidator::new(ISSUER, CLIENT)
        .jwks(set)
        .validate(&IdToken::new(token), None, now())
        .unwrap_err()
        .code()
}

// ---- signatures ----

#[test]
fn rs256_and_es256_id_tokens_verify() {
    let set = mixed_set();
    assert_eq!(set.len(), 2);
    let validator = IdTokenValidator::new(ISSUER, CLIENT).jwks(&set);
    let rs = sign_rs256(&rsa_keys()[0], &rs_header("r1"), &id_claims());
    let claims = validator
        .validate_login(&IdToken::new(rs.clone()), "n-1", now())
        .expect("RS256 verifies");
    assert_eq!(claims.sub(), "auth0|alice");
    let es = sign_es256(&ec_key(1), &es_header("e1"), &id_claims());
    assert!(
        validator
            .validate_login(&IdToken::new(es.clone()), "n-1", now())
            .is_ok()
    );
    // The header comes back from jws::verify.
    let header = jws::verify(&rs, &set).unwrap();
    assert_eq!(header.alg, Algorithm::Rs256);
    assert_eq!(header.kid.as_deref(), Some("r1"));
    assert_eq!(jws::verify(&es, &set).unwrap().alg, Algorithm::Es256);
}

#[test]
fn bad_signatures_are_refused() {
    let set = mixed_set();
    let good = sign_rs256(&rsa_keys()[0], &rs_header("r1"), &id_claims());
    let parts: Vec<&str> = good.split('.').collect();
    // A tampered payload.
    let mut evil = id_claims();
    evil["sub"] = "auth0|mallory".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(id_code(&set, &tampered), "invalid_signature");
    // Signed by another RSA key under the same kid.
    let other = sign_rs256(&rsa_keys()[1], &rs_header("r1"), &id_claims());
    assert_eq!(id_code(&set, &other), "invalid_signature");
    // A cut, an empty and a garbage signature.
    let cut = &good[..good.len() - 4];
    assert_eq!(id_code(&set, cut), "invalid_signature");
    assert_eq!(
        id_code(&set, &format!("{}.{}.", parts[0], parts[1])),
        "invalid_signature"
    );
    assert_eq!(
        id_code(&set, &format!("{}.{}.!!", parts[0], parts[1])),
        "invalid_signature"
    );
    // An ES256 signature on the wrong input, and a DER-length one.
    let es = sign_es256(&ec_key(1), &es_header("e1"), &id_claims());
    let es_sig = es.rsplit('.').next().unwrap();
    let mut other_claims = id_claims();
    other_claims["sid"] = "sid-2".into();
    let swapped = format!(
        "{}.{}.{}",
        b64(es_header("e1").to_string().as_bytes()),
        b64(other_claims.to_string().as_bytes()),
        es_sig
    );
    assert_eq!(id_code(&set, &swapped), "invalid_signature");
    let es_parts: Vec<&str> = es.split('.').collect();
    let long = format!("{}.{}.{}", es_parts[0], es_parts[1], b64(&[0x30; 70]));
    assert_eq!(id_code(&set, &long), "invalid_signature");
}

#[test]
fn alg_none_and_hmac_are_refused_with_their_own_codes() {
    let set = mixed_set();
    let none = format!(
        "{}.",
        signing_input(&json!({"alg":"none","kid":"r1"}), &id_claims())
    );
    assert_eq!(id_code(&set, &none), "alg_none_refused");
    assert_eq!(
        IdTokenValidator::new(ISSUER, CLIENT)
            .jwks(&set)
            .validate(&IdToken::new(none), None, now())
            .unwrap_err(),
        IdTokenError::AlgNone
    );
    // HS256 signed with the RSA public key as the secret, in every form.
    for secret in public_key_secrets(&rsa_keys()[0]) {
        for header in [
            json!({"alg":"HS256","kid":"r1"}),
            json!({"alg":"HS256"}),
            json!({"alg":"HS512","kid":"r1"}),
        ] {
            let token = sign_hs256(&secret, &header, &id_claims());
            assert_eq!(id_code(&set, &token), "hmac_alg_refused");
            assert_eq!(
                jws::verify(&token, &set).unwrap_err().code(),
                "hmac_alg_refused"
            );
        }
    }
    let rs384 = sign_rs256(
        &rsa_keys()[0],
        &json!({"alg":"RS384","kid":"r1"}),
        &id_claims(),
    );
    assert_eq!(id_code(&set, &rs384), "unsupported_algorithm");
}

#[test]
fn the_algorithm_is_pinned_to_the_key() {
    let set = mixed_set();
    // An RS256 header naming the EC key, an ES256 header naming the RSA key.
    let rs_on_ec = sign_rs256(&rsa_keys()[0], &rs_header("e1"), &id_claims());
    assert_eq!(id_code(&set, &rs_on_ec), "jwk_alg_mismatch");
    let es_on_rsa = sign_es256(&ec_key(1), &es_header("r1"), &id_claims());
    assert_eq!(id_code(&set, &es_on_rsa), "jwk_alg_mismatch");
    // A JWK whose alg contradicts its kty is unusable.
    let mut liar = rsa_jwk(&rsa_keys()[1], Some("liar"));
    liar["alg"] = "ES256".into();
    let set = jwks(&[liar]);
    assert!(set.is_empty());
    assert!(set.contains_kid("liar"));
    let token = sign_rs256(&rsa_keys()[1], &rs_header("liar"), &id_claims());
    assert_eq!(id_code(&set, &token), "jwk_unusable");
    // An RSA JWK marked for another algorithm family entirely.
    let mut ps = rsa_jwk(&rsa_keys()[1], Some("ps"));
    ps["alg"] = "PS256".into();
    assert!(jwks(&[ps]).is_empty());
}

#[test]
fn keys_are_chosen_by_kid() {
    let set = mixed_set();
    // An unknown kid.
    let unknown = sign_rs256(&rsa_keys()[0], &rs_header("zz"), &id_claims());
    assert_eq!(id_code(&set, &unknown), "jwk_not_found");
    // No kid: the single key of the algorithm's type.
    let no_kid = sign_rs256(&rsa_keys()[0], &json!({"alg":"RS256"}), &id_claims());
    assert!(jws::verify(&no_kid, &set).is_ok());
    let es_no_kid = sign_es256(&ec_key(1), &json!({"alg":"ES256"}), &id_claims());
    assert!(jws::verify(&es_no_kid, &set).is_ok());
    // No kid and two RSA keys: refused.
    let two = jwks(&[
        rsa_jwk(&rsa_keys()[0], Some("r1")),
        rsa_jwk(&rsa_keys()[1], Some("r2")),
    ]);
    assert_eq!(id_code(&two, &no_kid), "jwk_not_found");
    // The second key by its kid.
    let second = sign_rs256(&rsa_keys()[1], &rs_header("r2"), &id_claims());
    assert!(jws::verify(&second, &two).is_ok());
    // The same kid on an RSA and an EC key: the one of the token's type.
    let shared = jwks(&[
        rsa_jwk(&rsa_keys()[0], Some("k")),
        ec_jwk(&ec_key(1), Some("k")),
    ]);
    let rs = sign_rs256(&rsa_keys()[0], &rs_header("k"), &id_claims());
    let es = sign_es256(&ec_key(1), &es_header("k"), &id_claims());
    assert!(jws::verify(&rs, &shared).is_ok());
    assert!(jws::verify(&es, &shared).is_ok());
    // A modulus written with a leading zero byte is the same key.
    let mut padded = rsa_jwk(&rsa_keys()[0], Some("padded"));
    let mut n = vec![0u8];
    n.extend_from_slice(&rsa_keys()[0].n_bytes());
    padded["n"] = b64(&n).into();
    let padded_token = sign_rs256(&rsa_keys()[0], &rs_header("padded"), &id_claims());
    assert!(jws::verify(&padded_token, &jwks(&[padded])).is_ok());
    // Keys from the token itself are never used.
    let jwk_header = json!({"alg":"ES256","kid":"zz","jwk": ec_jwk(&ec_key(9), None)});
    let embedded = sign_es256(&ec_key(9), &jwk_header, &id_claims());
    assert_eq!(id_code(&set, &embedded), "jwk_not_found");
}

#[test]
fn weak_and_foreign_keys_are_unusable() {
    // A 1024-bit modulus (odd, top bit set): below the 2048-bit floor.
    let mut n = vec![0xC5u8; 128];
    n[127] |= 1;
    let weak = json!({"kty":"RSA","kid":"weak","n": b64(&n),"e":"AQAB"});
    let mut enc = rsa_jwk(&rsa_keys()[0], Some("enc"));
    enc["use"] = "enc".into();
    let mut ops = rsa_jwk(&rsa_keys()[0], Some("ops"));
    ops["key_ops"] = json!(["encrypt"]);
    let mut p384 = ec_jwk(&ec_key(1), Some("p384"));
    p384["crv"] = "P-384".into();
    let oct = json!({"kty":"oct","kid":"oct","k": b64(b"secret")});
    let mut even = rsa_jwk(&rsa_keys()[0], Some("even"));
    let mut n_even = rsa_keys()[0].n_bytes().to_vec();
    *n_even.last_mut().unwrap() &= 0xFE;
    even["n"] = b64(&n_even).into();
    let set = jwks(&[
        weak,
        enc,
        ops,
        p384,
        oct,
        even,
        json!(5),
        json!({"kty":"RSA"}),
    ]);
    assert!(set.is_empty());
    for kid in ["weak", "enc", "ops", "p384", "oct", "even"] {
        assert!(set.contains_kid(kid), "{kid}");
        let token = sign_rs256(&rsa_keys()[0], &rs_header(kid), &id_claims());
        assert_eq!(id_code(&set, &token), "jwk_unusable", "{kid}");
    }
    assert!(format!("{set:?}").contains("2048"));
    // key_ops with verify is fine.
    let mut verify = rsa_jwk(&rsa_keys()[0], Some("v"));
    verify["key_ops"] = json!(["verify"]);
    assert_eq!(jwks(&[verify]).kids().collect::<Vec<_>>(), ["v"]);
}

#[test]
fn jwks_documents() {
    let limits = Limits::default();
    let code = |s: &str| Jwks::from_json(s.as_bytes(), &limits).unwrap_err().code();
    assert_eq!(code("nope"), "invalid_jwks");
    assert_eq!(code("[]"), "invalid_jwks");
    assert_eq!(code(r#"{"keys":{}}"#), "invalid_jwks");
    let many: Vec<Value> = (0..101).map(|_| json!({})).collect();
    assert_eq!(code(&jwks_doc(&many)), "invalid_jwks");
    assert_eq!(
        Jwks::parse(&HttpResponse::new(500, "{}"), &limits)
            .unwrap_err()
            .code(),
        "jwks_http_error"
    );
    let response = HttpResponse::new(200, jwks_doc(&[ec_jwk(&ec_key(1), Some("e1"))]));
    assert_eq!(Jwks::parse(&response, &limits).unwrap().len(), 1);
    // Debug shows algorithms and kids, not key material.
    let debug = format!("{:?}", mixed_set());
    assert!(
        debug.contains("RS256 \"r1\"") && debug.contains("ES256 \"e1\""),
        "{debug}"
    );
    assert!(!debug.contains(rsa_jwk(&rsa_keys()[0], None)["n"].as_str().unwrap()));
}

// ---- the JWKS cache ----

fn fetch(cache: &mut JwksCache, at: UnixTime, keys: &[Value]) {
    let request = cache.poll_request(at).expect("a fetch is due");
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.url, JWKS_URI);
    cache
        .handle_response(
            &HttpResponse::new(200, jwks_doc(keys)),
            at,
            &Limits::default(),
        )
        .expect("a valid JWKS");
}

fn verify_through(cache: &mut JwksCache, token: &str, at: UnixTime) -> Result<(), String> {
    match cache.lookup(token, at) {
        KeyLookup::Ready(set) => jws::verify(token, set)
            .map(drop)
            .map_err(|e| e.code().into()),
        KeyLookup::Fetch => Err("fetch".into()),
        KeyLookup::Refused(e) => Err(e.code().into()),
        _ => Err("unknown".into()),
    }
}

#[test]
fn jwks_rotation_refetches_once_and_is_rate_limited() {
    let t0 = now();
    let mut cache = JwksCache::new(JWKS_URI).unwrap();
    let old = rsa_jwk(&rsa_keys()[0], Some("2026-01"));
    let new = rsa_jwk(&rsa_keys()[1], Some("2026-02"));
    let old_token = sign_rs256(&rsa_keys()[0], &rs_header("2026-01"), &id_claims());
    let new_token = sign_rs256(&rsa_keys()[1], &rs_header("2026-02"), &id_claims());

    // Nothing cached: fetch first.
    assert_eq!(
        verify_through(&mut cache, &old_token, t0),
        Err("fetch".into())
    );
    fetch(&mut cache, t0, std::slice::from_ref(&old));
    assert_eq!(verify_through(&mut cache, &old_token, t0), Ok(()));
    assert!(cache.poll_request(t0).is_none());

    // Two minutes later the server rotates: the new kid is unknown, one
    // refetch is allowed.
    let t1 = t0.saturating_add(Duration::from_secs(120));
    assert_eq!(
        verify_through(&mut cache, &new_token, t1),
        Err("fetch".into())
    );
    // A second lookup meanwhile waits for the same fetch.
    assert_eq!(
        verify_through(&mut cache, &new_token, t1),
        Err("fetch".into())
    );
    fetch(&mut cache, t1, &[old.clone(), new.clone()]);
    assert!(cache.poll_request(t1).is_none(), "exactly one refetch");
    assert_eq!(verify_through(&mut cache, &new_token, t1), Ok(()));
    assert_eq!(verify_through(&mut cache, &old_token, t1), Ok(()));

    // Another unknown kid within the rate limit: refused without a fetch.
    let t2 = t1.saturating_add(Duration::from_secs(30));
    let stranger = sign_rs256(&rsa_keys()[2], &rs_header("2026-03"), &id_claims());
    assert_eq!(
        verify_through(&mut cache, &stranger, t2),
        Err("jwk_not_found".into())
    );
    assert!(
        cache.poll_request(t2).is_none(),
        "no fetch within the rate limit"
    );
    // Past the interval the same kid may cause one refetch again; still
    // unknown after it, it is refused, and not fetched again.
    let t3 = t1.saturating_add(Duration::from_secs(60));
    assert_eq!(
        verify_through(&mut cache, &stranger, t3),
        Err("fetch".into())
    );
    fetch(&mut cache, t3, &[old, new]);
    assert_eq!(
        verify_through(&mut cache, &stranger, t3),
        Err("jwk_not_found".into())
    );
    assert!(cache.poll_request(t3).is_none());

    // Refused headers never cause a fetch.
    let t4 = t3.saturating_add(Duration::from_secs(500));
    let hs = sign_hs256(b"x", &json!({"alg":"HS256","kid":"new"}), &id_claims());
    assert_eq!(
        verify_through(&mut cache, &hs, t4),
        Err("hmac_alg_refused".into())
    );
    assert!(cache.poll_request(t4).is_none());
}

#[test]
fn jwks_cache_ttl_timeouts_and_failures() {
    let t0 = now();
    let mut cache = JwksCache::new(JWKS_URI)
        .unwrap()
        .with_ttl(Duration::from_secs(100))
        .with_refetch_interval(Duration::from_secs(10));
    assert_eq!(cache.ttl(), Duration::from_secs(100));
    assert_eq!(cache.refetch_interval(), Duration::from_secs(10));
    assert_eq!(cache.poll_timeout(), None);
    let token = sign_es256(&ec_key(1), &es_header("e1"), &id_claims());
    let keys = [ec_jwk(&ec_key(1), Some("e1"))];

    // A failed fetch leaves nothing; the next poll asks again.
    assert!(cache.poll_request(t0).is_some());
    assert!(cache.is_fetching());
    assert!(cache.poll_request(t0).is_none(), "one fetch at a time");
    let e = cache
        .handle_response(&HttpResponse::new(503, "busy"), t0, &Limits::default())
        .unwrap_err();
    assert_eq!(e.code(), "jwks_http_error");
    assert!(cache.jwks().is_none());
    assert!(cache.poll_request(t0).is_some());
    cache.handle_transport_error();
    fetch(&mut cache, t0, &keys);
    assert_eq!(cache.fetched_at(), Some(t0));
    assert_eq!(
        cache.poll_timeout(),
        Some(t0.saturating_add(Duration::from_secs(100)))
    );
    assert_eq!(verify_through(&mut cache, &token, t0), Ok(()));

    // The TTL runs out: the next lookup fetches; stale keys are not used.
    let t1 = t0.saturating_add(Duration::from_secs(99));
    cache.handle_timeout(t1);
    assert!(cache.fresh_jwks(t1).is_some());
    let t2 = t0.saturating_add(Duration::from_secs(100));
    cache.handle_timeout(t2);
    assert_eq!(cache.poll_timeout(), None);
    assert!(cache.fresh_jwks(t2).is_none());
    assert!(cache.jwks().is_some(), "stale keys stay readable");
    assert_eq!(verify_through(&mut cache, &token, t2), Err("fetch".into()));
    // A bad document keeps the old keys (still stale).
    assert!(cache.poll_request(t2).is_some());
    assert_eq!(
        cache
            .handle_response(&HttpResponse::new(200, "<html>"), t2, &Limits::default())
            .unwrap_err()
            .code(),
        "invalid_jwks"
    );
    assert_eq!(cache.jwks().map(Jwks::len), Some(1));
    fetch(&mut cache, t2, &keys);
    assert_eq!(verify_through(&mut cache, &token, t2), Ok(()));

    // A lost refetch is not repeated for the same lookup.
    let t3 = t2.saturating_add(Duration::from_secs(20));
    let stranger = sign_es256(&ec_key(2), &es_header("e2"), &id_claims());
    assert_eq!(
        verify_through(&mut cache, &stranger, t3),
        Err("fetch".into())
    );
    assert!(cache.poll_request(t3).is_some());
    cache.handle_transport_error();
    assert!(cache.poll_request(t3).is_none());
    assert_eq!(
        verify_through(&mut cache, &stranger, t3),
        Err("jwk_not_found".into())
    );

    cache.invalidate();
    assert!(cache.jwks().is_none());
    assert!(format!("{cache:?}").contains(JWKS_URI));
    let set = mixed_set();
    cache.set(set.clone(), t3);
    assert_eq!(cache.fresh_jwks(t3), Some(&set));
}

#[test]
fn jwks_cache_from_discovery() {
    let body = json!({
        "issuer": ISSUER, "token_endpoint": "https://as.example/token", "jwks_uri": JWKS_URI,
    })
    .to_string();
    let metadata = tokenkeeper::discovery::AuthorizationServerMetadata::parse(
        &HttpResponse::new(200, body),
        ISSUER,
        &Limits::default(),
    )
    .unwrap();
    let cache = JwksCache::from_metadata(&metadata).unwrap();
    assert_eq!(cache.jwks_uri(), JWKS_URI);
    assert!(
        cache
            .request()
            .headers
            .get("accept")
            .unwrap()
            .contains("jwk-set+json")
    );
    let mut without = metadata.clone();
    without.jwks_uri = None;
    assert_eq!(
        JwksCache::from_metadata(&without).unwrap_err().code(),
        "missing_jwks_uri"
    );
    assert_eq!(
        JwksCache::new("file:///etc/keys").unwrap_err().code(),
        "invalid_jwks_uri"
    );
}

// ---- logout tokens ----

fn logout_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "iat": NOW - 10, "exp": NOW + 110,
        "jti": "jti-1", "sub": "auth0|alice", "sid": "sid-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn logout_header(alg: &str, kid: &str) -> Value {
    json!({ "alg": alg, "kid": kid, "typ": "logout+jwt" })
}

fn logout_rs(claims: &Value) -> String {
    sign_rs256(&rsa_keys()[0], &logout_header("RS256", "r1"), claims)
}

fn with(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut claims = logout_claims();
    change(claims.as_object_mut().unwrap());
    logout_rs(&claims)
}

fn session(sub: &str, sid: Option<&str>) -> Session {
    let mut json = json!({
        "user": { "sub": sub },
        "tokenSet": { "accessToken": "at", "expiresAt": NOW + 60 },
    });
    if let Some(sid) = sid {
        json["internal"] = json!({ "sid": sid, "createdAt": NOW - 100 });
    }
    Session::from_json(json.to_string().as_bytes(), &Limits::default()).unwrap()
}

/// What a host's back-channel logout route does with the core: read the
/// body, validate the token once, end the sessions it names.
fn backchannel_logout(
    body: &str,
    set: &Jwks,
    replay: &mut ReplayCache,
    sessions: &mut Vec<Session>,
    at: UnixTime,
) -> Result<usize, LogoutTokenError> {
    let token = logout_token_from_form(body.as_bytes())?;
    let validated =
        LogoutTokenValidator::new(ISSUER, CLIENT, set).validate_once(&token, replay, at)?;
    let before = sessions.len();
    sessions.retain(|s| !validated.target().ends(s));
    Ok(before - sessions.len())
}

fn body(token: &str) -> String {
    format!("logout_token={}", form::encode(token))
}

fn fleet() -> Vec<Session> {
    vec![
        session("auth0|alice", Some("sid-1")),
        session("auth0|alice", Some("sid-2")),
        session("auth0|bob", Some("sid-3")),
        session("auth0|alice", None),
    ]
}

#[test]
fn a_logout_token_ends_the_sessions_it_names() {
    let set = mixed_set();
    let mut replay = ReplayCache::new();
    // By sub and sid: one session.
    let mut sessions = fleet();
    let ended = backchannel_logout(
        &body(&logout_rs(&logout_claims())),
        &set,
        &mut replay,
        &mut sessions,
        now(),
    );
    assert_eq!(ended, Ok(1));
    assert_eq!(sessions.len(), 3);
    // By sub only (ES256 this time): every session of the user.
    let mut sessions = fleet();
    let mut claims = logout_claims();
    claims.as_object_mut().unwrap().remove("sid");
    claims["jti"] = "jti-2".into();
    let es = sign_es256(&ec_key(1), &logout_header("ES256", "e1"), &claims);
    assert_eq!(
        backchannel_logout(&body(&es), &set, &mut replay, &mut sessions, now()),
        Ok(3)
    );
    assert_eq!(sessions.len(), 1);
    // By sid only.
    let mut sessions = fleet();
    let by_sid = with(|c| {
        c.remove("sub");
        c.insert("sid".into(), "sid-3".into());
        c.insert("jti".into(), "jti-3".into());
    });
    assert_eq!(
        backchannel_logout(&body(&by_sid), &set, &mut replay, &mut sessions, now()),
        Ok(1)
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.user().unwrap()["sub"] != "auth0|bob")
    );

    // What the validated token says.
    let token = LogoutTokenValidator::new(ISSUER, CLIENT, &set)
        .validate(
            &with(|c| drop(c.insert("jti".into(), "jti-9".into()))),
            now(),
        )
        .unwrap();
    assert_eq!(
        token.target(),
        &LogoutTarget {
            sub: Some("auth0|alice".into()),
            sid: Some("sid-1".into())
        }
    );
    assert_eq!(token.iss(), ISSUER);
    assert_eq!(token.jti(), "jti-9");
    assert_eq!(token.iat(), UnixTime::from_secs(NOW - 10));
    assert_eq!(token.exp(), Some(UnixTime::from_secs(NOW + 110)));
    // Remembered while its iat is inside the window and tolerance.
    assert_eq!(
        token.remember_until(),
        UnixTime::from_secs(NOW - 10 + 300 + 60 + 1)
    );
    assert_eq!(token.replay_key().len(), 64);
    assert_eq!(
        token.claims()["events"][BACKCHANNEL_LOGOUT_EVENT],
        json!({})
    );
    assert_eq!(token.clone().into_target().sid.as_deref(), Some("sid-1"));
    // A typ of application/logout+jwt, or none, is fine.
    let plain = sign_rs256(
        &rsa_keys()[0],
        &json!({"alg":"RS256","kid":"r1"}),
        &logout_claims(),
    );
    assert!(
        LogoutTokenValidator::new(ISSUER, CLIENT, &set)
            .validate(&plain, now())
            .is_ok()
    );
    let long_typ = sign_rs256(
        &rsa_keys()[0],
        &json!({"alg":"RS256","kid":"r1","typ":"application/logout+jwt"}),
        &logout_claims(),
    );
    assert!(
        LogoutTokenValidator::new(ISSUER, CLIENT, &set)
            .validate(&long_typ, now())
            .is_ok()
    );
    // An audience list naming the client.
    let listed = with(|c| drop(c.insert("aud".into(), json!(["other", CLIENT]))));
    assert!(
        LogoutTokenValidator::new(ISSUER, CLIENT, &set)
            .validate(&listed, now())
            .is_ok()
    );
}

#[test]
fn each_refusal_has_its_code_and_ends_nothing() {
    let set = mixed_set();
    let rsa = &rsa_keys()[0];
    let t = |s: &str| s.to_string();
    let tampered = {
        let good = logout_rs(&logout_claims());
        let mut evil = logout_claims();
        evil["sub"] = "auth0|bob".into();
        let parts: Vec<&str> = good.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            b64(evil.to_string().as_bytes()),
            parts[2]
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (tampered, "invalid_signature"),
        (
            sign_rs256(
                &rsa_keys()[1],
                &logout_header("RS256", "r1"),
                &logout_claims(),
            ),
            "invalid_signature",
        ),
        (
            format!(
                "{}.",
                signing_input(&json!({"alg":"none","typ":"logout+jwt"}), &logout_claims())
            ),
            "alg_none_refused",
        ),
        (
            sign_hs256(
                &public_key_secrets(rsa)[0],
                &logout_header("HS256", "r1"),
                &logout_claims(),
            ),
            "hmac_alg_refused",
        ),
        (
            sign_rs256(rsa, &logout_header("RS256", "unknown"), &logout_claims()),
            "jwk_not_found",
        ),
        (
            with(|c| drop(c.insert("iat".into(), (NOW - 361).into()))),
            "iat_too_old",
        ),
        (
            with(|c| drop(c.insert("iat".into(), (NOW + 61).into()))),
            "iat_in_future",
        ),
        (
            with(|c| drop(c.insert("exp".into(), (NOW - 60).into()))),
            "logout_token_expired",
        ),
        (
            with(|c| drop(c.insert("nonce".into(), "n-1".into()))),
            "nonce_present",
        ),
        (with(|c| drop(c.remove("events"))), "missing_events"),
        (
            with(|c| drop(c.insert("events".into(), json!({})))),
            "invalid_events",
        ),
        (
            with(|c| drop(c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" })))),
            "invalid_events",
        ),
        (
            with(|c| drop(c.insert("events".into(), json!([BACKCHANNEL_LOGOUT_EVENT])))),
            "invalid_events",
        ),
        (
            with(|c| {
                c.remove("sub");
                c.remove("sid");
            }),
            "missing_sub_and_sid",
        ),
        (
            with(|c| {
                c.insert("sub".into(), "".into());
                c.remove("sid");
            }),
            "missing_sub_and_sid",
        ),
        (
            with(|c| drop(c.insert("iss".into(), "https://evil.example/".into()))),
            "issuer_mismatch",
        ),
        (
            with(|c| drop(c.insert("aud".into(), "other".into()))),
            "audience_mismatch",
        ),
        (
            with(|c| drop(c.insert("aud".into(), json!(["a", "b"])))),
            "audience_mismatch",
        ),
        (
            with(|c| drop(c.insert("azp".into(), "other".into()))),
            "azp_mismatch",
        ),
        (with(|c| drop(c.remove("jti"))), "missing_jti"),
        (
            with(|c| drop(c.insert("jti".into(), "".into()))),
            "missing_jti",
        ),
        (with(|c| drop(c.remove("iat"))), "logout_token_malformed"),
        (
            with(|c| drop(c.insert("sid".into(), 5.into()))),
            "logout_token_malformed",
        ),
        (
            with(|c| drop(c.insert("aud".into(), json!([5])))),
            "logout_token_malformed",
        ),
        (
            sign_rs256(rsa, &rs_header("r1"), &logout_claims()),
            "invalid_logout_token_typ",
        ),
        (t("not-a-jwt"), "logout_token_malformed"),
    ];
    for (token, code) in cases {
        let mut sessions = fleet();
        let mut replay = ReplayCache::new();
        let result = backchannel_logout(&body(&token), &set, &mut replay, &mut sessions, now());
        assert_eq!(result.map_err(|e| e.code()), Err(code), "{code}");
        assert_eq!(sessions.len(), 4, "{code}: nothing ended");
        assert!(
            replay.is_empty(),
            "{code}: a refused token is not remembered"
        );
    }
    // A missing or doubled logout_token parameter.
    let mut sessions = fleet();
    let mut replay = ReplayCache::new();
    for bad in [
        "",
        "token=x",
        "logout_token=",
        "logout_token=a&logout_token=b",
    ] {
        assert_eq!(
            backchannel_logout(bad, &set, &mut replay, &mut sessions, now()).map_err(|e| e.code()),
            Err("missing_logout_token"),
        );
    }
    assert_eq!(
        logout_token_from_form(b"logout_token=\xff")
            .unwrap_err()
            .code(),
        "logout_token_malformed"
    );
    // sid required by the client's registration.
    let sub_only = with(|c| drop(c.remove("sid")));
    assert_eq!(
        LogoutTokenValidator::new(ISSUER, CLIENT, &set)
            .require_sid(true)
            .validate(&sub_only, now())
            .unwrap_err()
            .code(),
        "missing_sid"
    );
    assert_eq!(sessions.len(), 4);
}

#[test]
fn a_replayed_jti_is_refused_and_ends_nothing_more() {
    let set = mixed_set();
    let mut replay = ReplayCache::new();
    let token = logout_rs(&logout_claims());
    let mut sessions = fleet();
    assert_eq!(
        backchannel_logout(&body(&token), &set, &mut replay, &mut sessions, now()),
        Ok(1)
    );
    // The same token again, even to a fresh set of sessions: refused.
    let mut fresh = fleet();
    let later = now().saturating_add(Duration::from_secs(30));
    assert_eq!(
        backchannel_logout(&body(&token), &set, &mut replay, &mut fresh, later)
            .map_err(|e| e.code()),
        Err("jti_replayed")
    );
    assert_eq!(fresh.len(), 4);
    // Another token with the same jti from another issuer is another jti.
    assert_eq!(replay.len(), 1);
    assert!(replay.poll_timeout().is_some());
    // Once the window has passed, the jti is forgotten — and the token is
    // refused by its iat instead.
    let gone = UnixTime::from_secs(NOW - 10 + 361);
    replay.handle_timeout(gone);
    assert!(replay.is_empty());
    let validator = LogoutTokenValidator::new(ISSUER, CLIENT, &set);
    assert_eq!(
        validator
            .validate_once(&token, &mut replay, gone)
            .unwrap_err()
            .code(),
        "iat_too_old"
    );
    // A wider window keeps accepting (and remembering) it longer.
    let wide = validator
        .iat_window(Duration::from_secs(3600))
        .clock_tolerance(Duration::ZERO);
    let no_exp = with(|c| drop(c.remove("exp")));
    let t = wide.validate(&no_exp, gone).unwrap();
    assert_eq!(t.remember_until(), UnixTime::from_secs(NOW - 10 + 3600 + 1));
}

#[test]
fn the_replay_cache_is_bounded() {
    let set = mixed_set();
    let validator = LogoutTokenValidator::new(ISSUER, CLIENT, &set);
    let mut replay = ReplayCache::with_capacity(2);
    let token = |jti: &str, iat: u64| {
        with(|c| {
            c.insert("jti".into(), jti.into());
            c.insert("iat".into(), iat.into());
        })
    };
    let (a, b, c) = (token("a", NOW - 20), token("b", NOW - 10), token("c", NOW));
    validator.validate_once(&a, &mut replay, now()).unwrap();
    validator.validate_once(&b, &mut replay, now()).unwrap();
    // Full: the entry expiring soonest ("a") makes room.
    validator.validate_once(&c, &mut replay, now()).unwrap();
    assert_eq!(replay.len(), 2);
    assert_eq!(
        validator
            .validate_once(&b, &mut replay, now())
            .unwrap_err()
            .code(),
        "jti_replayed"
    );
    assert_eq!(
        validator
            .validate_once(&c, &mut replay, now())
            .unwrap_err()
            .code(),
        "jti_replayed"
    );
    assert_eq!(
        replay.poll_timeout(),
        Some(UnixTime::from_secs(NOW - 10 + 361))
    );
    assert_eq!(format!("{replay:?}"), "ReplayCache { len: 2, capacity: 2 }");
}

#[test]
fn targets_match_sessions() {
    let alice_1 = session("auth0|alice", Some("sid-1"));
    let no_sid = session("auth0|alice", None);
    let both = LogoutTarget {
        sub: Some("auth0|alice".into()),
        sid: Some("sid-1".into()),
    };
    let sub = LogoutTarget {
        sub: Some("auth0|alice".into()),
        sid: None,
    };
    let sid = LogoutTarget {
        sub: None,
        sid: Some("sid-1".into()),
    };
    let other_sid = LogoutTarget {
        sub: Some("auth0|alice".into()),
        sid: Some("sid-2".into()),
    };
    let empty = LogoutTarget {
        sub: None,
        sid: None,
    };
    assert!(both.ends(&alice_1) && sub.ends(&alice_1) && sid.ends(&alice_1));
    assert!(!other_sid.ends(&alice_1));
    assert!(sub.ends(&no_sid));
    assert!(!both.ends(&no_sid) && !sid.ends(&no_sid));
    assert!(!empty.ends(&alice_1) && !empty.matches(None, None));
    assert!(sid.matches(Some("anyone"), Some("sid-1")));
}

#[test]
fn errors_and_debug_hold_no_token() {
    let set = mixed_set();
    let token = with(|c| drop(c.insert("nonce".into(), "n".into())));
    let e = LogoutTokenValidator::new(ISSUER, CLIENT, &set)
        .validate(&token, now())
        .unwrap_err();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!format!("{e} {e:?}").contains(signature));
    let ok = LogoutTokenValidator::new(ISSUER, CLIENT, &set)
        .validate(&logout_rs(&logout_claims()), now())
        .unwrap();
    assert!(!format!("{ok:?}").contains(signature));
}

// ---- no panics ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let set = mixed_set();
        let text = String::from_utf8_lossy(&bytes);
        let _ = Jwks::from_json(&bytes, &Limits::default());
        let _ = jws::verify(&text, &set);
        let _ = jws::decode_header(&text);
        let _ = logout_token_from_form(&bytes);
        let _ = LogoutTokenValidator::new(ISSUER, CLIENT, &set).validate(&text, now());
        let mut cache = JwksCache::new(JWKS_URI).unwrap();
        let _ = cache.handle_response(&HttpResponse::new(200, bytes.clone()), now(), &Limits::default());
        let _ = cache.lookup(&text, now());
    }

    #[test]
    fn mutated_tokens_never_verify(index in 0usize..400, byte in any::<u8>()) {
        static GOOD: OnceLock<String> = OnceLock::new();
        let set = mixed_set();
        let good = GOOD.get_or_init(|| logout_rs(&logout_claims()));
        let mut bytes = good.clone().into_bytes();
        let i = index % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Strict base64url: no other spelling of the same bytes decodes.
        let result = LogoutTokenValidator::new(ISSUER, CLIENT, &set).validate(&text, now());
        prop_assert!(result.is_err(), "a mutated token verified: {}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Whatever tokens arrive and whenever, while the keys are fresh two
    /// fetches are never closer than the refetch interval, and a token of
    /// a known kid never waits for a fetch.
    #[test]
    fn unknown_kids_never_fetch_faster_than_the_interval(
        steps in proptest::collection::vec((0u64..40, any::<bool>(), any::<bool>()), 1..60),
        interval in 1u64..120,
    ) {
        let mut cache = JwksCache::new(JWKS_URI)
            .unwrap()
            .with_ttl(Duration::from_secs(1_000_000))
            .with_refetch_interval(Duration::from_secs(interval));
        let body = jwks_doc(&[ec_jwk(&ec_key(1), Some("known"))]);
        let token = |kid: &str| format!("{}.e30.AA", b64(es_header(kid).to_string().as_bytes()));
        let mut at = now();
        let mut fetches: Vec<UnixTime> = Vec::new();
        let mut in_flight: Option<UnixTime> = None;
        for (i, (advance, known, answer)) in steps.into_iter().enumerate() {
            at = at.saturating_add(Duration::from_secs(advance));
            let kid = if known { "known".to_string() } else { format!("unknown-{i}") };
            let fetch = matches!(cache.lookup(&token(&kid), at), KeyLookup::Fetch);
            if fetch && let Some(_request) = cache.poll_request(at) {
                prop_assert!(in_flight.is_none());
                fetches.push(at);
                in_flight = Some(at);
            }
            if known && cache.fresh_jwks(at).is_some() {
                prop_assert!(!fetch, "a known kid waited for a fetch");
            }
            if answer && let Some(sent) = in_flight.take() {
                cache
                    .handle_response(&HttpResponse::new(200, body.clone()), sent, &Limits::default())
                    .unwrap();
            }
        }
        // The first fetch fills the cache; every later one is a refetch.
        for pair in fetches.windows(2) {
            prop_assert!(pair[1].as_secs() - pair[0].as_secs() >= interval, "{fetches:?}");
        }
    }
}

#[test]
fn key_generation_is_seeded() {
    // The same seed, the same key: tests are reproducible.
    let again = rsa::PrivateKey::new(&mut TestRng(SeededEntropy::new(1)), 2048).unwrap();
    assert_eq!(again.n_bytes(), rsa_keys()[0].n_bytes());
    assert_eq!(rsa_keys()[0].n_bytes().len() * 8, 2048);
}
