//! The extractors and layers in handlers, against the real server: the
//! user, a token for another API (its refresh written back by the layer),
//! an API call with the token attached, and a router that requires login.

mod support;

use axum::Router;
use axum::routing::get;
use support::{API2, App, Browser, start_with};
use tokenkeeper::TokenRequest;
use tokenkeeper_axum::session_cookie::SessionDurations;
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
            get(move |api: Api| {
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

/// Two extractors of one handler that both need a refresh share one
/// session: the second sees the first's rotated refresh token instead of
/// reading the request's old cookie and spending a used one (which a
/// rotating server answers by revoking the grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractors_of_one_request_share_the_rotated_session() {
    let harness = Harness::start(HarnessOptions::default());
    let api2_url = harness.resource_url("/api2/data");
    let app = start_with(
        harness,
        |b| b,
        move |router, auth| {
            router
                .route(
                    "/two-tokens",
                    get(|a: Token<Api2>, b: Token<Api2>| async move {
                        assert_eq!(a.info.token.secret(), b.info.token.secret());
                        "same token"
                    }),
                )
                .route(
                    "/token-and-api",
                    get(move |token: Token<Api2>, api: Api| {
                        let url = api2_url.clone();
                        async move {
                            let _ = token;
                            let request = api.client().get(&url).build().unwrap();
                            let mut wanted = TokenRequest::new();
                            wanted.audience = Some(API2);
                            match api.send(&wanted, request).await {
                                Ok(response) => format!("{}", response.status().as_u16()),
                                Err(e) => format!("error {e}"),
                            }
                        }
                    }),
                )
                .layer(auth.layer())
        },
    )
    .await;
    for path in ["/two-tokens", "/token-and-api"] {
        let mut browser = Browser::new();
        assert_eq!(browser.login(&app, "").await.status, 302);
        let before = support::refresh_token(&browser);
        app.harness.reset_stats();
        // Both extractors need an API2 token the login did not get: the
        // first refreshes (rotation), the second must use its result.
        let first = browser.get(&format!("{}{path}", app.base)).await;
        assert_eq!(first.status, 200, "{path}: {}", first.body);
        let stats = app.harness.stats();
        assert_eq!(stats.grant("refresh_token"), 1, "{path}: one refresh");
        assert!(
            !stats.token_responses_by_status.contains_key("400"),
            "{path}: a spent refresh token was sent: {:?}",
            stats.recent_token_requests
        );
        // The rotated refresh token went out in the cookie.
        assert_ne!(support::refresh_token(&browser), before, "{path}");
    }
}

fn session_exp(browser: &Browser) -> u64 {
    support::session_claims(browser).expect("a session")["exp"]
        .as_u64()
        .expect("exp")
}

fn max_age(set_cookie: &str) -> u64 {
    set_cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Max-Age: {set_cookie}"))
}

/// Rolling sessions (the SDK's default): every request through the layer
/// re-sets the cookie, so the inactivity expiry moves forward; the
/// routes' own answers are left alone (an unchanged `/auth/access-token`
/// sets nothing, a logout's deletion is not undone). Without rolling,
/// nothing is re-set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_sessions_move_the_inactivity_expiry_forward() {
    let durations = SessionDurations {
        rolling: true,
        absolute: 3_600,
        inactivity: 600,
    };
    let app = support::start_app(
        Harness::start(HarnessOptions::default()),
        |b| b.durations(durations),
        |auth| {
            support::pages()
                .route(
                    "/me",
                    get(|user: User| async move { user.sub().to_owned() }),
                )
                .merge(auth.router())
                .layer(auth.layer())
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    let first_exp = session_exp(&browser);
    let first_cookie = browser.cookie("__session").unwrap().to_owned();
    // Seconds are the cookie's resolution.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let me = browser.get(&format!("{}/me", app.base)).await;
    assert_eq!(me.body, "alice");
    let rolled = me
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__session="))
        .expect("the session is re-set on each request");
    assert!(max_age(rolled) > 590 && max_age(rolled) <= 600, "{rolled}");
    assert_eq!(
        me.headers.get("cache-control").unwrap(),
        "private, no-cache, no-store, must-revalidate, max-age=0"
    );
    let rolled_exp = session_exp(&browser);
    assert!(rolled_exp > first_exp, "{rolled_exp} > {first_exp}");
    assert_ne!(browser.cookie("__session").unwrap(), first_cookie);
    // Still the same session (created at login).
    assert_eq!(
        support::session_claims(&browser).unwrap()["internal"]["createdAt"],
        {
            let plaintext = tokenkeeper_axum::jwe::CookieKey::from_secret(support::SECRET)
                .decrypt_bytes(&first_cookie)
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&plaintext).unwrap()["internal"]["createdAt"]
                .clone()
        }
    );

    // The routes write their own cookies, the layer leaves them alone.
    let cached = browser
        .get(&format!("{}/auth/access-token", app.base))
        .await;
    assert_eq!(cached.status, 200, "{}", cached.body);
    assert!(cached.set_cookies.is_empty(), "{:?}", cached.set_cookies);
    assert!(cached.headers.get("cache-control").is_none());
    let logout = browser.get(&format!("{}/auth/logout", app.base)).await;
    assert_eq!(logout.status, 302);
    assert!(
        logout
            .set_cookies
            .iter()
            .filter(|c| c.starts_with("__session="))
            .all(|c| c.contains("Max-Age=0")),
        "{:?}",
        logout.set_cookies
    );
    assert_eq!(browser.get(&format!("{}/me", app.base)).await.status, 401);

    // Without rolling: nothing re-set.
    let app = support::start_app(
        Harness::start(HarnessOptions::default()),
        |b| {
            b.durations(SessionDurations {
                rolling: false,
                ..durations
            })
        },
        |auth| {
            support::pages()
                .route(
                    "/me",
                    get(|user: User| async move { user.sub().to_owned() }),
                )
                .merge(auth.router())
                .layer(auth.layer())
        },
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    let me = browser.get(&format!("{}/me", app.base)).await;
    assert_eq!(me.body, "alice");
    assert!(me.set_cookies.is_empty(), "{:?}", me.set_cookies);
}
