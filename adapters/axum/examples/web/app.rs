//! The example web app: a public home page, a protected dashboard showing
//! the user, whose own JavaScript asks `/auth/access-token` for a token
//! for each of two APIs through the wasm adapter's route client and calls
//! them with it (the second API's token comes from the same
//! multi-resource refresh token), and logout.
//!
//! ```text
//! /           public: a link to the dashboard, and a token asked for with
//!             no session (the route client's typed error: missing_session)
//! /dashboard  require_login (redirect to /auth/login?returnTo=/dashboard)
//!   page JS ─► getAccessTokenFromRoute('/auth/access-token', {audience})   (wasm)
//!           ─► fetch(API, Authorization: <type> <token>)
//! /pkg/*      the wasm route client (scripts/axum-web-wasm.sh builds it)
//! /auth/*     the five routes (login, callback, logout, profile, access-token)
//! ```
//!
//! Shared by `examples/web/main.rs` (the runnable app) and
//! `tests/browser.rs` (the headless-Chromium end-to-end test).

use std::path::Path;

use axum::Router;
use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper_axum::{Auth, AuthBuilder, MissingSession, User};

/// The harness's confidential web client (`tests/harness/server.mjs`).
pub const CLIENT_ID: &str = "axum-web";
/// Its secret.
pub const CLIENT_SECRET: &str = "axum-web-secret-1";
/// The example's cookie secret (a real app reads `AUTH0_SECRET`).
pub const SECRET: &[u8] = b"example-secret-change-me-at-least-32-bytes";
/// The first API (the login's audience).
pub const API1: &str = "https://api1.example.com";
/// The second API, served by the same refresh token (RFC 8707).
pub const API2: &str = "https://api2.example.com";

/// The integration's configuration for the harness at `issuer`, the app
/// at `base_url`.
pub fn builder(issuer: &str, base_url: &str) -> AuthBuilder {
    Auth::builder(issuer, CLIENT_ID, base_url, SECRET)
        .client_secret(CLIENT_SECRET)
        .scope("openid profile email offline_access read:data")
        .audience(API1)
        .login_resource(API2)
        // The harness is a strict RFC 8707 server that does not announce it.
        .target_parameter(TargetParameter::Resource)
        // node-oidc-provider grants offline_access only with consent.
        .authorization_param("prompt", "consent")
        .missing_session(MissingSession::RedirectToLogin)
}

/// The wasm adapter built for the browser (`scripts/axum-web-wasm.sh`):
/// wasm-bindgen's ES module and the wasm it loads, served at `/pkg/`.
#[derive(Clone)]
pub struct BrowserModule {
    js: axum::body::Bytes,
    wasm: axum::body::Bytes,
}

impl BrowserModule {
    /// Where the build script puts it.
    pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web/pkg");
    /// The build script, from the workspace root.
    pub const SCRIPT: &str = "scripts/axum-web-wasm.sh";

    /// Reads the module from `dir`.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        Ok(BrowserModule {
            js: std::fs::read(dir.join("tokenkeeper_wasm.js"))?.into(),
            wasm: std::fs::read(dir.join("tokenkeeper_wasm_bg.wasm"))?.into(),
        })
    }

    fn routes(&self) -> Router {
        let (js, wasm) = (self.js.clone(), self.wasm.clone());
        Router::new()
            .route(
                "/pkg/tokenkeeper_wasm.js",
                get(move || async move { ([(header::CONTENT_TYPE, "text/javascript")], js) }),
            )
            .route(
                "/pkg/tokenkeeper_wasm_bg.wasm",
                // application/wasm: the browser compiles it while it streams.
                get(move || async move { ([(header::CONTENT_TYPE, "application/wasm")], wasm) }),
            )
    }
}

