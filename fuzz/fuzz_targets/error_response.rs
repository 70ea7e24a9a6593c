//! Token endpoint error responses (RFC 6749 §5.2): any body with an error
//! status, and the MFA details parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::HttpResponse;
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;
use tokenkeeper::__private::token::parse_mfa_required;

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let status = 400 + status % 200;
    let response = HttpResponse::new(status, body.to_vec());
    // A non-2xx status is never a token.
    assert!(TokenResponse::parse(&response, &Limits::default()).is_err());
    let _ = parse_mfa_required(&response, &Limits::default());
});
