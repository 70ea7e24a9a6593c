//! Multi-resource refresh tokens: the per-audience cache, single-flight
//! refresh across audiences, eviction, strict scopes and persistence.

mod support;

use std::collections::VecDeque;

use support::{FakeServer, builder, expired_session, field, get, manager, rt, t};
use tokenkeeper::{
    Action, ChangeReason, Completion, Event, HttpResponse, OutgoingRequest, RequestId, Session,
    TokenRequest,
};

const API1: &str = "https://api1.example.com";
const API2: &str = "https://api2.example.com";

#[test]
fn two_audiences_share_one_rotating_refresh_token() {
    let mut m = manager(builder(), expired_session(5000));
    let mut server = FakeServer::default();
    let api1 = TokenRequest::new().audience(API1);
    let api2 = TokenRequest::new().audience(API2);
    assert_eq!(
        get(&mut m, &mut server, &api1, 1000).unwrap(),
        format!("at-1-{API1}")
    );
    assert_eq!(rt(&m), "rt-1");
    assert_eq!(
        get(&mut m, &mut server, &api2, 1000).unwrap(),
        format!("at-2-{API2}")
    );
    // The second refresh spent the rotated token, not the original.
    assert_eq!(rt(&m), "rt-2");
    // Both from cache now; the main token set is untouched.
    assert_eq!(
        get(&mut m, &mut server, &api1, 1001).unwrap(),
        format!("at-1-{API1}")
    );
    assert_eq!(
        get(&mut m, &mut server, &api2, 1001).unwrap(),
        format!("at-2-{API2}")
    );
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 1001).unwrap(),
        "at-login"
    );
    assert_eq!(server.refreshes, 2);
    assert_eq!(server.replays, 0);
    let session = m.session().unwrap();
    assert_eq!(session.access_tokens().len(), 2);
    assert_eq!(
        session.access_tokens()[0].requested_scope.as_deref(),
        Some("openid profile email offline_access")
    );
    // Expired: each refreshed again, under rotation.
    assert_eq!(
        get(&mut m, &mut server, &api1, 5000).unwrap(),
        format!("at-3-{API1}")
    );
    assert_eq!(
        get(&mut m, &mut server, &api2, 5000).unwrap(),
        format!("at-4-{API2}")
    );
    assert_eq!(rt(&m), "rt-4");
    assert_eq!(
        m.session().unwrap().access_tokens().len(),
        2,
        "upserted, not appended"
    );
    assert_eq!(server.replays, 0);
}

#[test]
fn default_audience_uses_the_main_token_set() {
    let mut m = manager(builder().audience(API1), expired_session(1000));
    let mut server = FakeServer::default();
    // The default audience, explicitly or not, refreshes the main set.
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().audience(API1),
            2000
        )
        .unwrap(),
        format!("at-1-{API1}")
    );
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2001).unwrap(),
        format!("at-1-{API1}")
    );
    assert!(m.session().unwrap().access_tokens().is_empty());
    // A scope the main set was not asked for goes to an entry for the same audience.
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().scope("write:data"),
            2002
        )
        .unwrap(),
        format!("at-2-{API1}")
    );
    assert_eq!(m.session().unwrap().access_tokens().len(), 1);
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2003).unwrap(),
        format!("at-1-{API1}")
    );
}

#[test]
fn scope_map_and_merge_off() {
    let mut scopes = std::collections::BTreeMap::new();
    scopes.insert(
        API1.to_string(),
        "openid offline_access read:data".to_string(),
    );
    scopes.insert(API2.to_string(), "write:data".to_string());
    let mut m = manager(
        builder().audience(API1).scope_per_audience(scopes),
        expired_session(5000),
    );
    let Action::Send(out) =
        m.get_access_token(&TokenRequest::new().audience(API2).scope("extra"), t(1000))
    else {
        panic!()
    };
    assert_eq!(
        field(&out.request, "scope").as_deref(),
        Some("write:data extra")
    );
    assert!(m.cancel(out.id));
    let mut req = TokenRequest::new().audience(API2).scope("extra");
    req.merge_scopes = Some(false);
    let Action::Send(out) = m.get_access_token(&req, t(1000)) else {
        panic!()
    };
    assert_eq!(field(&out.request, "scope").as_deref(), Some("extra"));
}

