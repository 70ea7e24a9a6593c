//! Everything DPoP reads from outside: `DPoP-Nonce` headers, URLs (`htu`,
//! origins), JWKs and PKCS#8 keys, DER signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::Headers;
use tokenkeeper::dpop::{DpopKey, EcdsaSignature, PublicJwk};
use tokenkeeper::__private::dpop::{NonceCache, htu, is_valid_nonce, origin};

fuzz_target!(|input: (&str, &str, &[u8], u8)| {
    let (url, text, bytes, capacity) = input;
    if let Ok(normalised) = htu(url) {
        assert!(!normalised.contains('?') && !normalised.contains('#'));
        assert_eq!(htu(&normalised).as_deref(), Ok(normalised.as_str()));
    }
    let _ = origin(url);
    let mut cache = NonceCache::with_capacity(usize::from(capacity % 8));
    let mut headers = Headers::new();
    headers.append("DPoP-Nonce", text);
    // The header value's surrounding whitespace is not part of the nonce.
    let trimmed = text.trim_matches([' ', '\t']);
    if cache.learn(url, &headers) {
        assert!(is_valid_nonce(trimmed));
        assert_eq!(cache.peek(url), Some(trimmed));
    }
    assert!(cache.len() <= usize::from(capacity % 8));
    let _ = PublicJwk::from_json(text);
    let _ = DpopKey::from_jwk(text);
    let _ = DpopKey::from_pkcs8_der(bytes);
    let _ = DpopKey::from_pkcs8_pem(text);
    let _ = EcdsaSignature::from_der(bytes);
    let _ = EcdsaSignature::from_slice(bytes);
});
