//! Token Vault in a handler: the `Connections` extractor exchanges the
//! session's refresh token for a federated connection's token at the real
//! server (the harness's connection handler), the session cookie carries
//! it in `connectionTokenSets` so the next request is served from it, and
//! a refused exchange is the core's typed error.

mod support;

use axum::Router;
use axum::routing::get;
use support::{Browser, start_with};
use tokenkeeper::ConnectionRequest;
use tokenkeeper_axum::{Auth, Connections};
use tokenkeeper_integration::{Harness, HarnessOptions};

const GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";

fn handlers(router: Router, auth: &Auth) -> Router {
    router
        .route(
            "/connection/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>,
                 connections: Connections| async move {
                    match connections.token(&ConnectionRequest::new(&name)).await {
                        Ok(token) => token.token.secret().to_owned(),
                        Err(error) => format!("error {}", error.code()),
                    }
                },
            ),
        )
        .layer(auth.layer())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_gets_a_connection_token_cached_in_the_cookie() {
    let app = start_with(Harness::start(HarnessOptions::default()), |b| b, handlers).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    app.harness.reset_stats();

    let first = browser
        .get(&format!("{}/connection/github", app.base))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.starts_with("github-"), "{}", first.body);
    assert_eq!(app.harness.stats().grant(GRANT), 1);
    // As the SDK stores it: the entry in a cookie of its own, `__FC_0`.
    let claims = support::session_claims(&browser).expect("a session");
    assert!(claims.get("connectionTokenSets").is_none());
    let entry = tokenkeeper_axum::jwe::CookieKey::from_secret(support::SECRET)
        .decrypt_bytes(browser.cookie("__FC_0").expect("the __FC_0 cookie"))
        .unwrap();
    let entry: serde_json::Value = serde_json::from_slice(&entry).unwrap();
    assert_eq!(entry["accessToken"], first.body.as_str());
    assert_eq!(entry["connection"], "github");

    let second = browser
        .get(&format!("{}/connection/github", app.base))
        .await;
    assert_eq!(second.body, first.body, "served from the cookie");
    assert_eq!(app.harness.stats().grant(GRANT), 1);

    let unknown = browser
        .get(&format!("{}/connection/myspace", app.base))
        .await;
    assert_eq!(unknown.body, "error failed_to_exchange_refresh_token");
}