#[test]
fn waiters_for_every_audience_share_one_flight() {
    let mut m = manager(builder(), expired_session(1000));
    let mut server = FakeServer::default();
    let api1 = TokenRequest::new().audience(API1);
    let api2 = TokenRequest::new().audience(API2);
    let Action::Send(out) = m.get_access_token(&api1, t(2000)) else {
        panic!()
    };
    // While it flies, everyone waits on it, whatever the audience.
    for req in [&api1, &api2, &TokenRequest::new()] {
        match m.get_access_token(req, t(2000)) {
            Action::Wait(id) => assert_eq!(id, out.id),
            other => panic!("{other:?}"),
        }
    }
    let response = server.handle(&out.request);
    assert!(matches!(
        m.handle_response(out.id, response, t(2000)),
        Completion::Ready(_)
    ));
    // The api1 waiter is served from cache; the api2 waiter gets its own
    // turn, with the rotated token.
    assert!(matches!(
        m.get_access_token_after_wait(&api1, out.id, t(2000)),
        Action::Ready(_)
    ));
    let Action::Send(second) = m.get_access_token_after_wait(&api2, out.id, t(2000)) else {
        panic!()
    };
    assert_eq!(
        field(&second.request, "refresh_token").as_deref(),
        Some("rt-1")
    );
}

#[test]
fn a_failed_flight_fails_its_same_audience_waiters_only() {
    let mut m = manager(builder(), expired_session(1000));
    let api1 = TokenRequest::new().audience(API1);
    let api2 = TokenRequest::new().audience(API2);
    let Action::Send(out) = m.get_access_token(&api1, t(2000)) else {
        panic!()
    };
    assert!(matches!(
        m.get_access_token(&api1, t(2000)),
        Action::Wait(_)
    ));
    let _ = m.handle_response(out.id, HttpResponse::new(500, "oops"), t(2000));
    match m.get_access_token_after_wait(&api1, out.id, t(2000)) {
        Action::Failed(e) => assert_eq!(e.code(), "failed_to_refresh_token"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.get_access_token_after_wait(&api2, out.id, t(2000)),
        Action::Send(_)
    ));
}

#[test]
fn forced_waiter_does_not_refresh_twice() {
    let mut m = manager(builder(), expired_session(5000));
    let mut server = FakeServer::default();
    let forced = TokenRequest::new().force_refresh();
    let Action::Send(out) = m.get_access_token(&forced, t(1000)) else {
        panic!()
    };
    let Action::Wait(id) = m.get_access_token(&forced, t(1000)) else {
        panic!()
    };
    let response = server.handle(&out.request);
    let _ = m.handle_response(out.id, response, t(1000));
    assert!(matches!(
        m.get_access_token_after_wait(&forced, id, t(1000)),
        Action::Ready(_)
    ));
    assert_eq!(server.refreshes, 1);
}