/// The app: pages, the wasm module, the auth routes, the layer.
/// `resource_server` is the APIs' origin (`http://127.0.0.1:port`).
pub fn app(auth: &Auth, resource_server: &str, browser: &BrowserModule) -> Router {
    let api1 = format!("{resource_server}/api1/data");
    let api2 = format!("{resource_server}/api2/data");
    let dashboard = Router::new()
        .route(
            "/dashboard",
            get(move |user: User| {
                let (api1, api2) = (api1.clone(), api2.clone());
                async move { Html(dashboard_page(&user, &api1, &api2)) }
            }),
        )
        .layer(auth.require_login());
    Router::new()
        .route("/", get(|| async { Html(HOME) }))
        .merge(dashboard)
        .merge(browser.routes())
        .merge(auth.router())
        .layer(auth.layer())
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>tokenkeeper-axum example</title>
<style>body{font-family:sans-serif;max-width:46rem;margin:2rem auto}pre{background:#eee;padding:.5rem;white-space:pre-wrap}</style>
</head><body>"#;

const HOME: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>tokenkeeper-axum example</title></head><body data-wasm="loading">
<h1>tokenkeeper-axum example</h1>
<p><a id="dashboard" href="/dashboard">Dashboard</a> (asks you to log in)</p>
<p><button id="token-without-session">Ask for a token without logging in</button></p>
<pre id="no-session" data-state="idle"></pre>
<script type="module">
import init, { getAccessTokenFromRoute } from '/pkg/tokenkeeper_wasm.js';
await init();
const out = document.getElementById('no-session');
document.getElementById('token-without-session').addEventListener('click', async () => {
  out.dataset.state = 'busy';
  try {
    const token = await getAccessTokenFromRoute('/auth/access-token', {});
    out.textContent = 'a token: ' + token.tokenType;
    out.dataset.state = 'ok';
  } catch (e) {
    // The route client's typed error: kind, code, HTTP status.
    out.textContent = JSON.stringify({ name: e.name, kind: e.kind, code: e.code, status: e.status, message: e.message });
    Object.assign(out.dataset, { state: 'error', code: e.code, kind: e.kind, status: e.status });
  }
  out.dataset.source = 'wasm-route-client';
});
document.body.dataset.wasm = 'ready';
</script>
</body></html>"#;

/// `text` for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn dashboard_page(user: &User, api1: &str, api2: &str) -> String {
    let name = user
        .claims
        .get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| user.sub());
    // The APIs as JSON inside the script; `<` escaped so no `</script>`.
    let apis = serde_json::json!({
        "api1": {"audience": API1, "url": api1},
        "api2": {"audience": API2, "url": api2},
    })
    .to_string()
    .replace('<', "\\u003c");
    format!(
        r#"{HEAD}
<h1>Hello, <span id="user">{name}</span></h1>
<p>sub: <code id="sub">{sub}</code></p>
<p><button id="call-api1">Call API 1</button> <button id="call-api2">Call API 2</button></p>
<pre id="api1" data-state="idle"></pre>
<pre id="api2" data-state="idle"></pre>
<p><a id="logout" href="/auth/logout">Log out</a></p>
<script type="module">
// The wasm adapter's route client, as the SDK's client getAccessToken():
// the app's own route, the session cookie sent (same-origin), no token
// kept in the page.
import init, {{ getAccessTokenFromRoute }} from '/pkg/tokenkeeper_wasm.js';
await init();
const APIS = {apis};
async function call(name) {{
  const out = document.getElementById(name);
  out.dataset.state = 'busy';
  try {{
    const token = await getAccessTokenFromRoute('/auth/access-token', {{ audience: APIS[name].audience }});
    // Where the token came from, for the browser test.
    out.dataset.source = 'wasm-route-client';
    const response = await fetch(APIS[name].url, {{
      headers: {{ authorization: token.tokenType + ' ' + token.token }},
    }});
    const data = await response.json();
    out.textContent = JSON.stringify(data, null, 2);
    out.dataset.state = response.ok ? 'ok' : 'error';
  }} catch (e) {{
    out.textContent = e.name === 'RouteTokenError'
      ? JSON.stringify({{ name: e.name, kind: e.kind, code: e.code, status: e.status, message: e.message }})
      : String(e);
    out.dataset.state = 'error';
  }}
}}
document.getElementById('call-api1').addEventListener('click', () => call('api1'));
document.getElementById('call-api2').addEventListener('click', () => call('api2'));
document.body.dataset.wasm = 'ready';
</script>
</body></html>"#,
        name = escape(name),
        sub = escape(user.sub()),
    )
}
