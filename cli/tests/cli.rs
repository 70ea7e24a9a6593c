//! The `tokenkeeper` binary against the local authorization server
//! (node-oidc-provider, started by the harness): a real browser login
//! through the loopback redirect, tokens from the session file, a forced
//! rotation, DPoP with a key on disk, logout with revocation, machine
//! tokens, and the exit codes.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tokenkeeper_integration::{
    API1, API2, CLI_NATIVE, Harness, HarnessOptions, M2M, jwt, token_request,
};

const BIN: &str = env!("CARGO_BIN_EXE_tokenkeeper");
const SCOPE: &str = "openid offline_access read:data";

/// A fresh folder for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tokenkeeper-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with `args` (no secret in the environment unless given).
fn run(session: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("--session")
        .arg(session)
        .args(args)
        .env_remove("TOKENKEEPER_CLIENT_SECRET")
        .env_remove("TOKENKEEPER_ISSUER")
        .env_remove("TOKENKEEPER_CLIENT_ID")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run tokenkeeper")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit status, showing stderr otherwise.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status; stderr:\n{}",
        stderr(output)
    );
}

/// The session file as JSON.
fn session_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("session file")).expect("JSON")
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `tokenkeeper login` as a child process, its browser part played by the
/// harness as `alice`: the authorization URL is read from the child's
/// stderr, the harness drives the provider's login and consent pages, and
/// the redirect it returns is requested from the child's loopback
/// listener, as the browser would. Returns the child's stderr.
fn login(h: &Harness, session: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .arg("--session")
        .arg(session)
        .args([
            "login",
            "--issuer",
            h.issuer(),
            "--client-id",
            CLI_NATIVE.id,
            "--scope",
            SCOPE,
        ])
        .args(extra)
        .env_remove("TOKENKEEPER_CLIENT_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tokenkeeper login");
    let stderr = child.stderr.take().unwrap();
    let (url_tx, url_rx) = mpsc::channel();
    let endpoint = h.authorization_endpoint();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if line.trim().starts_with(&endpoint) {
                let _ = url_tx.send(line.trim().to_owned());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let url = match url_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no authorization URL on stderr:\n{}",
                reader.join().unwrap()
            );
        }
    };
    assert!(url.contains("code_challenge_method=S256"), "PKCE: {url}");
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"), "{url}");
    let redirect = h.login_as(&url, "alice");
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.contains("code="), "{redirect}");
    // The browser follows the redirect to the CLI's listener.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut page = agent.get(&redirect).call().expect("GET the loopback callback");
    let status = page.status().as_u16();
    let body = page.body_mut().read_to_string().unwrap_or_default();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let exit = child.wait().expect("login exits");
    let stderr = reader.join().unwrap();
    assert!(
        exit.success(),
        "login exited {exit:?}; page {status} {body}\n{stderr}"
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Logged in"), "{body}");
    assert!(stdout.is_empty(), "login prints nothing on stdout");
    stderr
}

