//! The ureq adapter over real HTTP on 127.0.0.1, against node-oidc-provider
//! with refresh-token rotation and two APIs (the `tokenkeeper-integration`
//! harness).

mod support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tokenkeeper_integration::util::example;

use support::{
    SharedStore, access_token, authorization, closed_port, config, config_for, expire,
    refresh_token, session_from,
};
use tokenkeeper::{Action, Config, ResponseError, TokenRequest};
use tokenkeeper_integration::{API1, API2, CannedResponse, Harness, HarnessOptions, jwt};
use tokenkeeper_ureq::{Error, TokenKeeper};
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

fn keeper(config: Config, store: &SharedStore) -> TokenKeeper {
    TokenKeeper::builder(config)
        .store(store.clone())
        .build()
        .unwrap()
}

/// `n` threads ask at once (released by a barrier); their answers.
fn ask_at_once(
    keeper: &TokenKeeper,
    requests: Vec<TokenRequest<'static>>,
) -> Vec<Result<tokenkeeper::AccessTokenInfo, Error>> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let threads: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let (keeper, barrier) = (keeper.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                keeper.get_access_token(&request)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn get(keeper: &TokenKeeper, url: &str) -> http::Response<ureq::Body> {
    let request = http::Request::get(url).body(()).unwrap();
    keeper
        .send_authorized(&TokenRequest::new(), request)
        .unwrap()
}

#[test]
fn sixty_four_threads_on_an_expired_session_make_one_refresh() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    let started = Instant::now();
    let answers = ask_at_once(&keeper, vec![TokenRequest::new(); 64]);
    eprintln!("64 threads answered in {:?}", started.elapsed());

    assert_eq!(h.stats().grant("refresh_token"), 1, "exactly one refresh");
    let distinct: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(distinct.len(), 1, "all callers share the refreshed token");
    let token = distinct.into_iter().next().unwrap();
    assert_ne!(token, access_token(&session).as_str());
    assert_eq!(jwt::audiences(&token), [API1]);

    // The rotated refresh token reached the store.
    let stored = store.stored().unwrap();
    assert_ne!(refresh_token(&stored), refresh_token(&session).as_str());
    assert_eq!(access_token(&stored), token);
    assert_eq!(store.history().len(), 1);

    // The token is valid at the API, and no further refresh happens.
    let mut response = get(&keeper, &h.resource_url("/api1/data"));
    assert_eq!(response.status(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(h.stats().grant("refresh_token"), 1);
}

#[test]
fn two_audiences_at_once_one_refresh_each_and_no_replay() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    let requests = (0..64)
        .map(|i| TokenRequest::new().audience(if i % 2 == 0 { API1 } else { API2 }))
        .collect();
    let answers = ask_at_once(&keeper, requests);
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
    // Both refreshes rotated the refresh token, and both rotations were saved.
    let history = store.history();
    let saved_rts: BTreeSet<String> = history.iter().map(refresh_token).collect();
    assert_eq!(saved_rts.len(), 2, "two rotations saved");
    assert!(!saved_rts.contains(refresh_token(&session).as_str()));

    // Had a refresh token been replayed, the server would have revoked the
    // grant: a later refresh proves it was not.
    let forced = keeper
        .get_access_token(&TokenRequest::new().audience(API2).force_refresh())
        .unwrap();
    assert_eq!(jwt::audiences(forced.token.secret()), [API2]);
    assert_eq!(h.stats().grant("refresh_token"), 3);
    assert_eq!(h.stats().token_responses_by_status.get("400"), None);
    let request = http::Request::get(h.resource_url("/api2/data"))
        .body(())
        .unwrap();
    let response = keeper
        .send_authorized(&TokenRequest::new().audience(API2), request)
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn invalid_token_from_the_api_refreshes_and_resends_once() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(session.clone());
    let keeper = keeper(config(&h), &store);
    h.reset_stats();

    // An API1 token sent to API2: 401 invalid_token. The core marks the
    // token rejected, the handle gets a new one (a refresh) and resends
    // once; API2 still refuses an API1 token, so that 401 is the answer.
    let response = get(&keeper, &h.resource_url("/api2/data"));
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let stats = h.stats();
    assert_eq!(stats.resource_requests, 2, "sent, then resent once");
    assert_eq!(
        stats.grant("refresh_token"),
        1,
        "the rejected token was replaced"
    );
    let current = keeper.session().unwrap();
    assert_ne!(access_token(&current), access_token(&session));
    assert_eq!(store.stored().unwrap().generation(), current.generation());

    // The second 401 rejected the replacement too (the core cannot tell a
    // wrong audience from a revoked token), so the next use refreshes again,
    // and that token is good where it belongs.
    assert_eq!(get(&keeper, &h.resource_url("/api1/data")).status(), 200);
    assert_eq!(h.stats().grant("refresh_token"), 2);
}

#[test]
fn server_error_page_is_a_typed_error_and_the_session_is_untouched() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);
    let before = keeper.session().unwrap().to_json();
    h.fail_next(CannedResponse::new(
        500,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    ));

    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code(), "failed_to_refresh_token", "{error:?}");
    assert!(matches!(
        error,
        Error::Core(tokenkeeper::Error::FailedToRefreshToken(
            ResponseError::NotJson { status: 500 }
        ))
    ));
    assert_eq!(keeper.session().unwrap().to_json(), before);
    assert!(store.history().is_empty(), "nothing saved");

    // The refresh token is still good.
    keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(h.stats().grant("refresh_token"), 2);
}