/// 1000 callers for 5 audiences on an expired session, interleaved at
/// random: never more than one refresh in flight, never a spent refresh
/// token sent, and every caller ends with a valid token for its audience.
#[test]
fn thousand_callers_five_audiences() {
    let audiences: Vec<String> = (0..5)
        .map(|i| format!("https://api{i}.example.com"))
        .collect();
    let mut m = manager(builder(), expired_session(1000));
    let mut server = FakeServer::default();
    let mut rng = tokenkeeper::SeededEntropy::new(99);
    let mut draw = |n: usize| {
        let mut b = [0u8; 8];
        tokenkeeper::Entropy::fill(&mut rng, &mut b);
        (u64::from_le_bytes(b) % n as u64) as usize
    };
    #[derive(Debug)]
    enum State {
        New,
        Waiting(RequestId),
        Owns(OutgoingRequest),
        Done(String),
    }
    let mut callers: Vec<(usize, State)> = (0..1000).map(|i| (i % 5, State::New)).collect();
    let mut pending: VecDeque<usize> = (0..1000).collect();
    let now = t(2000);
    let mut steps = 0;
    while let Some(i) = pending.pop_front() {
        steps += 1;
        assert!(steps < 100_000, "no progress");
        let aud = audiences[callers[i].0].clone();
        let req = TokenRequest::new().audience(&aud);
        let state = std::mem::replace(&mut callers[i].1, State::New);
        let action_state = match state {
            State::New => match m.get_access_token(&req, now) {
                Action::Ready(tok) => State::Done(tok.token.secret().to_string()),
                Action::Send(out) => State::Owns(out),
                Action::Wait(id) => State::Waiting(id),
                other => panic!("{other:?}"),
            },
            State::Waiting(id) => match m.get_access_token_after_wait(&req, id, now) {
                Action::Ready(tok) => State::Done(tok.token.secret().to_string()),
                Action::Send(out) => State::Owns(out),
                Action::Wait(id) => State::Waiting(id),
                other => panic!("{other:?}"),
            },
            State::Owns(out) => {
                // The server sees the request only now: at most one in flight.
                assert_eq!(m.in_flight(), 1);
                let sent = field(&out.request, "refresh_token").unwrap();
                assert!(!server.spent.contains(&sent), "spent refresh token sent");
                let response = server.handle(&out.request);
                match m.handle_response(out.id, response, now) {
                    Completion::Ready(tok) => State::Done(tok.token.secret().to_string()),
                    other => panic!("{other:?}"),
                }
            }
            State::Done(tok) => State::Done(tok),
        };
        assert!(m.in_flight() <= 1);
        let done = matches!(action_state, State::Done(_));
        callers[i].1 = action_state;
        if !done {
            // Re-queue at a random place: arbitrary interleaving.
            let at = draw(pending.len() + 1);
            pending.insert(at, i);
        }
    }
    for (aud, state) in &callers {
        let State::Done(tok) = state else {
            panic!("{state:?}")
        };
        assert!(
            tok.ends_with(&audiences[*aud]),
            "{tok} for {}",
            audiences[*aud]
        );
    }
    assert_eq!(server.refreshes, 5, "one refresh per audience");
    assert_eq!(server.replays, 0);
    assert!(!server.revoked);
}

#[test]
fn lost_response_then_retry() {
    let mut m = manager(builder(), expired_session(1000));
    let mut server = FakeServer::default();
    let before = m.session().unwrap().to_json();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    // The request never reached the server; the host reports it.
    assert_eq!(
        m.handle_transport_error(out.id, t(2000)).code(),
        "transport_error"
    );
    assert_eq!(m.in_flight(), 0);
    assert_eq!(m.session().unwrap().to_json(), before);
    assert!(m.poll_event().is_none());
    // A late response for the released id is refused.
    assert!(matches!(
        m.handle_response(out.id, HttpResponse::new(200, "{}"), t(2000)),
        Completion::Failed(tokenkeeper::Error::UnknownRequest)
    ));
    // The retry uses the same, untouched refresh token.
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2001).unwrap(),
        "at-1-"
    );
    assert_eq!(server.replays, 0);
}

#[test]
fn lease_expiry_unwedges_and_late_response_still_applies() {
    let mut m = manager(
        builder().lease(std::time::Duration::from_secs(30)),
        expired_session(1000),
    );
    let mut server = FakeServer::default();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert_eq!(m.poll_timeout(), Some(t(2030)));
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(2029)),
        Action::Wait(_)
    ));
    m.handle_timeout(t(2030));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.in_flight(), 0);
    // The abandoned flight's response still arrives: nothing else changed,
    // so its rotated refresh token is kept rather than lost.
    let response = server.handle(&out.request);
    assert!(matches!(
        m.handle_response(out.id, response, t(2031)),
        Completion::Ready(_)
    ));
    assert_eq!(rt(&m), "rt-1");
}

#[test]
fn late_response_after_the_session_moved_on_is_refused() {
    let mut m = manager(
        builder().lease(std::time::Duration::from_secs(30)),
        expired_session(1000),
    );
    let mut server = FakeServer {
        rotate: true,
        ..FakeServer::default()
    };
    let Action::Send(first) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    m.handle_timeout(t(2030));
    // A new login installs a different refresh token meanwhile.
    let mut json = m.session().unwrap().to_json();
    json = json.replace("rt-0", "rt-new-login");
    m.set_session(Session::from_json(json.as_bytes(), &Default::default()).unwrap());
    let response = server.handle(&first.request);
    assert!(matches!(
        m.handle_response(first.id, response, t(2031)),
        Completion::Failed(tokenkeeper::Error::RequestAbandoned)
    ));
    assert_eq!(rt(&m), "rt-new-login");
}

