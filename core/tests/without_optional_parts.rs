//! The core with its optional protocol parts off, as the minimal wasm app
//! builds it (`--no-default-features --features std`): what changes without
//! `url` (only canonical URLs) and without `login` (a refreshed ID token is
//! checked for the same `sub` only). Run by
//! `cargo test -p tokenkeeper --no-default-features --features std`; with
//! the default features these tests are not compiled.
#![cfg(not(any(feature = "url", feature = "login")))]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenkeeper::__private::dpop::{htu, origin};
use tokenkeeper::dpop::HtuError;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    Action, ClientSecret, Completion, Config, Error, HttpResponse, SeededEntropy, Session,
    TokenManager, TokenRequest, UnixTime,
};

#[test]
fn canonical_urls_need_no_parser() {
    assert_eq!(
        htu("https://as.example/oauth/token?x=1#f").unwrap(),
        "https://as.example/oauth/token"
    );
    assert_eq!(
        htu("http://localhost:3000/api/me").unwrap(),
        "http://localhost:3000/api/me"
    );
    assert_eq!(
        origin("https://api.example.com:8443/v1/items?q=2").unwrap(),
        "https://api.example.com:8443"
    );
    assert_eq!(
        origin("https://api.example.com/").unwrap(),
        "https://api.example.com"
    );
}

#[test]
fn other_urls_are_refused_not_guessed() {
    for odd in [
        // What the WHATWG parser would normalise: upper case, a default
        // port, dot segments, IDN and IPv4 hosts, userinfo, no path.
        "https://AS.example/oauth/token",
        "https://as.example:443/oauth/token",
        "https://as.example/a/../token",
        "https://bücher.example/token",
        "https://xn--bcher-kva.example/token",
        "http://127.0.0.1:3000/token",
        "https://user:pw@as.example/token",
        "https://as.example",
    ] {
        assert_eq!(htu(odd), Err(HtuError::NotCanonical), "{odd}");
        assert_eq!(origin(odd), Err(HtuError::NotCanonical), "{odd}");
    }
    // Not http(s) at all, or not a URL: refused as with the parser.
    assert_eq!(htu("ftp://as.example/x"), Err(HtuError::UnsupportedScheme));
    assert_eq!(
        origin("mailto:a@as.example"),
        Err(HtuError::UnsupportedScheme)
    );
    assert_eq!(htu("as.example/x"), Err(HtuError::Invalid));
}

#[test]
fn the_configuration_takes_canonical_endpoints_only() {
    assert!(
        Config::builder("https://as.example/oauth/token", "c")
            .build()
            .is_ok()
    );
    let refused = Config::builder("http://127.0.0.1:3000/token", "c").build();
    assert_eq!(
        refused.map(|_| ()).unwrap_err().code(),
        "invalid_configuration"
    );
}

fn id_token(sub: Option<&str>) -> String {
    let claims = match sub {
        Some(sub) => format!(r#"{{"iss":"https://as.example/","sub":"{sub}","aud":"c"}}"#),
        None => String::from(r#"{"iss":"https://as.example/","aud":"c"}"#),
    };
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// A refresh of a session holding an ID token for `alice`, answered with
/// `answer_id_token`; what the manager makes of it.
fn refresh_answered_with(answer_id_token: &str) -> Result<String, Error> {
    let config = Config::builder("https://as.example/oauth/token", "c")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("s")))
        .build()
        .unwrap();
    let mut manager = TokenManager::new(config, SeededEntropy::new(1));
    let stored = format!(
        r#"{{"tokenSet":{{"accessToken":"old","refreshToken":"rt-1","expiresAt":1000,"idToken":"{}"}}}}"#,
        id_token(Some("alice"))
    );
    manager.set_session(Session::from_json(stored.as_bytes(), &Default::default()).unwrap());
    let now = UnixTime::from_secs(2000);
    let outgoing = match manager.get_access_token(&TokenRequest::new(), now) {
        Action::Send(outgoing) => outgoing,
        other => panic!("expected a refresh, got {other:?}"),
    };
    let body = format!(
        r#"{{"access_token":"new","token_type":"Bearer","expires_in":3600,"id_token":"{answer_id_token}"}}"#
    );
    match manager.handle_response(outgoing.id, HttpResponse::new(200, body), now) {
        Completion::Ready(token) => Ok(String::from(token.token.secret())),
        Completion::Failed(error) => Err(error),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refreshed_id_token_must_name_the_same_subject() {
    assert_eq!(
        refresh_answered_with(&id_token(Some("alice"))).unwrap(),
        "new"
    );
    assert_eq!(
        refresh_answered_with(&id_token(Some("mallory")))
            .unwrap_err()
            .code(),
        "subject_mismatch"
    );
    // Without a `sub` it proves nothing: refused as well (as with the
    // validator and no issuer).
    assert_eq!(
        refresh_answered_with(&id_token(None)).unwrap_err().code(),
        "missing_sub"
    );
}