#[test]
fn connection_refused_is_a_transport_error_and_the_session_is_untouched() {
    let h = harness();
    let session = login(&h);
    let endpoint = format!("http://127.0.0.1:{}/token", closed_port());
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config_for(&endpoint), &store);
    let before = keeper.session().unwrap().to_json();

    let answers = ask_at_once(&keeper, vec![TokenRequest::new(); 8]);
    for answer in answers {
        let error = answer.unwrap_err();
        assert_eq!(error.code(), "transport_error", "{error:?}");
    }
    let error = keeper.get_access_token(&TokenRequest::new()).unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(keeper.session().unwrap().to_json(), before);
    assert!(store.history().is_empty());
}

#[test]
fn the_store_receives_every_rotation() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    let keeper = keeper(config(&h), &store);

    let mut seen = vec![refresh_token(&session).as_str().to_owned()];
    for round in 0..3 {
        let request = if round == 0 {
            TokenRequest::new()
        } else {
            TokenRequest::new().force_refresh()
        };
        keeper.get_access_token(&request).unwrap();
        seen.push(refresh_token(&keeper.session().unwrap()));
    }
    let history = store.history();
    assert_eq!(history.len(), 3);
    let saved: Vec<String> = history.iter().map(refresh_token).collect();
    assert_eq!(
        saved,
        seen[1..],
        "every rotated refresh token was saved, in order"
    );
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        4,
        "each refresh rotated"
    );
    let generations: Vec<u64> = history
        .iter()
        .map(tokenkeeper::Session::generation)
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] < w[1]),
        "{generations:?}"
    );

    // A new handle on the same store starts where this one stopped.
    let reloaded = keeper_from(&h, &store);
    assert_eq!(
        reloaded.session().unwrap().to_json(),
        keeper.session().unwrap().to_json()
    );
}

fn keeper_from(h: &Harness, store: &SharedStore) -> TokenKeeper {
    keeper(config(h), store)
}

