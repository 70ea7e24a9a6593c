//! Inputs found by fuzzing, kept as regression tests.

use tokenkeeper::__private::dpop::NonceCache;
use tokenkeeper::Headers;

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

/// fuzz/session_json: an unknown member holding a float whose shortest
/// form needs correct rounding (`1.66666666666669e+22`) must read back as the
/// same number after a write (serde_json's `float_roundtrip`).
#[test]
fn unknown_float_members_survive_round_trips() {
    use tokenkeeper::Session;
    let raw = br#"{"tokenSet":{"accessToken":"a","e,xpiresAt":1.66666666666669e+22,"x":0.1},"in|ernal":{"n":2.2250738585072014e-308}}"#;
    let first = Session::from_json(raw, &Default::default())
        .unwrap()
        .to_json();
    let second = Session::from_json(first.as_bytes(), &Default::default())
        .unwrap()
        .to_json();
    assert_eq!(first, second);
    let value: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(
        value["tokenSet"]["e,xpiresAt"].as_f64(),
        Some(1.66666666666669e22)
    );
}
