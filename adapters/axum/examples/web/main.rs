//! The example web app against the local authorization server, one command:
//!
//! ```text
//! cargo run -p tokenkeeper-axum --example web        # PORT=3000 by default
//! ```
//!
//! It starts the test harness (node-oidc-provider and two APIs on
//! 127.0.0.1; `npm ci` in `tests/harness` on first use), then serves the
//! app on `http://127.0.0.1:$PORT`. Log in as `alice` / `password`.

mod app;

use tokenkeeper_integration::{Harness, HarnessOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let harness = tokio::task::spawn_blocking(|| Harness::start(HarnessOptions::default())).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let auth = app::builder(harness.issuer(), &base).build().await?;
    let router = app::app(&auth, harness.resource_server());
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
