//! The ureq adapter over real HTTP on 127.0.0.1, against node-oidc-provider
//! with refresh-token rotation and two APIs (the `tokenkeeper-integration`
//! harness): what is this adapter's own — waiting out a vanished caller's
//! lease, redirects refused whatever the agent, the deferred signer's
//! closure, the examples. The scenarios both native adapters share (tokens,
//! rotations, concurrency, errors, stores, DPoP, grants) run through this
//! adapter in `tests/tests/scenarios_*.rs`.

mod support;

use std::io::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokenkeeper_integration::util::example;

use support::{
    SharedStore, access_token, authorization, config, config_for, expire, refresh_token,
    session_from,
};
use tokenkeeper::{Action, TokenRequest};
use tokenkeeper_integration::{API1, Harness, HarnessOptions, jwt};
use tokenkeeper_ureq::TokenKeeper;
use ureq::http;

/// A real login through the core (authorization URL, the harness as the
/// browser, code exchange and ID token checks by the handle): the session.
fn login(h: &Harness) -> tokenkeeper::Session {
    let keeper = TokenKeeper::builder(config(h)).build().unwrap();
    let (url, transaction) = authorization(h);
    keeper.login(&transaction, &h.login(&url)).unwrap();
    keeper.session().unwrap()
}

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

#[test]
fn a_vanished_caller_is_released_at_its_lease_deadline() {
    let h = harness();
    let session = login(&h);
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

    // A caller starts a refresh and disappears without sending it.
    let now = tokenkeeper::UnixTime::from_system_time(std::time::SystemTime::now());
    let abandoned = keeper
        .with_manager(|m| match m.get_access_token(&TokenRequest::new(), now) {
            Action::Send(out) => out.id,
            other => panic!("{other:?}"),
        })
        .unwrap();
    let started = Instant::now();
    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert!(token.expires_at > now);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    // The lost request's id is gone.
    assert!(!keeper.with_manager(|m| m.cancel(abandoned)).unwrap());
}

/// A one-shot HTTP server: answers each connection with `response`, counts
/// connections.
fn canned_server(response: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = tokenkeeper_integration::util::read_http_request(&mut stream);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (url, hits)
}

#[test]
fn redirects_are_not_followed_and_every_header_is_kept_whatever_the_agent() {
    let (elsewhere, elsewhere_hits) = canned_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    );
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/token\r\ncontent-length: 0\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (endpoint, hits) = canned_server(redirect);
    let session = session_from(
        &serde_json::json!({"access_token": "at", "refresh_token": "rt", "id_token": null,
            "expires_in": 60, "scope": "openid", "token_type": "Bearer"}),
        true,
    );
    // An agent with ureq's defaults (status codes as errors, 10 redirects):
    // the handle overrides both for its own requests.
    let keeper = TokenKeeper::builder(config_for(&format!("{endpoint}/token")))
        .agent(ureq::Agent::new_with_defaults())
        .session(session)
        .build()
        .unwrap();
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code(), "failed_to_refresh_token", "{error:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "redirect followed"
    );

    // A 401 with two challenges and a nonce: data for the core, all headers.
    let (api, _) = canned_server(
        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"a\"\r\nwww-authenticate: DPoP algs=\"ES256\"\r\ndpop-nonce: n1\r\ncontent-length: 0\r\n\r\n",
    );
    let session = session_from(
        &serde_json::json!({"access_token": "at", "refresh_token": "rt", "id_token": null,
            "expires_in": 60, "scope": "openid", "token_type": "Bearer"}),
        false,
    );
    // An agent with ureq's defaults (status codes as errors, 10 redirects):
    // the handle overrides both for its own requests.
    let keeper = TokenKeeper::builder(config_for(&format!("{endpoint}/token")))
        .agent(ureq::Agent::new_with_defaults())
        .session(session)
        .build()
        .unwrap();
    let request = http::Request::get(format!("{api}/data")).body(()).unwrap();
    let response = keeper
        .send_authorized(&TokenRequest::new(), request)
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

