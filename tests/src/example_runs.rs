//! The per-grant examples of the native adapters, run as their own
//! processes against the local authorization server: what the ureq and
//! reqwest adapters' `tests/examples.rs` share (their examples take the
//! same environment and print the same lines). The functions panic on a
//! failed check, as a test does.
//!
//! The example binaries are found next to the calling test's executable:
//! plain `cargo test -p <adapter>` builds them (`example()` says so when not).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{KillOnDrop, example};
use crate::{CLI_NATIVE, CONFIDENTIAL_POST, Harness, HarnessOptions, pkce_login};
use tokenkeeper::dpop::DpopKey;

/// A fresh folder for one test's files (`adapter`: whose tests).
pub fn temp_dir(adapter: &str, name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "tokenkeeper-{adapter}-example-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The permission bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A plain HTTP/1.1 GET, as the browser sends it: status and body.
pub fn browser_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs a login example: reads the authorization URL from its stderr,
/// lets the harness fill in the provider's login and consent pages as
/// `alice`, then plays the browser's return to the example's loopback
/// listener (after a stray `/favicon.ico`). Returns stdout, stderr and
/// the page the browser got.
pub fn drive_login(h: &Harness, mut command: Command) -> (String, String, (u16, String)) {
    // Killed if a check below fails before it exits on its own.
    let mut guard = KillOnDrop(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the login example"),
    );
    let child = &mut guard.0;
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
    let Ok(url) = url_rx.recv_timeout(Duration::from_secs(30)) else {
        drop(guard);
        panic!(
            "no authorization URL on stderr:\n{}",
            reader.join().unwrap()
        );
    };
    assert!(url.contains("code_challenge_method=S256"), "PKCE: {url}");
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "a loopback redirect with a port: {url}"
    );
    let redirect = h.login_as(&url, "alice");
    assert!(redirect.contains("code="), "{redirect}");
    let origin = &redirect[..redirect.find("/callback").unwrap()];
    assert_eq!(browser_get(&format!("{origin}/favicon.ico")).0, 404);
    let page = browser_get(&redirect);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "exit {status:?}\n{stdout}\n{stderr}");
    (stdout, stderr, page)
}

/// The adapter's `login` example logs `alice` in through the harness and
/// saves a complete, owner-only session file.
pub fn the_login_example_logs_alice_in_and_saves_a_private_session(adapter: &str) {
    let output = example("login").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2), "usage without environment");

    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir(adapter, "login");
    let file = dir.join("session.json");
    let mut command = example("login");
    command
        .env_clear()
        .env("TOKENKEEPER_ISSUER", h.issuer())
        .env("TOKENKEEPER_CLIENT_ID", CLI_NATIVE.id)
        .env("TOKENKEEPER_SESSION_FILE", &file)
        .env("TOKENKEEPER_NO_BROWSER", "1");
    let (stdout, _, (status, page)) = drive_login(&h, command);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Logged in"), "{page}");
    assert!(stdout.contains("logged in as alice"), "{stdout}");
    assert!(stdout.contains("Bearer token"), "{stdout}");
    assert_eq!(h.stats().grant("authorization_code"), 1);

    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600, "owner-only session file");
    let session =
        tokenkeeper::Session::from_json(&std::fs::read(&file).unwrap(), &Default::default())
            .unwrap();
    assert_eq!(session.user().unwrap()["sub"], "alice");
    assert!(
        session.token_set().refresh_token.is_some(),
        "offline_access: a refresh token to keep"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The adapter's `dpop` example creates an owner-only key file once and
/// reuses it: the same thumbprint, every refresh with a proof.
pub fn the_dpop_example_binds_tokens_to_one_key_kept_on_disk(adapter: &str) {
    let output = example("dpop").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2), "usage without environment");

    let h = Harness::start(HarnessOptions::default());
    let dir = temp_dir(adapter, "dpop");
    let key_file = dir.join("dpop-key.pem");
    let run = || {
        let tokens = pkce_login(&h, &CONFIDENTIAL_POST, "openid offline_access", &[]);
        let output = example("dpop")
            .env_clear()
            .env("TOKENKEEPER_ISSUER", h.issuer())
            .env("TOKENKEEPER_CLIENT_ID", CONFIDENTIAL_POST.id)
            .env(
                "TOKENKEEPER_CLIENT_SECRET",
                CONFIDENTIAL_POST.secret.unwrap(),
            )
            .env(
                "TOKENKEEPER_REFRESH_TOKEN",
                tokens["refresh_token"].as_str().unwrap(),
            )
            .env("TOKENKEEPER_DPOP_KEY_FILE", &key_file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("token type DPoP"), "{stdout}");
        stdout
    };
    let thumbprint_of = |stdout: &str| {
        stdout
            .split_once("DPoP key ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .map(String::from)
            .unwrap_or_else(|| panic!("no thumbprint in {stdout}"))
    };

    let first = run();
    assert!(first.contains("created in"), "{first}");
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600, "owner-only key file");
    let on_disk = DpopKey::from_pkcs8_pem(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(thumbprint_of(&first), on_disk.thumbprint());

    let second = run();
    assert!(second.contains("reused from"), "{second}");
    assert_eq!(thumbprint_of(&second), thumbprint_of(&first), "same key");
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 2);
    assert!(
        stats
            .recent_token_requests
            .iter()
            .filter(|r| r["grant_type"] == "refresh_token")
            .all(|r| r["dpop"] == true),
        "every refresh carried a proof"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
