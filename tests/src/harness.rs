//! Starting, controlling and stopping the Node harness process.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::HttpResponse;

/// Directory of the Node harness (`tests/harness`).
pub const HARNESS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/harness");

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const NPM_LOCK_TIMEOUT: Duration = Duration::from_secs(600);
const NPM_LOCK_STALE: Duration = Duration::from_secs(600);

/// Options of one harness process (passed as `HARNESS_*` environment
/// variables to `server.mjs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HarnessOptions {
    /// The token endpoint answers DPoP proofs without a nonce with
    /// `400 use_dpop_nonce` + `DPoP-Nonce` (`HARNESS_DPOP_NONCE=required`).
    pub dpop_nonce_required: bool,
    /// Access-token lifetime in seconds (`HARNESS_AT_TTL`).
    pub access_token_ttl_secs: u64,
    /// The resource server demands its own DPoP nonce (`HARNESS_RS_NONCE`).
    pub rs_nonce_required: bool,
}

impl Default for HarnessOptions {
    /// No token-endpoint nonce, 60 s access tokens, resource-server nonce on.
    fn default() -> Self {
        Self {
            dpop_nonce_required: false,
            access_token_ttl_secs: 60,
            rs_nonce_required: true,
        }
    }
}

/// Counters kept by the harness (`GET /__harness/stats`).
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// All token endpoint requests, counted before the provider sees them.
    pub token_requests_total: u64,
    /// Token endpoint requests by `grant_type` (`"(none)"` if absent).
    pub token_requests_by_grant: BTreeMap<String, u64>,
    /// Token endpoint responses by HTTP status (as a string key).
    pub token_responses_by_status: BTreeMap<String, u64>,
    /// Token endpoint `use_dpop_nonce` error responses.
    pub dpop_nonce_challenges: u64,
    /// Requests to `/api1/data` and `/api2/data`.
    pub resource_requests: u64,
    /// Resource server `use_dpop_nonce` challenges.
    pub resource_nonce_challenges: u64,
    /// Successful [`Harness::login`] runs.
    pub logins: u64,
    /// `GET` requests for the provider's JWKS.
    #[serde(default)]
    pub jwks_requests: u64,
    /// The last 100 token requests: `grant_type`, `dpop`, `params` (secrets
    /// redacted), `authorization_scheme`, `status`, `error`, `canned`.
    pub recent_token_requests: Vec<Value>,
}

impl Stats {
    /// Number of token requests with this `grant_type` (0 if none).
    pub fn grant(&self, grant_type: &str) -> u64 {
        self.token_requests_by_grant
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }
}

/// A canned token endpoint response for [`Harness::fail_next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// Body, sent as is.
    pub body: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// How many consecutive token requests get this response (default 1).
    pub times: u32,
}