#[test]
fn the_example_refreshes_a_token() {
    let output = example("get_token").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TOKENKEEPER_REFRESH_TOKEN"));

    let h = harness();
    let session = login(&h);
    let output = example("get_token")
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

// That the handle is `Clone + Send + Sync` is a compile-time assertion in
// the crate (`src/lib.rs`), not a test.

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
fn dpop_end_to_end(deferred: bool) {
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
            .deferred_signer(move |input: &str| Ok(remote.sign_now(input.as_bytes())?))
    } else {
        builder.dpop(Arc::clone(&signer))
    };
    let keeper = builder.build().unwrap();
    let thumbprint = keeper.dpop_thumbprint().unwrap();
    assert_eq!(thumbprint, signer.public_jwk().thumbprint());

    // The code exchange: the first proof has no nonce, the server answers
    // use_dpop_nonce, the core resends once with it.
    let (url, transaction) = authorization(&h);
    let token = keeper.login(&transaction, &h.login(&url)).unwrap();
    assert_eq!(token.token_type, tokenkeeper::TokenType::DPoP);
    assert_eq!(jwt::claims(token.token.secret())["cnf"]["jkt"], thumbprint);
    assert_eq!(h.stats().dpop_nonce_challenges, 1);

    // The API call: the resource server wants its own nonce (one retry);
    // the next call carries it at once.
    for expected_requests in [2, 3] {
        let request = http::Request::get(h.resource_url("/api1/data"))
            .body(())
            .unwrap();
        let mut response = keeper
            .send_authorized(&TokenRequest::new(), request)
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        assert_eq!(body["token_type"], "DPoP");
        let stats = h.stats();
        assert_eq!(stats.resource_requests, expected_requests);
        assert_eq!(stats.resource_nonce_challenges, 1);
    }

    // A refresh: proof with the remembered nonce, a bound token, saved.
    let refreshed = keeper
        .get_access_token(&TokenRequest::new().force_refresh())
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

#[test]
fn dpop_with_a_deferred_signer_end_to_end() {
    dpop_end_to_end(true);
}

#[test]
fn the_client_credentials_example_gets_one_machine_token() {
    let output = example("client_credentials").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2), "usage without environment");

    let h = harness();
    let output = example("client_credentials")
        .env_clear()
        .env("TOKENKEEPER_ISSUER", h.issuer())
        .env("TOKENKEEPER_CLIENT_ID", "confidential-post")
        .env("TOKENKEEPER_CLIENT_SECRET", "secret-post-1")
        .env("TOKENKEEPER_RESOURCE", API1)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(API1), "{stdout}");
    assert!(stdout.contains("from the cache"), "{stdout}");
    assert_eq!(
        h.stats().grant("client_credentials"),
        1,
        "asked twice, sent once"
    );
}

#[test]
fn the_custom_store_example_saves_every_rotation_and_reloads() {
    let h = harness();
    let session = login(&h);
    let file = std::env::temp_dir().join(format!(
        "tokenkeeper-custom-store-{}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&file);
    let run = |refresh_token: Option<&str>| {
        let mut command = example("custom_store");
        command
            .env_clear()
            .env("TOKENKEEPER_ISSUER", h.issuer())
            .env("TOKENKEEPER_CLIENT_ID", "confidential-post")
            .env("TOKENKEEPER_CLIENT_SECRET", "secret-post-1")
            .env("TOKENKEEPER_RESOURCE", API1)
            .env("TOKENKEEPER_SESSION_FILE", &file);
        if let Some(refresh_token) = refresh_token {
            command.env("TOKENKEEPER_REFRESH_TOKEN", refresh_token);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    h.reset_stats();
    let original = refresh_token(&session);
    let first = run(Some(original.as_str()));
    assert_eq!(h.stats().grant("refresh_token"), 1);
    let saved =
        tokenkeeper::Session::from_json(&std::fs::read(&file).unwrap(), &Default::default())
            .unwrap();
    assert_ne!(refresh_token(&saved), original, "the rotation was saved");
    assert_eq!(
        jwt::audiences(saved.token_set().access_token.secret()),
        [API1]
    );
    // The second run loads the file: the cached token, no request (the
    // stale refresh token in the environment is not used).
    let second = run(Some(original.as_str()));
    assert_eq!(first, second);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    std::fs::remove_file(&file).unwrap();
}
