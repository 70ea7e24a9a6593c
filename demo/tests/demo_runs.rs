//! The demo runs the whole lifecycle against the local server and says so.

#[test]
fn the_demo_runs_the_whole_lifecycle() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper-demo"))
        .env_remove("TOKENKEEPER_ISSUER")
        .output()
        .expect("the demo starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "code exchanged: DPoP token",
        "token requests sent: 0",
        "the server's DPoP nonce was remembered: 0 new nonce challenges",
        "aud = \"https://api2.example.com\"",
        "call 1: HTTP 200 after 2 request(s) (1 nonce challenge)",
        "call 2: HTTP 200 after 1 request(s) (0 nonce challenge)",
        "get_access_token now answers: logged_out",
        "Stopped the local server. Done.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Secrets are shortened, never printed whole.
    assert!(!stdout.contains("secret-basic-1"));
}

#[test]
fn a_real_tenant_needs_its_variables() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper-demo"))
        .env("TOKENKEEPER_ISSUER", "http://127.0.0.1:9")
        .env_remove("TOKENKEEPER_CLIENT_ID")
        .output()
        .expect("the demo starts");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TOKENKEEPER_CLIENT_ID is not set"));
}

use tokenkeeper_integration::tls_server as server;

#[test]
fn a_real_tenant_over_https_with_its_ca_from_a_file() {
    let server = server::https_with(|base| {
        vec![
            server::discovery(base),
            server::tokens("first-access-token", "rt-2-rotated"),
            server::tokens("second-access-token", "rt-3-rotated"),
        ]
    });
    let ca = std::env::temp_dir().join(format!("tokenkeeper-demo-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tokenkeeper-demo"))
        .env("TOKENKEEPER_ISSUER", &server.base)
        .env("TOKENKEEPER_CLIENT_ID", "client")
        .env("TOKENKEEPER_CLIENT_SECRET", "a-client-secret")
        .env("TOKENKEEPER_REFRESH_TOKEN", "rt-1-original")
        .env("TOKENKEEPER_CA_FILE", &ca)
        .env_remove("TOKENKEEPER_AUDIENCE")
        .output()
        .expect("the demo starts");
    let _ = std::fs::remove_file(&ca);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("token endpoint {}/token", server.base)),
        "{stdout}"
    );
    assert!(stdout.contains("rotated"), "{stdout}");
    // Discovery, the refresh, the forced refresh; the cached call sent nothing.
    assert_eq!(server.requests(), 3);
}
