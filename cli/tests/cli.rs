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
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{url}"
    );
    let redirect = h.login_as(&url, "alice");
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.contains("code="), "{redirect}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    // Other requests first: a favicon (404) and a callback that is not
    // this login's (a forged state: turned away, the login goes on).
    let origin = &redirect[..redirect.find("/callback").unwrap()];
    let favicon = agent.get(format!("{origin}/favicon.ico")).call().unwrap();
    assert_eq!(favicon.status().as_u16(), 404);
    let forged = agent
        .get(format!("{origin}/callback?code=stolen&state=forged"))
        .call()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    // The browser follows the redirect to the CLI's listener.
    let mut page = agent
        .get(&redirect)
        .call()
        .expect("GET the loopback callback");
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
    assert!(
        stderr(&cached).contains("from the cache"),
        "{}",
        stderr(&cached)
    );
    assert!(
        stderr(&cached).contains("decision: event=cache_hit"),
        "the core's decision: {}",
        stderr(&cached)
    );
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
    assert!(
        told.contains("decision: event=refresh_started reason=forced"),
        "{told}"
    );
    for secret in [&new_token, &token, &refresh_token, &new_refresh_token] {
        assert!(
            !told.contains(secret.as_str()),
            "a secret on stderr: {told}"
        );
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
    assert!(
        stderr(&after).contains("error[missing_session]"),
        "{}",
        stderr(&after)
    );
    assert!(stdout(&after).is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dpop_login_binds_tokens_to_a_key_kept_on_disk() {
    // The token endpoint demands DPoP nonces: the first proof of each
    // exchange is answered with `use_dpop_nonce`, the retry carries it.
    let h = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        ..HarnessOptions::default()
    });
    let dir = temp_dir("dpop");
    let session = dir.join("session.json");

    login(&h, &session, &["--resource", API1, "--dpop"]);
    let key_path = dir.join("session-dpop-key.pem");
    #[cfg(unix)]
    assert_eq!(mode(&key_path), 0o600, "the key file is owner-only");
    let pem = std::fs::read_to_string(&key_path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    let key = tokenkeeper::dpop::DpopKey::from_pkcs8_pem(&pem).unwrap();
    assert!(h.stats().dpop_nonce_challenges >= 1);

    let json = run(&session, &["token", "--json"], &[]);
    assert_exit(&json, 0);
    let info: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(info["type"], "DPoP");
    let token = info["token"].as_str().unwrap().to_owned();
    assert_eq!(jwt::claims(&token)["cnf"]["jkt"], key.thumbprint());
    assert_eq!(jwt::audiences(&token), [API1]);

    // A refresh in a new process signs with the same key from the file.
    let forced = run(&session, &["token", "--force"], &[]);
    assert_exit(&forced, 0);
    let refreshed = stdout(&forced);
    assert_ne!(refreshed, token);
    assert_eq!(jwt::claims(&refreshed)["cnf"]["jkt"], key.thumbprint());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), pem, "key kept");
    assert!(!stderr(&forced).contains("PRIVATE KEY"));

    // A JWK key file, named explicitly, is created as a private JWK.
    let jwk_session = dir.join("jwk.json");
    let jwk_path = dir.join("keys").join("dpop.jwk");
    login(
        &h,
        &jwk_session,
        &["--resource", API1, "--dpop-key", jwk_path.to_str().unwrap()],
    );
    #[cfg(unix)]
    assert_eq!(mode(&jwk_path), 0o600);
    let jwk = tokenkeeper::dpop::DpopKey::from_jwk(&std::fs::read_to_string(&jwk_path).unwrap())
        .expect("a private JWK");
    assert_ne!(jwk.thumbprint(), key.thumbprint());
    let bound = run(&jwk_session, &["token"], &[]);
    assert_exit(&bound, 0);
    assert_eq!(jwt::claims(&stdout(&bound))["cnf"]["jkt"], jwk.thumbprint());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn parallel_token_processes_spend_each_refresh_token_once() {
    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir("parallel");
    let session = dir.join("session.json");
    login(&h, &session, &["--resource", API1]);

    // Four processes force a refresh at once. They share the file: each
    // claims the refresh token in it (compare-and-swap under the lock)
    // before spending it, so none replays a rotated token — which
    // oidc-provider would punish by revoking the whole grant.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(BIN)
                .arg("--session")
                .arg(&session)
                .args(["token", "--force"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, 0);
        assert_eq!(jwt::audiences(&stdout(&output)), [API1]);
    }
    let stats = h.stats();
    let refused = stats
        .recent_token_requests
        .iter()
        .filter(|r| r["error"] == "invalid_grant")
        .count();
    assert_eq!(refused, 0, "no refresh token replayed: {stats:?}");
    let refreshes = stats.grant("refresh_token");
    assert!((1..=4).contains(&refreshes), "{stats:?}");
    eprintln!("{refreshes} refreshes for 4 forced processes");
    // The grant is alive: one more refresh works.
    let after = run(&session, &["token", "--force"], &[]);
    assert_exit(&after, 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn client_credentials_prints_a_machine_token_and_saves_nothing() {
    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir("m2m");
    let session = dir.join("session.json");
    let secret = M2M.secret.unwrap();
    let args = [
        "client-credentials",
        "--issuer",
        h.issuer(),
        "--client-id",
        M2M.id,
        "--resource",
        API1,
        "--scope",
        "read:data",
        "--verbose",
    ];
    let output = run(&session, &args, &[("TOKENKEEPER_CLIENT_SECRET", secret)]);
    assert_exit(&output, 0);
    let token = stdout(&output);
    let claims = jwt::claims(&token);
    assert_eq!(jwt::audiences(&token), [API1]);
    assert_eq!(claims["client_id"], M2M.id);
    assert!(
        claims.get("sub").is_none_or(|sub| sub == M2M.id),
        "{claims}"
    );
    assert!(claims["scope"].as_str().unwrap().contains("read:data"));
    let told = stderr(&output);
    assert!(
        told.contains("client_secret_basic") || told.contains("granted"),
        "{told}"
    );
    assert!(
        !told.contains(secret),
        "the client secret on stderr: {told}"
    );
    assert!(!told.contains(&token), "the token on stderr: {told}");
    assert!(!session.exists(), "machine tokens are not saved");

    // With DPoP: a bound machine token, the key created on disk.
    let key_path = dir.join("m2m-key.pem");
    let bound = run(
        &session,
        &[
            "client-credentials",
            "--issuer",
            h.issuer(),
            "--client-id",
            M2M.id,
            "--resource",
            API1,
            "--dpop-key",
            key_path.to_str().unwrap(),
            "--json",
        ],
        &[("TOKENKEEPER_CLIENT_SECRET", secret)],
    );
    assert_exit(&bound, 0);
    let info: Value = serde_json::from_str(&stdout(&bound)).unwrap();
    assert_eq!(info["type"], "DPoP");
    assert_eq!(info["audience"], API1);
    let key =
        tokenkeeper::dpop::DpopKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path).unwrap())
            .unwrap();
    let bound_token = info["token"].as_str().unwrap();
    assert_eq!(jwt::claims(bound_token)["cnf"]["jkt"], key.thumbprint());

    // Without the secret: a usage error (exit 2) that says what to do.
    let no_secret = run(&session, &args, &[]);
    assert_exit(&no_secret, 2);
    assert!(
        stderr(&no_secret).contains("\nerror[missing_client_secret]: "),
        "{}",
        stderr(&no_secret)
    );
    // A wrong secret: the server's error code, exit 1, secret not echoed.
    let wrong = run(
        &session,
        &args,
        &[("TOKENKEEPER_CLIENT_SECRET", "wrong-secret-42")],
    );
    assert_exit(&wrong, 1);
    let said = stderr(&wrong);
    let last = said.lines().last().unwrap_or_default();
    assert!(last.starts_with("error[token_request_failed]"), "{said}");
    assert!(
        said.contains("invalid_client (HTTP 401)"),
        "the server's code: {said}"
    );
    assert!(!said.contains("wrong-secret-42"), "{said}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn exit_codes_and_errors_read_well() {
    let dir = temp_dir("codes");
    let session = dir.join("none.json");

    // --help reads well and exits 0; a usage error exits 2.
    let help = run(&session, &["--help"], &[]);
    assert_exit(&help, 0);
    let text = stdout(&help);
    for command in ["login", "token", "refresh", "logout", "client-credentials"] {
        assert!(text.contains(command), "{text}");
    }
    assert!(text.contains("Exit status: 0 ok, 1 error, 2 usage, 3 login required"));
    // A secret in the environment is never shown by --help.
    let help = run(
        &session,
        &["login", "--help"],
        &[("TOKENKEEPER_CLIENT_SECRET", "env-secret-123")],
    );
    assert_exit(&help, 0);
    assert!(stdout(&help).contains("TOKENKEEPER_CLIENT_SECRET"));
    assert!(!stdout(&help).contains("env-secret-123"));
    assert_exit(&run(&session, &["token", "--no-such-flag"], &[]), 2);
    assert_exit(&run(&session, &["login"], &[]), 2);

    // No session: login required (3), on one line with its code.
    let missing = run(&session, &["token"], &[]);
    assert_exit(&missing, 3);
    let said = stderr(&missing);
    assert!(
        said.starts_with("error[missing_session]: not logged in"),
        "{said}"
    );
    assert!(said.contains("tokenkeeper login"), "{said}");
    assert_exit(&run(&session, &["refresh"], &[]), 3);
    // Logging out when logged out is fine.
    assert_exit(&run(&session, &["logout"], &[]), 0);

    // A file that is not a session: an error (1), not a panic.
    std::fs::write(&session, "{ not json").unwrap();
    let corrupt = run(&session, &["token"], &[]);
    assert_exit(&corrupt, 1);
    assert!(stderr(&corrupt).starts_with("error[io_error]: cannot read the session file"));

    // An issuer nobody listens on: a transport error, its cause once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let unreachable = run(
        &dir.join("other.json"),
        &[
            "login",
            "--issuer",
            &issuer,
            "--client-id",
            "x",
            "--wait",
            "1",
        ],
        &[],
    );
    assert_exit(&unreachable, 1);
    let said = stderr(&unreachable);
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.starts_with("error[transport_error]: transport error"),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Plays the user's browser on the device verification pages of
/// oidc-provider: opens `url` (`verification_uri_complete`), submits each
/// page's form (the user code, its confirmation, the login as `login`, the
/// consent) with the cookies set on the way, until a page without a form;
/// returns that page.
fn approve_device(url: &str, login: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut cookies = std::collections::BTreeMap::<String, String>::new();
    let mut url = url.to_owned();
    let mut form: Option<String> = None;
    for _ in 0..30 {
        let cookie = cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = match form.take() {
            Some(body) => agent
                .post(&url)
                .header("cookie", &cookie)
                .content_type("application/x-www-form-urlencoded")
                .send(body.as_str()),
            None => agent.get(&url).header("cookie", &cookie).call(),
        };
        let mut response = response.expect("device page");
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response.headers()["location"].to_str().unwrap();
            url = absolute_url(&url, location);
            continue;
        }
        let html = response.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{url}: {html}");
        let Some(start) = html.find("<form") else {
            return html;
        };
        let tag = &html[start..start + html[start..].find('>').unwrap()];
        url = absolute_url(&url, &attribute(tag, "action").expect("form action"));
        let mut fields: Vec<(String, String)> = html[start..]
            .split("<input")
            .skip(1)
            .filter_map(|input| {
                let tag = &input[..input.find('>').unwrap_or(input.len())];
                (attribute(tag, "type").as_deref() == Some("hidden"))
                    .then(|| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
                    .flatten()
            })
            .collect();
        if fields.iter().any(|(n, v)| n == "prompt" && v == "login") {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "password".into()));
        }
        form = Some(
            fields
                .iter()
                .map(|(n, v)| {
                    format!(
                        "{}={}",
                        tokenkeeper::__private::form::encode(n),
                        tokenkeeper::__private::form::encode(v)
                    )
                })
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    panic!("too many steps on the device pages");
}

/// An HTML attribute's value (`&amp;` decoded).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&amp;", "&"))
}

