//! An async session store of your own (`AsyncSessionStore`): here a JSON
//! file written with `tokio::fs`, saved with compare-and-swap on the
//! session's generation. The first run starts from a refresh token; later
//! runs load the file, serve the cached token or refresh, and every
//! rotated refresh token is saved before the call returns.
//!
//! ```text
//! TOKENKEEPER_ISSUER=https://tenant.example.com/ \
//! TOKENKEEPER_CLIENT_ID=my-client \
//! TOKENKEEPER_CLIENT_SECRET=my-secret \
//! TOKENKEEPER_SESSION_FILE=session.json \
//! TOKENKEEPER_REFRESH_TOKEN=v1.Mr… \
//! cargo run -p tokenkeeper-reqwest --example custom_store
//! ```
//!
//! Optional: `TOKENKEEPER_RESOURCE` (an API named with RFC 8707's
//! `resource`). A real store (a database row with a version column, a
//! Redis key) follows the same three methods; the handle awaits them
//! without holding a lock, so a slow store never blocks other tasks.

use std::path::PathBuf;
use std::process::ExitCode;

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::store::{AsyncSessionStore, SessionKey, StoreError};
use tokenkeeper::{ClientSecret, Config, RefreshToken, Session, TokenRequest, UnixTime};
use tokenkeeper_reqwest::{OsEntropy, TokenKeeper};

/// A session kept in one JSON file.
struct FileStore {
    path: PathBuf,
    /// Held from the compare to the swap: two tasks of this process never
    /// both pass the compare (a database does this in its
    /// `UPDATE … WHERE version = expected`).
    writing: tokio::sync::Mutex<()>,
}

impl FileStore {
    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::backend(format!("{}: {e}", self.path.display()))
    }
}

impl AsyncSessionStore for FileStore {
    async fn load(&self, _key: &SessionKey) -> Result<Option<Session>, StoreError> {
        match tokio::fs::read(&self.path).await {
            Ok(json) => Session::from_json(&json, &Default::default())
                .map(Some)
                .map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        // Serialized before the first await: the future owns what it writes.
        let json = session.to_json();
        async move {
            let _writing = self.writing.lock().await;
            // Compare: the file must still hold the generation this
            // session was derived from.
            let found = self.load(key).await?.map(|s| s.generation());
            if found != expected {
                return Err(StoreError::Conflict { found });
            }
            // Swap: write beside, then rename over (never half a file).
            let temporary = self.path.with_extension("tmp");
            tokio::fs::write(&temporary, json)
                .await
                .map_err(|e| self.error(e))?;
            tokio::fs::rename(&temporary, &self.path)
                .await
                .map_err(|e| self.error(e))
        }
    }

    async fn clear(&self, _key: &SessionKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(&self.path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
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
    match run(&issuer, &client_id, PathBuf::from(file)).await {
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
    file: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT)?;
    let metadata = tokenkeeper_reqwest::discover(&client, issuer).await?;
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
        .client(client)
        .async_store(FileStore {
            path: file.clone(),
            writing: tokio::sync::Mutex::new(()),
        });
    // Only the first run starts from the refresh token; later runs load
    // the file (the store's session wins over a stale environment).
    if !tokio::fs::try_exists(&file).await? {
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
    let token = keeper.get_access_token(&TokenRequest::new()).await?;
    println!(
        "{} token, expires at {} (unix time); session saved in {}",
        token.token_type.as_str(),
        token.expires_at,
        file.display()
    );
    Ok(())
}
