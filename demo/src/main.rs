//! The tokenkeeper demo: the whole token lifecycle, narrated.
//!
//! Without arguments it starts a local authorization server
//! (node-oidc-provider on 127.0.0.1, DPoP nonces required, refresh tokens
//! rotated on every use) and runs: discovery, a login with PKCE and DPoP,
//! a cached token, a refresh with rotation, a second API, DPoP-bound API
//! calls with the resource server's nonce retry; then it stops the server.
//!
//! With `TOKENKEEPER_ISSUER`, `TOKENKEEPER_CLIENT_ID`,
//! `TOKENKEEPER_CLIENT_SECRET` and `TOKENKEEPER_REFRESH_TOKEN` set it runs
//! the refresh part against that tenant instead (Auth0 or any other
//! provider; `TOKENKEEPER_AUDIENCE` optional, `TOKENKEEPER_AUTH=basic` for
//! `client_secret_basic`). HTTPS works out of the box (rustls, webpki
//! roots); `TOKENKEEPER_CA_FILE` names a PEM file of one more CA to trust.

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{AccessTokenInfo, ClientSecret, Config, MemoryStore, Session, TokenRequest};
use tokenkeeper_integration::{
    API1, API2, CONFIDENTIAL_BASIC, Harness, HarnessOptions, REDIRECT_URI, jwt,
};
use tokenkeeper_ureq::{OsEntropy, TokenKeeper, agent, agent_with_roots, discover};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() {
    let result = match std::env::var("TOKENKEEPER_ISSUER") {
        Ok(issuer) => real_tenant(&issuer),
        Err(_) => local(),
    };
    if let Err(error) = result {
        eprintln!("\ndemo failed: {error}");
        std::process::exit(1);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A secret shortened for display: its first and last characters.
fn short(secret: &str) -> String {
    if secret.len() <= 12 {
        return "…".into();
    }
    format!("{}…{}", &secret[..6], &secret[secret.len() - 4..])
}

fn describe(token: &AccessTokenInfo) -> String {
    format!(
        "{} token {} (expires in {} s{})",
        token.token_type,
        short(token.token.secret()),
        token.expires_at.as_secs().saturating_sub(now()),
        token
            .audience
            .as_deref()
            .map(|a| format!(", audience {a}"))
            .unwrap_or_default()
    )
}

fn step(title: &str) {
    println!("\n▶ {title}");
}

fn refresh_token_of(store: &MemoryStore) -> String {
    store
        .session()
        .and_then(|s| {
            s.token_set()
                .refresh_token
                .as_ref()
                .map(|r| r.secret().to_string())
        })
        .unwrap_or_default()
}

/// A store the demo can read while the handle writes to it.
type Shared = std::sync::Arc<std::sync::Mutex<MemoryStore>>;

/// What `store` holds now.
fn view(store: &Shared) -> MemoryStore {
    store.lock().map(|s| s.clone()).unwrap_or_default()
}

fn local() -> Result<()> {
    println!("tokenkeeper demo — the whole token lifecycle against a local authorization server");
    step("Starting node-oidc-provider on 127.0.0.1 (DPoP nonces required, refresh tokens rotated)");
    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        rs_nonce_required: true,
        access_token_ttl_secs: 60,
    });
    println!("  issuer {}", harness.issuer());

    step("Discovery");
    let metadata = discover(&agent(tokenkeeper_ureq::DEFAULT_TIMEOUT), harness.issuer())?;
    println!("  token endpoint      {}", metadata.token_endpoint);
    if let Some(revocation) = &metadata.revocation_endpoint {
        println!("  revocation endpoint {revocation}");
    }

    let scope = "openid profile email offline_access read:data";
    let config = Config::builder(metadata.token_endpoint.clone(), CONFIDENTIAL_BASIC.id)
        .metadata(&metadata)
        .client_auth(ClientAuth::SecretBasic(ClientSecret::new(
            CONFIDENTIAL_BASIC.secret.unwrap_or_default(),
        )))
        .audience(API1)
        .scope(scope)
        .target_parameter(TargetParameter::Resource)
        .build()?;
    let key = DpopKey::generate(&mut OsEntropy)?;
    let store = Shared::default();
    let keeper = TokenKeeper::builder(config)
        .store(store.clone())
        .dpop(P256Signer::new(key))
        .build()?;
    let thumbprint = keeper.dpop_thumbprint().unwrap_or_default();
    println!("  DPoP key thumbprint (dpop_jkt) {thumbprint}");

    step("Login: authorization code + PKCE (S256), state, nonce, dpop_jkt");
    let authorization_endpoint = metadata
        .authorization_endpoint
        .clone()
        .unwrap_or_else(|| harness.authorization_endpoint());
    let (url, transaction) =
        LoginRequest::new(&authorization_endpoint, CONFIDENTIAL_BASIC.id, REDIRECT_URI)
            .scope(scope)
            .resource(API1)
            .resource(API2)
            .dpop_jkt(&thumbprint)
            .param("prompt", "consent")
            .start(&mut OsEntropy)?;
    println!(
        "  authorization URL {}…",
        &url[..url.find('?').map_or(url.len(), |i| i + 1)]
    );
    let callback = harness.login(&url);
    println!(
        "  the browser part (the provider's login and consent pages) returned to the callback"
    );
    let token = keeper.login(&transaction, &callback)?;
    let stats = harness.stats();
    println!("  code exchanged: {}", describe(&token));
    println!(
        "  token requests: {} (the first DPoP proof had no nonce: the server answered use_dpop_nonce, the retry carried it)",
        stats.token_requests_total
    );
    let claims = jwt::claims(token.token.secret());
    println!(
        "  the access token is bound to the key: cnf.jkt = {}",
        claims["cnf"]["jkt"]
    );
    let user = keeper.session().and_then(|s| s.user().cloned());
    if let Some(user) = user {
        println!("  user: sub {} ({})", user["sub"], user["email"]);
    }
    let first_refresh_token = refresh_token_of(&view(&store));
    println!(
        "  saved session: refresh token {}",
        short(&first_refresh_token)
    );

    step("get_access_token again: served from the cache, no request");
    let before = harness.stats().token_requests_total;
    let cached = keeper.get_access_token(&TokenRequest::new())?;
    println!(
        "  {} — token requests sent: {}",
        describe(&cached),
        harness.stats().token_requests_total - before
    );

    step("Forced refresh: the refresh token rotates, and the new one is saved at once");
    let before = harness.stats();
    let refreshed = keeper.get_access_token(&TokenRequest::new().force_refresh())?;
    let after = harness.stats();
    let rotated = refresh_token_of(&view(&store));
    println!("  {}", describe(&refreshed));
    println!(
        "  refresh token {} → {}",
        short(&first_refresh_token),
        short(&rotated)
    );
    println!(
        "  round trips: {} (the server's DPoP nonce was remembered: {} new nonce challenges)",
        after.token_requests_total - before.token_requests_total,
        after.dpop_nonce_challenges - before.dpop_nonce_challenges
    );

    step("A second API with the same refresh token (multi-resource refresh token)");
    let api2 = keeper.get_access_token(&TokenRequest::new().audience(API2))?;
    println!("  {}", describe(&api2));
    println!("  aud = {}", jwt::claims(api2.token.secret())["aud"]);
    println!(
        "  refresh token rotated again → {}",
        short(&refresh_token_of(&view(&store)))
    );
    let api1 = keeper.get_access_token(&TokenRequest::new().audience(API1))?;
    println!("  {} again: from the cache ({})", API1, describe(&api1));

    step("DPoP-bound API calls (the resource server wants its own nonce)");
    for attempt in 1..=2 {
        let before = harness.stats();
        let request = ureq::http::Request::get(harness.resource_url("/api1/data")).body(())?;
        let mut response = keeper.send_authorized(&TokenRequest::new(), request)?;
        let after = harness.stats();
        let body = response.body_mut().read_to_string()?;
        println!(
            "  call {attempt}: HTTP {} after {} request(s) ({} nonce challenge) — {}",
            response.status().as_u16(),
            after.resource_requests - before.resource_requests,
            after.resource_nonce_challenges - before.resource_nonce_challenges,
            body.trim()
        );
    }

    step("Logout: the refresh token is revoked and the session marked");
    keeper.logout()?;
    match keeper.get_access_token(&TokenRequest::new().force_refresh()) {
        Err(error) => println!("  get_access_token now answers: {} ({error})", error.code()),
        Ok(token) => println!("  unexpected token after logout: {}", describe(&token)),
    }

    let stats = harness.stats();
    step("Server-side counts");
    println!(
        "  token requests {} (refreshes {}), DPoP nonce challenges {} at the token endpoint, {} at the API",
        stats.token_requests_total,
        stats.grant("refresh_token"),
        stats.dpop_nonce_challenges,
        stats.resource_nonce_challenges
    );
    drop(harness);
    step("Stopped the local server. Done.");
    Ok(())
}

