//! One application-wide driver for every request: N concurrent requests of
//! one user whose token must be refreshed (rotation on) send exactly one
//! refresh to the real server, and all get the same token — with the
//! session in the cookie and with the session in a stateful store.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{API2, App, Browser, start};
use tokenkeeper::{Session, SessionStore, StoreError};
use tokenkeeper_axum::stateful::{MemoryBackend, SessionBackend};

const CONCURRENT: usize = 8;

fn access_token_url(app: &App) -> String {
    let audience: String = url::form_urlencoded::byte_serialize(API2.as_bytes()).collect();
    format!("{}/auth/access-token?audience={audience}", app.base)
}

/// The harness and an app keeping its sessions in `backend`.
async fn stateful_app(backend: &(impl SessionBackend + Clone)) -> App {
    let backend = backend.clone();
    start(move |b| b.stateful(backend)).await
}

/// Another browser with `browser`'s cookies (another tab of the user).
fn same_cookies(browser: &Browser) -> Browser {
    let mut copy = Browser::new();
    copy.jar = browser.jar.clone();
    copy
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
            let mut copy = same_cookies(browser);
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
    let app = stateful_app(&backend).await;
    stateful_session_shares_one_refresh(&app).await;
    assert_eq!(backend.len(), 1);
}

/// The same with a backend that may block: every store call of the
/// driver and of the routes runs on the blocking pool (and loads wait
/// 20 ms), and the single flight holds all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_one_blocking_stateful_session_share_one_refresh() {
    let backend = SlowBackend::default();
    let app = stateful_app(&backend).await;
    backend.delay_ms.store(20, Ordering::SeqCst);
    stateful_session_shares_one_refresh(&app).await;
    assert_eq!(backend.inner.len(), 1);
}

async fn stateful_session_shares_one_refresh(app: &App) {
    let mut browser = Browser::new();
    assert_eq!(browser.login(app, "").await.status, 302);
    app.harness.reset_stats();
    let tokens = concurrent_tokens(app, &browser).await;
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
    // Cached now: no further refresh.
    let again = browser.get(&access_token_url(app)).await;
    assert_eq!(again.json()["token"], tokens[0].as_str());
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
}

/// A backend over the network, slowed down: every load waits `delay_ms`
/// (blocking, as a blocking Redis or database client does).
#[derive(Clone, Default)]
struct SlowBackend {
    inner: MemoryBackend,
    delay_ms: Arc<AtomicU64>,
}

struct SlowStore {
    inner: Box<dyn SessionStore + Send>,
    delay: Duration,
}

impl SessionStore for SlowStore {
    fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
        std::thread::sleep(self.delay);
        self.inner.load(key)
    }
    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.inner.save(key, session, expected)
    }
    fn clear(&mut self, key: &str) -> Result<(), StoreError> {
        self.inner.clear(key)
    }
}

impl SessionBackend for SlowBackend {
    fn store(&self, id: &str) -> Box<dyn SessionStore + Send> {
        Box::new(SlowStore {
            inner: self.inner.store(id),
            delay: Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)),
        })
    }
    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id)
    }
    // `blocks`: the default (true).
}

/// A stateful backend that blocks is never called on the runtime's
/// worker: with one worker thread, a page that needs no session is served
/// at once while another request waits 500 ms on the backend. Called in
/// place (as before), the page waited for the backend too.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_blocking_backend_does_not_stall_the_worker() {
    let backend = SlowBackend::default();
    let app = stateful_app(&backend).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    backend.delay_ms.store(500, Ordering::SeqCst);

    let profile = format!("{}/auth/profile", app.base);
    let started = Instant::now();
    let slow = tokio::spawn({
        let mut copy = same_cookies(&browser);
        async move {
            let started = Instant::now();
            let response = copy.get(&profile).await;
            (response.status, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let page = Browser::new().get(&format!("{}/", app.base)).await;
    // From the slow request's start: a worker stuck in the backend's wait
    // holds up even this test's timer.
    let page_done = started.elapsed();
    let (status, slow_took) = slow.await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        status, 200,
        "the session was found, after the backend's wait"
    );
    assert!(slow_took >= Duration::from_millis(500), "{slow_took:?}");
    assert!(
        page_done < Duration::from_millis(350),
        "the page was served {page_done:?} after the slow request started: \
         it waited for that request's backend call"
    );
}
