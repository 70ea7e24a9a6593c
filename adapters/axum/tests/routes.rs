//! Every route against the real authorization server (node-oidc-provider,
//! the harness), through a cookie-jar browser that follows nothing by
//! itself: login, callback, profile, access-token, logout, and each bad
//! input the issue lists.

mod support;

use support::{API1, API2, Browser, start};
use tokenkeeper_axum::jwe::CookieKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_profile_access_token_and_logout() {
    let app = start(|b| b).await;
    let mut browser = Browser::new();

    assert_eq!(
        browser
            .get(&format!("{}/auth/profile", app.base))
            .await
            .status,
        401
    );
    let anonymous = browser
        .get(&format!("{}/auth/access-token", app.base))
        .await;
    assert_eq!(
        (anonymous.status, anonymous.error_code()),
        (401, "missing_session".into())
    );

    let callback = browser.login(&app, "?returnTo=/after%3Fx%3D1").await;
    assert_eq!(callback.status, 302, "{}", callback.body);
    assert_eq!(callback.location(), "/after?x=1");
    assert!(
        browser.names().iter().all(|n| !n.starts_with("__txn_")),
        "transaction cookie deleted"
    );
    let session_cookie = callback
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(
        !session_cookie.contains("Secure"),
        "plain-http loopback: {session_cookie}"
    );

    let profile = browser.get(&format!("{}/auth/profile", app.base)).await;
    assert_eq!(profile.status, 200);
    assert_eq!(profile.json()["sub"], "alice");

    // The login's token: cached, so the session does not change.
    let first = browser
        .get(&format!("{}/auth/access-token", app.base))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let token = first.json();
    assert_eq!(
        tokenkeeper_integration::jwt::audiences(token["token"].as_str().unwrap()),
        [API1]
    );
    assert!(token["expires_in"].as_u64().unwrap() <= 60);
    assert!(
        first.set_cookies.is_empty(),
        "unchanged session: no Set-Cookie"
    );
    assert_ne!(
        first
            .headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("private, no-cache, no-store, must-revalidate, max-age=0")
    );

    // Another API through the refresh token: the session changed.
    let second = browser
        .get(&format!(
            "{}/auth/access-token?audience={}",
            app.base,
            urlencode(API2)
        ))
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(
        tokenkeeper_integration::jwt::audiences(second.json()["token"].as_str().unwrap()),
        [API2]
    );
    assert!(
        second
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__session="))
    );
    assert_eq!(
        second.headers["cache-control"],
        "private, no-cache, no-store, must-revalidate, max-age=0"
    );
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);
    // Cached now, in the rewritten cookie.
    let third = browser
        .get(&format!(
            "{}/auth/access-token?audience={}",
            app.base,
            urlencode(API2)
        ))
        .await;
    assert_eq!(third.json()["token"], second.json()["token"]);
    assert!(third.set_cookies.is_empty());
    assert_eq!(app.harness.stats().grant("refresh_token"), 1);

    let before_logout: Vec<(String, String)> = browser.jar.clone();
    let logout = browser.get(&format!("{}/auth/logout", app.base)).await;
    assert_eq!(logout.status, 302);
    let end_session = url::Url::parse(logout.location()).unwrap();
    assert!(
        end_session
            .as_str()
            .starts_with(app.auth.metadata().end_session_endpoint.as_deref().unwrap())
    );
    let params: std::collections::HashMap<_, _> = end_session.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], "axum-web");
    assert_eq!(params["post_logout_redirect_uri"], format!("{}/", app.base));
    assert!(params.contains_key("id_token_hint"));
    assert!(
        browser.cookie("__session").is_none(),
        "session cookie deleted"
    );
    assert_eq!(
        browser
            .get(&format!("{}/auth/profile", app.base))
            .await
            .status,
        401
    );
    // The server accepts the RP-initiated logout request (a confirmation page).
    let confirm = reqwest::get(end_session.as_str()).await.unwrap();
    assert_eq!(confirm.status(), 200);
    // The refresh token was revoked: even the old cookie cannot refresh.
    browser.jar = before_logout;
    let revoked = browser
        .get(&format!(
            "{}/auth/access-token?audience=https%3A%2F%2Fother.example",
            app.base
        ))
        .await;
    assert_eq!(revoked.status, 401, "{}", revoked.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_session_cookies_are_no_session_never_a_500() {
    let app = start(|b| b).await;
    let mut browser = Browser::new();
    let callback = browser.login(&app, "").await;
    assert_eq!(callback.status, 302);
    let good = browser.cookie("__session").unwrap().to_owned();
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = CookieKey::from_secret(support::SECRET)
        .decrypt(&good, now)
        .unwrap();
    let expired = CookieKey::from_secret(support::SECRET)
        .encrypt(claims.clone(), now - 60)
        .unwrap();
    let foreign = CookieKey::from_secret(b"some-other-app-secret-32-bytes-long!!!!")
        .encrypt(claims, now + 600)
        .unwrap();
    for (label, value) in [
        ("tampered", String::from_utf8(tampered).unwrap()),
        ("truncated", good[..good.len() - 10].to_owned()),
        ("expired", expired),
        ("foreign key", foreign),
        ("garbage", "x.y.z".to_owned()),
    ] {
        browser.set_cookie("__session", &value);
        let profile = browser.get(&format!("{}/auth/profile", app.base)).await;
        assert_eq!(profile.status, 401, "{label}");
        let token = browser
            .get(&format!("{}/auth/access-token", app.base))
            .await;
        assert_eq!(
            (token.status, token.error_code()),
            (401, "missing_session".into()),
            "{label}"
        );
        let logout = browser.get(&format!("{}/auth/logout", app.base)).await;
        assert_eq!(logout.status, 302, "{label}");
    }
    browser.set_cookie("__session", &good);
    assert_eq!(
        browser
            .get(&format!("{}/auth/profile", app.base))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_refuses_replays_mismatches_errors_and_foreign_issuers() {
    let app = start(|b| b).await;
    let callback_path = format!("{}/auth/callback", app.base);

    // No state at all.
    let mut browser = Browser::new();
    let r = browser.get(&format!("{callback_path}?code=x")).await;
    assert_eq!((r.status, r.error_code()), (400, "missing_state".into()));

    // A callback without its transaction cookie (another browser's).
    let mut victim = Browser::new();
    let callback = victim.start_login(&app, "").await;
    let r = Browser::new().get(&callback).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "missing_transaction".into())
    );

    // A state that matches no transaction of this browser.
    let mut other = Browser::new();
    let _ = other.start_login(&app, "").await;
    let forged = replace_param(&callback, "state", "not-the-state");
    let r = other.get(&forged).await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "missing_transaction".into())
    );

    // The real one works once; replayed, its transaction is gone.
    let ok = victim.get(&callback).await;
    assert_eq!(ok.status, 302, "{}", ok.body);
    let replay = victim.get(&callback).await;
    assert_eq!(
        (replay.status, replay.error_code()),
        (400, "missing_transaction".into())
    );

    // A replay that still holds the transaction cookie: the code is spent.
    let mut copier = Browser::new();
    let callback = copier.start_login(&app, "").await;
    let saved = copier.jar.clone();
    assert_eq!(copier.get(&callback).await.status, 302);
    copier.jar = saved;
    let r = copier.get(&callback).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), "token_request_failed");
    assert!(r.body.contains("invalid_grant"), "{}", r.body);

    // The server's error answer.
    let mut browser = Browser::new();
    let callback = browser.start_login(&app, "").await;
    let state = param(&callback, "state");
    let r = browser
        .get(&format!(
            "{callback_path}?error=access_denied&error_description=no&state={state}&iss={}",
            urlencode(app.harness.issuer())
        ))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "authorization_error".into()),
        "{}",
        r.body
    );
    assert!(browser.names().iter().all(|n| !n.starts_with("__txn_")));

    // A mix-up: the callback names another issuer (RFC 9207).
    let mut browser = Browser::new();
    let callback = browser.start_login(&app, "").await;
    let r = browser
        .get(&replace_param(&callback, "iss", "https://evil.example"))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "issuer_mismatch".into()),
        "{}",
        r.body
    );
    assert!(browser.cookie("__session").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_stays_on_the_app_and_parallel_logins_each_finish() {
    let app = start(|b| b).await;
    for (return_to, expected) in [
        ("https://evil.example/steal", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%5Cevil.example", "/%5Cevil.example"),
        ("/after", "/after"),
    ] {
        let mut browser = Browser::new();
        let r = browser
            .login(&app, &format!("?returnTo={}", urlencode(return_to)))
            .await;
        assert_eq!(r.status, 302, "{return_to}: {}", r.body);
        assert_eq!(r.location(), expected, "{return_to}");
    }
    let same_origin = format!("{}/after", app.base);
    let mut browser = Browser::new();
    let r = browser
        .login(&app, &format!("?returnTo={}", urlencode(&same_origin)))
        .await;
    assert_eq!(r.location(), "/after");

    // Two tabs: two transactions in one jar, finished in the other order.
    let mut browser = Browser::new();
    let first = browser.start_login(&app, "?returnTo=/one").await;
    let second = browser.start_login(&app, "?returnTo=/two").await;
    assert_eq!(
        browser
            .names()
            .iter()
            .filter(|n| n.starts_with("__txn_"))
            .count(),
        2
    );
    assert_eq!(browser.get(&second).await.location(), "/two");
    assert_eq!(browser.get(&first).await.location(), "/one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_is_a_clear_error() {
    let app = start(|b| b.max_cookie_bytes(1_000)).await;
    let mut browser = Browser::new();
    let r = browser.login(&app, "").await;
    assert_eq!(
        (r.status, r.error_code()),
        (500, "session_too_large".into()),
        "{}",
        r.body
    );
    assert!(browser.cookie("__session").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_login_parameters_are_refused() {
    let app = start(|b| b).await;
    let r = Browser::new()
        .get(&format!(
            "{}/auth/login?redirect_uri=https%3A%2F%2Fevil.example",
            app.base
        ))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "reserved_parameter".into())
    );
    let r = Browser::new()
        .get(&format!("{}/auth/login?prompt=login", app.base))
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(param(r.location(), "prompt"), "login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_sessions_keep_only_an_id_in_the_cookie() {
    let backend = tokenkeeper_axum::stateful::MemoryBackend::new();
    let app = start({
        let backend = backend.clone();
        move |b| b.stateful(backend)
    })
    .await;
    let mut browser = Browser::new();
    assert_eq!(browser.login(&app, "").await.status, 302);
    assert_eq!(backend.len(), 1);
    let cookie = browser.cookie("__session").unwrap();
    assert!(cookie.len() < 300, "an id only: {} bytes", cookie.len());
    assert_eq!(
        browser
            .get(&format!("{}/auth/profile", app.base))
            .await
            .json()["sub"],
        "alice"
    );
    let api2 = browser
        .get(&format!(
            "{}/auth/access-token?audience={}",
            app.base,
            urlencode(API2)
        ))
        .await;
    assert_eq!(api2.status, 200, "{}", api2.body);
    // A second instance of the app (same store, same secret) serves it.
    assert_eq!(
        browser
            .get(&format!("{}/auth/logout", app.base))
            .await
            .status,
        302
    );
    assert!(backend.is_empty());
    assert_eq!(
        browser
            .get(&format!("{}/auth/profile", app.base))
            .await
            .status,
        401
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn replace_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .map(|(n, v)| {
            if n == name {
                (n, value.to_owned())
            } else {
                (n, v)
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}
