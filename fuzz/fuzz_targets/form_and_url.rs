//! Form encoding, scope algebra and request building with arbitrary strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::__private::grant::RefreshRequest;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::__private::{form, scope};
use tokenkeeper::{ClientSecret, RefreshToken};

fuzz_target!(|input: (&str, &str, &str)| {
    let (a, b, c) = input;
    assert_eq!(form::decode(&form::encode(a)), a);
    let _ = form::parse(a);
    let merged = scope::merge(a, b);
    assert!(scope::covers(&merged, a) && scope::covers(&merged, b));
    let _ = scope::missing(a, b);
    let refresh_token = RefreshToken::new(c);
    let auth = ClientAuth::SecretBasic(ClientSecret::new(b));
    let request = RefreshRequest {
        token_endpoint: a,
        client_id: b,
        client_auth: &auth,
        refresh_token: &refresh_token,
        scope: Some(a),
        target: Some(c),
        target_parameter: TargetParameter::Both,
    }
    .build();
    let pairs = form::parse(std::str::from_utf8(&request.body).unwrap());
    assert_eq!(form::find(&pairs, "refresh_token").as_deref(), Some(c));
    assert_eq!(form::find(&pairs, "resource").as_deref(), Some(c));
});