fn required(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn real_tenant(issuer: &str) -> Result<()> {
    println!("tokenkeeper demo — against {issuer}");
    let client_id = required("TOKENKEEPER_CLIENT_ID")?;
    let secret = ClientSecret::new(required("TOKENKEEPER_CLIENT_SECRET")?);
    let refresh_token = required("TOKENKEEPER_REFRESH_TOKEN")?;
    let audience = std::env::var("TOKENKEEPER_AUDIENCE").ok();

    step("Discovery");
    let agent = match std::env::var("TOKENKEEPER_CA_FILE") {
        Ok(file) => agent_with_roots(
            tokenkeeper_ureq::DEFAULT_TIMEOUT,
            std::fs::read(&file).map_err(|e| format!("TOKENKEEPER_CA_FILE {file}: {e}"))?,
        )?,
        Err(_) => agent(tokenkeeper_ureq::DEFAULT_TIMEOUT),
    };
    let metadata = discover(&agent, issuer)?;
    println!("  token endpoint {}", metadata.token_endpoint);
    let auth = match std::env::var("TOKENKEEPER_AUTH").as_deref() {
        Ok("basic") => ClientAuth::SecretBasic(secret),
        _ => ClientAuth::SecretPost(secret),
    };
    let config = Config::builder(metadata.token_endpoint.clone(), client_id)
        .metadata(&metadata)
        .client_auth(auth)
        .build()?;
    // A session holding only the refresh token: the first call refreshes.
    let session = Session::from_json(
        serde_json::json!({"tokenSet": {"accessToken": "", "refreshToken": refresh_token, "expiresAt": 0}})
            .to_string()
            .as_bytes(),
        &Default::default(),
    )?;
    let store = Shared::default();
    let keeper = TokenKeeper::builder(config)
        .agent(agent)
        .store(store.clone())
        .session(session)
        .build()?;

    step("get_access_token: the stored token is expired, so it refreshes");
    let token = keeper.get_access_token(&TokenRequest::new())?;
    println!("  {}", describe(&token));
    step("Again: from the cache");
    println!(
        "  {}",
        describe(&keeper.get_access_token(&TokenRequest::new())?)
    );
    step("Forced refresh (rotation, if the tenant rotates refresh tokens)");
    let before = refresh_token_of(&view(&store));
    println!(
        "  {}",
        describe(&keeper.get_access_token(&TokenRequest::new().force_refresh())?)
    );
    let after = refresh_token_of(&view(&store));
    println!(
        "  refresh token {}",
        if before == after {
            "unchanged (no rotation)".to_string()
        } else {
            format!("rotated {} → {}", short(&before), short(&after))
        }
    );
    if let Some(audience) = audience {
        step("Another audience with the same refresh token");
        println!(
            "  {}",
            describe(&keeper.get_access_token(&TokenRequest::new().audience(&audience))?)
        );
    }
    println!("\nDone. The newest refresh token is in the store; this demo does not print it.");
    Ok(())
}
