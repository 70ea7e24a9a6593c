//! Starting from what users have: a refresh token, a token endpoint
//! response, or the SDK's session JSON (issue 19, part 3).

mod support;

use support::{FakeServer, builder, fake_jwt, get, manager, t};
use tokenkeeper::TokenResponse;
use tokenkeeper::{HttpResponse, RefreshToken, SeededEntropy, Session, TokenRequest};

fn json(session: &Session) -> serde_json::Value {
    serde_json::from_str(&session.to_json()).unwrap()
}

#[test]
fn a_refresh_token_alone_refreshes_first_and_is_complete_for_the_sdk() {
    let session = Session::from_refresh_token(
        RefreshToken::new("rt-0"),
        t(1_000),
        &mut SeededEntropy::new(3),
    );
    let stored = json(&session);
    assert_eq!(stored["tokenSet"]["refreshToken"], "rt-0");
    assert_eq!(
        stored["tokenSet"]["expiresAt"], 0,
        "expired for the SDK too"
    );
    assert_eq!(stored["internal"]["createdAt"], 1_000);
    let sid = stored["internal"]["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 32);
    // Another draw, another sid.
    let other = Session::from_refresh_token(
        RefreshToken::new("rt-0"),
        t(1_000),
        &mut SeededEntropy::new(4),
    );
    assert_ne!(json(&other)["internal"]["sid"], sid);
    // The first request refreshes; the session keeps its internal members.
    let mut m = manager(builder(), session);
    let mut server = FakeServer::default();
    assert_eq!(
        get(&mut m, &mut server, &TokenRequest::new(), 2_000).unwrap(),
        "at-1-"
    );
    assert_eq!(server.refreshes, 1);
    assert_eq!(json(m.session().unwrap())["internal"]["sid"], sid);
}

#[test]
fn a_token_response_becomes_a_session_with_its_user() {
    let id_token = fake_jwt(&serde_json::json!({"sub": "user-1", "sid": "op-sid"}));
    let body = serde_json::json!({
        "access_token": "at", "token_type": "bearer", "expires_in": 600,
        "refresh_token": "rt", "id_token": id_token,
    });
    let response = TokenResponse::parse(
        &HttpResponse::new(200, body.to_string()),
        &Default::default(),
    )
    .unwrap();
    let session = Session::from_token_response(
        response,
        t(5_000),
        Some("openid profile email offline_access"),
        Some("https://api"),
        &mut SeededEntropy::new(1),
    );
    let stored = json(&session);
    assert_eq!(stored["user"]["sub"], "user-1");
    assert_eq!(stored["internal"]["sid"], "op-sid");
    assert_eq!(stored["internal"]["createdAt"], 5_000);
    assert_eq!(stored["tokenSet"]["expiresAt"], 5_600);
    assert_eq!(stored["tokenSet"]["token_type"], "Bearer");
    assert_eq!(
        stored["tokenSet"]["requestedScope"],
        "openid profile email offline_access"
    );
    assert_eq!(stored["tokenSet"]["audience"], "https://api");
    // Served as is until it is due.
    let mut m = manager(builder(), session);
    let mut server = FakeServer::default();
    assert_eq!(
        get(
            &mut m,
            &mut server,
            &TokenRequest::new().audience("https://api"),
            5_100
        )
        .unwrap(),
        "at"
    );
    assert_eq!(server.refreshes, 0);
    // Read back from its JSON, it is the same session.
    let back = Session::from_json(session_json(&m).as_bytes(), &Default::default()).unwrap();
    assert_eq!(back.to_json(), session_json(&m));
}

fn session_json(m: &tokenkeeper::TokenManager) -> String {
    m.session().unwrap().to_json()
}
