//! Issue 18 part 1 against the real server: discovery of the local
//! node-oidc-provider, its JWKS fetched through the core's sans-IO
//! `JwksCache` (the test plays the host and sends each request), a real
//! login, and the provider's RS256 ID token (and ES256 JWT access token)
//! verified by signature.
//!
//! The manager's own use of the JWKS at login and refresh is in
//! `jwks_login.rs`; back-channel logout end to end (the provider POSTing a
//! logout token to the app) in `adapters/axum/tests/backchannel.rs`.

#[macro_use]
#[allow(unused_macros)]
mod scenarios_common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scenarios_common::{Driver, SharedStore, Ureq, config, login};
use tokenkeeper::__private::jws;
use tokenkeeper::__private::jws::Algorithm;
use tokenkeeper::Limits;
use tokenkeeper::id_token::IdTokenValidator;
use tokenkeeper::id_token::{Jwks, JwksCache, KeyLookup};
use tokenkeeper::{HttpRequest, HttpResponse, IdToken, UnixTime};
use tokenkeeper_integration::{CONFIDENTIAL_POST, Harness, HarnessOptions};

fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

/// The host's part: send a request the core described, hand back the
/// answer whatever its status.
fn send(h: &Harness, request: &HttpRequest) -> HttpResponse {
    let mut call = h.agent().get(&request.url);
    for (name, value) in request.headers.iter() {
        call = call.header(name, value);
    }
    let mut response = call
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("the JWKS request reaches the provider");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().expect("JWKS body");
    HttpResponse::new(status, body)
}

/// Looks up the keys for `token` at `at`, fetching through the cache as
/// often as it asks (at most `max_fetches`); the number of fetches made.
fn keys_for<'c>(
    h: &Harness,
    cache: &'c mut JwksCache,
    token: &str,
    at: UnixTime,
    max_fetches: usize,
) -> (Result<&'c Jwks, &'static str>, usize) {
    let mut fetches = 0;
    loop {
        match cache.lookup(token, at) {
            KeyLookup::Ready(_) => break,
            KeyLookup::Refused(e) => return (Err(e.code()), fetches),
            KeyLookup::Fetch => {
                assert!(fetches < max_fetches, "more fetches than expected");
                let request = cache.poll_request(at).expect("no other fetch in flight");
                let response = send(h, &request);
                cache
                    .handle_response(&response, at, &Limits::default())
                    .expect("the provider's JWKS parses");
                fetches += 1;
            }
            _ => unreachable!("a new KeyLookup variant"),
        }
    }
    match cache.lookup(token, at) {
        KeyLookup::Ready(set) => (Ok(set), fetches),
        _ => unreachable!("ready a moment ago"),
    }
}

#[test]
fn the_providers_rs256_id_token_verifies_by_its_jwks() {
    let h = Harness::start(HarnessOptions::default());
    let metadata = tokenkeeper_ureq::discover(h.agent(), h.issuer()).expect("discovery");
    let mut cache = JwksCache::from_metadata(&metadata).expect("a jwks_uri");
    assert_eq!(cache.jwks_uri(), metadata.jwks_uri.as_deref().unwrap());

    let keeper = Ureq::build(config(&h, &CONFIDENTIAL_POST), SharedStore::default(), None);
    let access = login(&h, &keeper, &CONFIDENTIAL_POST).expect("login");
    let session = keeper.session().expect("a session");
    let id_token = session
        .token_set()
        .id_token
        .clone()
        .expect("an openid login has an ID token");

    // The provider signs ID tokens with RS256, by a kid of its JWKS.
    let header = jws::decode_header(id_token.secret()).expect("a JWS header");
    assert_eq!(header.alg, Algorithm::Rs256);
    assert!(header.kid.is_some());

    // Nothing cached: exactly one fetch, then the keys.
    let t0 = now();
    let (set, fetches) = keys_for(&h, &mut cache, id_token.secret(), t0, 1);
    assert_eq!(fetches, 1);
    let set = set.expect("the ID token's key is in the JWKS").clone();
    assert!(set.contains_kid(header.kid.as_deref().unwrap()));
    assert_eq!(set.len(), 2, "the provider's RS256 and ES256 keys");

    let claims = IdTokenValidator::new(h.issuer(), CONFIDENTIAL_POST.id)
        .jwks(&set)
        .validate(&id_token, None, t0)
        .expect("the provider's RS256 signature verifies");
    assert_eq!(claims.sub(), "alice");

    // Its JWT access tokens (for a resource) are ES256, by the same JWKS.
    let access_token = access.token.secret();
    let verified = jws::verify(access_token, &set).expect("an ES256 JWT access token");
    assert_eq!(verified.alg, Algorithm::Es256);
    assert_eq!(verified.typ.as_deref(), Some("at+jwt"));

    // A second token with a cached kid: no fetch.
    let (again, fetches) = keys_for(&h, &mut cache, id_token.secret(), t0, 0);
    assert!(again.is_ok());
    assert_eq!(fetches, 0);

    // The real token, tampered with: refused.
    let parts: Vec<&str> = id_token.secret().split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "mallory".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(
        IdTokenValidator::new(h.issuer(), CONFIDENTIAL_POST.id)
            .jwks(&set)
            .validate(&IdToken::new(tampered), None, now())
            .unwrap_err()
            .code(),
        "invalid_signature"
    );

    // The real signature under a kid the provider does not have: right
    // after a fetch the unknown kid is refused without another one…
    let mut unknown_header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    unknown_header["kid"] = "rotated-away".into();
    let unknown = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(unknown_header.to_string()),
        parts[1],
        parts[2]
    );
    let (refused, fetches) = keys_for(&h, &mut cache, &unknown, t0, 0);
    assert_eq!(refused.unwrap_err(), "jwk_not_found");
    assert_eq!(fetches, 0);
    // …and past the refetch interval (60 s) it is refetched once from the
    // provider, still unknown, then refused.
    let later = t0.saturating_add(Duration::from_secs(61));
    let (refused, fetches) = keys_for(&h, &mut cache, &unknown, later, 1);
    assert_eq!(refused.unwrap_err(), "jwk_not_found");
    assert_eq!(fetches, 1, "one refetch for the unknown kid");
    // The refetched set still verifies the real token.
    let (set, fetches) = keys_for(&h, &mut cache, id_token.secret(), later, 0);
    assert_eq!(fetches, 0);
    assert!(jws::verify(id_token.secret(), set.unwrap()).is_ok());
}
