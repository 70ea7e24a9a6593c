//! A session store of your own: here a JSON file (the Auth0 Next.js SDK's
//! session shape), saved with compare-and-swap on the session's
//! generation. The first run starts from a refresh token; later runs load
//! the file, serve the cached token or refresh, and every rotated refresh
//! token is saved before the call returns.
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-client \
//! TOKENKEEPER_CLIENT_SECRET=my-secret \
//! TOKENKEEPER_SESSION_FILE=session.json \
//! TOKENKEEPER_REFRESH_TOKEN=v1.Mr… \
//! cargo run -p tokenkeeper-ureq --example custom_store
//! ```
//!
//! Optional: `TOKENKEEPER_RESOURCE` (an API named with RFC 8707's
//! `resource`). A real store (a database row with a version column, a
//! Redis key) follows the same four methods.

use std::path::PathBuf;
use std::process::ExitCode;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::{
    ClientSecret, Config, RefreshToken, Session, SessionStore, StoreError, TokenRequest, UnixTime,
};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper};

/// A session kept in one JSON file.
struct FileStore {
    path: PathBuf,
}

impl SessionStore for FileStore {
    fn load(&mut self, _key: &str) -> Result<Option<Session>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(json) => Session::from_json(&json, &Default::default())
                .map(Some)
                .map_err(|e| StoreError::backend(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(format!("{}: {e}", self.path.display()))),
        }
    }

    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        // Compare: the file must still hold the generation this session
        // was derived from (one process here; a database compares in its
        // UPDATE … WHERE version = expected).
        let found = self.load(key)?.map(|s| s.generation());
        if found != expected {
            return Err(StoreError::Conflict { found });
        }
        // Swap: write beside, then rename over (never a half-written file).
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, session.to_json())
            .and_then(|()| std::fs::rename(&temporary, &self.path))
            .map_err(|e| StoreError::backend(format!("{}: {e}", self.path.display())))
    }

    fn clear(&mut self, _key: &str) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::backend(format!("{}: {e}", self.path.display())))
            }
            _ => Ok(()),
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> ExitCode {
    let (Some(issuer), Some(client_id), Some(file)) = (
        var("TOKENKEEPER_ISSUER"),
        var("TOKENKEEPER_CLIENT_ID"),
        var("TOKENKEEPER_SESSION_FILE"),
    ) else {
        eprintln!(
            "missing environment: set TOKENKEEPER_ISSUER, TOKENKEEPER_CLIENT_ID and \
             TOKENKEEPER_SESSION_FILE (and, the first time, TOKENKEEPER_REFRESH_TOKEN)"
        );
        return ExitCode::from(2);
    };
    match run(&issuer, &client_id, PathBuf::from(file)) {
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

fn run(issuer: &str, client_id: &str, file: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let agent = tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT);
    let metadata = tokenkeeper_ureq::discover(&agent, issuer)?;
    let mut config = Config::builder(&metadata.token_endpoint, client_id).metadata(&metadata);
    if let Some(secret) = var("TOKENKEEPER_CLIENT_SECRET") {
        config = config.client_auth(ClientAuth::SecretPost(ClientSecret::new(secret)));
    }
    if let Some(resource) = var("TOKENKEEPER_RESOURCE") {
        config = config
            .audience(resource)
            .target_parameter(TargetParameter::Resource);
    }
    let mut builder = TokenKeeper::builder(config.build()?)
        .agent(agent)
        .store(FileStore { path: file.clone() });
    // Only the first run starts from the refresh token; later runs load
    // the file (the store's session wins over a stale environment).
    if !file.exists() {
        let refresh_token = var("TOKENKEEPER_REFRESH_TOKEN")
            .ok_or("no session file yet: set TOKENKEEPER_REFRESH_TOKEN")?;
        let now = UnixTime::from_system_time(std::time::SystemTime::now());
        builder = builder.session(Session::from_refresh_token(
            RefreshToken::new(refresh_token),
            now,
            &mut OsEntropy,
        ));
    }
    let keeper = builder.build()?;
    let token = keeper.get_access_token(&TokenRequest::new())?;
    println!(
        "{} token, expires at {} (unix time); session saved in {}",
        token.token_type.as_str(),
        token.expires_at,
        file.display()
    );
    Ok(())
}
