//! Back-channel logout tokens, JWS verification and JWKS documents (issue
//! 18): any key set, any token, any logout POST body, through the JWKS
//! cache too.
//!
//! Input: one selector byte, then a JWKS document, a `0xFF` byte (never in
//! UTF-8 text), then a token or a `logout_token=…` form body. A document
//! that does not parse is replaced by the local provider's public test keys
//! (RS256 2048-bit and ES256), so arbitrary tokens meet real keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::id_token::IdTokenValidator;
use tokenkeeper::id_token::{Jwks, JwksCache, KeyLookup};
use tokenkeeper::__private::jws;
use tokenkeeper::Limits;
use tokenkeeper::logout_token::{
    LogoutTokenError, LogoutTokenValidator, ReplayCache, logout_token_from_form,
};
use tokenkeeper::{HttpResponse, IdToken, UnixTime};

/// The public half of `tests/harness/keys/provider-signing.jwks.json`.
const PROVIDER_KEYS: &str = r#"{"keys":[{"kty":"RSA","n":"6y3e4y2p_gMqkwjNgLds7SPQkfu5g315SA8rGXb-0rkndl0qHnaK9jHf1-EPe14d8ywqlcGVpPgAbP0jVmlbQ05rgpNQQZ_K9wg0qMtTFIysJ7n3kiSwf4C1YJJW1pwx7RBW4Uxij0I-0_RqT-i2pMR0-ERkX3bZlvA3YIWChZfKBkDDuFOYF49KV1DPoHwgvczE1mcN9uCG9WksnsPC-LnNXM7DBctLHnMENeznChi0G8l2_UaXDYJV4_663FLJD9gp43_PEQoQM4rVKCQyiF44Dh9iz7aMFRoQNvPh9OgfqMw5aWwSPcCiunHR9h1bpyyW7nNXgfwf5QUv1VYhMQ","e":"AQAB","kid":"harness-rs256","alg":"RS256","use":"sig"},{"kty":"EC","x":"2b0zGOTkAkaocXYOoOg8WIwGGObNL71WUY2rFH1pBGo","y":"YsnrkDJzlmnqZMCov8EH_7AOA2Gj84BOvGwVMvVQgIs","crv":"P-256","kid":"harness-es256","alg":"ES256","use":"sig"}]}"#;

const ISSUER: &str = "https://as.example/";
const CLIENT: &str = "client-1";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (document, tail) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    let limits = Limits::default();
    let fixed = Jwks::from_json(PROVIDER_KEYS.as_bytes(), &limits).expect("the test keys parse");
    let parsed = Jwks::from_json(document, &limits);
    if let Ok(set) = &parsed {
        assert!(set.len() <= tokenkeeper::id_token::MAX_JWKS_KEYS);
        for kid in set.kids() {
            assert!(set.contains_kid(kid));
        }
    }
    let set = parsed.unwrap_or_else(|_| fixed.clone());

    let text = String::from_utf8_lossy(tail).into_owned();
    let token = if text.starts_with("logout_token=") || text.contains('&') {
        match logout_token_from_form(tail) {
            Ok(token) => token,
            Err(_) => return,
        }
    } else {
        text
    };
    let now = UnixTime::from_secs(1_700_000_000 + u64::from(selector) * 97);

    let header = jws::decode_header(&token);
    for keys in [&set, &fixed] {
        if let Ok(verified) = jws::verify(&token, keys) {
            // A verified token has an accepted header.
            assert_eq!(Ok(&verified), header.as_ref());
        }
    }
    let _ = IdTokenValidator::new(ISSUER, CLIENT).jwks(&set).validate(
        &IdToken::new(token.clone()),
        None,
        now,
    );

    let validator = LogoutTokenValidator::new(ISSUER, CLIENT, &set).require_sid(selector & 1 == 1);
    let mut replay = ReplayCache::with_capacity(usize::from(selector % 4) + 1);
    if let Ok(first) = validator.validate_once(&token, &mut replay, now) {
        let target = first.target();
        assert!(target.sub.is_some() || target.sid.is_some());
        assert!(first.remember_until() > now);
        assert_eq!(
            validator.validate_once(&token, &mut replay, now),
            Err(LogoutTokenError::Replayed)
        );
    }
    replay.handle_timeout(now);

    // The cache: one fetch at a time, the document as the answer.
    let mut cache = JwksCache::new("https://as.example/jwks").expect("a valid URI");
    for round in 0..3u64 {
        let at = now.saturating_add(core::time::Duration::from_secs(round * 61));
        match cache.lookup(&token, at) {
            KeyLookup::Fetch => {
                if let Some(_request) = cache.poll_request(at) {
                    assert!(cache.poll_request(at).is_none());
                    let status = if selector & 2 == 0 { 200 } else { 500 };
                    let _ = cache.handle_response(
                        &HttpResponse::new(status, document.to_vec()),
                        at,
                        &limits,
                    );
                    assert!(!cache.is_fetching());
                }
            }
            KeyLookup::Ready(keys) => {
                let _ = jws::verify(&token, keys);
            }
            _ => {}
        }
    }
    let _ = cache.poll_timeout();
});
