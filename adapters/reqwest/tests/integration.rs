//! The reqwest adapter over real HTTP on 127.0.0.1, against node-oidc-provider
//! with refresh-token rotation and two APIs (the `tokenkeeper-integration`
//! harness). Tokio runs the tests; the adapter itself uses no Tokio API.
//! What is here is this adapter's own — a dropped future cancels its
//! refresh, waiting on any executor, redirects refused, the deferred
//! signer's future, the example. The scenarios both native adapters share
//! (tokens, rotations, concurrency, errors, stores, DPoP, grants) run
//! through this adapter in `tests/tests/scenarios_*.rs`.

mod support;

use std::future::Future;
use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use tokenkeeper_integration::util::example;

use support::{
    SharedStore, access_token, authorization, config, config_for, expire, refresh_token,
    session_from,
};
use tokenkeeper::{Action, TokenRequest};
use tokenkeeper_integration::{API1, Harness, HarnessOptions, jwt};
use tokenkeeper_reqwest::TokenKeeper;

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

// That the handle is `Clone + Send + Sync` and its futures `Send` is a
// compile-time assertion in the crate (`src/lib.rs`), not a test.

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
async fn dpop_with_a_deferred_signer_end_to_end() {
    dpop_end_to_end(true).await;
}
