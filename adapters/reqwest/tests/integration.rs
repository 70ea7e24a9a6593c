//! The reqwest adapter over real HTTP on 127.0.0.1, against node-oidc-provider
//! with refresh-token rotation and two APIs (the `tokenkeeper-integration`
//! harness). Tokio runs the tests; the adapter itself uses no Tokio API.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokenkeeper_integration::util::example;

use support::{
    SharedStore, access_token, authorization, closed_port, config, config_for, expire,
    refresh_token, session_from,
};
use tokenkeeper::{Action, Config, ResponseError, TokenRequest};
use tokenkeeper_integration::{API1, API2, CannedResponse, Harness, HarnessOptions, jwt};
use tokenkeeper_reqwest::{Error, TokenKeeper};

/// A real login through the core (authorization URL, the harness as the
/// browser, code exchange and ID token checks by the handle): the session.
async fn login(h: &Harness) -> tokenkeeper::Session {
    let keeper = TokenKeeper::builder(config(h)).build().unwrap();
    let (url, transaction) = authorization(h);
    keeper.login(&transaction, &h.login(&url)).await.unwrap();
    keeper.session().unwrap()
}

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

fn keeper(config: Config, store: &SharedStore) -> TokenKeeper {
    TokenKeeper::builder(config)
        .store(store.clone())
        .build()
        .unwrap()
}

