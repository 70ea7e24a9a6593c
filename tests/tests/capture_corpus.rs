//! Captures real responses of node-oidc-provider as fuzz seeds (run with
//! `cargo test -p tokenkeeper-integration --test capture_corpus -- --ignored`;
//! the seeds are committed under `fuzz/corpus/`).

use std::path::PathBuf;

use tokenkeeper_integration::{
    API1, API2, CONFIDENTIAL_POST, Harness, HarnessOptions, pkce_login, resource_request,
    token_request,
};

fn corpus(target: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn save(target: &str, name: &str, bytes: &[u8]) {
    assert!(!bytes.is_empty(), "{target}/{name} is empty");
    std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
}

#[test]
#[ignore = "writes fuzz seeds; run by hand"]
fn capture_real_responses() {
    let h = Harness::start(HarnessOptions::default());
    let login = pkce_login(
        &h,
        &CONFIDENTIAL_POST,
        "openid profile email offline_access read:data",
        &[API1, API2],
    );
    save("token_response", "login", login.to_string().as_bytes());
    save(
        "session_json",
        "login-shaped",
        serde_json::json!({
            "user": {"sub": "alice"},
            "tokenSet": {
                "accessToken": login["access_token"], "idToken": login["id_token"],
                "refreshToken": login["refresh_token"], "scope": login["scope"],
                "expiresAt": 1_900_000_000u64, "token_type": "Bearer"
            },
            "internal": {"sid": "x", "createdAt": 1}
        })
        .to_string()
        .as_bytes(),
    );
    let rt = login["refresh_token"].as_str().unwrap().to_string();
    let refreshed = token_request(
        &h,
        &CONFIDENTIAL_POST,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("resource", API2),
        ],
        &[],
    );
    assert_eq!(refreshed.status, 200);
    save("token_response", "refresh-api2", refreshed.body.as_bytes());
    let replay = token_request(
        &h,
        &CONFIDENTIAL_POST,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        &[],
    );
    assert_eq!(replay.status, 400);
    save("error_response", "invalid-grant", replay.body.as_bytes());
    let bad_target = token_request(
        &h,
        &CONFIDENTIAL_POST,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("resource", "https://api1.example.com/"),
        ],
        &[],
    );
    save("error_response", "bad-request", bad_target.body.as_bytes());
    let discovery = h.discovery().to_string();
    save("discovery_metadata", "oidc-provider", discovery.as_bytes());
    if let Some(id_token) = login["id_token"].as_str() {
        save("id_token_claims", "login", id_token.as_bytes());
    }
    let denied = resource_request(
        &h,
        "GET",
        "/api2/data",
        Some(&format!(
            "Bearer {}",
            login["access_token"].as_str().unwrap()
        )),
        None,
    );
    assert_eq!(denied.status, 401);
    if let Some(challenge) = denied.header("www-authenticate") {
        save("www_authenticate", "oidc-provider-rs", challenge.as_bytes());
    }
}
