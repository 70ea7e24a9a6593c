//! `POST /auth/backchannel-logout` (OIDC Back-Channel Logout 1.0) across
//! two instances of the app sharing one stateful store: a logout token
//! received by instance A ends the session on instance B's next request.
//! The logout tokens are signed with the harness provider's own ES256 key
//! (tests/harness/keys, published in its JWKS under `harness-es256`), so
//! the route checks them against the real provider's JWKS; each bad token
//! is refused with its own code and ends nothing.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::{App, Browser, CLIENT_ID};
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper_axum::BACKCHANNEL_LOGOUT_PATH;
use tokenkeeper_axum::stateful::MemoryBackend;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The provider's ES256 signing key (private JWK), from the harness keys.
fn provider_es256() -> P256Signer {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/harness/keys/provider-signing.jwks.json"
    );
    let jwks: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "harness-es256")
        .unwrap();
    P256Signer::new(DpopKey::from_jwk(&jwk.to_string()).unwrap())
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = provider_es256().sign_now(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature.as_bytes()))
}

fn es256_header() -> Value {
    json!({"alg": "ES256", "kid": "harness-es256", "typ": "logout+jwt"})
}

/// Claims of a valid logout token for `sid`.
fn logout_claims(app: &App, sid: &str, jti: &str) -> Value {
    json!({
        "iss": app.harness.issuer(),
        "aud": CLIENT_ID,
        "iat": now(),
        "exp": now() + 120,
        "jti": jti,
        "sid": sid,
        "events": {EVENT: {}},
    })
}

/// A second instance of the app (its own port and `Auth`) on the same
/// store and the same cookie secret.
async fn second_instance(app: &App, backend: MemoryBackend) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = tokenkeeper_axum::Auth::builder(
        app.harness.issuer(),
        CLIENT_ID,
        &app.base,
        support::SECRET,
    )
    .client_secret(support::CLIENT_SECRET)
    .audience(support::API1)
    .scope(support::LOGIN_SCOPE)
    .target_parameter(tokenkeeper::grant::TargetParameter::Resource)
    .login_resource(support::API2)
    .authorization_param("prompt", "consent")
    .stateful(backend)
    .build()
    .await
    .unwrap();
    let router = support::pages().merge(auth.router());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

async fn post_logout_token(base: &str, token: &str) -> (u16, String, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{base}{BACKCHANNEL_LOGOUT_PATH}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("logout_token={token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), cache)
}

/// The session's `sid` as the app stored it (the ID token's).
fn session_sid(app: &App, browser: &Browser) -> String {
    let mut headers = http::HeaderMap::new();
    let cookies = browser
        .jar
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    headers.insert("cookie", cookies.parse().unwrap());
    let session = app.auth.session(&headers).expect("a session");
    let json: Value = serde_json::from_str(&session.to_json()).unwrap();
    json["internal"]["sid"].as_str().unwrap().to_owned()
}

fn has_session(app: &App, browser: &Browser) -> bool {
    let mut headers = http::HeaderMap::new();
    let cookies = browser
        .jar
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    headers.insert("cookie", cookies.parse().unwrap());
    app.auth.session(&headers).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_token_to_one_instance_ends_the_session_on_the_other() {
    let backend = MemoryBackend::new();
    let app = support::start({
        let backend = backend.clone();
        move |b| b.stateful(backend)
    })
    .await;
    let other = second_instance(&app, backend.clone()).await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    let sid = session_sid(&app, &browser);

    // Instance B serves the session.
    let profile = browser.get(&format!("{other}/auth/profile")).await;
    assert_eq!(profile.status, 200, "{}", profile.body);

    // The logout token goes to instance A.
    let token = sign(&es256_header(), &logout_claims(&app, &sid, "jti-ok-1"));
    let (status, body, cache) = post_logout_token(&app.base, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));

    // Instance B sees the session ended on its next request.
    let profile = browser.get(&format!("{other}/auth/profile")).await;
    assert_ne!(profile.status, 200, "ended on the other instance");
    assert!(!has_session(&app, &browser));

    // The same token again (to instance B): a replay, refused.
    let (status, body, _) = post_logout_token(&other, &token).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error_description"],
        "jti_replayed"
    );

    // A new login of the same user is a new session: not ended.
    let mut again = Browser::new();
    assert_eq!(again.login(&app, "").await.status, 302);
    assert!(has_session(&app, &again));
    let profile = again.get(&format!("{other}/auth/profile")).await;
    assert_eq!(profile.status, 200);
}

