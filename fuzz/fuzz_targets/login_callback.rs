//! Login callbacks (query strings from the browser) and authorization URL
//! building with arbitrary parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::SeededEntropy;
use tokenkeeper::login::LoginRequest;

fuzz_target!(|input: (&str, &str, &str, bool)| {
    let (callback, param, issuer, iss_required) = input;
    let mut entropy = SeededEntropy::new(1);
    let Ok((url, transaction)) =
        LoginRequest::new("https://as.example/authorize", "client", "https://app.example/cb")
            .scope(param)
            .audience(param)
            .param("prompt", param)
            .start(&mut entropy)
    else {
        return;
    };
    assert!(url.starts_with("https://as.example/authorize?"));
    let _ = transaction.validate_callback(callback, Some(issuer), iss_required);
    let _ = transaction.validate_callback(callback, None, false);
});
