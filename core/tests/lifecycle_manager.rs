//! The lifecycle through the manager: login code exchange, client
//! credentials, token exchange and logout, against scripted responses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenkeeper::__private::form;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::{TokenExchangeRequest, token_types};
use tokenkeeper::login::LoginRequest;
use tokenkeeper::{
    Action, ChangeReason, ClientSecret, Completion, Config, Event, HttpResponse, SeededEntropy,
    TokenManager, TokenRequest, UnixTime,
};

const ISSUER: &str = "https://as.example";

fn manager() -> TokenManager {
    let config = Config::builder("https://as.example/token", "client-1")
        .client_auth(ClientAuth::SecretBasic(ClientSecret::new("s")))
        .issuer(ISSUER)
        .scope("openid profile offline_access")
        .revocation_endpoint("https://as.example/revoke")
        .build()
        .unwrap();
    TokenManager::new(config, SeededEntropy::new(5))
}

fn id_token(claims: serde_json::Value) -> String {
    format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn sent(dispatch: tokenkeeper::Dispatch) -> tokenkeeper::OutgoingRequest {
    match dispatch {
        tokenkeeper::Dispatch::Send(out) => out,
        other => panic!("{other:?}"),
    }
}

fn t(s: u64) -> UnixTime {
    UnixTime::from_secs(s)
}

fn callback_for(url: &str, code: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let pairs = form::parse(query);
    let state = form::find(&pairs, "state").unwrap();
    format!(
        "https://app.example/cb?code={code}&state={state}&iss={}",
        form::encode(ISSUER)
    )
}

fn login(m: &mut TokenManager, nonce_override: Option<&str>, sub: &str) -> Result<(), String> {
    login_with(m, nonce_override, sub, serde_json::json!({}))
}

fn login_with(
    m: &mut TokenManager,
    nonce_override: Option<&str>,
    sub: &str,
    extra_claims: serde_json::Value,
) -> Result<(), String> {
    let mut entropy = SeededEntropy::new(11);
    let (url, transaction) = LoginRequest::new(
        "https://as.example/authorize",
        "client-1",
        "https://app.example/cb",
    )
    .scope("openid profile offline_access")
    .audience("https://api1.example.com")
    .start(&mut entropy)
    .unwrap();
    let out = sent(
        m.exchange_code(&transaction, &callback_for(&url, "code-1"), t(1000))
            .map_err(|e| e.code().to_string())?,
    );
    let body = form::parse(std::str::from_utf8(&out.request.body).unwrap());
    assert_eq!(
        form::find(&body, "grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(form::find(&body, "code").as_deref(), Some("code-1"));
    assert_eq!(
        form::find(&body, "code_verifier").as_deref(),
        Some(transaction.code_verifier().secret())
    );
    let nonce = nonce_override
        .unwrap_or(transaction.nonce().secret())
        .to_string();
    let mut claims = serde_json::json!({
        "iss": ISSUER, "aud": "client-1", "sub": sub, "exp": 5000, "iat": 1000,
        "nonce": nonce, "sid": "sid-1", "email": "ada@example.com"
    });
    for (k, v) in extra_claims.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let token = id_token(claims);
    let response = HttpResponse::new(
        200,
        serde_json::json!({
            "access_token": "at-login", "token_type": "bearer", "expires_in": 60,
            "refresh_token": "rt-login", "id_token": token, "scope": "openid profile offline_access"
        })
        .to_string(),
    );
    match m.handle_response(out.id, response, t(1001)) {
        Completion::Ready(tok) => {
            assert_eq!(tok.token.secret(), "at-login");
            assert_eq!(tok.expires_at, t(1060), "from the send time");
            Ok(())
        }
        Completion::Failed(e) => Err(e.code().to_string()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_starts_a_session() {
    let mut m = manager();
    login(&mut m, None, "auth0|ada").unwrap();
    assert_eq!(
        m.poll_event(),
        Some(Event::SessionChanged {
            generation: 1,
            reason: ChangeReason::LoggedIn
        })
    );
    let session = m.session().unwrap();
    let set = session.token_set();
    assert_eq!(set.token_type.as_ref().unwrap().as_str(), "Bearer");
    assert_eq!(
        set.requested_scope.as_deref(),
        Some("openid profile offline_access")
    );
    assert_eq!(set.audience.as_deref(), Some("https://api1.example.com"));
    assert_eq!(session.user().unwrap()["email"], "ada@example.com");
    assert_eq!(session.extra()["internal"]["sid"], "sid-1");
    // The new session serves tokens.
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(1002)),
        Action::Ready(_)
    ));
}

#[test]
fn login_checks_nonce_state_and_issuer() {
    let mut m = manager();
    assert_eq!(
        login(&mut m, Some("other-nonce"), "auth0|ada").unwrap_err(),
        "nonce_mismatch"
    );
    assert!(m.session().is_none(), "nothing stored");

    let mut entropy = SeededEntropy::new(11);
    let (url, transaction) = LoginRequest::new(
        "https://as.example/authorize",
        "client-1",
        "https://app.example/cb",
    )
    .start(&mut entropy)
    .unwrap();
    let wrong_state = "https://app.example/cb?code=c&state=forged";
    assert_eq!(
        m.exchange_code(&transaction, wrong_state, t(1))
            .unwrap_err()
            .code(),
        "state_mismatch"
    );
    let callback = callback_for(&url, "c").replace("as.example", "evil.example");
    assert_eq!(
        m.exchange_code(&transaction, &callback, t(1))
            .unwrap_err()
            .code(),
        "issuer_mismatch"
    );
    let denied = format!("{}&error=access_denied", callback_for(&url, "c"));
    assert_eq!(
        m.exchange_code(&transaction, &denied, t(1))
            .unwrap_err()
            .code(),
        "authorization_error"
    );
}

/// A stored session that keeps no ID token (an SDK session written
/// without one, say) still belongs to its user: a refresh that answers with
/// an ID token for someone else is refused, not stored beside the user it
/// contradicts. Its `sub` was compared only with a stored ID token's.
#[test]
fn refresh_of_a_session_without_an_id_token_checks_the_users_sub() {
    let mut m = manager();
    m.set_session(
        tokenkeeper::Session::from_json(
            br#"{"user":{"sub":"auth0|ada"},"tokenSet":{"accessToken":"a","refreshToken":"r","expiresAt":1}}"#,
            &Default::default(),
        )
        .unwrap(),
    );
    let eve = id_token(
        serde_json::json!({"iss": ISSUER, "aud": "client-1", "sub": "auth0|eve", "exp": 9000, "iat": 2000}),
    );
    let ada = id_token(
        serde_json::json!({"iss": ISSUER, "aud": "client-1", "sub": "auth0|ada", "exp": 9000, "iat": 2000}),
    );
    for (id_token, expected) in [(eve, Some("subject_mismatch")), (ada, None)] {
        let Action::Send(out) = m.get_access_token(&TokenRequest::new().force_refresh(), t(2000))
        else {
            panic!()
        };
        let response = HttpResponse::new(200, serde_json::json!({"access_token": "x", "token_type": "Bearer", "expires_in": 60, "refresh_token": "r", "id_token": id_token}).to_string());
        match (m.handle_response(out.id, response, t(2000)), expected) {
            (Completion::Failed(e), Some(code)) => assert_eq!(e.code(), code),
            (Completion::Ready(_), None) => {}
            (other, _) => panic!("{other:?}"),
        }
    }
}

#[test]
fn refresh_after_login_checks_sub() {
    let mut m = manager();
    login(&mut m, None, "auth0|ada").unwrap();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let other = id_token(
        serde_json::json!({"iss": ISSUER, "aud": "client-1", "sub": "auth0|eve", "exp": 9000, "iat": 2000}),
    );
    let response = HttpResponse::new(200, serde_json::json!({"access_token": "x", "token_type": "Bearer", "expires_in": 60, "id_token": other}).to_string());
    match m.handle_response(out.id, response, t(2000)) {
        Completion::Failed(e) => assert_eq!(e.code(), "subject_mismatch"),
        other => panic!("{other:?}"),
    }
    // A refreshed ID token for another audience fails validation too.
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let wrong_aud = id_token(
        serde_json::json!({"iss": ISSUER, "aud": "someone-else", "sub": "auth0|ada", "exp": 9000, "iat": 2000}),
    );
    let response = HttpResponse::new(200, serde_json::json!({"access_token": "x", "token_type": "Bearer", "expires_in": 60, "id_token": wrong_aud}).to_string());
    match m.handle_response(out.id, response, t(2000)) {
        Completion::Failed(e) => assert_eq!(e.code(), "audience_mismatch"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.session().unwrap().token_set().access_token.secret(),
        "at-login"
    );
}

#[test]
fn client_credentials_are_cached_and_coalesced() {
    let mut m = manager();
    let req = TokenRequest::new()
        .audience("https://api1.example.com")
        .scope("read:data");
    let Action::Send(out) = m.get_client_credentials_token(&req, t(100)) else {
        panic!()
    };
    let body = form::parse(std::str::from_utf8(&out.request.body).unwrap());
    assert_eq!(
        form::find(&body, "grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(
        form::find(&body, "audience").as_deref(),
        Some("https://api1.example.com")
    );
    // Same audience and scope: wait. Another scope: its own request.
    assert!(
        matches!(m.get_client_credentials_token(&req, t(100)), Action::Wait(id) if id == out.id)
    );
    let other = TokenRequest::new()
        .audience("https://api1.example.com")
        .scope("write:data");
    let Action::Send(second) = m.get_client_credentials_token(&other, t(100)) else {
        panic!()
    };
    let response = HttpResponse::new(
        200,
        r#"{"access_token":"m2m-1","token_type":"Bearer","expires_in":300}"#,
    );
    assert!(
        matches!(m.handle_response(out.id, response, t(101)), Completion::Ready(tok) if tok.token.secret() == "m2m-1")
    );
    assert!(
        matches!(m.get_client_credentials_token(&req, t(200)), Action::Ready(tok) if tok.token.secret() == "m2m-1")
    );
    // Expired: fetched again.
    assert!(matches!(
        m.get_client_credentials_token(&req, t(400)),
        Action::Send(_)
    ));
    let _ = m.cancel(second.id);
    // No session involved.
    assert!(m.session().is_none());
}

#[test]
fn token_exchange_is_not_stored() {
    let mut m = manager();
    let auth = ClientAuth::SecretBasic(ClientSecret::new("s"));
    let request = TokenExchangeRequest::new(
        "https://as.example/token",
        "client-1",
        &auth,
        "subject-at",
        token_types::ACCESS_TOKEN,
    )
    .target(
        "https://api2.example.com",
        tokenkeeper::grant::TargetParameter::Resource,
    );
    let out = sent(m.exchange_token(&request, t(10)).unwrap());
    let response = HttpResponse::new(
        200,
        r#"{"access_token":"exchanged","token_type":"Bearer","expires_in":60,"issued_token_type":"urn:ietf:params:oauth:token-type:access_token"}"#,
    );
    match m.handle_response(out.id, response, t(10)) {
        Completion::Exchanged(token) => assert_eq!(token.access_token.secret(), "exchanged"),
        other => panic!("{other:?}"),
    }
    assert!(m.session().is_none());
    let bad = TokenExchangeRequest::new(
        "https://as.example/token",
        "client-1",
        &auth,
        "subject",
        "not-a-uri",
    );
    assert_eq!(
        m.exchange_token(&bad, t(10)).unwrap_err().code(),
        "invalid_subject_token_type"
    );
}

#[test]
fn logout_revokes_and_blocks() {
    let mut m = manager();
    login(&mut m, None, "auth0|ada").unwrap();
    while m.poll_event().is_some() {}
    let out = sent(m.logout(t(1100)).unwrap().expect("a revocation request"));
    assert_eq!(out.request.url, "https://as.example/revoke");
    let body = form::parse(std::str::from_utf8(&out.request.body).unwrap());
    assert_eq!(form::find(&body, "token").as_deref(), Some("rt-login"));
    assert_eq!(
        form::find(&body, "token_type_hint").as_deref(),
        Some("refresh_token")
    );
    assert!(matches!(
        m.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::LoggedOut,
            ..
        })
    ));
    // Logged out at once, before the revocation answers.
    assert!(
        matches!(m.get_access_token(&TokenRequest::new(), t(1101)), Action::LoginRequired(e) if e.code() == "logged_out")
    );
    assert!(matches!(
        m.handle_response(out.id, HttpResponse::new(200, ""), t(1101)),
        Completion::Revoked
    ));
    assert!(m.session().unwrap().token_set().refresh_token.is_none());
    assert!(
        m.session()
            .unwrap()
            .to_json()
            .contains(r#""loggedOut":true"#)
    );
    // A failed revocation is reported.
    let mut m = manager();
    login(&mut m, None, "auth0|ada").unwrap();
    let out = sent(m.logout(t(1100)).unwrap().unwrap());
    assert!(
        matches!(m.handle_response(out.id, HttpResponse::new(503, "").with_header("Retry-After", "30"), t(1101)), Completion::Failed(e) if e.code() == "revocation_unavailable")
    );
}

#[test]
fn unsupported_auth_method_is_a_configuration_error() {
    let metadata = tokenkeeper::discovery::AuthorizationServerMetadata::from_json(
        br#"{"issuer":"https://as.example","token_endpoint":"https://as.example/token","token_endpoint_auth_methods_supported":["private_key_jwt"]}"#,
        "https://as.example",
        &Default::default(),
    )
    .unwrap();
    let err = Config::builder("https://placeholder/token", "c")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("s")))
        .metadata(&metadata)
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "invalid_configuration");
    assert!(err.to_string().contains("client_secret_post"));
}

fn jwt_part(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn private_key_jwt_assertions_are_fresh_and_verify() {
    use tokenkeeper::dpop::{DpopKey, EcdsaSignature, P256Signer};
    use tokenkeeper::grant::{ClientAssertionKey, JWT_BEARER_ASSERTION};
    let key = DpopKey::generate(&mut SeededEntropy::new(77)).unwrap();
    let auth = ClientAuth::PrivateKeyJwt(
        ClientAssertionKey::new(P256Signer::new(key.clone())).with_kid("key-1"),
    );
    // The issuer is the assertions' audience: required.
    let err = Config::builder("https://as.example/token", "pk-client")
        .client_auth(auth.clone())
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "invalid_configuration");
    let config = Config::builder("https://as.example/token", "pk-client")
        .client_auth(auth)
        .issuer(ISSUER)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(5));
    m.set_session(
        tokenkeeper::Session::from_json(
            br#"{"tokenSet":{"accessToken":"a","refreshToken":"rt","expiresAt":1}}"#,
            &Default::default(),
        )
        .unwrap(),
    );
    let assertion_of = |request: &tokenkeeper::HttpRequest| {
        let body = form::parse(std::str::from_utf8(&request.body).unwrap());
        assert_eq!(form::find(&body, "client_id").as_deref(), Some("pk-client"));
        assert_eq!(
            form::find(&body, "client_assertion_type").as_deref(),
            Some(JWT_BEARER_ASSERTION)
        );
        assert!(form::find(&body, "client_secret").is_none());
        form::find(&body, "client_assertion").unwrap().into_owned()
    };
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(1000)) else {
        panic!()
    };
    assert!(out.request.headers.get("authorization").is_none());
    let first = assertion_of(&out.request);
    let header = jwt_part(&first, 0);
    assert_eq!(
        (header["alg"].as_str(), header["kid"].as_str()),
        (Some("ES256"), Some("key-1"))
    );
    let claims = jwt_part(&first, 1);
    assert_eq!(claims["iss"], "pk-client");
    assert_eq!(claims["sub"], "pk-client");
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["iat"], 1000);
    assert_eq!(claims["exp"], 1060);
    // The signature verifies with the public key.
    let (input, signature) = first.rsplit_once('.').unwrap();
    let signature =
        EcdsaSignature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    assert!(
        key.public_jwk()
            .verify(input.as_bytes(), &signature)
            .is_ok()
    );
    // Every request gets a new assertion (a new jti).
    assert!(m.cancel(out.id));
    let Action::Send(again) = m.get_access_token(&TokenRequest::new(), t(1001)) else {
        panic!()
    };
    assert_ne!(
        jwt_part(&assertion_of(&again.request), 1)["jti"],
        claims["jti"]
    );
    // Secrets stay out of Debug.
    assert!(!format!("{:?}", m.config()).contains(&key.to_jwk().to_string()));
}

