//! ID tokens: decoding and every validation path, with arbitrary tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::id_token::{IdTokenClaims, IdTokenValidator};
use tokenkeeper::{IdToken, UnixTime};

fuzz_target!(|input: (&str, &str, u32)| {
    let (token, nonce, now) = input;
    let token = IdToken::new(token);
    let _ = IdTokenClaims::decode_unvalidated(&token);
    let validator = IdTokenValidator::new("https://as.example", "client");
    let now = UnixTime::from_secs(u64::from(now));
    let _ = validator.validate_login(&token, nonce, now);
    let _ = validator.validate_refresh(&token, nonce, now);
    let _ = tokenkeeper::__private::jwt::decode_claims(token.secret());
});