#[test]
fn cancel_releases_without_failing_waiters() {
    let mut m = manager(builder(), expired_session(1000));
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Action::Wait(id) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert!(m.cancel(out.id));
    assert!(!m.cancel(out.id));
    // The waiter takes its own turn.
    assert!(matches!(
        m.get_access_token_after_wait(&TokenRequest::new(), id, t(2000)),
        Action::Send(_)
    ));
}

#[test]
fn eviction_cap_and_lru() {
    let mut m = manager(builder().max_cache_entries(3), expired_session(9000));
    let mut server = FakeServer::default();
    let auds: Vec<String> = (0..4).map(|i| format!("https://api{i}")).collect();
    for aud in &auds[..3] {
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().audience(aud),
            1000,
        )
        .unwrap();
    }
    // Touch api0 so api1 is the least recently used.
    get(
        &mut m,
        &mut server,
        &TokenRequest::new().audience(&auds[0]),
        1001,
    )
    .unwrap();
    while m.poll_event().is_some() {}
    get(
        &mut m,
        &mut server,
        &TokenRequest::new().audience(&auds[3]),
        1002,
    )
    .unwrap();
    let events: Vec<Event> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::SessionChanged {
            reason: ChangeReason::Evicted,
            ..
        }
    )));
    let kept: Vec<String> = m
        .session()
        .unwrap()
        .access_tokens()
        .iter()
        .map(|e| e.audience.clone())
        .collect();
    assert_eq!(kept, [auds[0].clone(), auds[2].clone(), auds[3].clone()]);
}

#[test]
fn expired_entries_without_refresh_token_are_dropped() {
    let json = br#"{"tokenSet":{"accessToken":"main","expiresAt":9000},
        "accessTokens":[
          {"accessToken":"old","audience":"https://a","expiresAt":1000,"requestedScope":"openid profile email offline_access"},
          {"accessToken":"live","audience":"https://b","expiresAt":9000,"requestedScope":"openid profile email offline_access"}]}"#;
    let mut m = manager(
        builder(),
        Session::from_json(json, &Default::default()).unwrap(),
    );
    let mut server = FakeServer::default();
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().audience("https://b"),
            2000
        )
        .unwrap(),
        "live"
    );
    let audiences: Vec<String> = m
        .session()
        .unwrap()
        .access_tokens()
        .iter()
        .map(|e| e.audience.clone())
        .collect();
    assert_eq!(audiences, ["https://b"]);
    assert!(matches!(
        m.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::Evicted,
            ..
        })
    ));
}

