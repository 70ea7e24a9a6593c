//! The wasm adapter compiled to wasm32 and run in Node (wasm-bindgen-test)
//! against the real authorization server of `tests/harness` (node-oidc-provider
//! with refresh-token rotation, a resource server, a control API).
//!
//! `scripts/wasm-tests.sh run` starts the harness and passes its URLs in the
//! environment (`WASM_HARNESS_ISSUER`, `WASM_HARNESS_TOKEN_ENDPOINT`,
//! `WASM_HARNESS_RESOURCE_SERVER`, `WASM_HARNESS_CONTROL`), read here at run time
//! from Node's `process.env`.
#![cfg(target_arch = "wasm32")]
#![allow(missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use support::{
    API1, API2, Harness, access_token, authorization, config, expire, get, refresh_token,
};
use tokenkeeper::{MemoryStore, TokenRequest};
use tokenkeeper_wasm::{Error, TokenKeeper};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
async fn login_bootstrap_then_cached_reuse() {
    let h = Harness::from_env();
    let keeper = TokenKeeper::builder(config(&h)).build().unwrap();
    let (url, transaction) = authorization(&h);
    let callback = h.login(&url).await;
    assert!(
        callback.starts_with("http://127.0.0.1/callback?code="),
        "{callback}"
    );

    let token = keeper.login(&transaction, &callback).await.unwrap();
    assert_eq!(token.token_type.as_str(), "Bearer");
    let session = keeper.session().unwrap();
    assert!(session.token_set().refresh_token.is_some());
    assert_eq!(session.user().unwrap()["sub"], "alice");

    // Cached: the same token, no request to the token endpoint.
    let before = h.stats().await;
    for _ in 0..3 {
        let again = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
        assert_eq!(again.token, token.token);
    }
    let after = h.stats().await;
    assert_eq!(
        before["token_requests_total"], after["token_requests_total"],
        "a fresh token is served from the cache"
    );
}

#[wasm_bindgen_test]
async fn refresh_with_rotation_several_times() {
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let keeper = TokenKeeper::new(config(&h), session.clone()).unwrap();
    h.reset_stats().await;

    let mut tokens = BTreeSet::from([support::access_token(&session)]);
    let mut refresh_tokens = BTreeSet::from([refresh_token(&session)]);
    let mut generation = session.generation();
    for round in 1..=4 {
        let token = keeper
            .get_access_token(&TokenRequest::new().force_refresh())
            .await
            .unwrap();
        let current = keeper.session().unwrap();
        assert!(
            tokens.insert(token.token.secret().to_owned()),
            "round {round}: a new access token"
        );
        assert!(
            refresh_tokens.insert(refresh_token(&current)),
            "round {round}: the refresh token rotated"
        );
        assert!(current.generation() > generation);
        generation = current.generation();
    }
    let stats = h.stats().await;
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 4);
    assert_eq!(stats["token_responses_by_status"]["200"], 4);
    // Had a spent refresh token been replayed, the grant would be revoked:
    // one more refresh proves it was not.
    keeper
        .get_access_token(&TokenRequest::new().force_refresh())
        .await
        .unwrap();
}

#[wasm_bindgen_test]
async fn sixty_four_futures_on_an_expired_session_make_one_refresh() {
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let keeper = TokenKeeper::builder(config(&h))
        .store(MemoryStore::with_session(expire(&session)))
        .build()
        .unwrap();
    h.reset_stats().await;

    let request = TokenRequest::new();
    let started = js_sys::Date::now();
    let answers = join_all((0..64).map(|_| {
        let keeper = keeper.clone();
        async move { keeper.get_access_token(&request).await }
    }))
    .await;
    let elapsed = js_sys::Date::now() - started;
    web_sys_log(&format!("64 futures answered in {elapsed} ms"));

    let stats = h.stats().await;
    assert_eq!(
        stats["token_requests_by_grant"]["refresh_token"], 1,
        "exactly one refresh reached the server"
    );
    let distinct: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(distinct.len(), 1, "every caller got the refreshed token");
    assert_ne!(distinct.first().unwrap(), &support::access_token(&session));
    assert_ne!(
        refresh_token(&keeper.session().unwrap()),
        refresh_token(&session)
    );
}

