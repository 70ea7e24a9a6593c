//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1) from resource servers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::Headers;
use tokenkeeper::__private::dpop::{bearer_or_dpop_invalid_token, dpop_error, is_use_dpop_nonce, parse_challenges, parse_www_authenticate};

fuzz_target!(|fields: Vec<&str>| {
    if let Some(first) = fields.first() {
        if let Ok(challenges) = parse_challenges(first) {
            for challenge in &challenges {
                // Names come back lower-case.
                assert_eq!(challenge.scheme(), challenge.scheme().to_ascii_lowercase());
                let _ = challenge.error();
                let _ = challenge.token68();
            }
            let _ = dpop_error(&challenges);
        }
    }
    let headers: Headers = fields.iter().take(8).map(|v| ("WWW-Authenticate", *v)).collect();
    if let Ok(challenges) = parse_www_authenticate(&headers) {
        let _ = is_use_dpop_nonce(&challenges);
        let _ = bearer_or_dpop_invalid_token(&challenges);
    }
});
