//! The manager's ID token signature step without a server (the harness
//! suite `tests/tests/jwks_login.rs` runs it against node-oidc-provider):
//! the JWKS fetch asked for under the flight's id, a transport error or a
//! failed JWKS fetch ending the login with nothing stored (and the cache
//! not left stuck), and the rate limit on refetches for unknown `kid`s.
#![cfg(feature = "login")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use serde_json::json;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{
    Completion, Config, Dispatch, Entropy, HttpResponse, Method, RequestId, SeededEntropy,
    TokenManager, UnixTime,
};

const ISSUER: &str = "https://as.example/";
const CLIENT: &str = "client-1";
const TOKEN: &str = "https://as.example/token";
const JWKS_URI: &str = "https://as.example/jwks";
const REDIRECT: &str = "https://app.example/callback";
const NOW: u64 = 1_700_000_000;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key() -> p256::ecdsa::SigningKey {
    let mut entropy = SeededEntropy::new(7);
    loop {
        let mut bytes = [0u8; 32];
        entropy.fill(&mut bytes);
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn jwks_body() -> String {
    let point = key().verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": b64(&bytes[1..33]), "y": b64(&bytes[33..65])}]})
    .to_string()
}

fn id_token(kid: &str, nonce: &str, at: u64) -> String {
    let header = json!({"alg": "ES256", "kid": kid});
    let claims = json!({"iss": ISSUER, "sub": "alice", "aud": CLIENT,
        "exp": at + 3600, "iat": at, "nonce": nonce});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature: p256::ecdsa::Signature = key().sign(input.as_bytes());
    format!("{input}.{}", b64(signature.to_bytes()))
}

fn manager() -> TokenManager {
    let config = Config::builder(TOKEN, CLIENT)
        .issuer(ISSUER)
        .jwks_uri(JWKS_URI)
        .build()
        .unwrap();
    TokenManager::new(config, SeededEntropy::new(1))
}

/// Starts a login whose token response carries an ID token with `kid`;
/// hands that response in and returns what the manager answers.
fn login<'m>(m: &'m mut TokenManager, kid: &str, at: u64) -> (RequestId, Completion<'m>) {
    login_answered(m, at, |nonce| {
        json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
            "id_token": id_token(kid, nonce, at)})
        .to_string()
    })
}

/// Starts a login and answers it with the body `answer` writes for the
/// login's nonce; what the manager answers.
fn login_answered<'m>(
    m: &'m mut TokenManager,
    at: u64,
    answer: impl FnOnce(&str) -> String,
) -> (RequestId, Completion<'m>) {
    let (url, transaction) = LoginRequest::new("https://as.example/authorize", CLIENT, REDIRECT)
        .scope("openid")
        .start(&mut SeededEntropy::new(at))
        .unwrap();
    let _ = url;
    let callback = format!("{REDIRECT}?code=c-1&state={}", transaction.state().secret());
    let now = UnixTime::from_secs(at);
    let Dispatch::Send(out) = m.exchange_code(&transaction, &callback, now).unwrap() else {
        panic!("no signer")
    };
    let body = answer(transaction.nonce().secret());
    let id = out.id;
    (id, m.handle_response(id, HttpResponse::new(200, body), now))
}

fn asks_for_jwks(id: RequestId, completion: &Completion<'_>) {
    match completion {
        Completion::Resend(out) => {
            assert_eq!(out.id, id);
            assert_eq!(out.request.method, Method::GET);
            assert_eq!(out.request.url, JWKS_URI);
        }
        other => panic!("expected the JWKS request, got {other:?}"),
    }
}