#[wasm_bindgen_test]
async fn two_audiences_at_once_one_refresh_each() {
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let keeper = TokenKeeper::new(config(&h), expire(&session)).unwrap();
    h.reset_stats().await;
    let requests: Vec<TokenRequest<'static>> = (0..32)
        .map(|i| TokenRequest::new().audience(if i % 2 == 0 { API1 } else { API2 }))
        .collect();
    let answers = join_all(requests.iter().map(|r| keeper.get_access_token(r))).await;
    let stats = h.stats().await;
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 2);
    assert_eq!(stats["token_responses_by_status"].get("400"), None);
    for parity in 0..2 {
        let distinct: BTreeSet<String> = answers
            .iter()
            .skip(parity)
            .step_by(2)
            .map(|a| a.as_ref().unwrap().token.secret().to_owned())
            .collect();
        assert_eq!(distinct.len(), 1);
    }
    // Each token works at its own API.
    let response = keeper
        .send_authorized(&TokenRequest::new().audience(API2), get(&h, "/api2/data"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
}

#[wasm_bindgen_test]
async fn bearer_resource_call() {
    let h = Harness::from_env();
    let keeper = TokenKeeper::new(config(&h), h.logged_in_session().await).unwrap();
    h.reset_stats().await;
    let response = keeper
        .send_authorized(&TokenRequest::new(), get(&h, "/api1/data"))
        .await
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    let stats = h.stats().await;
    assert_eq!(stats["resource_requests"], 1);
    assert_eq!(stats["token_requests_total"], 0);
}

#[wasm_bindgen_test]
async fn invalid_token_from_the_api_refreshes_and_resends_once() {
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let keeper = TokenKeeper::new(config(&h), session.clone()).unwrap();
    h.reset_stats().await;
    // An API1 token sent to API2: 401 invalid_token, one refresh, one resend,
    // and API2's second 401 is the answer (a 401 is data, not an error).
    let response = keeper
        .send_authorized(&TokenRequest::new(), get(&h, "/api2/data"))
        .await
        .unwrap();
    assert_eq!(response.status, 401);
    let challenge = response.headers.get("www-authenticate").unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let stats = h.stats().await;
    assert_eq!(stats["resource_requests"], 2, "sent, then resent once");
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 1);
    assert_ne!(
        support::access_token(&keeper.session().unwrap()),
        support::access_token(&session)
    );
}

#[wasm_bindgen_test]
async fn server_error_page_is_a_typed_error_and_nothing_changes() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let keeper = TokenKeeper::new(config(&h), session.clone()).unwrap();
    h.fail_next(serde_json::json!({
        "status": 502,
        "content_type": "text/html",
        "body": "<html><body><h1>502 Bad Gateway</h1></body></html>",
    }))
    .await;
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Core(_)), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    // The next call refreshes for real with the untouched refresh token.
    keeper.get_access_token(&TokenRequest::new()).await.unwrap();
}

#[wasm_bindgen_test]
async fn invalid_grant_requires_login() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let keeper = TokenKeeper::new(config(&h), session).unwrap();
    h.fail_next(serde_json::json!({
        "status": 400,
        "content_type": "application/json",
        "body": r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
    }))
    .await;
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(
        error
            .core()
            .and_then(|e| e.server_error())
            .map(|e| e.error.as_str()),
        Some("invalid_grant"),
        "{error:?}"
    );
    let again = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(again.requires_login(), "{again:?}");
}

