//! Regression tests for the defects an independent review found where two
//! features meet (issue 12). Each test replays the exact sequence of the
//! report and failed before its fix.

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use support::{FakeServer, Shared, builder, expired_session, fake_jwt, field, get, manager, rt, t};
use tokenkeeper::__private::form;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::driver::{Ask, Keeper, Saved, Step};
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{
    Action, ClientSecret, Completion, Config, Dispatch, HttpResponse, OutgoingRequest,
    SeededEntropy, Session, SessionStore, TokenManager, TokenRequest,
};

const API1: &str = "https://api1.example.com";
const REVOKE: &str = "https://as.example/oauth/revoke";

fn send(action: Action<'_>) -> OutgoingRequest {
    match action {
        Action::Send(out) => out,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn sent(dispatch: Dispatch) -> OutgoingRequest {
    match dispatch {
        Dispatch::Send(out) => out,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn json(status: u16, body: serde_json::Value) -> HttpResponse {
    HttpResponse::new(status, body.to_string()).with_header("Content-Type", "application/json")
}

fn failed_code(completion: Completion<'_>) -> String {
    match completion {
        Completion::Failed(e) => e.code().to_string(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn jwt(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

// Defect 1: an answer that rotates the refresh token and carries an ID token
// that fails a check keeps (and announces) the rotated token.

fn session_with_id_token(id_token: &str) -> Session {
    let json = expired_session(1000).to_json().replace(
        r#""accessToken":"at-login""#,
        &format!(r#""accessToken":"at-login","idToken":"{id_token}""#),
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

fn refresh_answer_with_id_token(id_token: &str) -> HttpResponse {
    json(
        200,
        serde_json::json!({
            "access_token": "at-new", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt-1", "id_token": id_token,
        }),
    )
}

#[test]
fn defect_1_id_token_iat_in_future_keeps_the_rotated_refresh_token() {
    let issuer = "https://as.example";
    let old = jwt(
        serde_json::json!({"iss": issuer, "aud": "client-1", "sub": "user-1",
        "iat": 1000, "exp": 9000}),
    );
    let future = jwt(
        serde_json::json!({"iss": issuer, "aud": "client-1", "sub": "user-1",
        "iat": 90_000, "exp": 99_000}),
    );
    let mut m = manager(builder().issuer(issuer), session_with_id_token(&old));
    let out = send(m.get_access_token(&TokenRequest::new(), t(2000)));
    let code =
        failed_code(m.handle_response(out.id, refresh_answer_with_id_token(&future), t(2000)));
    assert_eq!(code, "iat_in_future");
    assert_eq!(rt(&m), "rt-1", "the rotated refresh token is the live one");
    assert!(m.poll_event().is_some(), "and it must be persisted");
    // Nothing else from the refused answer was stored.
    let set = m.session().unwrap().token_set();
    assert_eq!(set.access_token.secret(), "at-login");
    assert_eq!(set.id_token.as_ref().unwrap().secret(), old);
}

#[test]
fn defect_1_opaque_id_token_without_issuer_keeps_the_rotated_refresh_token() {
    let old = fake_jwt(&serde_json::json!({"sub": "user-1"}));
    let mut m = manager(builder(), session_with_id_token(&old));
    let out = send(m.get_access_token(&TokenRequest::new(), t(2000)));
    let code = failed_code(m.handle_response(
        out.id,
        refresh_answer_with_id_token("opaque-not-a-jwt"),
        t(2000),
    ));
    assert_eq!(code, "missing_sub");
    assert_eq!(rt(&m), "rt-1");
    assert!(m.poll_event().is_some());
    // The next refresh spends rt-1: no replay.
    let mut server = FakeServer {
        current_refresh_token: Some("rt-1".into()),
        ..FakeServer::default()
    };
    server.spent.insert("rt-0".into());
    let forced = TokenRequest::new().force_refresh();
    assert!(get(&mut m, &mut server, &forced, 2001).is_ok());
    assert_eq!(server.replays, 0);
}

// Defect 2: merge_scopes(false), an expired entry whose requestedScope is
// wider than the request.

fn session_with_entries(entries: &str) -> Session {
    let json = expired_session(5000).to_json().replacen(
        '{',
        &format!(r#"{{"accessTokens":[{entries}],"#),
        1,
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

#[test]
fn defect_2_refreshing_a_wider_entry_replaces_it_and_never_serves_it_expired() {
    let session = session_with_entries(&format!(
        r#"{{"accessToken":"stale","audience":"{API1}","scope":"a b c","requestedScope":"a b c","expiresAt":1000}}"#
    ));
    let mut m = manager(builder().merge_scopes(false), session);
    let mut server = FakeServer::default();
    let request = TokenRequest::new().audience(API1).scope("a b");
    let token = get(&mut m, &mut server, &request, 2000).unwrap();
    assert_eq!(token, format!("at-1-{API1}"), "not the expired entry");
    let entries = m.session().unwrap().access_tokens();
    assert_eq!(entries.len(), 1, "the refreshed entry replaced the old one");
    assert_eq!(entries[0].access_token.secret(), token);
    // Served from the cache from now on.
    assert_eq!(get(&mut m, &mut server, &request, 2001).unwrap(), token);
    assert_eq!(server.refreshes, 1);
}

#[test]
fn defect_2_lookups_prefer_unexpired_then_freshest_entries() {
    // Fewer granted scopes, but expired: the live entry serves.
    let session = session_with_entries(&format!(
        r#"{{"accessToken":"narrow-expired","audience":"{API1}","scope":"a","requestedScope":"a","expiresAt":1000}},
           {{"accessToken":"wide-live","audience":"{API1}","scope":"a b","requestedScope":"a b","expiresAt":9000}}"#
    ));
    let mut m = manager(builder().merge_scopes(false), session);
    let mut server = FakeServer::default();
    let request = TokenRequest::new().audience(API1).scope("a");
    assert_eq!(
        get(&mut m, &mut server, &request, 2000).unwrap(),
        "wide-live"
    );
    // Ties go to the freshest, not the oldest.
    let session = session_with_entries(&format!(
        r#"{{"accessToken":"older","audience":"{API1}","scope":"a b","requestedScope":"a b","expiresAt":3000}},
           {{"accessToken":"fresher","audience":"{API1}","scope":"a c","requestedScope":"a c","expiresAt":8000}}"#
    ));
    let mut m = manager(builder().merge_scopes(false), session);
    assert_eq!(get(&mut m, &mut server, &request, 2000).unwrap(), "fresher");
    assert_eq!(server.refreshes, 0);
}

// Defect 3: a pending rotation after a compare-and-swap conflict.

impl Shared {
    fn stored(&self) -> Option<Session> {
        self.inner.lock().unwrap().session().cloned()
    }
}

fn keeper(store: &Shared, seed: u64) -> Keeper {
    let config = builder()
        .shared_store(true)
        .revocation_endpoint(REVOKE)
        .build()
        .unwrap();
    let manager = TokenManager::new(config, SeededEntropy::new(seed));
    let store: Box<dyn SessionStore + Send> = Box::new(store.clone());
    Keeper::new(manager, store, None).unwrap()
}

/// A refreshes while the store is down: its rotation stays pending.
fn pending_rotation(store: &Shared, a: &mut Keeper, server: &mut FakeServer) {
    let request = TokenRequest::new();
    let Step::Own(dispatch) = a.step(Ask::User(&request), None, t(2000)).unwrap() else {
        panic!("A owns the refresh")
    };
    let out = sent(dispatch);
    *store.down.lock().unwrap() = true;
    let response = server.handle(&out.request);
    assert!(matches!(
        a.manager.handle_response(out.id, response, t(2000)),
        Completion::Ready(_)
    ));
    assert!(a.persist().is_err(), "the store is down");
    *store.down.lock().unwrap() = false;
}

fn revoked_token(m: &mut TokenManager) -> Option<String> {
    let out = sent(m.poll_revocation(t(2001))?.unwrap());
    assert_eq!(out.request.url, REVOKE);
    assert_eq!(
        field(&out.request, "token_type_hint").as_deref(),
        Some("refresh_token")
    );
    field(&out.request, "token")
}

fn shared_with_session() -> Shared {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save(
            tokenkeeper::store::DEFAULT_KEY,
            &expired_session(1000),
            None,
        )
        .unwrap();
    store
}

#[test]
fn defect_3_a_late_save_never_brings_a_cleared_session_back() {
    let store = shared_with_session();
    let (mut a, mut b) = (keeper(&store, 1), keeper(&store, 2));
    let mut server = FakeServer::default();
    pending_rotation(&store, &mut a, &mut server);
    b.clear().unwrap();
    assert_eq!(a.persist().unwrap(), Saved::Adopted);
    assert!(
        store.stored().is_none(),
        "the cleared session stays cleared"
    );
    assert!(a.manager.session().is_none());
    assert_eq!(revoked_token(&mut a.manager).as_deref(), Some("rt-1"));
}

#[test]
fn defect_3_a_late_save_never_undoes_a_logout() {
    let store = shared_with_session();
    let (mut a, mut b) = (keeper(&store, 1), keeper(&store, 2));
    let mut server = FakeServer::default();
    pending_rotation(&store, &mut a, &mut server);
    // B logs out (its revocation of the spent rt-0 is beside the point).
    // Its save conflicts with A's claim, and the logout wins all the same.
    let _ = b.manager.logout(t(2000)).unwrap();
    assert_eq!(b.persist().unwrap(), Saved::Stored);
    let logged_out = store.stored().unwrap();
    assert!(logged_out.is_logged_out());
    assert_eq!(a.persist().unwrap(), Saved::Adopted);
    let stored = store.stored().unwrap();
    assert!(stored.is_logged_out(), "the logout stands");
    assert_eq!(stored.generation(), logged_out.generation());
    assert_eq!(revoked_token(&mut a.manager).as_deref(), Some("rt-1"));
    let request = TokenRequest::new();
    assert!(matches!(
        a.step(Ask::User(&request), None, t(2002)).unwrap(),
        Step::Failed(e) if e.code() == "logged_out"
    ));
}

#[test]
fn defect_3_a_winning_rotation_writes_a_higher_generation() {
    let store = shared_with_session();
    let (mut a, mut b) = (keeper(&store, 1), keeper(&store, 2));
    let mut server = FakeServer::default();
    pending_rotation(&store, &mut a, &mut server);
    // A's claim runs out; B spends the rotated-away rt-0: the server
    // refuses, and B marks the stored session for re-authentication.
    let request = TokenRequest::new();
    let Step::Own(dispatch) = b.step(Ask::User(&request), None, t(2061)).unwrap() else {
        panic!()
    };
    let out = sent(dispatch);
    let response = server.handle(&out.request);
    let _ = b.manager.handle_response(out.id, response, t(2061));
    b.persist().unwrap();
    let found = store.stored().unwrap().generation();
    let own = a.manager.session().unwrap().generation();
    assert_eq!(a.persist().unwrap(), Saved::Stored);
    let stored = store.stored().unwrap();
    assert!(
        stored.generation() > found.max(own),
        "generations only grow"
    );
    assert_eq!(
        stored.token_set().refresh_token.as_ref().unwrap().secret(),
        "rt-1"
    );
    // A third keeper that loaded the older generation sees the change.
    let mut c = keeper(&store, 3);
    assert!(!c.moved_on().unwrap());
    assert_eq!(
        c.manager
            .session()
            .unwrap()
            .token_set()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret(),
        "rt-1"
    );
}

// Defects 4 and 5: DPoP nonce retries.

fn dpop_manager(builder: tokenkeeper::ConfigBuilder) -> TokenManager {
    let mut m = TokenManager::new(builder.build().unwrap(), SeededEntropy::new(7));
    let key = DpopKey::generate(&mut SeededEntropy::new(42)).unwrap();
    m.enable_dpop(P256Signer::new(key)).unwrap();
    m
}

fn nonce_error(nonce: &str) -> HttpResponse {
    HttpResponse::new(400, r#"{"error":"use_dpop_nonce"}"#).with_header("DPoP-Nonce", nonce)
}

#[test]
fn defect_4_an_abandoned_flight_is_never_resent() {
    let mut m = dpop_manager(builder().lease(Duration::from_secs(30)));
    m.set_session(expired_session(1000));
    let first = send(m.get_access_token(&TokenRequest::new(), t(2000)));
    // The lease runs out: the flight is abandoned, and a new one may go.
    m.handle_timeout(t(2030));
    assert!(!m.is_in_flight(first.id));
    let second = send(m.get_access_token(&TokenRequest::new(), t(2030)));
    // The abandoned flight's nonce error must not send rt-0 a third time.
    let code = failed_code(m.handle_response(first.id, nonce_error("n-1"), t(2031)));
    assert_eq!(code, "failed_to_refresh_token");
    assert_eq!(m.in_flight(), 1);
    assert!(m.is_in_flight(second.id));
}

#[test]
fn defect_5_each_request_is_judged_by_the_nonce_it_carried() {
    let mut m = dpop_manager(builder());
    let a = send(m.get_client_credentials_token(&TokenRequest::new().audience("https://a"), t(1)));
    let b = send(m.get_client_credentials_token(&TokenRequest::new().audience("https://b"), t(1)));
    // Both went out without a nonce; the first answer teaches it.
    assert!(matches!(
        m.handle_response(a.id, nonce_error("n-1"), t(1)),
        Completion::Resend(_)
    ));
    // The second request carried none either: it earns its retry too.
    match m.handle_response(b.id, nonce_error("n-1"), t(1)) {
        Completion::Resend(retry) => {
            let proof = retry.request.headers.get("dpop").unwrap();
            let claims = proof.split('.').nth(1).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
            assert_eq!(claims["nonce"], "n-1");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

// Defect 9: an openid login without an ID token.

#[test]
fn defect_9_an_openid_login_without_an_id_token_is_refused() {
    let issuer = "https://as.example";
    let config = Config::builder("https://as.example/token", "client-1")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretBasic(
            ClientSecret::new("s"),
        ))
        .issuer(issuer)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(5));
    let (url, transaction) =
        LoginRequest::new("https://as.example/authorize", "client-1", "https://app/cb")
            .scope("openid profile offline_access")
            .start(&mut SeededEntropy::new(11))
            .unwrap();
    let pairs = form::parse(url.split_once('?').unwrap().1);
    let state = form::find(&pairs, "state").unwrap();
    let callback = format!(
        "https://app/cb?code=c&state={state}&iss={}",
        form::encode(issuer)
    );
    let out = sent(m.exchange_code(&transaction, &callback, t(1000)).unwrap());
    let answer = json(
        200,
        serde_json::json!({"access_token": "at", "token_type": "Bearer",
            "expires_in": 60, "refresh_token": "rt"}),
    );
    assert_eq!(
        failed_code(m.handle_response(out.id, answer, t(1000))),
        "missing_id_token"
    );
    assert!(
        m.session().is_none(),
        "no session without an authenticated user"
    );
}

// Defect 10: logout while a refresh is in flight.

#[test]
fn defect_10_a_token_rotated_after_logout_is_revoked() {
    let mut m = manager(builder().revocation_endpoint(REVOKE), expired_session(1000));
    let mut server = FakeServer::default();
    let refresh = send(m.get_access_token(&TokenRequest::new(), t(2000)));
    let revoke = sent(m.logout(t(2000)).unwrap().unwrap());
    assert_eq!(field(&revoke.request, "token").as_deref(), Some("rt-0"));
    // The refresh answer arrives after the logout, rotating rt-0 to rt-1.
    let response = server.handle(&refresh.request);
    assert_eq!(
        failed_code(m.handle_response(refresh.id, response, t(2000))),
        "request_abandoned"
    );
    assert!(m.session().unwrap().is_logged_out());
    let orphan = sent(m.poll_revocation(t(2000)).unwrap().unwrap());
    assert_eq!(field(&orphan.request, "token").as_deref(), Some("rt-1"));
    assert!(m.poll_revocation(t(2000)).is_none());
    assert!(matches!(
        m.handle_response(revoke.id, HttpResponse::new(200, ""), t(2001)),
        Completion::Revoked
    ));
    assert!(matches!(
        m.handle_response(orphan.id, HttpResponse::new(200, ""), t(2001)),
        Completion::Revoked
    ));
    assert_eq!(rt(&m), "");
}

// Defect 12: the first invalid_grant already requires a login; a forced
// refresh on a dead refresh token never returns the cached token.

#[test]
fn defect_12_invalid_grant_requires_login_at_once_and_forced_refresh_says_so() {
    let mut m = manager(builder(), expired_session(5000));
    let forced = TokenRequest::new().force_refresh();
    let out = send(m.get_access_token(&forced, t(1000)));
    let answer = json(400, serde_json::json!({"error": "invalid_grant"}));
    match m.handle_response(out.id, answer, t(1000)) {
        Completion::Failed(e) => {
            assert_eq!(e.code(), "failed_to_refresh_token");
            assert!(e.requires_login(), "on the first invalid_grant");
        }
        other => panic!("{other:?}"),
    }
    // The cached token is still fresh, but the caller forces a refresh.
    match m.get_access_token(&forced, t(1001)) {
        Action::LoginRequired(e) => {
            assert_eq!(e.code(), "reauthentication_required");
            assert!(e.requires_login());
        }
        other => panic!("expected login required, got {other:?}"),
    }
    // Without forcing, the fresh cached token still serves (as the SDK).
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(1001)),
        Action::Ready(_)
    ));
}

// Defect 14: a refresh buffer at or above the granted lifetime.

#[test]
fn defect_14_a_buffer_longer_than_the_lifetime_does_not_refresh_every_call() {
    let mut m = manager(
        builder().refresh_buffer(Duration::from_secs(120)),
        expired_session(1000),
    );
    let mut server = FakeServer {
        expires_in: 60,
        ..FakeServer::default()
    };
    for now in 2000..2010 {
        assert_eq!(
            get(&mut m, &mut server, &TokenRequest::new(), now).unwrap(),
            "at-1-"
        );
    }
    assert_eq!(server.refreshes, 1, "a token just obtained is served");
    // Half-way through its 60 s, it is refreshed early.
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2030).unwrap(),
        "at-2-"
    );
    // The lifetime survives the stored session.
    let json = m.session().unwrap().to_json();
    assert!(json.contains(r#""expiresIn":60"#), "{json}");
}

// Defect 13: a server that ignores the target parameter.

fn at_jwt(aud: &str) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::json!({"aud": aud, "sub": "user-1"}).to_string())
    )
}

#[test]
fn defect_13_a_jwt_access_token_for_another_api_is_refused_not_cached() {
    let mut m = manager(builder(), expired_session(5000));
    let out = send(m.get_access_token(&TokenRequest::new().audience(API1), t(1000)));
    let answer = json(
        200,
        serde_json::json!({"access_token": at_jwt("https://default-api"),
            "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1"}),
    );
    assert_eq!(
        failed_code(m.handle_response(out.id, answer, t(1000))),
        "access_token_audience_mismatch"
    );
    assert!(
        m.session().unwrap().access_tokens().is_empty(),
        "not cached"
    );
    assert_eq!(rt(&m), "rt-1", "the rotation is kept all the same");
    // A token for the API asked for is taken.
    let out = send(m.get_access_token(&TokenRequest::new().audience(API1), t(1001)));
    let good = at_jwt(API1);
    let answer = json(
        200,
        serde_json::json!({"access_token": good, "token_type": "Bearer", "expires_in": 600}),
    );
    match m.handle_response(out.id, answer, t(1001)) {
        Completion::Ready(token) => assert_eq!(token.token.secret(), good),
        other => panic!("{other:?}"),
    }
}

/// A session logged in for one API, refreshed with no audience asked and
/// none configured: the refresh names the session's API on the wire, and
/// the answer's JWT access token is checked against that API, the one
/// asked for (it was not checked at all).
#[test]
fn a_main_token_refresh_checks_the_audience_it_named_on_the_wire() {
    let stored = format!(
        r#"{{"user":{{"sub":"user-1"}},"tokenSet":{{"accessToken":"at-login","refreshToken":"rt-0","expiresAt":1000,"audience":"{API1}","scope":"openid offline_access"}}}}"#
    );
    let session = Session::from_json(stored.as_bytes(), &Default::default()).unwrap();
    let mut m = manager(builder(), session);
    // Another API's token: refused, not stored.
    let out = send(m.get_access_token(&TokenRequest::new(), t(2000)));
    assert_eq!(field(&out.request, "audience").as_deref(), Some(API1));
    let answer = json(
        200,
        serde_json::json!({"access_token": at_jwt("https://other-api"),
            "token_type": "Bearer", "expires_in": 600, "refresh_token": "rt-1"}),
    );
    assert_eq!(
        failed_code(m.handle_response(out.id, answer, t(2000))),
        "access_token_audience_mismatch"
    );
    assert_eq!(
        m.session().unwrap().token_set().access_token.secret(),
        "at-login"
    );
    assert_eq!(rt(&m), "rt-1", "the rotation is kept all the same");
    // The API named on the wire: taken.
    let out = send(m.get_access_token(&TokenRequest::new(), t(2001)));
    let good = at_jwt(API1);
    let answer = json(
        200,
        serde_json::json!({"access_token": good, "token_type": "Bearer", "expires_in": 600}),
    );
    match m.handle_response(out.id, answer, t(2001)) {
        Completion::Ready(token) => assert_eq!(token.token.secret(), good),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defect_13_metadata_announcing_resource_indicators_selects_resource() {
    let metadata = tokenkeeper::discovery::AuthorizationServerMetadata::from_json(
        serde_json::json!({
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/oauth/token",
            "resource_indicators_supported": true,
        })
        .to_string()
        .as_bytes(),
        "https://as.example",
        &Default::default(),
    );
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(e) => panic!("{e:?}"),
    };
    let mut m = manager(builder().metadata(&metadata), expired_session(5000));
    let out = send(m.get_access_token(&TokenRequest::new().audience(API1), t(1000)));
    assert_eq!(field(&out.request, "resource").as_deref(), Some(API1));
    assert_eq!(field(&out.request, "audience"), None);
}

// A login for several RFC 8707 resources names the first at the token
// endpoint (without it, servers answer with a token for none of them).

#[test]
fn a_login_for_resources_names_the_first_one_in_the_code_exchange() {
    let issuer = "https://as.example";
    let config = Config::builder("https://as.example/token", "client-1")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretBasic(
            ClientSecret::new("s"),
        ))
        .issuer(issuer)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(5));
    let (url, transaction) =
        LoginRequest::new("https://as.example/authorize", "client-1", "https://app/cb")
            .scope("offline_access")
            .resource(API1)
            .resource("https://api2.example.com")
            .start(&mut SeededEntropy::new(11))
            .unwrap();
    let pairs = form::parse(url.split_once('?').unwrap().1);
    let state = form::find(&pairs, "state").unwrap();
    let callback = format!(
        "https://app/cb?code=c&state={state}&iss={}",
        form::encode(issuer)
    );
    let out = sent(m.exchange_code(&transaction, &callback, t(1000)).unwrap());
    assert_eq!(field(&out.request, "resource").as_deref(), Some(API1));
    assert_eq!(field(&out.request, "audience"), None);
    // The answer's token is checked against that resource and kept for it.
    let answer = json(
        200,
        serde_json::json!({"access_token": at_jwt(API1), "token_type": "Bearer",
            "expires_in": 60, "refresh_token": "rt"}),
    );
    assert!(matches!(
        m.handle_response(out.id, answer, t(1000)),
        Completion::Ready(_)
    ));
    assert_eq!(
        m.session().unwrap().token_set().audience.as_deref(),
        Some(API1)
    );
}