#[test]
fn two_handles_on_one_store_adopt_each_others_changes() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    let a = keeper(config(&h), &store);
    let b = keeper(config(&h), &store);
    h.reset_stats();

    // A refreshes and saves. B's copy is stale (spent refresh token): before
    // refreshing it sees the store moved on and adopts A's session.
    let token_a = a.get_access_token(&TokenRequest::new()).unwrap();
    let token_b = b.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(token_a.token, token_b.token);
    assert_eq!(h.stats().grant("refresh_token"), 1, "B did not refresh");

    // A refreshes again; B, still on the older generation, changes its own
    // copy without a refresh (the API rejects its token): its save conflicts,
    // so B reloads A's session and uses A's new token for the one retry.
    let token_a2 = a
        .get_access_token(&TokenRequest::new().force_refresh())
        .unwrap();
    let response = get(&b, &h.resource_url("/api2/data"));
    assert_eq!(response.status(), 401);
    assert_eq!(h.stats().grant("refresh_token"), 2, "B did not refresh");
    let session_b = b.session().unwrap();
    assert_eq!(access_token(&session_b), token_a2.token.secret());
    // B saved its own last change (the retry's 401 rejected that token too).
    assert_eq!(session_b.generation(), store.stored().unwrap().generation());
    assert_eq!(
        refresh_token(&session_b),
        refresh_token(&store.stored().unwrap())
    );

    // No refresh token was replayed: both handles can still refresh.
    b.get_access_token(&TokenRequest::new().force_refresh())
        .unwrap();
    a.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(h.stats().grant("refresh_token"), 3);
    assert_eq!(h.stats().token_responses_by_status.get("400"), None);
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

#[test]
fn login_with_discovery_starts_a_saved_session() {
    let h = harness();
    let (keeper, store) = discovered(&h);
    assert_eq!(
        keeper
            .get_access_token(&TokenRequest::new())
            .unwrap_err()
            .code(),
        "missing_session"
    );

    // The core builds the authorization URL, the harness plays the browser,
    // the handle exchanges the code (the core checks the ID token).
    let (url, transaction) = authorization(&h);
    let token = keeper.login(&transaction, &h.login(&url)).unwrap();
    assert_eq!(jwt::audiences(token.token.secret()), [API1]);
    let stored = store.stored().unwrap();
    assert_eq!(stored.user().unwrap()["sub"], "alice");
    assert_eq!(access_token(&stored), token.token.secret());
    assert_eq!(store.history().len(), 1, "the new session was saved");

    let token = keeper.get_access_token(&TokenRequest::new()).unwrap();
    assert_eq!(access_token(&stored), token.token.secret(), "no refresh");
    let api2 = keeper
        .get_access_token(&TokenRequest::new().audience(API2))
        .unwrap();
    assert_eq!(jwt::audiences(api2.token.secret()), [API2]);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    assert_eq!(h.stats().grant("authorization_code"), 1);
}

/// A handle configured from the harness's discovery document (issuer,
/// token and revocation endpoints), on a shared store without a session.
fn discovered(h: &Harness) -> (TokenKeeper, SharedStore) {
    let metadata = tokenkeeper_ureq::discover(
        &tokenkeeper_ureq::agent(tokenkeeper_ureq::DEFAULT_TIMEOUT),
        h.issuer(),
    )
    .unwrap();
    assert_eq!(metadata.issuer, h.issuer());
    let config = Config::builder(metadata.token_endpoint.clone(), "confidential-post")
        .metadata(&metadata)
        .client_auth(tokenkeeper::grant::ClientAuth::SecretPost(
            tokenkeeper::ClientSecret::new("secret-post-1"),
        ))
        .audience(API1)
        .scope(support::LOGIN_SCOPE)
        .target_parameter(tokenkeeper::grant::TargetParameter::Resource)
        .build()
        .unwrap();
    let store = SharedStore::default();
    (keeper(config, &store), store)
}

