//! The pinned `@auth0/nextjs-auth0` package's own cookie code, run in
//! Node (`tests/js/cookie_compat.mjs`; `npm ci` in `tests/js` first), and
//! our cookie codec with the same secret: what the compatibility tests
//! (`cookie_compat.rs`, `connection_compat.rs`) share.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokenkeeper_axum::cookies::CookieAttributes;
use tokenkeeper_axum::session_cookie::{SessionCookie, SessionDurations};

pub const SECRET: &str = "a-32-byte-long-secret-for-testing-only!!";
pub const JS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");

/// Runs one command of `tests/js/cookie_compat.mjs` (the SDK's code).
pub fn sdk(command: Value) -> Value {
    assert!(
        std::path::Path::new(JS_DIR)
            .join("node_modules/@auth0/nextjs-auth0")
            .exists(),
        "run `npm ci` in {JS_DIR} first"
    );
    let mut child = Command::new("node")
        .arg("cookie_compat.mjs")
        .current_dir(JS_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(command.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn codec() -> SessionCookie {
    SessionCookie::new(
        SECRET.as_bytes(),
        "__session",
        CookieAttributes::new(false),
        SessionDurations::default(),
        64 * 1024,
    )
}

/// The `Cookie` header a browser sends for `jar`.
pub fn headers(jar: &[(String, String)]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let cookie: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
    headers.insert(http::header::COOKIE, cookie.join("; ").parse().unwrap());
    headers
}

/// What a browser keeps of `Set-Cookie` values (deletions dropped).
pub fn jar_from_set_cookies(set_cookies: &[String]) -> Vec<(String, String)> {
    set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| {
            let pair = c.split(';').next().unwrap();
            let (n, v) = pair.split_once('=').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect()
}