#[test]
fn a_token_exchange_authenticates_as_the_client_it_was_built_for() {
    use tokenkeeper::dpop::{DpopKey, P256Signer};
    use tokenkeeper::grant::ClientAssertionKey;
    let pkjwt = ClientAuth::PrivateKeyJwt(ClientAssertionKey::new(P256Signer::new(
        DpopKey::generate(&mut SeededEntropy::new(8)).unwrap(),
    )));
    let basic = ClientAuth::SecretBasic(ClientSecret::new("other-secret"));
    let fields = |out: &tokenkeeper::OutgoingRequest| {
        form::parse(std::str::from_utf8(&out.request.body).unwrap())
    };
    // A secret-configured manager sending an exchange as the pkjwt client.
    let mut m = manager();
    let request = TokenExchangeRequest::new(
        "https://as.example/token",
        "pk-client",
        &pkjwt,
        "subject",
        token_types::ACCESS_TOKEN,
    );
    let out = sent(m.exchange_token(&request, t(10)).unwrap());
    let body = fields(&out);
    assert_eq!(form::find(&body, "client_id").as_deref(), Some("pk-client"));
    assert!(form::find(&body, "client_assertion").is_some());
    assert!(
        out.request.headers.get("authorization").is_none(),
        "not the manager's own Basic"
    );
    // A pkjwt-configured manager sending an exchange as a Basic client.
    let config = Config::builder("https://as.example/token", "pk-client")
        .client_auth(pkjwt.clone())
        .issuer(ISSUER)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(5));
    let request = TokenExchangeRequest::new(
        "https://as.example/token",
        "basic-client",
        &basic,
        "subject",
        token_types::ACCESS_TOKEN,
    );
    let out = sent(m.exchange_token(&request, t(10)).unwrap());
    let body = fields(&out);
    assert!(form::find(&body, "client_assertion").is_none());
    assert!(form::find(&body, "client_id").is_none());
    assert!(
        out.request
            .headers
            .get("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
}

#[test]
fn login_keeps_the_session_ceiling() {
    let mut m = manager();
    login_with(
        &mut m,
        None,
        "auth0|ada",
        serde_json::json!({"session_expiry": 2000}),
    )
    .unwrap();
    let session = m.session().unwrap();
    assert_eq!(session.session_expires_at(), Some(t(2000)));
    assert_eq!(session.extra()["internal"]["sessionExpiresAt"], 2000);
    // 30 s leeway, as the SDK.
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(1030)),
        Action::Ready(_)
    ));
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(1970)),
        Action::LoginRequired(e) if e.code() == "session_expired"
    ));
    // A login whose ceiling has already passed is refused.
    let mut m = manager();
    assert_eq!(
        login_with(
            &mut m,
            None,
            "auth0|ada",
            serde_json::json!({"session_expiry": 1010})
        )
        .unwrap_err(),
        "session_expired"
    );
    assert!(m.session().is_none());
}