impl CannedResponse {
    /// One response with this status, content type and body.
    pub fn new(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
            headers: Vec::new(),
            times: 1,
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Serves the response to the next `times` token requests.
    #[must_use]
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

/// A running harness: node-oidc-provider, resource server and control API on
/// 127.0.0.1. Dropping it kills the Node process (and prints its log if the
/// thread is panicking, i.e. a test failed).
pub struct Harness {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    readers: Vec<JoinHandle<()>>,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
    options: HarnessOptions,
    pid: u32,
    issuer: String,
    token_endpoint: String,
    resource_server: String,
    control: String,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("pid", &self.pid)
            .field("issuer", &self.issuer)
            .field("resource_server", &self.resource_server)
            .field("control", &self.control)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn append(log: &Mutex<String>, line: &str) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.push_str(line);
    log.push('\n');
}

fn installed(dir: &Path) -> bool {
    let marker = dir.join("node_modules/.package-lock.json");
    if !dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return false;
    }
    let mtime = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    match (mtime(&marker), mtime(&dir.join("package-lock.json"))) {
        // reinstall when the lock file changed after the last install
        (Some(installed), Some(lock)) => installed >= lock,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn npm_lock_dir() -> PathBuf {
    // FNV-1a of the harness path: one lock per checkout
    let hash = HARNESS_DIR.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    std::env::temp_dir().join(format!("tokenkeeper-harness-npm-{hash:016x}.lock"))
}

/// Makes sure `tests/harness/node_modules` is installed, running
/// `npm ci --no-audit --no-fund` once if needed. Serialised within the process
/// by a mutex and across processes (parallel test binaries) by `mkdir` of a
/// lock directory in the system temp dir.
///
/// # Panics
/// If `npm ci` fails or the lock cannot be taken within 10 minutes.
fn ensure_node_modules() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(PoisonError::into_inner);
    if *done {
        return;
    }
    let dir = Path::new(HARNESS_DIR);
    if installed(dir) {
        *done = true;
        return;
    }
    let lock = npm_lock_dir();
    let start = Instant::now();
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = lock
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > NPM_LOCK_STALE) {
                    let _ = std::fs::remove_dir(&lock);
                    continue;
                }
                assert!(
                    start.elapsed() < NPM_LOCK_TIMEOUT,
                    "timed out waiting for the npm install lock {}",
                    lock.display()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create lock dir {}: {e}", lock.display()),
        }
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _unlock = Unlock(lock);
    if !installed(dir) {
        eprintln!("[harness] running `npm ci --no-audit --no-fund` in {HARNESS_DIR}");
        let output = Command::new(std::env::var("HARNESS_NPM").unwrap_or_else(|_| "npm".into()))
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run npm (is Node.js installed?): {e}"));
        assert!(
            output.status.success(),
            "npm ci failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    *done = true;
}

impl Harness {
    /// Starts a fresh harness process (installing `node_modules` first if
    /// needed) and waits up to 30 s for its ready line.
    ///
    /// The Node binary is `node` from `PATH`, or `$HARNESS_NODE`. With
    /// `HARNESS_ECHO=1` the server log is also echoed live to stderr.
    ///
    /// # Panics
    /// If Node cannot be started or the server is not ready in time (the
    /// message includes the server log).
    pub fn start(options: HarnessOptions) -> Self {
        ensure_node_modules();

        let node = std::env::var("HARNESS_NODE").unwrap_or_else(|_| "node".into());
        // The absolute path, so `scripts/test.sh` can find (and stop) any
        // server a test leaves behind.
        let mut child = Command::new(&node)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/harness/server.mjs"))
            .current_dir(HARNESS_DIR)
            .env(
                "HARNESS_DPOP_NONCE",
                if options.dpop_nonce_required {
                    "required"
                } else {
                    "off"
                },
            )
            .env("HARNESS_AT_TTL", options.access_token_ttl_secs.to_string())
            .env(
                "HARNESS_RS_NONCE",
                if options.rs_nonce_required {
                    "required"
                } else {
                    "off"
                },
            )
            .env_remove("HARNESS_IGNORE_STDIN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{node} server.mjs` in {HARNESS_DIR}: {e}"));
        let pid = child.id();
        let log = Arc::new(Mutex::new(String::new()));
        let echo = std::env::var_os("HARNESS_ECHO").is_some_and(|v| v != "0");

        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_log = Arc::clone(&log);
        let stdout_reader = std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match ready_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(line);
                    }
                    None => append(&stdout_log, &format!("[stdout] {line}")),
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_log = Arc::clone(&log);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("{line}");
                }
                append(&stderr_log, &line);
            }
        });

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();

        let mut harness = Self {
            stdin: child.stdin.take(),
            child: Some(child),
            readers: vec![stdout_reader, stderr_reader],
            log,
            agent,
            options,
            pid,
            issuer: String::new(),
            token_endpoint: String::new(),
            resource_server: String::new(),
            control: String::new(),
        };

        let ready = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => serde_json::from_str::<Value>(&line)
                .ok()
                .filter(|v| v["ready"] == json!(true))
                .ok_or_else(|| format!("unexpected first stdout line: {line}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("no ready line within {READY_TIMEOUT:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("the harness exited before it was ready".to_owned())
            }
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(problem) => {
                harness.shutdown();
                panic!(
                    "harness failed to start: {problem}\n--- server log ---\n{}",
                    harness.server_log()
                );
            }
        };
        let field = |name: &str| ready[name].as_str().unwrap_or_default().to_owned();
        harness.issuer = field("issuer");
        harness.token_endpoint = field("token_endpoint");
        harness.resource_server = field("resource_server");
        harness.control = field("control");
        harness
    }

    /// Closes stdin, kills the process, waits for it and for the log readers.
    fn shutdown(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Issuer identifier, e.g. `http://127.0.0.1:40123`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Token endpoint URL (`{issuer}/token`).
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// Authorization endpoint URL (`{issuer}/auth`).
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// Resource server origin, e.g. `http://127.0.0.1:40124`.
    pub fn resource_server(&self) -> &str {
        &self.resource_server
    }

    /// `resource_server() + path`, e.g. `resource_url("/api1/data")`.
    pub fn resource_url(&self, path: &str) -> String {
        format!("{}{path}", self.resource_server)
    }

    /// Control API origin (`/__harness/...` routes).
    pub fn control_url(&self) -> &str {
        &self.control
    }

    /// Process id of the Node process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The options this harness was started with.
    pub fn options(&self) -> HarnessOptions {
        self.options
    }

    /// The HTTP agent used by the helpers: no redirects followed, HTTP error
    /// statuses returned as responses, 20 s global timeout, no proxy.
    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Everything the server wrote to stderr so far.
    pub fn server_log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits up to `timeout` for `needle` to appear in [`Self::server_log`]
    /// (the log is collected by a background thread, so a line the server
    /// wrote before answering may arrive a moment after the answer).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.server_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn control_get(&self, path: &str) -> HttpResponse {
        let url = format!("{}{path}", self.control);
        let response = self
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        HttpResponse::read(response)
    }

    fn control_post(&self, path: &str, body: &Value) -> HttpResponse {
        let url = format!("{}{path}", self.control);
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
        HttpResponse::read(response)
    }

    /// The provider's discovery document.
    ///
    /// # Panics
    /// On transport errors or a non-JSON answer.
    pub fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = self
            .agent
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        HttpResponse::read(response).json()
    }

    /// Current counters.
    ///
    /// # Panics
    /// If the control API does not answer with the expected JSON.
    pub fn stats(&self) -> Stats {
        let response = self.control_get("/__harness/stats");
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("bad stats ({e}): {}", response.body))
    }

    /// Zeroes all counters.
    ///
    /// # Panics
    /// If the control API fails.
    pub fn reset_stats(&self) {
        let response = self.control_post("/__harness/stats/reset", &json!({}));
        assert_eq!(response.status, 200, "reset_stats: {}", response.body);
    }

    /// The next `canned.times` token endpoint requests get `canned` instead
    /// of reaching the provider (they are still counted in [`Stats`]).
    ///
    /// # Panics
    /// If the control API fails.
    pub fn fail_next(&self, canned: CannedResponse) {
        let headers: serde_json::Map<String, Value> = canned
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let response = self.control_post(
            "/__harness/fail_next",
            &json!({
                "status": canned.status,
                "content_type": canned.content_type,
                "body": canned.body,
                "headers": headers,
                "times": canned.times,
            }),
        );
        assert_eq!(response.status, 200, "fail_next: {}", response.body);
    }

    /// Makes the resource server's current DPoP nonce stale; returns the new
    /// one.
    ///
    /// # Panics
    /// If the control API fails.
    pub fn rotate_rs_nonce(&self) -> String {
        let response = self.control_post("/__harness/rs_nonce/rotate", &json!({}));
        response.json()["nonce"]
            .as_str()
            .unwrap_or_else(|| panic!("rotate_rs_nonce: {}", response.body))
            .to_owned()
    }

    /// Like [`Harness::login_as`] with the login `alice`.
    ///
    /// # Panics
    /// See [`Harness::login_as`].
    pub fn login(&self, authorization_url: &str) -> String {
        self.login_as(authorization_url, "alice")
    }

    /// Drives the provider's login and consent pages for `authorization_url`
    /// as user `login` (which becomes the `sub`) and returns the URL the
    /// provider redirected to (`{redirect_uri}?code=…&state=…&iss=…`, or with
    /// `error=…`), without requesting it.
    ///
    /// # Panics
    /// If the walk does not reach a redirect away from the provider (the
    /// message includes the trail of requests and the server log).
    pub fn login_as(&self, authorization_url: &str, login: &str) -> String {
        self.try_login_as(authorization_url, login)
            .unwrap_or_else(|e| {
                panic!(
                    "login failed: {e}\n--- server log ---\n{}",
                    self.server_log()
                )
            })
    }

    /// Like [`Harness::login_as`] but returns the harness's error description
    /// instead of panicking (e.g. for an authorization request the provider
    /// refuses to redirect, such as an unregistered `redirect_uri`).
    ///
    /// # Errors
    /// The login driver's error and trail, as text.
    pub fn try_login_as(&self, authorization_url: &str, login: &str) -> Result<String, String> {
        let response = self.control_post(
            "/__harness/login",
            &json!({ "authorization_url": authorization_url, "login": login }),
        );
        let body = response
            .try_json()
            .ok_or_else(|| format!("HTTP {}: {}", response.status, response.body))?;
        match body["callback_url"].as_str() {
            Some(url) if response.status == 200 => Ok(url.to_owned()),
            _ => Err(format!("HTTP {}: {body}", response.status)),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown();
        if std::thread::panicking() {
            eprintln!(
                "--- harness server log (pid {}, issuer {}) ---\n{}--- end of harness server log ---",
                self.pid,
                self.issuer,
                self.server_log()
            );
        }
    }
}
