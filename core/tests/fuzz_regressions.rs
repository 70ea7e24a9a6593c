//! Inputs found by fuzzing, kept as regression tests.

use tokenkeeper::Headers;
use tokenkeeper::dpop::NonceCache;

/// fuzz/dpop_inputs: a `DPoP-Nonce` value with surrounding whitespace is
/// stored trimmed (the target's own assertion expected the raw value).
#[test]
fn nonce_with_surrounding_whitespace_is_trimmed() {
    let mut cache = NonceCache::new();
    let mut headers = Headers::new();
    headers.append("DPoP-Nonce", " \tn-1\t ");
    assert!(cache.learn("https://as.example/token", &headers));
    assert_eq!(cache.peek("https://as.example/other"), Some("n-1"));
    // Whitespace alone is no nonce.
    let mut blank = Headers::new();
    blank.append("DPoP-Nonce", " \t ");
    assert!(!cache.learn("https://rs.example/", &blank));
    assert_eq!(cache.peek("https://rs.example/"), None);
}
