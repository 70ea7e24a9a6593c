//! A DPoP-bound refresh (RFC 9449) with an ES256 key kept on disk: the
//! key is created on the first run (owner-only permissions) and reused
//! after, so tokens bound to it stay usable across runs.
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-client \
//! TOKENKEEPER_CLIENT_SECRET=my-secret \
//! TOKENKEEPER_REFRESH_TOKEN=v1.Mr… \
//! TOKENKEEPER_DPOP_KEY_FILE=dpop-key.pem \
//! cargo run -p tokenkeeper-reqwest --example dpop
//! ```
//!
//! Prints the key's thumbprint (the `cnf.jkt` the server binds tokens to)
//! and the token type, `DPoP`. The key file is PKCS#8 PEM (default
//! `dpop-key.pem`). A server's `use_dpop_nonce` challenge is answered by
//! the handle (one retry with the nonce).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{ClientSecret, Config, RefreshToken, Session, TokenRequest, UnixTime};
use tokenkeeper_reqwest::{OsEntropy, TokenKeeper};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (Some(issuer), Some(client_id), Some(refresh_token)) = (
        var("TOKENKEEPER_ISSUER"),
        var("TOKENKEEPER_CLIENT_ID"),
        var("TOKENKEEPER_REFRESH_TOKEN"),
    ) else {
        eprintln!(
            "missing environment: set TOKENKEEPER_ISSUER, TOKENKEEPER_CLIENT_ID and \
             TOKENKEEPER_REFRESH_TOKEN (optional: TOKENKEEPER_CLIENT_SECRET, \
             TOKENKEEPER_DPOP_KEY_FILE)"
        );
        return ExitCode::from(2);
    };
    let key_file = var("TOKENKEEPER_DPOP_KEY_FILE").unwrap_or("dpop-key.pem".into());
    match run(&issuer, &client_id, &refresh_token, Path::new(&key_file)).await {
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

async fn run(
    issuer: &str,
    client_id: &str,
    refresh_token: &str,
    key_file: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let (key, created) = load_or_create_key(key_file)?;
    let thumbprint = key.thumbprint().to_owned();

    let client = tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT)?;
    let metadata = tokenkeeper_reqwest::discover(&client, issuer).await?;
    let mut config = Config::builder(&metadata.token_endpoint, client_id).metadata(&metadata);
    if let Some(secret) = var("TOKENKEEPER_CLIENT_SECRET") {
        config = config.client_auth(ClientAuth::SecretPost(ClientSecret::new(secret)));
    }
    let session = Session::from_refresh_token(
        RefreshToken::new(refresh_token),
        UnixTime::from_system_time(std::time::SystemTime::now()),
        &mut OsEntropy,
    );
    let keeper = TokenKeeper::builder(config.build()?)
        .client(client)
        .dpop(P256Signer::new(key))
        .session(session)
        .build()?;
    let token = keeper.get_access_token(&TokenRequest::new()).await?;
    println!(
        "DPoP key {thumbprint} ({} {})",
        if created { "created in" } else { "reused from" },
        key_file.display()
    );
    println!(
        "token type {}, expires at {} (unix time)",
        token.token_type.as_str(),
        token.expires_at
    );
    // Every request to the API needs a fresh proof for its method and URL:
    // `keeper.send_authorized(…)` adds both headers.
    Ok(())
}

/// The key in `path`, or a new one written there readable by its owner
/// only (mode 0600 on Unix). The boolean says whether it was created.
fn load_or_create_key(path: &Path) -> Result<(DpopKey, bool), Box<dyn std::error::Error>> {
    match std::fs::read_to_string(path) {
        Ok(pem) => {
            let key = DpopKey::from_pkcs8_pem(&pem)
                .map_err(|e| format!("{}: not an ES256 private key: {e}", path.display()))?;
            return Ok((key, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    }
    let key = DpopKey::generate(&mut OsEntropy)?;
    let pem = key.to_pkcs8_pem()?;
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: never overwrite a key another run just wrote.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    out.write_all(pem.as_bytes())?;
    out.sync_all()?;
    Ok((key, true))
}