#[wasm_bindgen_test]
async fn connection_refused_is_a_transport_error() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    // A port nothing listens on (the script found one); not a port fetch
    // blocks by itself (9, say), so this is a real connection refusal.
    let port = support::env("WASM_HARNESS_CLOSED_PORT").expect("WASM_HARNESS_CLOSED_PORT");
    let config = support::config_at(&h, &format!("http://127.0.0.1:{port}/token"));
    let keeper = TokenKeeper::new(config, session.clone()).unwrap();
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    match &error {
        Error::Transport(message) => assert!(message.contains("ECONNREFUSED"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(error.is_transient());
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
}

#[wasm_bindgen_test]
async fn a_slow_answer_times_out() {
    let h = Harness::from_env();
    // The control API answers this one after 500 ms.
    let request = h.control_request("/__harness/sleep", &serde_json::json!({ "ms": 500 }));
    let error = tokenkeeper_wasm::fetch(&request, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(error, Error::Timeout);

    // Through the handle: the refresh (held 500 ms by the server) is
    // aborted, the flight released and nothing stored changes.
    let session = expire(&h.logged_in_session().await);
    let keeper = TokenKeeper::builder(config(&h))
        .session(session.clone())
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    h.delay_next(500).await;
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(error, Error::Timeout);
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
}

#[wasm_bindgen_test]
async fn a_dropped_owner_hands_the_refresh_to_a_waiter() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let keeper = TokenKeeper::new(config(&h), session.clone()).unwrap();
    h.reset_stats().await;
    let request = TokenRequest::new();
    let mut owner = Box::pin(keeper.get_access_token(&request));
    assert!(
        futures::poll!(owner.as_mut()).is_pending(),
        "its fetch is out"
    );
    let mut waiter = Box::pin(keeper.get_access_token(&request));
    assert!(futures::poll!(waiter.as_mut()).is_pending(), "it waits");
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 1);
    // Dropped before the event loop turned: the request is aborted before
    // it leaves, the flight cancelled, and the waiter takes its own turn.
    drop(owner);
    let token = waiter.await.unwrap();
    assert_ne!(token.token.secret(), support::access_token(&session));
    let stats = h.stats().await;
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 1);
}

#[wasm_bindgen_test]
async fn fetch_keeps_every_header_and_any_status() {
    let h = Harness::from_env();
    // A 404 from the control API is a response, with its headers.
    let request = h.control_request("/__harness/nope", &serde_json::json!({}));
    let response = tokenkeeper_wasm::fetch(&request, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.status, 404);
    assert_eq!(
        response.headers.get("content-type"),
        Some("application/json")
    );
    assert_eq!(response.headers.get("cache-control"), Some("no-store"));
    // A 400 from the token endpoint too: the body is kept.
    let mut form = tokenkeeper::HttpRequest {
        method: tokenkeeper::Method::POST,
        url: h.token_endpoint.clone(),
        headers: tokenkeeper::Headers::new(),
        body: b"grant_type=refresh_token&client_id=public-pkce&refresh_token=nope".to_vec(),
    };
    form.headers
        .append("Content-Type", "application/x-www-form-urlencoded");
    let response = tokenkeeper_wasm::fetch(&form, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.status, 400);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[wasm_bindgen_test]
async fn redirects_are_not_followed() {
    let h = Harness::from_env();
    // The provider's authorization endpoint answers a valid request with a
    // redirect to its interaction page: handed back as it is.
    let (url, _) = authorization(&h);
    let request = tokenkeeper::HttpRequest {
        method: tokenkeeper::Method::GET,
        url,
        headers: tokenkeeper::Headers::new(),
        body: Vec::new(),
    };
    let response = tokenkeeper_wasm::fetch(&request, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        (300..400).contains(&response.status),
        "status {}",
        response.status
    );
    assert!(response.headers.get("location").is_some());
}

#[wasm_bindgen_test]
async fn logout_revokes_the_refresh_token() {
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let config = tokenkeeper::Config::builder(&h.token_endpoint, support::CLIENT_ID)
        .issuer(&h.issuer)
        .audience(API1)
        .scope(support::LOGIN_SCOPE)
        .target_parameter(tokenkeeper::grant::TargetParameter::Resource)
        .revocation_endpoint(format!("{}/token/revocation", h.issuer))
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config, expire(&session)).unwrap();
    keeper.logout().await.unwrap();
    let current = keeper.session().unwrap();
    assert!(current.is_logged_out());
    assert!(current.token_set().refresh_token.is_none());
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert!(error.requires_login(), "{error:?}");
    // The revoked refresh token is dead at the server too.
    let again = TokenKeeper::new(support::config(&h), expire(&session)).unwrap();
    let error = again
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(
        error
            .core()
            .and_then(|e| e.server_error())
            .map(|e| e.error.as_str()),
        Some("invalid_grant"),
        "{error:?}"
    );
}

fn web_sys_log(text: &str) {
    wasm_bindgen_test::console_log!("{text}");
}

/// `globalThis.localStorage` for Node 20, which has none: a `Map` behind
/// the Storage methods the store calls.
#[cfg(feature = "web-storage")]
fn install_local_storage() {
    js_sys::Function::new_no_args(
        "if (!globalThis.localStorage) {
           const data = new Map();
           globalThis.localStorage = {
             getItem: (k) => (data.has(k) ? data.get(k) : null),
             setItem: (k, v) => { data.set(k, String(v)); },
             removeItem: (k) => { data.delete(k); },
           };
         }",
    )
    .call0(&wasm_bindgen::JsValue::NULL)
    .unwrap();
}