#[test]
fn strict_scopes_report_missing_and_still_store() {
    let mut m = manager(builder().strict_scopes(true), expired_session(9000));
    let mut server = FakeServer {
        grantable: Some("openid profile email offline_access read:data".into()),
        ..FakeServer::default()
    };
    let req = TokenRequest::new()
        .audience(API1)
        .scope("read:data write:data");
    match m.get_access_token(&req, t(1000)) {
        Action::Send(out) => {
            let response = server.handle(&out.request);
            match m.handle_response(out.id, response, t(1000)) {
                Completion::Failed(tokenkeeper::Error::MissingScopes { missing }) => {
                    assert_eq!(missing, "write:data")
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // Stored: the next call does not loop on refreshes, and does not hand
    // out the token it just refused either (it once came back `Ready`).
    match m.get_access_token(&req, t(1001)) {
        Action::Failed(tokenkeeper::Error::MissingScopes { missing }) => {
            assert_eq!(missing, "write:data")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.refreshes, 1);
    // What the token was granted is still served.
    let granted = TokenRequest::new().audience(API1).scope("read:data");
    assert!(matches!(
        m.get_access_token(&granted, t(1002)),
        Action::Ready(_)
    ));
    assert_eq!(server.refreshes, 1);
    // Lenient (default): no error.
    let mut m = manager(builder(), expired_session(9000));
    server.current_refresh_token = Some("rt-0".into());
    server.spent.clear();
    assert!(get(&mut m, &mut server, &req, 1000).is_ok());
}

#[test]
fn invalid_target_keeps_the_session_consistent() {
    let mut m = manager(builder(), expired_session(9000));
    let mut server = FakeServer {
        audiences: Some(vec![API1.into()]),
        ..FakeServer::default()
    };
    let err = get(
        &mut m,
        &mut server,
        &TokenRequest::new().audience("https://unknown"),
        1000,
    )
    .unwrap_err();
    assert_eq!(err, "failed_to_refresh_token");
    // The server consumed the token before refusing (as oidc-provider does):
    // sending it again would be a replay that revokes the grant, so the
    // session is marked at once and nothing more is sent.
    assert!(m.session().unwrap().is_reauthentication_required());
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().audience(API1),
            1000
        )
        .unwrap_err(),
        "reauthentication_required"
    );
    assert_eq!(server.refreshes, 1);
    assert_eq!(server.replays, 0);
}

#[test]
fn sdk_session_vector_round_trips() {
    let raw = include_str!("vectors/nextjs-session.json");
    let session = Session::from_json(raw.as_bytes(), &Default::default()).unwrap();
    assert_eq!(session.access_tokens().len(), 2);
    assert_eq!(
        session.token_set().refresh_token.as_ref().unwrap().secret(),
        "v1.MRrtXyZ-example-refresh-token"
    );
    let back: serde_json::Value = serde_json::from_str(&session.to_json()).unwrap();
    let mut expected: serde_json::Value = serde_json::from_str(raw).unwrap();
    expected["tokenkeeper"] = serde_json::json!({"generation": 0});
    assert_eq!(back, expected);
    // Byte-for-byte audiences survive (trailing slash kept).
    assert_eq!(
        session.access_tokens()[1].audience,
        "https://api3.example.com/"
    );
}

#[test]
fn sdk_session_is_usable_and_changes_persist() {
    let raw = include_str!("vectors/nextjs-session.json");
    let session = Session::from_json(raw.as_bytes(), &Default::default()).unwrap();
    let mut m = manager(builder().audience("https://api.example.com"), session);
    // api2's entry covers the merged default + read:data scope.
    match m.get_access_token(
        &TokenRequest::new()
            .audience("https://api2.example.com")
            .scope("read:data"),
        t(1_794_999_000),
    ) {
        Action::Ready(tok) => assert_eq!(tok.expires_at, t(1_795_000_100)),
        other => panic!("{other:?}"),
    }
    let mut server = FakeServer {
        current_refresh_token: Some("v1.MRrtXyZ-example-refresh-token".into()),
        ..FakeServer::default()
    };
    get(
        &mut m,
        &mut server,
        &TokenRequest::new()
            .audience("https://api2.example.com")
            .scope("read:data"),
        1_795_000_100,
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&m.session().unwrap().to_json()).unwrap();
    assert_eq!(json["tokenkeeper"]["generation"], 1);
    assert_eq!(json["tokenSet"]["refreshToken"], "rt-1");
    assert_eq!(json["user"]["email"], "ada@example.com");
    assert_eq!(json["connectionTokenSets"][0]["connection"], "github");
    assert_eq!(json["accessTokens"].as_array().unwrap().len(), 2);
}

#[test]
fn resource_server_invalid_token_forces_a_refresh() {
    let mut m = manager(builder(), expired_session(9000));
    let mut server = FakeServer::default();
    let req = TokenRequest::new().audience(API1);
    get(&mut m, &mut server, &req, 1000).unwrap();
    let token = match m.get_access_token(&req, t(1001)) {
        Action::Ready(tok) => tok.to_owned(),
        other => panic!("{other:?}"),
    };
    let tokenkeeper::Authorization::Ready(headers) = m
        .authorize(
            &tokenkeeper::Method::GET,
            "https://api1.example.com/data",
            &token,
            t(1001),
        )
        .unwrap()
    else {
        panic!("a Bearer token needs no signature")
    };
    assert_eq!(
        headers.get("authorization"),
        Some(format!("Bearer {}", token.token.secret()).as_str())
    );
    let ok = HttpResponse::new(200, "{}");
    assert_eq!(
        m.handle_resource_response("https://api1.example.com/data", &token, &ok, t(1001)),
        tokenkeeper::ResourceVerdict::Accepted
    );
    let rejected = HttpResponse::new(401, "")
        .with_header("WWW-Authenticate", r#"Bearer error="invalid_token""#);
    assert_eq!(
        m.handle_resource_response("https://api1.example.com/data", &token, &rejected, t(1001)),
        tokenkeeper::ResourceVerdict::TokenRejected
    );
    // The next request refreshes.
    assert!(matches!(m.get_access_token(&req, t(1002)), Action::Send(_)));
}