/// A `session_expiry` written as a float or a numeric string (a NumericDate
/// may be either) is the ceiling all the same, read at login as a stored
/// session's `sessionExpiresAt` is read. Read as an integer only, it was
/// dropped: no ceiling, and a login past it was let in.
#[test]
fn login_reads_a_float_or_string_session_expiry() {
    for expiry in [serde_json::json!(2000.0), serde_json::json!("2000")] {
        let mut m = manager();
        login_with(
            &mut m,
            None,
            "auth0|ada",
            serde_json::json!({"session_expiry": expiry}),
        )
        .unwrap();
        assert_eq!(
            m.session().unwrap().session_expires_at(),
            Some(t(2000)),
            "{expiry}"
        );
    }
    for expiry in [serde_json::json!(1010.5), serde_json::json!("1010")] {
        let mut m = manager();
        let refused = login_with(
            &mut m,
            None,
            "auth0|ada",
            serde_json::json!({"session_expiry": expiry}),
        );
        assert_eq!(refused.unwrap_err(), "session_expired", "{expiry}");
        assert!(m.session().is_none());
    }
}

/// A client assertion that cannot be signed fails the request before it
/// leaves, with a typed cause under the `signing_failed` code.
#[test]
fn client_assertion_signing_errors_say_what_failed() {
    use tokenkeeper::dpop::SigningError;
    use tokenkeeper::dpop::{DpopKey, PublicJwk, SignError, SignOutcome, Signer};
    use tokenkeeper::grant::ClientAssertionKey;
    struct Answers(PublicJwk, &'static str, Option<SignError>);
    impl Signer for Answers {
        fn algorithm(&self) -> &'static str {
            self.1
        }
        fn public_jwk(&self) -> &PublicJwk {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
            self.2.clone().map_or(Ok(SignOutcome::Deferred), Err)
        }
    }
    let jwk = DpopKey::generate(&mut SeededEntropy::new(78))
        .unwrap()
        .public_jwk()
        .clone();
    let cases = [
        (Answers(jwk.clone(), "ES256", None), SigningError::Deferred),
        (
            Answers(jwk.clone(), "RS256", None),
            SigningError::UnsupportedAlgorithm,
        ),
        (
            Answers(jwk, "ES256", Some(SignError::Failed("kms down"))),
            SigningError::Signer(SignError::Failed("kms down")),
        ),
    ];
    for (signer, cause) in cases {
        let config = Config::builder("https://as.example/token", "pk-client")
            .client_auth(ClientAuth::PrivateKeyJwt(ClientAssertionKey::new(signer)))
            .issuer(ISSUER)
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(5));
        m.set_session(
            tokenkeeper::Session::from_json(
                br#"{"tokenSet":{"accessToken":"a","refreshToken":"rt","expiresAt":1}}"#,
                &Default::default(),
            )
            .unwrap(),
        );
        let Action::Failed(error) = m.get_access_token(&TokenRequest::new(), t(100)) else {
            panic!("{cause:?}")
        };
        assert_eq!(error.code(), "signing_failed");
        assert_eq!(error, tokenkeeper::Error::Signing(cause));
        assert_eq!(m.in_flight(), 0);
    }
}