/// One task per request, all spawned before any runs far; their answers.
async fn ask_at_once(
    keeper: &TokenKeeper,
    requests: Vec<TokenRequest<'static>>,
) -> Vec<Result<tokenkeeper::AccessTokenInfo, Error>> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let keeper = keeper.clone();
            tokio::spawn(async move { keeper.get_access_token(&request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

async fn get(keeper: &TokenKeeper, url: &str) -> reqwest::Response {
    let request = keeper.client().get(url).build().unwrap();
    keeper
        .send_authorized(&TokenRequest::new(), request)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_an_expired_session_make_one_refresh() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    let started = Instant::now();
    let answers = ask_at_once(&keeper, vec![TokenRequest::new(); 64]).await;
    eprintln!("64 tasks answered in {:?}", started.elapsed());

    assert_eq!(h.stats().grant("refresh_token"), 1, "exactly one refresh");
    let distinct: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(distinct.len(), 1, "all callers share the refreshed token");
    let token = distinct.into_iter().next().unwrap();
    assert_ne!(token, access_token(&session).as_str());
    assert_eq!(jwt::audiences(&token), [API1]);

    let stored = store.stored().unwrap();
    assert_ne!(refresh_token(&stored), refresh_token(&session).as_str());
    assert_eq!(access_token(&stored), token);
    assert_eq!(store.history().len(), 1);

    let response = get(&keeper, &h.resource_url("/api1/data")).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(h.stats().grant("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_audiences_at_once_one_refresh_each_and_no_replay() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    let requests = (0..64)
        .map(|i| TokenRequest::new().audience(if i % 2 == 0 { API1 } else { API2 }))
        .collect();
    let answers = ask_at_once(&keeper, requests).await;
    assert_eq!(
        h.stats().grant("refresh_token"),
        2,
        "one refresh per audience"
    );
    for (audience, parity) in [(API1, 0), (API2, 1)] {
        let distinct: BTreeSet<String> = answers
            .iter()
            .skip(parity)
            .step_by(2)
            .map(|a| a.as_ref().unwrap().token.secret().to_owned())
            .collect();
        assert_eq!(distinct.len(), 1, "{audience}: one shared token");
        let token = distinct.into_iter().next().unwrap();
        assert_eq!(jwt::audiences(&token), [audience]);
    }
    let saved_rts: BTreeSet<String> = store.history().iter().map(refresh_token).collect();
    assert_eq!(saved_rts.len(), 2, "two rotations saved");
    assert!(!saved_rts.contains(refresh_token(&session).as_str()));

    // Had a refresh token been replayed, the server would have revoked the
    // grant: a later refresh proves it was not.
    let forced = keeper
        .get_access_token(&TokenRequest::new().audience(API2).force_refresh())
        .await
        .unwrap();
    assert_eq!(jwt::audiences(forced.token.secret()), [API2]);
    assert_eq!(h.stats().grant("refresh_token"), 3);
    assert_eq!(h.stats().token_responses_by_status.get("400"), None);
    let request = keeper
        .client()
        .get(h.resource_url("/api2/data"))
        .build()
        .unwrap();
    let response = keeper
        .send_authorized(&TokenRequest::new().audience(API2), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_token_from_the_api_refreshes_and_resends_once() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(session.clone());
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    // An API1 token sent to API2: 401 invalid_token; a new token (a
    // refresh), one resend, and API2's second 401 is the answer.
    let response = get(&keeper, &h.resource_url("/api2/data")).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let stats = h.stats();
    assert_eq!(stats.resource_requests, 2, "sent, then resent once");
    assert_eq!(stats.grant("refresh_token"), 1);
    let current = keeper.session().unwrap();
    assert_ne!(access_token(&current), access_token(&session));
    assert_eq!(store.stored().unwrap().generation(), current.generation());

    // The second 401 rejected the replacement too, so the next use
    // refreshes again, and that token is good where it belongs.
    assert_eq!(
        get(&keeper, &h.resource_url("/api1/data")).await.status(),
        200
    );
    assert_eq!(h.stats().grant("refresh_token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_page_is_a_typed_error_and_the_session_is_untouched() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    let before = keeper.session().unwrap().to_json();
    h.fail_next(CannedResponse::new(
        500,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    ));

    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "failed_to_refresh_token", "{error:?}");
    assert!(matches!(
        error,
        Error::Core(tokenkeeper::Error::FailedToRefreshToken(
            ResponseError::NotJson { status: 500 }
        ))
    ));
    assert_eq!(keeper.session().unwrap().to_json(), before);
    assert!(store.history().is_empty(), "nothing saved");

    keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(h.stats().grant("refresh_token"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_a_transport_error_and_the_session_is_untouched() {
    let h = harness();
    let session = login(&h).await;
    let endpoint = format!("http://127.0.0.1:{}/token", closed_port());
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config_for(&endpoint), &store);
    let before = keeper.session().unwrap().to_json();

    for answer in ask_at_once(&keeper, vec![TokenRequest::new(); 8]).await {
        let error = answer.unwrap_err();
        assert_eq!(error.code(), "transport_error", "{error:?}");
    }
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Transport(e) if e.is_connect()),
        "{error:?}"
    );
    assert_eq!(keeper.session().unwrap().to_json(), before);
    assert!(store.history().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_receives_every_rotation() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);

    let mut seen = vec![refresh_token(&session).as_str().to_owned()];
    for round in 0..3 {
        let request = if round == 0 {
            TokenRequest::new()
        } else {
            TokenRequest::new().force_refresh()
        };
        keeper.get_access_token(&request).await.unwrap();
        seen.push(refresh_token(&keeper.session().unwrap()));
    }
    let history = store.history();
    let saved: Vec<String> = history.iter().map(refresh_token).collect();
    assert_eq!(
        saved,
        seen[1..],
        "every rotated refresh token was saved, in order"
    );
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 4);
    let generations: Vec<u64> = history
        .iter()
        .map(tokenkeeper::Session::generation)
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] < w[1]),
        "{generations:?}"
    );

    let reloaded = keeper_from(&h, &store);
    assert_eq!(
        reloaded.session().unwrap().to_json(),
        keeper.session().unwrap().to_json()
    );
}

fn keeper_from(h: &Harness, store: &SharedStore) -> TokenKeeper {
    keeper(config(h), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_store_adopt_each_others_changes() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    let a = keeper(config(&h), &store);
    let b = keeper(config(&h), &store);
    h.reset_stats();

    // A refreshes and saves; B sees the store moved on before refreshing.
    let token_a = a.get_access_token(&TokenRequest::new()).await.unwrap();
    let token_b = b.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token_a.token, token_b.token);
    assert_eq!(h.stats().grant("refresh_token"), 1, "B did not refresh");

    // B's own change (a rejected token) conflicts with A's newer save: B
    // reloads A's session and retries with A's token.
    let token_a2 = a
        .get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
    let response = get(&b, &h.resource_url("/api2/data")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(h.stats().grant("refresh_token"), 2, "B did not refresh");
    let session_b = b.session().unwrap();
    assert_eq!(access_token(&session_b), token_a2.token.secret());
    assert_eq!(session_b.generation(), store.stored().unwrap().generation());
    assert_eq!(
        refresh_token(&session_b),
        refresh_token(&store.stored().unwrap())
    );

    // No refresh token was replayed: both handles can still refresh.
    b.get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
    a.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(h.stats().grant("refresh_token"), 3);
    assert_eq!(h.stats().token_responses_by_status.get("400"), None);
}

/// A token endpoint that never answers its first request and answers the
/// later ones with a token; counts connections.
fn stalling_token_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        let mut stalled = Vec::new();
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            let _ = tokenkeeper_integration::util::read_http_request(&mut stream);
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                stalled.push(stream); // never answered
                continue;
            }
            let body = r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}

fn offline_session(expired: bool) -> tokenkeeper::Session {
    session_from(
        &serde_json::json!({"access_token": "at-1", "refresh_token": "rt-1", "id_token": null,
            "expires_in": 60, "scope": "openid", "token_type": "Bearer"}),
        expired,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_cancels_its_refresh_and_a_waiter_takes_over() {
    let (endpoint, hits) = stalling_token_endpoint();
    let keeper = TokenKeeper::new(config_for(&endpoint), offline_session(true)).unwrap();

    // The owner's request stalls; a second caller waits on it.
    let owner = {
        let keeper = keeper.clone();
        tokio::spawn(async move { keeper.get_access_token(&TokenRequest::new()).await })
    };
    while hits.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiter = {
        let keeper = keeper.clone();
        tokio::spawn(async move { keeper.get_access_token(&TokenRequest::new()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "the waiter waits for the owner");

    // The owner's future is dropped mid-request: its refresh is cancelled
    // and the waiter sends its own at once (not at the 60 s lease).
    let started = Instant::now();
    owner.abort();
    let token = waiter.await.unwrap().unwrap();
    assert_eq!(token.token.secret(), "at-2");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
}

/// A minimal executor (park the thread until woken): the adapter's waiting
/// does not need Tokio's.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn a_vanished_caller_is_released_at_its_lease_deadline_on_any_executor() {
    // Polled by a plain thread-parking executor below; reqwest's connections
    // still need a Tokio reactor, entered here.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _reactor = runtime.enter();
    let h = harness();
    let session = block_on(login(&h));
    let config = tokenkeeper::Config::builder(h.token_endpoint(), "confidential-post")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretPost(
            tokenkeeper::ClientSecret::new("secret-post-1"),
        ))
        .audience(API1)
        .scope(support::LOGIN_SCOPE)
        .lease(Duration::from_secs(1))
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config, expire(&session)).unwrap();
    h.reset_stats();

    // A caller starts a refresh and disappears without sending or dropping
    // anything (a leaked future).
    let now = tokenkeeper::UnixTime::from_system_time(std::time::SystemTime::now());
    block_on(
        keeper.with_manager(|m| match m.get_access_token(&TokenRequest::new(), now) {
            Action::Send(out) => out.id,
            other => panic!("{other:?}"),
        }),
    )
    .unwrap();

    // Another caller, on the plain executor, waits until the lease
    // deadline, then refreshes itself.
    let started = Instant::now();
    let token = block_on(keeper.get_access_token(&TokenRequest::new())).unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert!(token.expires_at > now);
    assert_eq!(h.stats().grant("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed_and_every_header_is_kept() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let elsewhere_url = format!("http://{}", elsewhere.local_addr().unwrap());
    elsewhere.set_nonblocking(true).unwrap();
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere_url}/token\r\ncontent-length: 0\r\n\r\n"
    );
    let endpoint = serve_once(redirect);
    let keeper = TokenKeeper::new(config_for(&endpoint), offline_session(true)).unwrap();
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "failed_to_refresh_token", "{error:?}");
    assert!(elsewhere.accept().is_err(), "the redirect was followed");

    let api = serve_once(
        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"a\"\r\nwww-authenticate: DPoP algs=\"ES256\"\r\ndpop-nonce: n1\r\ncontent-length: 0\r\n\r\n".into(),
    );
    let keeper = TokenKeeper::new(config_for(&endpoint), offline_session(false)).unwrap();
    let request = keeper.client().get(&api).build().unwrap();
    let response = keeper
        .send_authorized(&TokenRequest::new(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .count(),
        2
    );
    assert_eq!(response.headers()["dpop-nonce"], "n1");
}

/// Answers one connection with `response`; the URL.
fn serve_once(response: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = tokenkeeper_integration::util::read_http_request(&mut stream);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn the_example_refreshes_a_token() {
    let output = example("get_token_async").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TOKENKEEPER_REFRESH_TOKEN"));

    let h = harness();
    let session = tokio::runtime::Runtime::new().unwrap().block_on(login(&h));
    let output = example("get_token_async")
        .env_clear()
        .env("TOKENKEEPER_ISSUER", h.issuer())
        .env("TOKENKEEPER_CLIENT_ID", "confidential-post")
        .env("TOKENKEEPER_CLIENT_SECRET", "secret-post-1")
        .env(
            "TOKENKEEPER_REFRESH_TOKEN",
            refresh_token(&session).as_str(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("expires at"), "{stdout}");
    assert!(stdout.contains("rotated"), "{stdout}");
    assert_eq!(h.stats().grant("refresh_token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_discovery_starts_a_saved_session() {
    let h = harness();
    let (keeper, store) = discovered(&h).await;
    assert_eq!(
        keeper
            .get_access_token(&TokenRequest::new())
            .await
            .unwrap_err()
            .code(),
        "missing_session"
    );

    // The core builds the authorization URL, the harness plays the browser,
    // the handle exchanges the code (the core checks the ID token).
    let (url, transaction) = authorization(&h);
    let token = keeper.login(&transaction, &h.login(&url)).await.unwrap();
    assert_eq!(jwt::audiences(token.token.secret()), [API1]);
    let stored = store.stored().unwrap();
    assert_eq!(stored.user().unwrap()["sub"], "alice");
    assert_eq!(access_token(&stored), token.token.secret());
    assert_eq!(store.history().len(), 1, "the new session was saved");

    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(access_token(&stored), token.token.secret(), "no refresh");
    let api2 = keeper
        .get_access_token(&TokenRequest::new().audience(API2))
        .await
        .unwrap();
    assert_eq!(jwt::audiences(api2.token.secret()), [API2]);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    assert_eq!(h.stats().grant("authorization_code"), 1);
}

/// A handle configured from the harness's discovery document (issuer,
/// token and revocation endpoints), on a shared store without a session.
async fn discovered(h: &Harness) -> (TokenKeeper, SharedStore) {
    let metadata = tokenkeeper_reqwest::discover(
        &tokenkeeper_reqwest::client(tokenkeeper_reqwest::DEFAULT_TIMEOUT).unwrap(),
        h.issuer(),
    )
    .await
    .unwrap();
    assert_eq!(metadata.issuer, h.issuer());
    let config = Config::builder(metadata.token_endpoint.clone(), "confidential-post")
        .metadata(&metadata)
        .client_auth(tokenkeeper::grant::ClientAuth::SecretPost(
            tokenkeeper::ClientSecret::new("secret-post-1"),
        ))
        .audience(API1)
        .scope(support::LOGIN_SCOPE)
        .target_parameter(tokenkeeper::grant::refresh::TargetParameter::Resource)
        .build()
        .unwrap();
    let store = SharedStore::default();
    (keeper(config, &store), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_marks_the_session_and_revokes_the_refresh_token() {
    let h = harness();
    let (keeper, store) = discovered(&h).await;
    let (url, transaction) = authorization(&h);
    keeper.login(&transaction, &h.login(&url)).await.unwrap();
    let spent = refresh_token(&keeper.session().unwrap());

    keeper.logout().await.unwrap();
    assert!(
        store.stored().unwrap().is_logged_out(),
        "saved as logged out"
    );
    let error = keeper
        .get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "logged_out");
    assert!(error.requires_login());
    // The server no longer honours the refresh token.
    let refused = tokenkeeper_integration::token_request(
        &h,
        &tokenkeeper_integration::CONFIDENTIAL_POST,
        &[("grant_type", "refresh_token"), ("refresh_token", &spent)],
        &[],
    );
    assert_eq!(
        refused.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        refused.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_returns_a_token_for_another_api_without_storing_it() {
    let h = harness();
    let (keeper, _store) = discovered(&h).await;
    let (url, transaction) = authorization(&h);
    let subject = keeper.login(&transaction, &h.login(&url)).await.unwrap();
    let before = keeper.session().unwrap().to_json();

    let auth =
        tokenkeeper::grant::ClientAuth::SecretPost(tokenkeeper::ClientSecret::new("secret-post-1"));
    let request = tokenkeeper::grant::token_exchange::TokenExchangeRequest::new(
        h.token_endpoint(),
        "confidential-post",
        &auth,
        subject.token.secret(),
        "urn:ietf:params:oauth:token-type:access_token",
    )
    .target(API2, tokenkeeper::grant::refresh::TargetParameter::Resource);
    let exchanged = keeper.exchange_token(&request).await.unwrap();
    assert_eq!(
        exchanged.issued_token_type.as_deref(),
        Some("urn:ietf:params:oauth:token-type:access_token")
    );
    let claims = jwt::claims(exchanged.access_token.secret());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["act"]["sub"], "confidential-post");
    assert_eq!(jwt::audiences(exchanged.access_token.secret()), [API2]);
    assert_eq!(keeper.session().unwrap().to_json(), before, "not stored");
}

// That the handle is `Clone + Send + Sync` and its futures `Send` is a
// compile-time assertion in the crate (`src/lib.rs`), not a test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_are_cached_and_coalesced() {
    let h = harness();
    let config = Config::builder(h.token_endpoint(), "m2m")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretBasic(
            tokenkeeper::ClientSecret::new("secret-m2m-1"),
        ))
        .target_parameter(tokenkeeper::grant::refresh::TargetParameter::Resource)
        .build()
        .unwrap();
    let keeper = TokenKeeper::builder(config).build().unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let keeper = keeper.clone();
            tokio::spawn(async move {
                keeper
                    .get_client_credentials_token(&TokenRequest::new().audience(API1))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = BTreeSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().token.secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "one shared token");
    assert_eq!(h.stats().grant("client_credentials"), 1, "one request");
    let token = tokens.into_iter().next().unwrap();
    assert_eq!(jwt::claims(&token)["sub"], "m2m");
    assert_eq!(jwt::audiences(&token), [API1]);

    let again = keeper
        .get_client_credentials_token(&TokenRequest::new().audience(API1))
        .await
        .unwrap();
    assert_eq!(again.token.secret(), token, "cached");
    assert_eq!(h.stats().grant("client_credentials"), 1);
    let response = keeper
        .client()
        .get(h.resource_url("/api1/data"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_store_make_one_refresh() {
    let h = harness();
    let session = login(&h).await;
    let store = SharedStore::with_session(expire(&session));
    // Two handles stand for two processes: each has its own single-flight,
    // only the refresh claim saved in the store keeps them apart.
    let a = keeper(support::shared_config(&h), &store);
    let b = keeper(support::shared_config(&h), &store);
    h.reset_stats();

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let keeper = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { keeper.get_access_token(&TokenRequest::new()).await })
        })
        .collect();
    let mut tokens = BTreeSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().unwrap().token.secret().to_owned());
    }
    assert_eq!(h.stats().grant("refresh_token"), 1, "one refresh in all");
    assert_eq!(tokens.len(), 1, "both processes share the new token");
    let stored = store.stored().unwrap();
    assert!(stored.refresh_claim().is_none(), "the claim was released");
    assert_eq!(access_token(&stored), *tokens.first().unwrap());

    b.get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
    a.get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
    assert_eq!(h.stats().grant("refresh_token"), 3);
    assert_eq!(h.stats().token_responses_by_status.get("400"), None);
}

/// A DPoP signer that always defers, so the handle's deferred signer (here
/// the same key, signing "elsewhere") does the signing.
struct Deferring(Arc<tokenkeeper::dpop::P256Signer>);

impl tokenkeeper::dpop::Signer for Deferring {
    fn algorithm(&self) -> &'static str {
        self.0.algorithm()
    }
    fn public_jwk(&self) -> &tokenkeeper::dpop::PublicJwk {
        self.0.public_jwk()
    }
    fn sign(
        &self,
        _: &[u8],
    ) -> Result<tokenkeeper::dpop::SignOutcome, tokenkeeper::dpop::SignError> {
        Ok(tokenkeeper::dpop::SignOutcome::Deferred)
    }
}

/// Login, API calls and a refresh with DPoP against a server that demands
/// nonces at the token endpoint and at the resource server.
async fn dpop_end_to_end(deferred: bool) {
    use tokenkeeper::dpop::{DpopKey, P256Signer, Signer as _};

    let h = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        ..HarnessOptions::default()
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let signer = Arc::new(P256Signer::new(
        DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(seed)).unwrap(),
    ));
    let store = SharedStore::default();
    let builder = TokenKeeper::builder(config(&h)).store(store.clone());
    let builder = if deferred {
        let remote = Arc::clone(&signer);
        builder
            .dpop(Deferring(Arc::clone(&signer)))
            .deferred_signer(move |input: String| {
                // A KMS would answer over the network; this one answers at once.
                let signature = remote.sign_now(input.as_bytes()).map_err(Into::into);
                Box::pin(async move { signature })
            })
    } else {
        builder.dpop(Arc::clone(&signer))
    };
    let keeper = builder.build().unwrap();
    let thumbprint = keeper.dpop_thumbprint().unwrap();
    assert_eq!(thumbprint, signer.public_jwk().thumbprint());

    let (url, transaction) = authorization(&h);
    let token = keeper.login(&transaction, &h.login(&url)).await.unwrap();
    assert_eq!(token.token_type, tokenkeeper::TokenType::DPoP);
    assert_eq!(jwt::claims(token.token.secret())["cnf"]["jkt"], thumbprint);
    assert_eq!(h.stats().dpop_nonce_challenges, 1);

    for expected_requests in [2, 3] {
        let request = keeper
            .client()
            .get(h.resource_url("/api1/data"))
            .build()
            .unwrap();
        let response = keeper
            .send_authorized(&TokenRequest::new(), request)
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let stats = h.stats();
        assert_eq!(stats.resource_requests, expected_requests);
        assert_eq!(stats.resource_nonce_challenges, 1);
    }

    let refreshed = keeper
        .get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
    assert_eq!(refreshed.token_type, tokenkeeper::TokenType::DPoP);
    assert_eq!(
        jwt::claims(refreshed.token.secret())["cnf"]["jkt"],
        thumbprint
    );
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 1);
    assert_eq!(stats.dpop_nonce_challenges, 1, "the nonce was remembered");
    assert_eq!(
        access_token(&store.stored().unwrap()),
        refreshed.token.secret()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_with_nonces_end_to_end() {
    dpop_end_to_end(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_with_a_deferred_signer_end_to_end() {
    dpop_end_to_end(true).await;
}
