//! Unverified JWT decoding, for assertions on tokens issued by the harness.
//!
//! Nothing here checks signatures: the resource server of the harness does
//! that. These helpers only look inside tokens the tests already trust.

use serde_json::Value;

use crate::util::b64url_decode;

fn part(jwt: &str, index: usize) -> Option<Value> {
    let segment = jwt.split('.').nth(index)?;
    serde_json::from_slice(&b64url_decode(segment)?).ok()
}

/// `true` if `token` looks like a compact JWS (three base64url JSON parts).
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && part(token, 0).is_some() && part(token, 1).is_some()
}

/// The protected header of a compact JWS.
///
/// # Panics
/// If `jwt` is not a compact JWS with a JSON header.
pub fn header(jwt: &str) -> Value {
    part(jwt, 0).unwrap_or_else(|| panic!("not a JWT (header): {jwt:.40}…"))
}

/// The claims (payload) of a compact JWS.
///
/// # Panics
/// If `jwt` is not a compact JWS with a JSON payload.
pub fn claims(jwt: &str) -> Value {
    part(jwt, 1).unwrap_or_else(|| panic!("not a JWT (claims): {jwt:.40}…"))
}

/// The `aud` claim as a list (a string `aud` becomes a one-element list).
pub fn audiences(jwt: &str) -> Vec<String> {
    match &claims(jwt)["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
