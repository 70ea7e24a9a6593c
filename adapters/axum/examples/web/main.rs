//! The example web app against the local authorization server, one command:
//!
//! ```text
//! cargo run -p tokenkeeper-axum --example web        # PORT=3000 by default
//! ```
//!
//! It builds the page's wasm route client when it is not there yet
//! (`scripts/axum-web-wasm.sh`: the wasm32 target and wasm-bindgen-cli,
//! `scripts/wasm-tests.sh install`), starts the test harness
//! (node-oidc-provider and two APIs on 127.0.0.1; `npm ci` in
//! `tests/harness` on first use), then serves the app on
//! `http://127.0.0.1:$PORT`. Log in as `alice` / `password`.

mod app;

use std::path::Path;

use tokenkeeper_integration::{Harness, HarnessOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let dir = Path::new(app::BrowserModule::DIR);
    if !dir.join("tokenkeeper_wasm_bg.wasm").exists() {
        println!(
            "building the page's wasm route client ({})",
            app::BrowserModule::SCRIPT
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = std::process::Command::new("bash")
            .arg(root.join(app::BrowserModule::SCRIPT))
            .status()?;
        if !status.success() {
            return Err(format!("{} failed: {status}", app::BrowserModule::SCRIPT).into());
        }
    }
    let browser = app::BrowserModule::load(dir)?;
    let harness = tokio::task::spawn_blocking(|| Harness::start(HarnessOptions::default())).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let auth = app::builder(harness.issuer(), &base).build().await?;
    let router = app::app(&auth, harness.resource_server(), &browser);
    println!("authorization server: {}", harness.issuer());
    println!("example app: {base}/  (log in as alice / password; Ctrl-C to stop)");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(harness);
    Ok(())
}