#[cfg(feature = "web-storage")]
#[wasm_bindgen_test]
async fn two_tabs_sharing_local_storage_refresh_once() {
    use tokenkeeper::SessionStore as _;
    use tokenkeeper_wasm::WebStorageStore;

    install_local_storage();
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let key = format!("tokenkeeper-test-{}", js_sys::Date::now());
    WebStorageStore::local(&key)
        .unwrap()
        .save(tokenkeeper::store::DEFAULT_KEY, &session, None)
        .unwrap();
    // Two handles on one localStorage key stand for two tabs; with a shared
    // store the core claims the refresh token in the stored session first.
    let tab = || {
        let config = support::builder(&h, &h.token_endpoint)
            .shared_store(true)
            .build()
            .unwrap();
        TokenKeeper::builder(config)
            .store(WebStorageStore::local(&key).unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (tab(), tab());
    h.reset_stats().await;
    let request = TokenRequest::new();
    let answers = join_all((0..32).map(|i| {
        let tab = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { tab.get_access_token(&request).await }
    }))
    .await;
    let stats = h.stats().await;
    assert_eq!(
        stats["token_requests_by_grant"]["refresh_token"], 1,
        "{:#}",
        stats["recent_token_requests"]
    );
    let distinct: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(distinct.len(), 1, "both tabs got the one refreshed token");

    // The store holds the rotated refresh token, and no claim.
    let stored = WebStorageStore::local(&key)
        .unwrap()
        .load(tokenkeeper::store::DEFAULT_KEY)
        .unwrap()
        .unwrap();
    assert_ne!(refresh_token(&stored), refresh_token(&session));
    assert!(stored.refresh_claim().is_none());
    // A third tab opened later starts from it, without a request.
    let c = tab();
    let token = c.get_access_token(&request).await.unwrap();
    assert_eq!(Some(&token.token.secret().to_owned()), distinct.first());
    assert_eq!(
        h.stats().await["token_requests_by_grant"]["refresh_token"],
        1
    );
    WebStorageStore::local(&key)
        .unwrap()
        .clear(tokenkeeper::store::DEFAULT_KEY)
        .unwrap();
}

#[wasm_bindgen_test]
async fn a_vanished_owner_is_released_at_its_lease_deadline() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    // The shortest lease a transport timeout fits in (timeout + 1 s).
    let config = support::builder(&h, &h.token_endpoint)
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config, session).unwrap();
    h.reset_stats().await;
    // A caller takes the refresh and vanishes: it never sends it and never
    // cancels (a leaked future).
    let abandoned = keeper
        .with_manager(
            |m| match m.get_access_token(&TokenRequest::new(), tokenkeeper_wasm::now()) {
                tokenkeeper::Action::Send(out) => out.id,
                other => panic!("{other:?}"),
            },
        )
        .await
        .unwrap();
    // The next caller waits on that flight until its lease runs out (at
    // most two seconds here), then refreshes itself.
    let started = js_sys::Date::now();
    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    let waited = js_sys::Date::now() - started;
    web_sys_log(&format!("released at the lease deadline after {waited} ms"));
    assert!(waited < 3500.0, "{waited} ms");
    assert_eq!(token.token_type.as_str(), "Bearer");
    assert!(
        !keeper
            .with_manager(|m| m.is_in_flight(abandoned))
            .await
            .unwrap()
    );
    let stats = h.stats().await;
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 1);
}

/// A body of `bytes` bytes: a token response padded with spaces.
fn padded_token_response(bytes: usize) -> String {
    let json = r#"{"access_token":"big","token_type":"Bearer","expires_in":60}"#;
    format!("{json}{}", " ".repeat(bytes.saturating_sub(json.len())))
}

fn limits(max_body_bytes: usize) -> tokenkeeper::Limits {
    let mut limits = tokenkeeper::Limits::default();
    limits.max_body_bytes = max_body_bytes;
    limits
}