#[test]
fn login_then_token_refresh_rotation_and_logout_against_the_local_server() {
    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir("lifecycle");
    let session = dir.join("sub").join("session.json");

    let login_err = login(&h, &session, &["--resource", API1, "--resource", API2]);
    assert!(login_err.contains("Logged in as alice"), "{login_err}");
    #[cfg(unix)]
    assert_eq!(mode(&session), 0o600, "the session file is owner-only");
    let saved = session_json(&session);
    assert_eq!(saved["client_id"], CLI_NATIVE.id);
    assert_eq!(saved["issuer"], h.issuer());
    assert!(saved["session"]["tokenSet"]["refreshToken"].is_string());
    assert!(
        saved.get("client_secret").is_none(),
        "no secret in the profile"
    );
    // Nothing but the session file (and its lock) is left in the folder:
    // the temporary file was renamed over it.
    let mut names: Vec<String> = std::fs::read_dir(session.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["session.json", "session.json.lock"]);

    // `token`: a JWT access token for the API, from the session file.
    let first = run(&session, &["token"], &[]);
    assert_exit(&first, 0);
    let token = stdout(&first);
    assert!(jwt::is_jwt(&token), "{token}");
    let claims = jwt::claims(&token);
    assert_eq!(jwt::audiences(&token), [API1], "{claims}");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], CLI_NATIVE.id);

    // Again: served from the cache, no token request, the file untouched.
    let requests = h.stats().token_requests_total;
    let before = std::fs::read(&session).unwrap();
    let cached = run(&session, &["token", "--verbose"], &[]);
    assert_exit(&cached, 0);
    assert_eq!(stdout(&cached), token);
    assert!(stderr(&cached).contains("from the cache"), "{}", stderr(&cached));
    assert_eq!(h.stats().token_requests_total, requests);
    assert_eq!(std::fs::read(&session).unwrap(), before);

    // `token --force`: a refresh; the rotated refresh token is saved back.
    let refresh_token = saved["session"]["tokenSet"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let refreshes = h.stats().grant("refresh_token");
    let forced = run(&session, &["token", "--force", "--verbose"], &[]);
    assert_exit(&forced, 0);
    let new_token = stdout(&forced);
    assert_ne!(new_token, token, "a new access token");
    assert_eq!(jwt::audiences(&new_token), [API1]);
    assert_eq!(h.stats().grant("refresh_token"), refreshes + 1);
    let rotated = session_json(&session);
    let new_refresh_token = rotated["session"]["tokenSet"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_refresh_token, refresh_token, "rotated and saved");
    assert_ne!(std::fs::read(&session).unwrap(), before);
    #[cfg(unix)]
    assert_eq!(mode(&session), 0o600, "still owner-only after the rewrite");
    // --verbose tells, but never a secret.
    let told = stderr(&forced);
    assert!(told.contains("refreshed"), "{told}");
    for secret in [&new_token, &token, &refresh_token, &new_refresh_token] {
        assert!(!told.contains(secret.as_str()), "a secret on stderr: {told}");
    }
    // `token --json`: the token and what it is for.
    let json = run(&session, &["token", "--json"], &[]);
    assert_exit(&json, 0);
    let info: Value = serde_json::from_str(&stdout(&json)).expect("JSON");
    assert_eq!(info["token"], new_token.as_str());
    assert_eq!(info["type"], "Bearer");
    assert_eq!(info["audience"], API1);
    assert!(info["expires_at"].as_u64().unwrap() > 0);
    assert!(info["scope"].as_str().unwrap().contains("read:data"));

    // Another API with the same refresh token (multi-resource refresh
    // token, RFC 8707 `resource` at the token endpoint).
    let other = run(&session, &["token", "--audience", API2], &[]);
    assert_exit(&other, 0);
    assert_eq!(jwt::audiences(&stdout(&other)), [API2]);

    // `refresh`: refreshes and prints what was granted, never the token.
    let refreshed = run(&session, &["refresh"], &[]);
    assert_exit(&refreshed, 0);
    let said = stdout(&refreshed);
    assert!(
        said.starts_with(&format!("refreshed: Bearer token for {API1}")),
        "{said}"
    );
    assert!(!said.contains("eyJ"), "no token printed: {said}");

    // `logout`: the refresh token revoked, the file deleted; then `token`
    // says a login is needed (exit 3).
    let last_refresh_token = session_json(&session)["session"]["tokenSet"]["refreshToken"]
        .as_str()
        .map(String::from);
    let logout = run(&session, &["logout"], &[]);
    assert_exit(&logout, 0);
    assert!(!session.exists(), "the session file is gone");
    if let Some(last) = last_refresh_token {
        let revoked = token_request(
            &h,
            &CLI_NATIVE,
            &[("grant_type", "refresh_token"), ("refresh_token", &last)],
            &[],
        );
        assert_eq!(revoked.status, 400, "revoked at logout");
    }
    let after = run(&session, &["token"], &[]);
    assert_exit(&after, 3);
    assert!(stderr(&after).contains("error[missing_session]"), "{}", stderr(&after));
    assert!(stdout(&after).is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
