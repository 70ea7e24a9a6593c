//! Token endpoint success responses: any body, any status. Built with
//! `--cfg fuzzing`, every parse is checked against the plain reading of the
//! body as a `serde_json::Value` object (the oracle in `token/response.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::HttpResponse;
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;

fuzz_target!(|data: &[u8]| {
    let response = HttpResponse::new(200, data.to_vec());
    if let Ok(parsed) = TokenResponse::parse(&response, &Limits::default()) {
        // A parsed response is always usable.
        assert!(!parsed.access_token.is_empty());
        let _ = parsed.expires_at(tokenkeeper::UnixTime::from_secs(u64::MAX - 5), core::time::Duration::from_secs(60));
    }
});