/// `location` resolved against `base` (absolute, or a path on its origin).
fn absolute_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base["http://".len()..]
        .find('/')
        .map_or(base.len(), |i| i + "http://".len());
    format!("{}{location}", &base[..origin_end])
}

#[test]
fn device_login_polls_until_the_user_approves() {
    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir("device");
    let session = dir.join("session.json");
    let mut child = Command::new(BIN)
        .arg("--session")
        .arg(&session)
        .args(["login", "--device", "--verbose", "--issuer", h.issuer()])
        .args([
            "--client-id",
            CLI_NATIVE.id,
            "--scope",
            SCOPE,
            "--resource",
            API1,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (url_tx, url_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut lines = BufReader::new(stderr);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if line.trim().starts_with("http") && line.contains("user_code=") {
                let _ = url_tx.send(line.trim().to_owned());
            }
            all.push_str(&line);
            line.clear();
        }
        all
    });
    let Ok(url) = url_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no verification URL:\n{}", reader.join().unwrap());
    };
    let page = approve_device(&url, "bob");
    assert!(page.contains("Sign-in Success"), "{page}");
    let output = child.wait_with_output().unwrap();
    let told = reader.join().unwrap();
    assert!(output.status.success(), "{told}");
    assert!(told.contains("enter the code"), "{told}");
    assert!(told.contains("Logged in as bob"), "{told}");
    assert!(output.stdout.is_empty());
    let polls = h
        .stats()
        .grant("urn:ietf:params:oauth:grant-type:device_code");
    assert!(polls >= 1, "the token endpoint was polled");

    // The session works as a browser login's does.
    #[cfg(unix)]
    assert_eq!(mode(&session), 0o600);
    let token = run(&session, &["token"], &[]);
    assert_exit(&token, 0);
    let claims = jwt::claims(&stdout(&token));
    assert_eq!(claims["sub"], "bob");
    assert_eq!(jwt::audiences(&stdout(&token)), [API1]);
    let forced = run(&session, &["token", "--force"], &[]);
    assert_exit(&forced, 0);
    assert_ne!(stdout(&forced), stdout(&token));
    std::fs::remove_dir_all(&dir).ok();
}