#[wasm_bindgen_test]
async fn an_endless_answer_stops_at_the_body_limit() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let server = support::EndlessServer::start().await;
    let config = support::builder(&h, &format!("{}/token", server.url))
        .limits(limits(64 * 1024))
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config, session.clone()).unwrap();
    let started = js_sys::Date::now();
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    let elapsed = js_sys::Date::now() - started;
    web_sys_log(&format!("endless body refused after {elapsed} ms"));
    // Refused while reading, by the adapter: not a timeout, and not the
    // core's refusal of a body read whole.
    assert_eq!(error.code(), "response_too_large", "{error:?}");
    assert!(error.core().is_none(), "{error:?}");
    assert!(!error.is_transient());
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
    // The download was stopped: the server saw its connection close.
    tokenkeeper_wasm::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.requests(), 1.0);
    assert_eq!(server.closed(), 1.0, "the connection was closed");
    assert!(
        server.sent() < 16.0 * 1024.0 * 1024.0,
        "{} bytes sent",
        server.sent()
    );
}

#[wasm_bindgen_test]
async fn an_announced_body_over_the_limit_is_refused_unread() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let config = support::builder(&h, &h.token_endpoint)
        .limits(limits(4096))
        .build()
        .unwrap();
    let keeper = TokenKeeper::new(config, session.clone()).unwrap();
    h.fail_next(serde_json::json!({
        "status": 200,
        "content_type": "application/json",
        "body": padded_token_response(256 * 1024),
    }))
    .await;
    let error = keeper
        .get_access_token(&TokenRequest::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "response_too_large", "{error:?}");
    assert!(error.core().is_none(), "{error:?}");
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
    // At the limit exactly, the answer is used.
    let body = padded_token_response(4096);
    assert_eq!(body.len(), 4096);
    h.fail_next(serde_json::json!({
        "status": 200,
        "content_type": "application/json",
        "body": body,
    }))
    .await;
    let token = keeper.get_access_token(&TokenRequest::new()).await.unwrap();
    assert_eq!(token.token.secret(), "big");
}

#[wasm_bindgen_test]
async fn the_transport_timeout_must_end_before_the_lease() {
    let h = Harness::from_env();
    let leased = |secs| {
        support::builder(&h, &h.token_endpoint)
            .lease(Duration::from_secs(secs))
            .build()
            .unwrap()
    };
    // A timeout the lease does not outlast by a second (the core's clock
    // counts whole seconds) is refused.
    for (lease, timeout) in [(2, 5_000), (2, 1_001), (60, 60_000), (1, 10)] {
        let error = TokenKeeper::builder(leased(lease))
            .timeout(Duration::from_millis(timeout))
            .build()
            .map(|k| k.timeout())
            .unwrap_err();
        assert_eq!(
            error.code(),
            "invalid_configuration",
            "{lease} s, {timeout} ms"
        );
    }
    let keeper = TokenKeeper::builder(leased(2))
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    assert_eq!(keeper.timeout(), Duration::from_millis(1000));
    // Without a timeout of its own, the handle derives one from the lease.
    let keeper = TokenKeeper::builder(leased(2)).build().unwrap();
    assert_eq!(keeper.timeout(), Duration::from_secs(1));
    let keeper = TokenKeeper::builder(leased(60)).build().unwrap();
    assert_eq!(keeper.timeout(), tokenkeeper_wasm::DEFAULT_TIMEOUT);
}

#[wasm_bindgen_test]
async fn a_late_answer_after_the_lease_is_not_applied() {
    let h = Harness::from_env();
    let session = expire(&h.logged_in_session().await);
    let config = support::builder(&h, &h.token_endpoint)
        .lease(Duration::from_secs(2))
        .build()
        .unwrap();
    let keeper = TokenKeeper::builder(config)
        .session(session.clone())
        .build()
        .unwrap();
    // The server answers the refresh three seconds late: after the lease.
    h.delay_next(3000).await;
    let started = js_sys::Date::now();
    let result = keeper.get_access_token(&TokenRequest::new()).await;
    let elapsed = js_sys::Date::now() - started;
    web_sys_log(&format!("refresh ended after {elapsed} ms: {result:?}"));
    let error = result.unwrap_err();
    assert_eq!(error, Error::Timeout);
    assert!(
        elapsed < 2000.0,
        "aborted within the lease, not after {elapsed} ms"
    );
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
    // Well past the moment the answer left the server: nothing of it was
    // applied, the session is as it was.
    tokenkeeper_wasm::sleep(Duration::from_millis(3500)).await;
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert_eq!(keeper.with_manager(|m| m.in_flight()).await.unwrap(), 0);
}