fn code(completion: Completion<'_>) -> &'static str {
    match completion {
        Completion::Ready(_) => "ok",
        Completion::Failed(error) => error.code(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_jwks_fetch_lost_in_transport_ends_the_login_and_the_next_one_fetches_again() {
    let mut m = manager();
    let (id, completion) = login(&mut m, "k1", NOW);
    asks_for_jwks(id, &completion);
    assert_eq!(m.in_flight(), 1, "the flight waits for the keys");
    let error = m.handle_transport_error(id, UnixTime::from_secs(NOW));
    assert_eq!(error.code(), "transport_error");
    assert_eq!(m.in_flight(), 0);
    assert!(m.session().is_none(), "nothing stored");

    // The cache is not stuck "in flight": the next login fetches.
    let (id, completion) = login(&mut m, "k1", NOW + 1);
    asks_for_jwks(id, &completion);
    let done = m.handle_response(
        id,
        HttpResponse::new(200, jwks_body()),
        UnixTime::from_secs(NOW + 1),
    );
    assert_eq!(code(done), "ok");
    assert!(m.session().is_some());
}

/// A token response naming `id_token` twice: the one the login would
/// store (the last, as `JSON.parse` reads it) carries a forged signature.
/// The signature step once read the member on its own, where serde refused
/// the duplicate, and so checked nothing: the forged token was stored.
#[test]
fn a_duplicated_id_token_member_is_checked_as_the_login_reads_it() {
    let mut m = manager();
    let (id, completion) = login_answered(&mut m, NOW, |nonce| {
        let good = id_token("k1", nonce, NOW);
        let (signed, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", b64([7u8; 64]));
        format!(
            r#"{{"access_token":"at-1","token_type":"Bearer","expires_in":300,"id_token":"{good}","id_token":"{forged}"}}"#
        )
    });
    asks_for_jwks(id, &completion);
    let done = m.handle_response(
        id,
        HttpResponse::new(200, jwks_body()),
        UnixTime::from_secs(NOW),
    );
    assert_eq!(code(done), "invalid_signature");
    assert!(m.session().is_none(), "nothing stored");
}

#[test]
fn a_failed_jwks_fetch_refuses_the_login_with_invalid_jwks() {
    let mut m = manager();
    let (id, completion) = login(&mut m, "k1", NOW);
    asks_for_jwks(id, &completion);
    let done = m.handle_response(id, HttpResponse::new(500, "oops"), UnixTime::from_secs(NOW));
    assert_eq!(code(done), "invalid_jwks");
    assert!(m.session().is_none());
    assert_eq!(m.in_flight(), 0);
}

#[test]
fn an_unknown_kid_refetches_once_per_interval() {
    let mut m = manager();
    let (id, completion) = login(&mut m, "k1", NOW);
    asks_for_jwks(id, &completion);
    let t = UnixTime::from_secs(NOW);
    assert_eq!(
        code(m.handle_response(id, HttpResponse::new(200, jwks_body()), t)),
        "ok"
    );

    // A kid the fresh keys do not have, right after the fetch: refused
    // without another fetch (rate-limited).
    let (_, completion) = login(&mut m, "rotated", NOW + 10);
    assert_eq!(code(completion), "jwk_not_found");

    // Past the refetch interval: one refetch, then refused for good.
    let later = NOW + 10 + Duration::from_secs(60).as_secs();
    let (id, completion) = login(&mut m, "rotated", later);
    asks_for_jwks(id, &completion);
    let done = m.handle_response(
        id,
        HttpResponse::new(200, jwks_body()),
        UnixTime::from_secs(later),
    );
    assert_eq!(code(done), "jwk_not_found");
    // The known kid is served from the cache: no fetch.
    let (_, completion) = login(&mut m, "k1", later + 1);
    assert_eq!(code(completion), "ok");
}

/// A session whose access token expired, with refresh token `rt-1`.
fn refreshing(m: &mut TokenManager) -> (RequestId, UnixTime) {
    let session = tokenkeeper::Session::from_json(
        br#"{"tokenSet":{"accessToken":"at-0","refreshToken":"rt-1","expiresAt":1}}"#,
        &Default::default(),
    )
    .unwrap();
    m.set_session(session);
    let now = UnixTime::from_secs(NOW);
    let tokenkeeper::Action::Send(out) = m.get_access_token(&tokenkeeper::TokenRequest::new(), now)
    else {
        panic!("expected a refresh")
    };
    let id = out.id;
    // The server rotates rt-1 into rt-2; its ID token's key is not cached.
    let body = json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
        "refresh_token": "rt-2", "id_token": id_token("k1", "unused", NOW)});
    let completion = m.handle_response(id, HttpResponse::new(200, body.to_string()), now);
    asks_for_jwks(id, &completion);
    (id, now)
}

fn stored_refresh_token(m: &TokenManager) -> Option<String> {
    m.session()
        .and_then(|s| s.token_set().refresh_token.as_ref())
        .map(|t| t.secret().to_owned())
}

#[test]
fn a_jwks_fetch_lost_after_a_rotating_refresh_keeps_the_rotated_refresh_token() {
    // The token endpoint spent rt-1 and answered rt-2; only the key fetch
    // failed. Dropping the answer would leave rt-1 (spent) as the session's
    // refresh token: the next refresh is a reuse, and the grant is revoked.
    let mut m = manager();
    let (id, now) = refreshing(&mut m);
    assert_eq!(m.handle_transport_error(id, now).code(), "transport_error");
    assert_eq!(m.in_flight(), 0);
    assert_eq!(stored_refresh_token(&m).as_deref(), Some("rt-2"));
    // The unchecked access token is not served: the next ask refreshes
    // with the rotated token.
    let tokenkeeper::Action::Send(out) = m.get_access_token(&tokenkeeper::TokenRequest::new(), now)
    else {
        panic!("expected a refresh")
    };
    let body = String::from_utf8(out.request.body.clone()).unwrap();
    assert!(body.contains("refresh_token=rt-2"), "{body}");
}

#[test]
fn a_refresh_given_up_while_its_keys_are_fetched_keeps_the_rotated_refresh_token() {
    let mut m = manager();
    let (id, _) = refreshing(&mut m);
    assert!(m.cancel(id));
    assert_eq!(m.in_flight(), 0);
    assert_eq!(stored_refresh_token(&m).as_deref(), Some("rt-2"));
}
