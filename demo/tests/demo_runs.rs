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
