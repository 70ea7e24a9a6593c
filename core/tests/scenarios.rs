//! Scenario tests: the manager driven with a manual clock against a
//! scripted authorization server.

mod support;

use std::time::Duration;

use support::{FakeServer, builder, expired_session, fake_jwt, field, get, manager, rt, t};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::{
    Action, ChangeReason, ClientSecret, Completion, Event, HttpResponse, SeededEntropy, Session,
    TokenManager, TokenRequest,
};

fn events(m: &mut TokenManager) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn cached_token_is_reused_without_io() {
    let mut m = manager(builder(), expired_session(5000));
    let mut server = FakeServer::default();
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1000).unwrap(),
        "at-login"
    );
    assert_eq!(server.refreshes, 0);
    assert!(events(&mut m).is_empty());
}

#[test]
fn refresh_cycle_with_rotation() {
    let mut m = manager(builder(), expired_session(1000));
    let mut server = FakeServer::default();
    let mut now = 2000;
    for i in 1..=20 {
        let token = get(&mut m, &mut server, &TokenRequest::new(), now).unwrap();
        assert_eq!(token, format!("at-{i}-"));
        assert_eq!(rt(&m), format!("rt-{i}"));
        let evs = events(&mut m);
        assert_eq!(
            evs,
            [Event::SessionChanged {
                generation: i,
                reason: ChangeReason::TokensUpdated {
                    refresh_token_rotated: true
                }
            }]
        );
        // Cached until it expires; expiresAt counts from the send time.
        let stored = m.session().unwrap().token_set().expires_at.unwrap();
        assert_eq!(stored, t(now + 3600));
        assert_eq!(
            get(&mut m, &mut server, &TokenRequest::new(), now + 3599).unwrap(),
            token
        );
        now += 3600;
    }
    assert_eq!(server.refreshes, 20);
    assert_eq!(server.replays, 0);
    assert!(!server.revoked);
}

#[test]
fn refresh_buffer_and_forced_refresh() {
    let mut m = manager(
        builder().refresh_buffer(Duration::from_secs(60)),
        expired_session(1100),
    );
    let mut server = FakeServer::default();
    // 1039 + 60 < 1100: fresh.
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1039).unwrap(),
        "at-login"
    );
    // 1040 + 60 == 1100: inside the buffer, refreshed early.
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1040).unwrap(),
        "at-1-"
    );
    // Forced, though fresh.
    let forced = TokenRequest::new().force_refresh();
    assert_eq!(get(&mut m, &mut server, &forced, 1041).unwrap(), "at-2-");
    assert_eq!(server.refreshes, 2);
}

#[test]
fn without_refresh_token_the_buffer_is_ignored_until_expiry() {
    let json = br#"{"tokenSet":{"accessToken":"only","expiresAt":1100}}"#;
    let session = Session::from_json(json, &Default::default()).unwrap();
    let mut m = manager(builder().refresh_buffer(Duration::from_secs(60)), session);
    let mut server = FakeServer::default();
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1099).unwrap(),
        "only"
    );
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().force_refresh(),
            1099
        )
        .unwrap(),
        "only"
    );
    let err = match m.get_access_token(&TokenRequest::new(), t(1100)) {
        Action::LoginRequired(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(err.code(), "missing_refresh_token");
    assert!(err.to_string().starts_with("The access token has expired"));
    // For another audience there is no token at all.
    let err = match m.get_access_token(&TokenRequest::new().audience("https://api2"), t(1000)) {
        Action::LoginRequired(e) => e,
        other => panic!("{other:?}"),
    };
    assert!(err.to_string().starts_with("No access token found"));
    assert_eq!(server.refreshes, 0);
}

#[test]
fn no_session_and_session_ceiling() {
    let mut m = TokenManager::new(builder().build().unwrap(), SeededEntropy::new(1));
    let mut server = FakeServer::default();
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1).unwrap_err(),
        "missing_session"
    );
    let mut session = expired_session(10_000);
    session.set_session_expires_at(Some(t(2000)));
    m.set_session(session);
    // 30 s leeway, as the SDK.
    assert!(get(&mut m, &mut server, &TokenRequest::new(), 1969).is_ok());
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1970).unwrap_err(),
        "session_expired"
    );
}

