//! One application-wide driver for every request: N concurrent requests of
//! one user whose token must be refreshed (rotation on) send exactly one
//! refresh to the real server, and all get the same token — with the
//! session in the cookie and with the session in a stateful store.

mod support;

use support::{API2, App, Browser, start};
use tokenkeeper_axum::stateful::MemoryBackend;

const CONCURRENT: usize = 8;

fn access_token_url(app: &App) -> String {
    let audience: String = url::form_urlencoded::byte_serialize(API2.as_bytes()).collect();
    format!("{}/auth/access-token?audience={audience}", app.base)
}

/// The token endpoint's next answer waits `ms`: the concurrent requests
/// all arrive while the first one's refresh is out.
async fn delay_next_token_request(app: &App, ms: u64) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/__harness/delay_next",
            app.harness.control_url()
        ))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "ms": ms }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `CONCURRENT` browsers with `browser`'s cookies ask for an API2 token (not
/// in the session: a refresh is due) at once; their tokens.
async fn concurrent_tokens(app: &App, browser: &Browser) -> Vec<String> {
    delay_next_token_request(app, 400).await;
    let url = access_token_url(app);
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let mut copy = Browser::new();
            copy.jar = browser.jar.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let response = copy.get(&url).await;
                assert_eq!(response.status, 200, "{}", response.body);
                response.json()["token"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_one_cookie_session_share_one_refresh() {
    let app = start(|b| b).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    app.harness.reset_stats();
    let tokens = concurrent_tokens(&app, &browser).await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    let stats = app.harness.stats();
    assert_eq!(
        stats.grant("refresh_token"),
        1,
        "one refresh reached the server"
    );
    // The login cookie still holds the refresh token rotated away: the
    // process serves the newer session it holds instead of spending it.
    let again = browser.get(&access_token_url(&app)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["token"], tokens[0].as_str());
    assert!(
        again.set_cookies.iter().any(|c| c.starts_with("__session")),
        "the newer session goes out in the cookie"
    );
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_one_stateful_session_share_one_refresh() {
    let backend = MemoryBackend::new();
    let app = start({
        let backend = backend.clone();
        move |b| b.stateful(backend)
    })
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    assert_eq!(backend.len(), 1);
    app.harness.reset_stats();
    let tokens = concurrent_tokens(&app, &browser).await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
    // Cached now: no further refresh.
    let again = browser.get(&access_token_url(&app)).await;
    assert_eq!(again.json()["token"], tokens[0].as_str());
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
}
