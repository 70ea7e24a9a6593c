//! The extractors and layers in handlers, against the real server: the
//! user, a token for another API (its refresh written back by the layer),
//! an API call with the token attached, and a router that requires login.

mod support;

use axum::Router;
use axum::routing::get;
use support::{API2, App, Browser, start_with};
use tokenkeeper::TokenRequest;
use tokenkeeper_axum::{Api, Auth, MissingSession, Token, TokenSpec, User};
use tokenkeeper_integration::{Harness, HarnessOptions};

struct Api2;

impl TokenSpec for Api2 {
    const AUDIENCE: Option<&'static str> = Some(API2);
}

fn handlers(router: Router, auth: &Auth, resource: String) -> Router {
    let protected = Router::new()
        .route("/protected", get(|| async { "secret page" }))
        .layer(auth.require_login());
    let open = Router::new()
        .route(
            "/me",
            get(|user: User| async move { user.sub().to_owned() }),
        )
        .route(
            "/token2",
            get(|token: Token<Api2>| async move { token.info.token.secret().to_owned() }),
        )
        .route(
            "/call",
            get(move |mut api: Api| {
                let resource = resource.clone();
                async move {
                    let request = api.client().get(&resource).build().unwrap();
                    match api.send(&TokenRequest::new(), request).await {
                        Ok(response) => format!("{}", response.status().as_u16()),
                        Err(e) => format!("error {e}"),
                    }
                }
            }),
        )
        .layer(auth.layer());
    router.merge(protected).merge(open)
}

async fn app(missing: MissingSession) -> App {
    let harness = Harness::start(HarnessOptions::default());
    let resource = harness.resource_url("/api1/data");
    start_with(
        harness,
        |b| b.missing_session(missing),
        move |r, auth| handlers(r, auth, resource),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractors_and_the_layers_with_a_session() {
    let app = app(MissingSession::Unauthorized).await;
    let mut browser = Browser::new();
    for path in ["/me", "/token2", "/call", "/protected"] {
        let r = browser.get(&format!("{}{path}", app.base)).await;
        assert_eq!(
            (r.status, r.error_code()),
            (401, "missing_session".into()),
            "{path}"
        );
    }
    assert_eq!(browser.login(&app, "").await.status, 302);
    assert_eq!(browser.get(&format!("{}/me", app.base)).await.body, "alice");
    assert_eq!(
        browser.get(&format!("{}/protected", app.base)).await.body,
        "secret page"
    );

    // A token for API2: refreshed, and the layer writes the new session.
    let first = browser.get(&format!("{}/token2", app.base)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(tokenkeeper_integration::jwt::audiences(&first.body), [API2]);
    assert!(
        first
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__session="))
    );
    let second = browser.get(&format!("{}/token2", app.base)).await;
    assert_eq!(second.body, first.body, "cached in the rewritten cookie");
    assert!(second.set_cookies.is_empty());
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);

    // The API call: the resource server accepts the attached token.
    let call = browser.get(&format!("{}/call", app.base)).await;
    assert_eq!(call.body, "200");
    assert!(app.harness.stats().resource_requests >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_session_can_redirect_to_login() {
    let app = app(MissingSession::RedirectToLogin).await;
    let mut browser = Browser::new();
    for path in ["/me?tab=2", "/protected"] {
        let r = browser.get(&format!("{}{path}", app.base)).await;
        assert_eq!(r.status, 302, "{path}");
        let expected: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(r.location(), format!("/auth/login?returnTo={expected}"));
    }
}