#[wasm_bindgen_test]
async fn fetch_with_limit_bounds_the_body() {
    let h = Harness::from_env();
    let server = support::EndlessServer::start().await;
    let endless = tokenkeeper::HttpRequest {
        method: tokenkeeper::Method::GET,
        url: server.url.clone(),
        headers: tokenkeeper::Headers::new(),
        body: Vec::new(),
    };
    // Streamed, no Content-Length: stopped at the limit, typed.
    let error = tokenkeeper_wasm::fetch_with_limit(&endless, Duration::from_secs(5), 1000)
        .await
        .unwrap_err();
    assert_eq!(error, Error::TooLarge { limit: 1000 });
    // The plain `fetch` has the core's default limit (1 MiB).
    let error = tokenkeeper_wasm::fetch(&endless, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        Error::TooLarge {
            limit: tokenkeeper::Limits::default().max_body_bytes
        }
    );
    // An announced length: refused over the limit, read whole at it.
    let mut stats = h.control_request("/__harness/stats", &serde_json::json!({}));
    stats.method = tokenkeeper::Method::GET;
    stats.body.clear();
    let whole = tokenkeeper_wasm::fetch(&stats, Duration::from_secs(5))
        .await
        .unwrap();
    let length = whole.body.len();
    assert!(length > 10, "{length}");
    let error = tokenkeeper_wasm::fetch_with_limit(&stats, Duration::from_secs(5), length - 1)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "response_too_large");
    // (The counters may have moved between the two reads; only the size
    // matters, and a stats body of this size is read whole.)
    let again = tokenkeeper_wasm::fetch_with_limit(&stats, Duration::from_secs(5), length + 4096)
        .await
        .unwrap();
    assert_eq!(again.status, 200);
}

#[cfg(feature = "web-storage")]
#[wasm_bindgen_test]
async fn a_tab_behind_the_store_adopts_the_other_tabs_rotation_before_refreshing() {
    use tokenkeeper::SessionStore as _;
    use tokenkeeper_wasm::WebStorageStore;

    install_local_storage();
    let h = Harness::from_env();
    let session = h.logged_in_session().await;
    let key = format!("tokenkeeper-conflict-{}", js_sys::Date::now());
    WebStorageStore::local(&key)
        .unwrap()
        .save(tokenkeeper::store::DEFAULT_KEY, &session, None)
        .unwrap();
    // Two tabs without refresh claims: each loaded the same session.
    let tab = || {
        TokenKeeper::builder(config(&h))
            .store(WebStorageStore::local(&key).unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (tab(), tab());
    h.reset_stats().await;
    let forced = TokenRequest::new().force_refresh();
    let rotated_by_a = a.get_access_token(&forced).await.unwrap();
    // B still holds the spent refresh token; the store moved on. B reads
    // the store's generation before refreshing, adopts A's session and
    // spends A's rotated refresh token, not the spent one (the provider's
    // reuse detection would revoke the whole grant).
    let rotated_by_b = b.get_access_token(&forced).await.unwrap();
    assert_ne!(rotated_by_b.token.secret(), rotated_by_a.token.secret());
    let stats = h.stats().await;
    assert_eq!(stats["token_requests_by_grant"]["refresh_token"], 2);
    assert_eq!(stats["token_responses_by_status"]["200"], 2, "{stats}");
    let stored = WebStorageStore::local(&key)
        .unwrap()
        .load(tokenkeeper::store::DEFAULT_KEY)
        .unwrap()
        .unwrap();
    assert_eq!(access_token(&stored), rotated_by_b.token.secret());
    assert_eq!(refresh_token(&stored), refresh_token(&b.session().unwrap()));
    // A, behind now, adopts B's rotation from the store in turn.
    let again = a.get_access_token(&forced).await.unwrap();
    assert_eq!(
        h.stats().await["token_responses_by_status"]["200"],
        3,
        "A refreshed with B's refresh token"
    );
    assert_ne!(again.token.secret(), rotated_by_b.token.secret());
    WebStorageStore::local(&key)
        .unwrap()
        .clear(tokenkeeper::store::DEFAULT_KEY)
        .unwrap();
}
