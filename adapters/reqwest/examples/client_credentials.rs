//! A machine-to-machine token (client credentials): no user, no session.
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-service \
//! TOKENKEEPER_CLIENT_SECRET=my-secret \
//! TOKENKEEPER_AUDIENCE=https://api.example.com \
//! cargo run -p tokenkeeper-reqwest --example client_credentials
//! ```
//!
//! `TOKENKEEPER_RESOURCE` instead of `TOKENKEEPER_AUDIENCE` names the API
//! with RFC 8707's `resource` parameter (servers such as node-oidc-provider).
//! Asked twice, the second token comes from the cache: no request.

use std::process::ExitCode;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::{ClientSecret, Config, TokenRequest};
use tokenkeeper_reqwest::TokenKeeper;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (Some(issuer), Some(client_id), Some(secret)) = (
        var("TOKENKEEPER_ISSUER"),
        var("TOKENKEEPER_CLIENT_ID"),
        var("TOKENKEEPER_CLIENT_SECRET"),
    ) else {
        eprintln!(
            "missing environment: set TOKENKEEPER_ISSUER, TOKENKEEPER_CLIENT_ID and \
             TOKENKEEPER_CLIENT_SECRET (and TOKENKEEPER_AUDIENCE or TOKENKEEPER_RESOURCE)"
        );
        return ExitCode::from(2);
    };
    match run(&issuer, &client_id, secret).await {
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
    secret: String,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT)?;
    let metadata = tokenkeeper_reqwest::discover(&client, issuer).await?;
    let mut config = Config::builder(&metadata.token_endpoint, client_id)
        .metadata(&metadata)
        .client_auth(ClientAuth::SecretPost(ClientSecret::new(secret)));
    let api = match (var("TOKENKEEPER_AUDIENCE"), var("TOKENKEEPER_RESOURCE")) {
        (_, Some(resource)) => {
            config = config.target_parameter(TargetParameter::Resource);
            Some(resource)
        }
        (audience, None) => audience,
    };
    let keeper = TokenKeeper::builder(config.build()?)
        .client(client)
        .build()?;
    let mut request = TokenRequest::new();
    if let Some(api) = api.as_deref() {
        request = request.audience(api);
    }
    let token = keeper.get_client_credentials_token(&request).await?;
    let again = keeper.get_client_credentials_token(&request).await?;
    println!(
        "{} token for {}, expires at {} (unix time); asked again: {}",
        token.token_type.as_str(),
        api.as_deref().unwrap_or("the default API"),
        token.expires_at,
        if again.token == token.token {
            "the same token, from the cache"
        } else {
            "a new token"
        }
    );
    Ok(())
}