#[test]
fn response_without_refresh_or_id_token_keeps_the_old_ones() {
    let mut session = expired_session(1000);
    let id_token = fake_jwt(&serde_json::json!({"sub": "user-1"}));
    let json = session.to_json().replace(
        r#""accessToken":"at-login""#,
        &format!(r#""accessToken":"at-login","idToken":"{id_token}""#),
    );
    session = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
    let mut m = manager(builder(), session);
    let mut server = FakeServer {
        rotate: false,
        ..FakeServer::default()
    };
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2000).unwrap(),
        "at-1-"
    );
    let set = m.session().unwrap().token_set();
    assert_eq!(set.refresh_token.as_ref().unwrap().secret(), "rt-0");
    assert_eq!(set.id_token.as_ref().unwrap().secret(), id_token);
    assert_eq!(
        events(&mut m),
        [Event::SessionChanged {
            generation: 1,
            reason: ChangeReason::TokensUpdated {
                refresh_token_rotated: false
            }
        }]
    );
}

#[test]
fn errors_leave_the_session_untouched() {
    let mut m = manager(builder(), expired_session(1000));
    let before = m.session().unwrap().to_json();
    for (status, body) in [
        (500, "<html><body>Internal Server Error</body></html>"),
        (502, "Bad Gateway"),
        (200, r#"{"error":"server_error"}"#),
        (200, r#"{"token_type":"Bearer"}"#),
        (200, "[1,2,3]"),
        (400, r#"{"error":"invalid_request"}"#),
        (503, "{}"),
    ] {
        let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
            panic!("expected a refresh")
        };
        let Completion::Failed(e) =
            m.handle_response(out.id, HttpResponse::new(status, body), t(2000))
        else {
            panic!("expected a failure for {status} {body}")
        };
        assert_eq!(e.code(), "failed_to_refresh_token", "{status} {body}");
        assert_eq!(m.session().unwrap().to_json(), before, "{status} {body}");
        assert!(events(&mut m).is_empty());
        assert_eq!(m.in_flight(), 0);
    }
}

#[test]
fn html_error_page_names_the_status() {
    let mut m = manager(builder(), expired_session(1000));
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Completion::Failed(e) = m.handle_response(
        out.id,
        HttpResponse::new(502, "<html>Bad Gateway</html>"),
        t(2000),
    ) else {
        panic!()
    };
    let tokenkeeper::Error::FailedToRefreshToken(cause) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(cause.code(), "unexpected_response");
    assert!(cause.to_string().contains("502"));
}

#[test]
fn invalid_grant_requires_reauthentication_and_stops_sending() {
    let mut m = manager(builder(), expired_session(1000));
    let mut server = FakeServer {
        current_refresh_token: Some("someone-else".into()),
        ..FakeServer::default()
    };
    let err = get(&mut m, &mut server, &TokenRequest::new(), 2000).unwrap_err();
    assert_eq!(err, "failed_to_refresh_token");
    assert_eq!(
        events(&mut m),
        [Event::SessionChanged {
            generation: 1,
            reason: ChangeReason::ReauthenticationRequired
        }]
    );
    assert!(m.session().unwrap().is_reauthentication_required());
    // Later calls answer at once, without I/O.
    for now in [2001, 3000] {
        assert_eq!(
            get(&mut m, &mut server, &TokenRequest::new(), now).unwrap_err(),
            "reauthentication_required"
        );
    }
    assert_eq!(server.refreshes, 1);
    // The state survives persistence.
    let json = m.session().unwrap().to_json();
    assert!(json.contains(r#""reauthenticationRequired":true"#));
    let reloaded = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
    assert!(reloaded.is_reauthentication_required());
}

#[test]
fn server_error_is_the_cause() {
    let mut m = manager(builder(), expired_session(1000));
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let response = HttpResponse::new(
        400,
        r#"{"error":"invalid_scope","error_description":"nope","error_uri":"https://docs"}"#,
    );
    let Completion::Failed(e) = m.handle_response(out.id, response, t(2000)) else {
        panic!()
    };
    let server = e.server_error().unwrap();
    assert_eq!(
        (server.error.as_str(), server.error_description.as_deref()),
        ("invalid_scope", Some("nope"))
    );
}

#[test]
fn mfa_required_is_typed() {
    let mut m = manager(builder(), expired_session(1000));
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let response = HttpResponse::new(
        403,
        r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-tok"}"#,
    );
    let Completion::Failed(tokenkeeper::Error::MfaRequired(mfa)) =
        m.handle_response(out.id, response, t(2000))
    else {
        panic!()
    };
    assert_eq!(mfa.mfa_token.unwrap().secret(), "mfa-tok");
    assert!(!m.session().unwrap().is_reauthentication_required());
}

#[test]
fn missing_expires_in_uses_the_default_lifetime() {
    let mut m = manager(
        builder().default_lifetime(Duration::from_secs(300)),
        expired_session(1000),
    );
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Completion::Ready(token) = m.handle_response(
        out.id,
        HttpResponse::new(200, r#"{"access_token":"x","token_type":"bearer"}"#),
        t(2005),
    ) else {
        panic!()
    };
    // From the send time, not the receive time.
    assert_eq!(token.expires_at, t(2300));
    assert_eq!(token.token_type.as_str(), "Bearer");
}

#[test]
fn sub_change_is_rejected_and_nothing_stored() {
    let mut session = expired_session(1000);
    let old = fake_jwt(&serde_json::json!({"sub": "user-1"}));
    let json = session.to_json().replace(
        r#""accessToken":"at-login""#,
        &format!(r#""accessToken":"at-login","idToken":"{old}""#),
    );
    session = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
    let mut m = manager(builder(), session);
    let before = m.session().unwrap().to_json();
    let mut server = FakeServer {
        issue_id_token: true,
        sub: "intruder".into(),
        ..FakeServer::default()
    };
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2000).unwrap_err(),
        "subject_mismatch"
    );
    // The server rotated rt-0 away: the answer proved rt-1, and only rt-1
    // is kept (announced for persistence); nothing else changed.
    assert_eq!(rt(&m), "rt-1");
    assert_eq!(
        events(&mut m),
        [Event::SessionChanged {
            generation: 1,
            reason: ChangeReason::TokensUpdated {
                refresh_token_rotated: true
            }
        }]
    );
    let mut after: serde_json::Value =
        serde_json::from_str(&m.session().unwrap().to_json()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    after["tokenSet"]["refreshToken"] = before["tokenSet"]["refreshToken"].clone();
    after["tokenkeeper"] = before["tokenkeeper"].clone();
    assert_eq!(after, before);
    // Same subject again: the next refresh spends rt-1 (no replay, the
    // grant lives), and the new ID token is stored.
    server.sub = "user-1".into();
    assert!(get(&mut m, &mut server, &TokenRequest::new(), 2000).is_ok());
    assert_eq!(server.replays, 0);
    assert!(!server.revoked);
    assert_ne!(
        m.session()
            .unwrap()
            .token_set()
            .id_token
            .as_ref()
            .unwrap()
            .secret(),
        old
    );
}

#[test]
fn refresh_request_wire_format() {
    let mut m = manager(
        builder()
            .client_auth(ClientAuth::SecretBasic(ClientSecret::new("s:1")))
            .target_parameter(TargetParameter::Resource),
        expired_session(1000),
    );
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    // No scope and no target unless asked for.
    assert_eq!(field(&out.request, "scope"), None);
    assert_eq!(field(&out.request, "resource"), None);
    assert_eq!(field(&out.request, "client_id"), None);
    assert!(
        out.request
            .headers
            .get("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    m.cancel(out.id);
    let request = TokenRequest::new()
        .audience("https://api1.example.com")
        .scope("read:data");
    let Action::Send(out) = m.get_access_token(&request, t(2000)) else {
        panic!()
    };
    assert_eq!(
        field(&out.request, "scope").as_deref(),
        Some("openid profile email offline_access read:data")
    );
    assert_eq!(
        field(&out.request, "resource").as_deref(),
        Some("https://api1.example.com")
    );
    assert_eq!(field(&out.request, "audience"), None);
}
