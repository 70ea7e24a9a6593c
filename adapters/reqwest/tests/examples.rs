//! The examples `client_credentials`, `custom_store`, `login` and `dpop`
//! run as their own processes against the local authorization server
//! (node-oidc-provider, started by the harness); the `login` and `dpop`
//! checks are shared with the ureq adapter's
//! (`tokenkeeper_integration::example_runs`). `get_token_async` is run in
//! `integration.rs`.
//!
//! Plain `cargo test -p tokenkeeper-reqwest` builds the examples; `--test
//! examples` alone does not (`example()` then says so).

use tokenkeeper_integration::example_runs::{self, temp_dir};
use tokenkeeper_integration::util::example;
use tokenkeeper_integration::{API1, CONFIDENTIAL_POST, Harness, HarnessOptions, jwt, pkce_login};

#[test]
fn the_login_example_logs_alice_in_and_saves_a_private_session() {
    example_runs::the_login_example_logs_alice_in_and_saves_a_private_session("reqwest");
}

#[test]
fn the_dpop_example_binds_tokens_to_one_key_kept_on_disk() {
    example_runs::the_dpop_example_binds_tokens_to_one_key_kept_on_disk("reqwest");
}

#[test]
fn the_client_credentials_example_gets_one_machine_token() {
    let output = example("client_credentials").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2), "usage without environment");

    let h = Harness::start(HarnessOptions::default());
    let output = example("client_credentials")
        .env_clear()
        .env("TOKENKEEPER_ISSUER", h.issuer())
        .env("TOKENKEEPER_CLIENT_ID", CONFIDENTIAL_POST.id)
        .env(
            "TOKENKEEPER_CLIENT_SECRET",
            CONFIDENTIAL_POST.secret.unwrap(),
        )
        .env("TOKENKEEPER_RESOURCE", API1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("Bearer token for {API1}")),
        "{stdout}"
    );
    assert!(stdout.contains("from the cache"), "{stdout}");
    let stats = h.stats();
    assert_eq!(
        stats.grant("client_credentials"),
        1,
        "asked twice, sent once"
    );
    assert_eq!(stats.recent_token_requests[0]["params"]["resource"], API1);
}

#[test]
fn the_custom_store_example_saves_every_rotation_in_its_async_store() {
    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir("reqwest", "custom-store");
    let file = dir.join("session.json");
    let run = |refresh_token: &str| {
        let output = example("custom_store")
            .env_clear()
            .env("TOKENKEEPER_ISSUER", h.issuer())
            .env("TOKENKEEPER_CLIENT_ID", CONFIDENTIAL_POST.id)
            .env(
                "TOKENKEEPER_CLIENT_SECRET",
                CONFIDENTIAL_POST.secret.unwrap(),
            )
            .env("TOKENKEEPER_RESOURCE", API1)
            .env("TOKENKEEPER_SESSION_FILE", &file)
            .env("TOKENKEEPER_REFRESH_TOKEN", refresh_token)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("Bearer token"), "{stdout}");
        stdout
    };
    let tokens = pkce_login(&h, &CONFIDENTIAL_POST, "openid offline_access", &[API1]);
    let original = tokens["refresh_token"].as_str().unwrap();
    h.reset_stats();
    let first = run(original);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    let saved =
        tokenkeeper::Session::from_json(&std::fs::read(&file).unwrap(), &Default::default())
            .unwrap();
    let rotated = saved.token_set().refresh_token.as_ref().unwrap().secret();
    assert_ne!(rotated, original, "the rotation landed in the store");
    assert_eq!(
        jwt::audiences(saved.token_set().access_token.secret()),
        [API1]
    );
    // The second run loads the file: the cached token, no request (the
    // spent refresh token in the environment is not used).
    let second = run(original);
    assert_eq!(first, second);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
