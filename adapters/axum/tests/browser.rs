//! The headless-Chromium end-to-end test: the example app
//! (`examples/web/app.rs`, the very code `cargo run --example web` serves)
//! against the real authorization server, driven by `tests/js/e2e.mjs`
//! (playwright-core on Debian's `/usr/bin/chromium`): protected page →
//! login page → form → consent → the app showing the user → the page's
//! JavaScript asks `/auth/access-token` through the wasm adapter's route
//! client (`getAccessTokenFromRoute`) and calls API 1, then API 2 through
//! the multi-resource refresh token → logout → login asked again. Before
//! the login the same client gets the route's 401 `missing_session` as a
//! typed error. Screenshots of each step go to `target/axum-e2e/`; any
//! console error (but the one 401 of that call) fails the test.
//!
//! The page's wasm module is built by `scripts/axum-web-wasm.sh` (run by
//! scripts/test.sh, and by this test when the module is missing).
//!
//! Without `/usr/bin/chromium` (or `$CHROMIUM`) the test says SKIPPED and
//! passes, unless `AXUM_E2E_REQUIRED=1` (scripts/test.sh sets it after
//! installing chromium).

#[path = "../examples/web/app.rs"]
#[allow(dead_code)]
mod app;

use std::path::Path;

use tokenkeeper_integration::{Harness, HarnessOptions};

const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(
            std::env::var("AXUM_E2E_REQUIRED").as_deref() != Ok("1"),
            "{chromium} is missing (apt-get install -y chromium)"
        );
        eprintln!("SKIPPED: {chromium} is missing (apt-get install -y chromium)");
        return;
    }
    assert!(
        Path::new(JS_DIR)
            .join("node_modules/playwright-core")
            .exists(),
        "run `npm ci` in {JS_DIR} first"
    );
    // The page's wasm module: built here when missing (scripts/test.sh
    // builds it fresh before the tests).
    let dir = Path::new(app::BrowserModule::DIR);
    if !dir.join("tokenkeeper_wasm_bg.wasm").exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(app::BrowserModule::SCRIPT);
        let status = std::process::Command::new("bash")
            .arg(&script)
            .status()
            .expect("bash");
        assert!(
            status.success(),
            "{} failed: {status}",
            app::BrowserModule::SCRIPT
        );
    }
    let browser = app::BrowserModule::load(dir).unwrap_or_else(|e| {
        panic!(
            "the page's wasm module is not in {}: {e}",
            app::BrowserModule::DIR
        )
    });
    let harness = Harness::start(HarnessOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = app::builder(harness.issuer(), &base).build().await.unwrap();
    let router = app::app(&auth, harness.resource_server(), &browser);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // target/axum-e2e, next to the build's other artefacts.
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/axum-e2e")
        .to_string_lossy()
        .into_owned();
    let _ = std::fs::remove_dir_all(&out);
    // Bounded: a hung browser run fails the test instead of hanging CI.
    // Node and the Chromium it starts run in their own process group, killed
    // whole when the test gives up on them or fails (a SIGKILL to node alone
    // would leave Chromium running: its `finally` never runs).
    let child = tokio::process::Command::new("node")
        .args(["e2e.mjs", &base, harness.issuer(), &out])
        .env("CHROMIUM", &chromium)
        .current_dir(JS_DIR)
        .process_group(0)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    let _group = KillGroupOnDrop(child.id().expect("node's pid"));
    let run = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        child.wait_with_output(),
    )
    .await
    .expect("the browser run finished within 5 minutes")
    .expect("node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "e2e failed:\n{stdout}\n{stderr}");
    eprintln!("{stdout}");
    for step in [
        "no-session-error",
        "login-page",
        "consent",
        "dashboard",
        "called-api1",
        "called-api2",
        "logged-out",
        "login-again",
    ] {
        assert!(stdout.contains(step), "step {step} missing:\n{stdout}");
    }

    // The server saw what the page did: the two API calls, API 2's token
    // from a refresh of the login's (multi-resource) refresh token, the
    // refresh token revoked at logout.
    let stats = harness.stats();
    assert!(stats.resource_requests >= 2, "{stats:?}");
    assert_eq!(stats.grant("refresh_token"), 1, "{stats:?}");
    let refresh = stats
        .recent_token_requests
        .iter()
        .find(|r| r["grant_type"] == "refresh_token")
        .unwrap();
    assert_eq!(refresh["status"], 200, "{refresh}");
    assert_eq!(refresh["params"]["resource"], app::API2, "{refresh}");
}

/// Kills process group `.0` (node and its Chromium) when dropped: at the
/// end of the test, on a timeout or a failed assertion alike. Nothing is
/// left to kill after a run that ended by itself.
struct KillGroupOnDrop(u32);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
