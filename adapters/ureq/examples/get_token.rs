//! Refreshes an access token with a refresh token from the environment and
//! prints when the new token expires.
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-client \
//! TOKENKEEPER_CLIENT_SECRET=my-secret \
//! TOKENKEEPER_REFRESH_TOKEN=v1.Mr… \
//! cargo run -p tokenkeeper-ureq --example get_token
//! ```
//!
//! The token endpoint comes from the issuer's discovery document. Optional:
//! `TOKENKEEPER_AUDIENCE`, `TOKENKEEPER_CLIENT_SECRET` (a public client
//! without it), `TOKENKEEPER_CA_FILE` (a PEM file of one more CA to
//! trust, besides the usual roots). HTTPS works out of the box (rustls).

use std::process::ExitCode;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{ClientSecret, Config, RefreshToken, Session, TokenRequest, UnixTime};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> ExitCode {
    let (Some(issuer), Some(client_id), Some(refresh_token)) = (
        var("TOKENKEEPER_ISSUER"),
        var("TOKENKEEPER_CLIENT_ID"),
        var("TOKENKEEPER_REFRESH_TOKEN"),
    ) else {
        eprintln!(
            "missing environment: set TOKENKEEPER_ISSUER, TOKENKEEPER_CLIENT_ID and \
             TOKENKEEPER_REFRESH_TOKEN (optional: TOKENKEEPER_CLIENT_SECRET, \
             TOKENKEEPER_AUDIENCE)"
        );
        return ExitCode::from(2);
    };
    match run(&issuer, &client_id, &refresh_token) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}\n  {error:?}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(
    issuer: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let agent = agent()?;
    let metadata = tokenkeeper_ureq::discover(&agent, issuer)?;
    let mut config = Config::builder(&metadata.token_endpoint, client_id).metadata(&metadata);
    if let Some(secret) = var("TOKENKEEPER_CLIENT_SECRET") {
        config = config.client_auth(ClientAuth::SecretPost(ClientSecret::new(secret)));
    }
    if let Some(audience) = var("TOKENKEEPER_AUDIENCE") {
        config = config.audience(audience);
    }
    // A session holding only the refresh token: the first call refreshes.
    let session = Session::from_refresh_token(
        RefreshToken::new(refresh_token),
        UnixTime::from_system_time(std::time::SystemTime::now()),
        &mut OsEntropy,
    );
    let keeper = TokenKeeper::builder(config.build()?)
        .agent(agent)
        .session(session)
        .build()?;

    let token = keeper.get_access_token(&TokenRequest::new())?;
    let session = keeper.session().expect("a session");
    let rotated = session
        .token_set()
        .refresh_token
        .as_ref()
        .map(|t| t.secret())
        != Some(refresh_token);
    println!(
        "access token ({}) expires at {} (unix time), scope {:?}",
        token.token_type.as_str(),
        token.expires_at,
        token.scope.as_deref().unwrap_or("-")
    );
    if rotated {
        println!("the refresh token was rotated: store the new one (the old one is spent)");
    }
    Ok(())
}

/// The agent: HTTPS works out of the box; a company or test CA is
/// trusted with `TOKENKEEPER_CA_FILE` (a PEM file).
fn agent() -> Result<ureq::Agent, Box<dyn std::error::Error>> {
    let Some(file) = var("TOKENKEEPER_CA_FILE") else {
        return Ok(tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT));
    };
    let pem = std::fs::read(&file).map_err(|e| format!("TOKENKEEPER_CA_FILE {file}: {e}"))?;
    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    return Ok(tokenkeeper_ureq::agent_with_roots(
        tokenkeeper_ureq::DEFAULT_TIMEOUT,
        pem,
    )?);
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    return Err(format!(
        "TOKENKEEPER_CA_FILE needs a TLS feature ({} bytes unused)",
        pem.len()
    )
    .into());
}