/// Logout tokens arriving together on a cold key cache: one JWKS fetch
/// serves them all (the others wait for it instead of fetching too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logout_tokens_share_one_jwks_fetch() {
    let app = support::start(|b| b.stateful(MemoryBackend::new())).await;
    app.harness.reset_stats();
    let posts: Vec<_> = (0..8)
        .map(|i| {
            let token = sign(
                &es256_header(),
                &logout_claims(&app, &format!("sid-{i}"), &format!("jti-together-{i}")),
            );
            let base = app.base.clone();
            tokio::spawn(async move { post_logout_token(&base, &token).await })
        })
        .collect();
    for post in posts {
        let (status, body, _) = post.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(app.harness.stats().jwks_requests, 1, "one fetch for all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logout_tokens_are_refused_each_with_its_code_and_end_nothing() {
    let backend = MemoryBackend::new();
    let app = support::start({
        let backend = backend.clone();
        move |b| b.stateful(backend)
    })
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    let sid = session_sid(&app, &browser);
    let claims = |jti: &str| logout_claims(&app, &sid, jti);
    let with = |jti: &str, change: &dyn Fn(&mut Value)| {
        let mut c = claims(jti);
        change(&mut c);
        c
    };
    let unsigned = |header: Value, claims: Value| {
        format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
    };

    // A replay needs the jti seen first: a valid token for another sid.
    let seen = sign(
        &es256_header(),
        &with("jti-seen", &|c| c["sid"] = "some-other-sid".into()),
    );
    assert_eq!(post_logout_token(&app.base, &seen).await.0, 200);

    let good = sign(&es256_header(), &claims("jti-good"));
    let mut tampered: Vec<&str> = good.split('.').collect();
    let other_claims = b64(claims("jti-tampered").to_string());
    tampered[1] = &other_claims;
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad signature", tampered.join("."), "invalid_signature"),
        (
            "alg none",
            unsigned(json!({"alg": "none"}), claims("jti-none")),
            "alg_none_refused",
        ),
        (
            "HS256 with the public key",
            format!(
                "{}.{}",
                unsigned(
                    json!({"alg": "HS256", "kid": "harness-es256"}),
                    claims("jti-hs")
                )
                .trim_end_matches('.'),
                b64([9u8; 32])
            ),
            "hmac_alg_refused",
        ),
        (
            "unknown kid",
            sign(
                &json!({"alg": "ES256", "kid": "not-in-the-jwks"}),
                &claims("jti-kid"),
            ),
            "jwk_not_found",
        ),
        (
            "expired iat",
            sign(
                &es256_header(),
                &with("jti-old", &|c| c["iat"] = (now() - 3600).into()),
            ),
            "iat_too_old",
        ),
        (
            "future iat",
            sign(
                &es256_header(),
                &with("jti-future", &|c| c["iat"] = (now() + 3600).into()),
            ),
            "iat_in_future",
        ),
        (
            "replayed jti",
            sign(&es256_header(), &with("jti-seen", &|_| {})),
            "jti_replayed",
        ),
        (
            "nonce present",
            sign(
                &es256_header(),
                &with("jti-nonce", &|c| c["nonce"] = "n-1".into()),
            ),
            "nonce_present",
        ),
        (
            "events missing",
            sign(
                &es256_header(),
                &with("jti-events", &|c| {
                    c.as_object_mut().unwrap().remove("events");
                }),
            ),
            "missing_events",
        ),
    ];
    let mut codes = Vec::new();
    for (name, token, code) in &cases {
        let (status, body, cache) = post_logout_token(&app.base, token).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{name}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_request", "{name}");
        assert_eq!(body["error_description"], *code, "{name}");
        assert!(has_session(&app, &browser), "{name}: nothing ended");
        codes.push(*code);
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), cases.len(), "each refusal has its own code");

    // And the good one still ends it.
    assert_eq!(post_logout_token(&app.base, &good).await.0, 200);
    assert!(!has_session(&app, &browser));
}

async fn control(app: &App, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{path}", app.harness.control_url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|text| serde_json::from_str(&text).unwrap())
        .unwrap()
}

/// End to end: the user logs out at the provider, which POSTs a real
/// logout token (RS256, its own sid) to the app's back-channel logout URI
/// (instance A, through the harness relay); instance B, sharing the store,
/// sees the session ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_s_own_logout_token_ends_the_session_on_every_instance() {
    let backend = MemoryBackend::new();
    let app = support::start({
        let backend = backend.clone();
        move |b| b.stateful(backend)
    })
    .await;
    let other = second_instance(&app, backend.clone()).await;
    control(
        &app,
        "/__harness/backchannel/target",
        json!({"url": format!("{}{BACKCHANNEL_LOGOUT_PATH}", app.base)}),
    )
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    let profile = browser.get(&format!("{other}/auth/profile")).await;
    assert_eq!(profile.status, 200, "{}", profile.body);

    let ended = control(&app, "/__harness/end_session", json!({"login": "alice"})).await;
    assert_eq!(
        ended["backchannel_answers"],
        json!([200]),
        "the provider's logout token was accepted: {ended}\n{}",
        app.harness.server_log()
    );
    let profile = browser.get(&format!("{other}/auth/profile")).await;
    assert_ne!(profile.status, 200, "ended on the other instance");
    assert!(!has_session(&app, &browser));
}

/// A stateful backend that keeps no logout marks.
#[derive(Clone, Default)]
struct NoMarks(MemoryBackend);

impl tokenkeeper_axum::stateful::SessionBackend for NoMarks {
    fn store(&self, id: &str) -> Box<dyn tokenkeeper::SessionStore + Send> {
        self.0.store(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_marks_answers_501_and_a_stateless_app_has_no_route() {
    let app = support::start(|b| b.stateful(NoMarks::default())).await;
    let token = sign(&es256_header(), &logout_claims(&app, "s-1", "jti-501"));
    let (status, _, cache) = post_logout_token(&app.base, &token).await;
    assert_eq!(status, 501);
    assert_eq!(cache.as_deref(), Some("no-store"));

    let stateless = support::start(|b| b).await;
    let (status, _, _) = post_logout_token(&stateless.base, &token).await;
    assert_eq!(status, 404, "cookie sessions cannot be ended from outside");
}
