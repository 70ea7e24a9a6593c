//! A user login from a command-line program: authorization code + PKCE
//! with a loopback redirect (RFC 8252 §7.3).
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-native-app \
//! TOKENKEEPER_SESSION_FILE=session.json \
//! cargo run -p tokenkeeper-ureq --example login
//! ```
//!
//! The order: listen on `127.0.0.1` on a port the system picks, build the
//! authorization URL (PKCE S256, `state`, `nonce`), open the browser (or
//! print the URL), wait for the browser's redirect to
//! `http://127.0.0.1:<port>/callback`, exchange the code (the handle
//! checks `state`, `iss` and the ID token), print who logged in and save
//! the session to a file only its owner can read. Register the redirect
//! URI `http://127.0.0.1/callback` with the server (RFC 8252 §7.3: any
//! port matches). Optional: `TOKENKEEPER_SCOPE` (default
//! `openid offline_access`), `TOKENKEEPER_CLIENT_SECRET`,
//! `TOKENKEEPER_NO_BROWSER=1` (print the URL only).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{ClientSecret, Config};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> ExitCode {
    let (Some(issuer), Some(client_id)) = (var("TOKENKEEPER_ISSUER"), var("TOKENKEEPER_CLIENT_ID"))
    else {
        eprintln!(
            "missing environment: set TOKENKEEPER_ISSUER and TOKENKEEPER_CLIENT_ID (optional: \
             TOKENKEEPER_SESSION_FILE, TOKENKEEPER_SCOPE, TOKENKEEPER_CLIENT_SECRET)"
        );
        return ExitCode::from(2);
    };
    let file = PathBuf::from(var("TOKENKEEPER_SESSION_FILE").unwrap_or("session.json".into()));
    match run(&issuer, &client_id, &file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(issuer: &str, client_id: &str, file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let agent = tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT);
    let metadata = tokenkeeper_ureq::discover(&agent, issuer)?;
    let authorization_endpoint = metadata
        .authorization_endpoint
        .clone()
        .ok_or("the server announces no authorization_endpoint")?;
    // The discovery metadata also turns on the RFC 9207 `iss` check.
    let mut config = Config::builder(&metadata.token_endpoint, client_id).metadata(&metadata);
    if let Some(secret) = var("TOKENKEEPER_CLIENT_SECRET") {
        config = config.client_auth(ClientAuth::SecretPost(ClientSecret::new(secret)));
    }
    let keeper = TokenKeeper::builder(config.build()?).agent(agent).build()?;

    // Port 0: the system picks a free port; the redirect URI names it.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let scope = var("TOKENKEEPER_SCOPE").unwrap_or("openid offline_access".into());
    let mut request =
        LoginRequest::new(&authorization_endpoint, client_id, &redirect_uri).scope(&scope);
    // Many servers (node-oidc-provider, Auth0) issue a refresh token only
    // after an explicit consent.
    if scope.split(' ').any(|s| s == "offline_access") {
        request = request.param("prompt", "consent");
    }
    let (url, transaction) = request.start(&mut OsEntropy)?;
    eprintln!("Open this URL in a browser to log in:\n\n    {url}\n");
    if var("TOKENKEEPER_NO_BROWSER").is_none() {
        open_browser(&url);
    }

    let (mut browser, callback) = wait_for_callback(&listener)?;
    let result = keeper.login(&transaction, &callback);
    let page = match &result {
        Ok(_) => "Logged in. You can close this window.".to_owned(),
        Err(error) => format!("Login failed: {error}"),
    };
    let status = if result.is_ok() {
        "200 OK"
    } else {
        "400 Bad Request"
    };
    respond(&mut browser, status, &page);
    let token = result?;

    let session = keeper.session().ok_or("no session after the login")?;
    let user = session.user().and_then(|claims| {
        ["email", "name", "sub"]
            .iter()
            .find_map(|claim| claims.get(*claim)?.as_str().map(String::from))
    });
    write_private(file, session.to_json().as_bytes())?;
    println!(
        "logged in as {}: {} token, expires at {} (unix time); session saved to {}",
        user.as_deref().unwrap_or("(no ID token)"),
        token.token_type.as_str(),
        token.expires_at,
        file.display()
    );
    Ok(())
}

/// Accepts connections until one is a `GET /callback…`; anything else (a
/// browser's `/favicon.ico`) gets a 404. Returns the connection, to answer
/// the browser after the exchange, and the full callback URL.
fn wait_for_callback(listener: &TcpListener) -> std::io::Result<(TcpStream, String)> {
    let port = listener.local_addr()?.port();
    loop {
        let (mut stream, _) = listener.accept()?;
        let mut request_line = String::new();
        let mut reader = BufReader::new(stream.try_clone()?);
        reader.read_line(&mut request_line)?;
        // Read the headers too (up to the empty line): closing with
        // unread data would reset the connection before the browser
        // sees the answer.
        let mut header = String::new();
        while reader.read_line(&mut header)? > 2 {
            header.clear();
        }
        let target = request_line.split(' ').nth(1).unwrap_or_default();
        if request_line.starts_with("GET ") && target.starts_with("/callback") {
            let url = format!("http://127.0.0.1:{port}{target}");
            return Ok((stream, url));
        }
        respond(&mut stream, "404 Not Found", "Not found.");
    }
}

/// A small page for the browser, then the connection closes.
fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = message.replace('&', "&amp;").replace('<', "&lt;");
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Asks the platform to open `url`; a failure only means the user opens
/// the printed URL by hand.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Writes `bytes` to `path` readable by its owner only (mode 0600 on
/// Unix): created beside under a temporary name, then renamed over, so a
/// reader never sees half a session.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&temporary, path)
}