#[test]
fn logout_marks_the_session_and_revokes_the_refresh_token() {
    let h = harness();
    let (keeper, store) = discovered(&h);
    let (url, transaction) = authorization(&h);
    keeper.login(&transaction, &h.login(&url)).unwrap();
    let spent = refresh_token(&keeper.session().unwrap());

    keeper.logout().unwrap();
    assert!(
        store.stored().unwrap().is_logged_out(),
        "saved as logged out"
    );
    let error = keeper
        .get_access_token(&TokenRequest::new().force_refresh())
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

#[test]
fn token_exchange_returns_a_token_for_another_api_without_storing_it() {
    let h = harness();
    let (keeper, _store) = discovered(&h);
    let (url, transaction) = authorization(&h);
    let subject = keeper.login(&transaction, &h.login(&url)).unwrap();
    let before = keeper.session().unwrap().to_json();

    let auth =
        tokenkeeper::grant::ClientAuth::SecretPost(tokenkeeper::ClientSecret::new("secret-post-1"));
    let request = tokenkeeper::grant::TokenExchangeRequest::new(
        h.token_endpoint(),
        "confidential-post",
        &auth,
        subject.token.secret(),
        "urn:ietf:params:oauth:token-type:access_token",
    )
    .target(API2, tokenkeeper::grant::TargetParameter::Resource);
    let exchanged = keeper.exchange_token(&request).unwrap();
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

// That the handle is `Clone + Send + Sync` is a compile-time assertion in
// the crate (`src/lib.rs`), not a test.

#[test]
fn client_credentials_are_cached_and_coalesced() {
    let h = harness();
    let config = Config::builder(h.token_endpoint(), "m2m")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretBasic(
            tokenkeeper::ClientSecret::new("secret-m2m-1"),
        ))
        .target_parameter(tokenkeeper::grant::TargetParameter::Resource)
        .build()
        .unwrap();
    let keeper = TokenKeeper::builder(config).build().unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (keeper, barrier) = (keeper.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                keeper
                    .get_client_credentials_token(&TokenRequest::new().audience(API1))
                    .unwrap()
            })
        })
        .collect();
    let tokens: BTreeSet<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(tokens.len(), 1, "one shared token");
    assert_eq!(h.stats().grant("client_credentials"), 1, "one request");
    let token = tokens.into_iter().next().unwrap();
    assert_eq!(jwt::claims(&token)["sub"], "m2m");
    assert_eq!(jwt::audiences(&token), [API1]);

    let again = keeper
        .get_client_credentials_token(&TokenRequest::new().audience(API1))
        .unwrap();
    assert_eq!(again.token.secret(), token, "cached");
    assert_eq!(h.stats().grant("client_credentials"), 1);
    let call = tokenkeeper_integration::resource_request(
        &h,
        "GET",
        "/api1/data",
        Some(&format!("Bearer {token}")),
        None,
    );
    assert_eq!(call.status, 200, "{}", call.body);
}

#[test]
fn two_processes_sharing_a_store_make_one_refresh() {
    let h = harness();
    let session = login(&h);
    let store = SharedStore::with_session(expire(&session));
    // Two handles stand for two processes: each has its own single-flight,
    // only the refresh claim saved in the store keeps them apart.
    let a = keeper(support::shared_config(&h), &store);
    let b = keeper(support::shared_config(&h), &store);
    h.reset_stats();

    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let keeper = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                keeper.get_access_token(&TokenRequest::new())
            })
        })
        .collect();
    let tokens: BTreeSet<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(h.stats().grant("refresh_token"), 1, "one refresh in all");
    assert_eq!(tokens.len(), 1, "both processes share the new token");
    let stored = store.stored().unwrap();
    assert!(stored.refresh_claim().is_none(), "the claim was released");
    assert_eq!(access_token(&stored), *tokens.first().unwrap());

    // Nothing was replayed: both can refresh again.
    b.get_access_token(&TokenRequest::new().force_refresh())
        .unwrap();
    a.get_access_token(&TokenRequest::new().force_refresh())
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
fn dpop_with_nonces_end_to_end() {
    dpop_end_to_end(false);
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
