//! Secrets never appear in `Debug` or `Display` output: every public type
//! that can hold one is formatted with a known secret inside, and the
//! `Display` (with its whole `source()` chain) of every public error type is
//! checked, each made from inputs that carry the secret.

use tokenkeeper::__private::form;
use tokenkeeper::__private::grant::ClientCredentialsRequest;
use tokenkeeper::__private::grant::RefreshRequest;
use tokenkeeper::__private::grant::revoke_refresh_token;
use tokenkeeper::TokenResponse;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::{TokenExchangeRequest, token_types};
use tokenkeeper::login::{CodeVerifier, LoginRequest};
use tokenkeeper::route::access_token_response;
use tokenkeeper::{
    AccessToken, Action, ClientSecret, Completion, Config, Error, HttpResponse, IdToken,
    RefreshToken, SeededEntropy, Session, TokenManager, TokenRequest, UnixTime,
};

/// The secret: its form encoding, its base64 forms and its JSON form all
/// differ from it (space, `/`, `+`, `=`, `&`, `?`, `"`, a non-ASCII letter;
/// its standard and URL-safe base64 differ at every alignment).
const SECRET: &str = "SeCrEt/01?>?+456=789 \"ä&x??>y";
/// The secret inside a JSON string (its `"` escaped).
const J: &str = r#"SeCrEt/01?>?+456=789 \"ä&x??>y"#;

/// Every form of the secret that may not appear in output: the raw secret,
/// its form (percent) encoding, its JSON string form, and its standard and
/// URL-safe base64 at each of the three byte alignments it may take inside a
/// longer base64 text (`client:secret` in a Basic header, say): for each,
/// the run of characters that depends on the secret's bytes alone.
fn encoded_forms() -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let mut forms = vec![
        SECRET.to_owned(),
        form::encode(SECRET),
        serde_json::to_string(SECRET)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
    ];
    // Base64 of the raw secret and of its form encoding (a Basic header
    // holds `base64(form(client_id) ":" form(secret))`, RFC 6749 §2.3.1).
    for plain in [SECRET.to_owned(), form::encode(SECRET)] {
        for offset in 0..3 {
            let mut bytes = vec![b'x'; offset];
            bytes.extend_from_slice(plain.as_bytes());
            // Characters before `skip` also depend on the prefix; the last
            // group depends on what follows (or on padding).
            let skip = if offset == 0 { 0 } else { 4 };
            let whole_groups = bytes.len() / 3 * 4;
            for encoded in [STANDARD.encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes)] {
                forms.push(encoded[skip..whole_groups - 4].to_owned());
            }
        }
    }
    for form in &forms {
        assert!(form.len() >= 16, "{form:?} is too short to be meaningful");
    }
    // The URL-safe and standard runs of the form-encoded secret coincide
    // (its base64 has no `+` or `/`): keep one of each.
    let mut seen = std::collections::BTreeSet::new();
    forms.retain(|form| seen.insert(form.clone()));
    forms
}

#[test]
fn the_encoded_forms_differ_from_the_secret() {
    assert_eq!(
        serde_json::from_str::<String>(&format!("\"{J}\"")).unwrap(),
        SECRET
    );
    let forms = encoded_forms();
    // Raw, percent and JSON forms differ from each other, and no base64 run
    // is one of them: each check below can fail on its own.
    assert_ne!(forms[0], forms[1]);
    assert_ne!(forms[0], forms[2]);
    assert_ne!(forms[1], forms[2]);
    assert!(forms[3..].iter().all(|run| !forms[..3].contains(run)));
    assert!(forms.len() >= 3 + 8, "{forms:?}");
    // And the base64 runs are found where a secret is encoded inside a
    // longer text, as a Basic header does.
    use base64::Engine as _;
    for prefix in ["", "c:", "cl:", "cli:"] {
        for secret in [SECRET.to_owned(), form::encode(SECRET)] {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{prefix}{secret}"));
            assert!(
                forms.iter().any(|form| basic.contains(form.as_str())),
                "no form found in {basic}"
            );
        }
    }
}

fn assert_hidden(label: &str, printed: &str) {
    for form in encoded_forms() {
        assert!(
            !printed.contains(&form),
            "{label} leaks the secret (as {form:?}): {printed}"
        );
    }
}

/// `Display` and `Debug` of an error and of every error in its `source()`
/// chain.
fn check_error(label: &str, error: &(dyn std::error::Error + 'static)) {
    let mut current = Some(error);
    let mut depth = 0;
    while let Some(e) = current {
        assert_hidden(&format!("{label} (source {depth}) Display"), &e.to_string());
        assert_hidden(
            &format!("{label} (source {depth}) Display"),
            &format!("{e:#}"),
        );
        assert_hidden(
            &format!("{label} (source {depth}) Debug"),
            &format!("{e:?}"),
        );
        assert_hidden(
            &format!("{label} (source {depth}) Debug"),
            &format!("{e:#?}"),
        );
        current = e.source();
        depth += 1;
    }
}

macro_rules! check {
    ($label:expr, $value:expr) => {{
        let value = &$value;
        assert_hidden($label, &format!("{value:?}"));
        assert_hidden($label, &format!("{value:#?}"));
    }};
}

fn session_json() -> String {
    format!(
        r#"{{"user":{{"sub":"u"}},"tokenSet":{{"accessToken":"{J}","refreshToken":"{J}","idToken":"{J}","expiresAt":1}},
        "accessTokens":[{{"accessToken":"{J}","audience":"https://api","expiresAt":1}}]}}"#
    )
}

#[test]
fn secret_types() {
    check!("AccessToken", AccessToken::new(SECRET));
    check!("RefreshToken", RefreshToken::new(SECRET));
    check!("IdToken", IdToken::new(SECRET));
    check!("ClientSecret", ClientSecret::new(SECRET));
    check!("MfaToken", tokenkeeper::MfaToken::new(SECRET));
    check!(
        "ClientAuth",
        ClientAuth::SecretBasic(ClientSecret::new(SECRET))
    );
    check!("CodeVerifier", CodeVerifier::new(SECRET));
    check!(
        "AuthorizationCode",
        tokenkeeper::login::AuthorizationCode::new(SECRET)
    );
    check!("State", tokenkeeper::login::State::new(SECRET));
    check!("Nonce", tokenkeeper::login::Nonce::new(SECRET));
}

#[test]
fn stored_state_and_responses() {
    let session = Session::from_json(session_json().as_bytes(), &Default::default()).unwrap();
    check!("Session", session);
    check!("TokenSet", session.token_set());
    check!("AccessTokenSet", session.access_tokens());
    let body = format!(
        r#"{{"access_token":"{J}","refresh_token":"{J}","id_token":"{J}","token_type":"Bearer","expires_in":60}}"#
    );
    let response = HttpResponse::new(200, body.clone());
    check!("HttpResponse", response);
    check!(
        "TokenResponse",
        TokenResponse::parse(&response, &Default::default()).unwrap()
    );
    let mfa = HttpResponse::new(
        403,
        format!(r#"{{"error":"mfa_required","mfa_token":"{J}"}}"#),
    );
    let error = Error::MfaRequired(
        tokenkeeper::__private::token::parse_mfa_required(&mfa, &Default::default()).unwrap(),
    );
    check!("Error::MfaRequired", error);
    assert_hidden("Error Display", &error.to_string());
}

#[test]
fn requests_and_builders() {
    let auth = ClientAuth::SecretPost(ClientSecret::new(SECRET));
    let rt = RefreshToken::new(SECRET);
    let refresh = RefreshRequest {
        token_endpoint: "https://as/token",
        client_id: "c",
        client_auth: &auth,
        refresh_token: &rt,
        scope: None,
        target: None,
        target_parameter: TargetParameter::Audience,
    };
    check!("RefreshRequest", refresh);
    check!("HttpRequest (refresh)", refresh.build());
    let basic = ClientAuth::SecretBasic(ClientSecret::new(SECRET));
    check!(
        "HttpRequest (basic)",
        ClientCredentialsRequest::new("https://as/token", "c", &basic).build()
    );
    check!(
        "RevocationRequest",
        revoke_refresh_token("https://as/revoke", "c", &auth, &rt)
    );
    let exchange = TokenExchangeRequest::new(
        "https://as/token",
        "c",
        &auth,
        SECRET,
        token_types::ACCESS_TOKEN,
    );
    check!("TokenExchangeRequest", exchange);
    let mut form = form::FormBody::new();
    form.append("refresh_token", SECRET);
    check!("FormBody", form);
    let config = Config::builder("https://as/token", "c")
        .client_auth(basic)
        .build()
        .unwrap();
    check!("Config", config);
}

#[test]
fn manager_and_its_outputs() {
    let config = Config::builder("https://as/token", "c")
        .client_auth(ClientAuth::SecretBasic(ClientSecret::new(SECRET)))
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(1));
    m.set_session(Session::from_json(session_json().as_bytes(), &Default::default()).unwrap());
    check!("TokenManager", m);
    let out = match m.get_access_token(&TokenRequest::new(), UnixTime::from_secs(10)) {
        Action::Send(out) => out,
        other => panic!("{other:?}"),
    };
    check!("OutgoingRequest", out);
    let body = format!(r#"{{"access_token":"{J}","token_type":"Bearer","expires_in":60}}"#);
    let completion = m.handle_response(
        out.id,
        HttpResponse::new(200, body),
        UnixTime::from_secs(10),
    );
    check!("Completion", completion);
    let Completion::Ready(token) = completion else {
        panic!()
    };
    check!("AccessTokenRef", token);
    let info = token.to_owned();
    check!("AccessTokenInfo", info);
    check!(
        "Action::Ready",
        m.get_access_token(&TokenRequest::new(), UnixTime::from_secs(11))
    );
    let (status, route) = {
        let r = access_token_response(Ok(&info), UnixTime::from_secs(11));
        (r.status, r)
    };
    assert_eq!(status, 200);
    // The route body carries the token by design; its Debug must not.
    check!("RouteResponse", route);
    check!("Event", m.poll_event());
}

#[test]
fn login_transaction() {
    let mut entropy = SeededEntropy::new(9);
    let (_, transaction) = LoginRequest::new("https://as/authorize", "c", "https://app/cb")
        .start(&mut entropy)
        .unwrap();
    let printed = format!("{transaction:?}");
    assert!(
        !printed.contains(transaction.code_verifier().secret()),
        "{printed}"
    );
    assert!(!printed.contains(transaction.state().secret()), "{printed}");
    assert!(!printed.contains(transaction.nonce().secret()), "{printed}");
}

/// The public error types of the core, each checked below. A new one fails
/// `every_public_error_type_is_listed` until it is added here and checked.
const ERROR_TYPES: &[&str] = &[
    "ChallengeError",
    "ConversionError",
    "DiscoveryError",
    "DpopError",
    "Error",
    "HtuError",
    "IdTokenError",
    "JwksError",
    "JwsError",
    "JwtError",
    "KeyError",
    "LoginError",
    "LogoutTokenError",
    "ProofError",
    "ResponseError",
    "RevocationError",
    "RouteError",
    "ServerError",
    "SignError",
    "SigningError",
    "StoreError",
    "TokenExchangeError",
];

#[test]
fn every_public_error_type_is_listed() {
    fn walk(dir: &std::path::Path, found: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let line = line.trim_start();
                    for kind in ["pub enum ", "pub struct "] {
                        if let Some(rest) = line.strip_prefix(kind) {
                            let name: String = rest
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            if name.ends_with("Error") {
                                found.insert(name);
                            }
                        }
                    }
                }
            }
        }
    }
    let mut found = std::collections::BTreeSet::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    let listed: std::collections::BTreeSet<String> =
        ERROR_TYPES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        found, listed,
        "public error types vs. the ones checked here"
    );
}

#[test]
fn every_public_error_type_keeps_secrets_out_of_display() {
    use tokenkeeper::__private::dpop::{ProofBuilder, ProofParams};
    use tokenkeeper::Limits;
    use tokenkeeper::dpop;
    use tokenkeeper::dpop::{DpopKey, EcdsaSignature};
    use tokenkeeper::id_token::{IdTokenValidator, Jwks, verify_es256};

    let limits = Limits::default();
    let mut checked = std::collections::BTreeSet::new();
    let mut check = |name: &'static str, label: &str, error: &(dyn std::error::Error + 'static)| {
        check_error(&format!("{name}: {label}"), error);
        checked.insert(name);
    };

    // ResponseError / ServerError: token responses carrying the secret.
    for body in [
        format!(r#"{{"access_token":"{J}","token_type":"Bearer","expires_in":"{J}"}}"#),
        format!(r#"{{"access_token":"{J}","token_type":{{"x":"{J}"}}}}"#),
        format!(r#"{{"refresh_token":"{J}","token_type":"Bearer","expires_in":60}}"#),
        format!("<html>{SECRET}</html>"),
        format!(r#"{{"error":"invalid_grant","refresh_token":"{J}"}}"#),
    ] {
        for status in [200, 400, 500] {
            let response = HttpResponse::new(status, body.clone());
            if let Err(e) = TokenResponse::parse(&response, &limits) {
                if let Some(server) = e.server_error() {
                    check("ServerError", &body, server);
                }
                check("ResponseError", &body, &e);
            }
        }
    }

    // Error: a manager refresh answered with bodies that carry the secret,
    // and sessions read back that carry it in the wrong place.
    for body in [
        format!(r#"{{"access_token":"{J}","token_type":"Bearer","expires_in":"{J}"}}"#),
        format!(
            r#"{{"access_token":"{J}","token_type":"DPoP","expires_in":60,"refresh_token":"{J}"}}"#
        ),
        format!(r#"{{"error":"mfa_required","mfa_token":"{J}"}}"#),
        SECRET.to_owned(),
    ] {
        let config = Config::builder("https://as/token", "c")
            .client_auth(ClientAuth::SecretBasic(ClientSecret::new(SECRET)))
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(1));
        m.set_session(Session::from_json(session_json().as_bytes(), &Default::default()).unwrap());
        let Action::Send(out) = m.get_access_token(&TokenRequest::new(), UnixTime::from_secs(10))
        else {
            panic!("a refresh")
        };
        if let Completion::Failed(e) = m.handle_response(
            out.id,
            HttpResponse::new(403, body.clone()),
            UnixTime::from_secs(10),
        ) {
            check("Error", &body, &e);
        }
    }

    // TokenExchangeError: a subject token that is the secret, refused for
    // its type, for a reserved extra, and for its response.
    let auth = ClientAuth::SecretPost(ClientSecret::new(SECRET));
    for request in [
        TokenExchangeRequest::new("https://as/token", "c", &auth, SECRET, SECRET),
        TokenExchangeRequest::new(
            "https://as/token",
            "c",
            &auth,
            SECRET,
            token_types::ACCESS_TOKEN,
        )
        .param("subject_token", SECRET),
        TokenExchangeRequest::new(
            "https://as/token",
            "c",
            &auth,
            SECRET,
            token_types::ACCESS_TOKEN,
        )
        .actor(SECRET, SECRET),
        TokenExchangeRequest::new(
            "https://as/token",
            "c",
            &auth,
            SECRET,
            token_types::ACCESS_TOKEN,
        )
        .requested_token_type(SECRET),
    ] {
        let e = request.build().unwrap_err();
        check("TokenExchangeError", "build", &e);
    }
    for body in [
        format!(r#"{{"access_token":"{J}","token_type":"N_A"}}"#),
        format!(r#"{{"error":"invalid_request","subject_token":"{J}"}}"#),
    ] {
        let e = tokenkeeper::__private::grant::parse_response(
            &HttpResponse::new(400, body.clone()),
            &limits,
        )
        .unwrap_err();
        check("TokenExchangeError", &body, &e);
        let e = tokenkeeper::__private::grant::parse_response(
            &HttpResponse::new(200, body.clone()),
            &limits,
        )
        .unwrap_err();
        check("TokenExchangeError", &body, &e);
    }

    // RevocationError.
    for (status, body) in [
        (
            400,
            format!(r#"{{"error":"unsupported_token_type","token":"{J}"}}"#),
        ),
        (
            400,
            format!(r#"{{"error":"invalid_request","token":"{J}"}}"#),
        ),
        (503, SECRET.to_owned()),
        (418, SECRET.to_owned()),
    ] {
        let e = tokenkeeper::__private::grant::parse_revocation_response(
            &HttpResponse::new(status, body.clone()),
            &limits,
        )
        .unwrap_err();
        check("RevocationError", &body, &e);
    }

    // JwtError, IdTokenError: ID tokens that are, or carry, the secret.
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let jwt =
        |header: &str, claims: &str| format!("{}.{}.{}", b64(header), b64(claims), b64(SECRET));
    let tokens = [
        SECRET.to_owned(),
        format!("{SECRET}.{SECRET}.{SECRET}"),
        jwt(
            r#"{"alg":"ES256"}"#,
            &format!(
                r#"{{"sub":"{J}","iss":"https://as","aud":"c","exp":1,"iat":1,"nonce":"{J}"}}"#
            ),
        ),
        jwt(
            r#"{"alg":"ES256"}"#,
            &format!(
                r#"{{"sub":"u","iss":"https://as","aud":"c","exp":99999999999,"iat":1,"nonce":"{J}"}}"#
            ),
        ),
        jwt(r#"{"alg":"ES256"}"#, &format!(r#"["{J}"]"#)),
        jwt(
            r#"{"alg":"ES256"}"#,
            &format!(r#"{{"sub":"u","iss":"https://other","aud":"c","at_hash":"{J}"}}"#),
        ),
    ];
    let validator = IdTokenValidator::new("https://as", "c");
    let jwks = Jwks::from_json(br#"{"keys":[]}"#, &limits).unwrap();
    for token in &tokens {
        if let Err(e) = tokenkeeper::__private::jwt::decode_claims(token) {
            check("JwtError", token, &e);
        }
        let id_token = IdToken::new(token.as_str());
        for nonce in [Some("other"), Some(SECRET), None] {
            if let Err(e) = validator.validate(&id_token, nonce, UnixTime::from_secs(1_000)) {
                check("IdTokenError", token, &e);
                check("Error", token, &Error::IdToken(e));
            }
        }
        let e = verify_es256(token, &jwks).unwrap_err();
        check("IdTokenError", token, &e);
    }

    // JwksError, JwsError, LogoutTokenError: key sets that carry key
    // material, and logout tokens that are, or carry, the secret.
    for doc in [
        format!(r#"{{"keys":[{{"kty":"oct","k":"{J}"}}]}}"#),
        format!(r#"{{"keys":"{J}"}}"#),
        format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{J}","y":"{J}","d":"{J}"}}]}}"#),
        format!(r#"{{"keys":[{{"kty":"RSA","n":"{J}","e":"AQAB","d":"{J}"}}]}}"#),
        SECRET.to_owned(),
    ] {
        for status in [200, 500] {
            if let Err(e) =
                tokenkeeper::id_token::Jwks::parse(&HttpResponse::new(status, doc.clone()), &limits)
            {
                check("JwksError", &doc, &e);
            }
        }
    }
    let empty = tokenkeeper::id_token::Jwks::from_json(br#"{"keys":[]}"#, &limits).unwrap();
    let logout = tokenkeeper::logout_token::LogoutTokenValidator::new("https://as", "c", &empty);
    for token in &tokens {
        let e = tokenkeeper::__private::jws::verify(token, &empty).unwrap_err();
        check("JwsError", token, &e);
        let e = logout
            .validate(token, UnixTime::from_secs(1_000))
            .unwrap_err();
        check("LogoutTokenError", token, &e);
    }
    for body in [
        format!("logout_token={}&logout_token=x", form::encode(SECRET)),
        format!("token={}", form::encode(SECRET)),
        SECRET.to_owned(),
    ] {
        let e = tokenkeeper::logout_token::logout_token_from_form(body.as_bytes()).unwrap_err();
        check("LogoutTokenError", &body, &e);
    }

    // LoginError: callbacks whose code or state is the secret.
    let mut entropy = SeededEntropy::new(9);
    let (_, transaction) = LoginRequest::new("https://as/authorize", "c", "https://app/cb")
        .start(&mut entropy)
        .unwrap();
    let code = form::encode(SECRET);
    let state = transaction.state().secret().to_owned();
    for callback in [
        format!("https://app/cb?code={code}&state={code}"),
        format!("https://app/cb?code={code}&state={state}&error=access_denied"),
        format!("https://app/cb?code={code}&code={code}&state={state}"),
        format!("https://app/cb?code={code}&state={state}&iss=https%3A%2F%2Fevil"),
        format!("https://app/cb?code={code}"),
    ] {
        let e = transaction
            .validate_callback(&callback, Some("https://as"), false)
            .unwrap_err();
        check("LoginError", &callback, &e);
        check("Error", &callback, &Error::Login(e));
    }
    let e = LoginRequest::new("https://as/authorize", "c", "https://app/cb")
        .param("code_challenge", SECRET)
        .start(&mut entropy)
        .unwrap_err();
    check("LoginError", "reserved", &e);

    // KeyError, SignError, HtuError, ProofError: key material and proof
    // inputs that carry the secret.
    let key = DpopKey::generate(&mut SeededEntropy::new(5)).unwrap();
    let jwk: serde_json::Value = serde_json::from_str(&key.to_jwk()).unwrap();
    for text in [
        SECRET.to_owned(),
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            b64(SECRET)
        ),
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{J}","y":"{J}","d":"{J}"}}"#),
        format!(
            r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"d":"{}"}}"#,
            jwk["x"],
            jwk["y"],
            b64("SeCrEt/0123+456=789 xyzabcdef")
        ),
        format!(r#"{{"kty":"OKP","d":"{J}"}}"#),
    ] {
        if let Err(e) = DpopKey::from_jwk(&text) {
            check("KeyError", &text, &e);
        }
        if let Err(e) = DpopKey::from_pkcs8_pem(&text) {
            check("KeyError", &text, &e);
        }
        if let Err(e) = DpopKey::from_pkcs8_der(text.as_bytes()) {
            check("KeyError", &text, &e);
        }
        if let Err(e) = tokenkeeper::dpop::PublicJwk::from_json(&text) {
            check("KeyError", &text, &e);
        }
    }
    for bytes in [SECRET.as_bytes(), &SECRET.as_bytes()[..24]] {
        let e = EcdsaSignature::from_slice(bytes).unwrap_err();
        check("SignError", "from_slice", &e);
        let e = EcdsaSignature::from_der(bytes).unwrap_err();
        check("SignError", "from_der", &e);
    }
    for url in [SECRET.to_owned(), format!("ftp://as/{SECRET}")] {
        let e = tokenkeeper::__private::dpop::htu(&url).unwrap_err();
        check("HtuError", &url, &e);
        let builder = ProofBuilder::new(dpop::P256Signer::new(key.clone())).unwrap();
        let token = AccessToken::new(SECRET);
        let jti = [7u8; 16];
        let params = ProofParams::new(
            &tokenkeeper::Method::POST,
            &url,
            UnixTime::from_secs(1),
            &jti,
        )
        .with_access_token(&token);
        let e = builder.build(&params).unwrap_err();
        check("ProofError", &url, &e);
        // The manager's typed DPoP error, made from it.
        let e = tokenkeeper::dpop::DpopError::from(e);
        check("DpopError", &url, &e);
        check("Error", &url, &Error::Dpop(e));
    }
    let builder = ProofBuilder::new(dpop::P256Signer::new(key.clone())).unwrap();
    let token = AccessToken::new(SECRET);
    for (jti, nonce) in [
        (&SECRET.as_bytes()[..8], Some("n")),
        (&[7u8; 16][..], Some(SECRET)),
    ] {
        let params = ProofParams::new(
            &tokenkeeper::Method::POST,
            "https://as/t",
            UnixTime::from_secs(1),
            jti,
        )
        .with_access_token(&token)
        .with_nonce(nonce);
        let e = builder.build(&params).unwrap_err();
        check("ProofError", "params", &e);
        check(
            "DpopError",
            "params",
            &tokenkeeper::dpop::DpopError::from(e),
        );
    }
    // SigningError: a client assertion's signer that fails (its reason is
    // static; the assertion it signs never reaches the error).
    for e in [
        tokenkeeper::dpop::SigningError::Deferred,
        tokenkeeper::dpop::SigningError::Signer(dpop::SignError::Failed("kms down")),
    ] {
        check("SigningError", "assertion", &e);
        check("Error", "assertion", &Error::Signing(e));
    }

    // ChallengeError: a challenge that carries the secret.
    for field in [
        format!(r#"DPoP error="{J}", error="{J}""#),
        format!("DPoP {SECRET}"),
        format!(r#"DPoP a="{J}"#),
    ] {
        let e = tokenkeeper::__private::dpop::parse_challenges(&field).unwrap_err();
        check("ChallengeError", &field, &e);
    }

    // DiscoveryError: metadata never holds a secret, but a refused
    // document's error must not echo the document (here with a secret in a
    // member of its own).
    for body in [
        format!(r#"{{"issuer":"https://as","token_endpoint":"not a url","x":"{J}"}}"#),
        format!(r#"{{"issuer":"https://other","token_endpoint":"https://as/t","x":"{J}"}}"#),
        format!(
            r#"{{"issuer":"https://as","token_endpoint":"https://as/t","token_endpoint_auth_methods_supported":7,"x":"{J}"}}"#
        ),
        format!(r#"{{"x":"{J}"}}"#),
        SECRET.to_owned(),
    ] {
        let e = tokenkeeper::discovery::AuthorizationServerMetadata::parse(
            &HttpResponse::new(200, body.clone()),
            "https://as",
            &limits,
        )
        .unwrap_err();
        check("DiscoveryError", &body, &e);
        check("Error", &body, &Error::Discovery(e));
    }

    // RouteError: `/auth/access-token` answers that carry the secret.
    for (status, body) in [
        (200, format!(r#"{{"token":"{J}"}}"#)),
        (200, format!(r#"{{"token":"{J}","expires_at":"{J}"}}"#)),
        (
            401,
            format!(r#"{{"error":{{"code":"x","message":"m"}},"token":"{J}"}}"#),
        ),
        (
            403,
            format!(r#"{{"error":{{"code":"mfa_required","message":"m"}},"mfa_token":"{J}"}}"#),
        ),
        (500, SECRET.to_owned()),
    ] {
        let e = tokenkeeper::route::parse_access_token_response(
            &HttpResponse::new(status, body.clone()),
            &limits,
        )
        .unwrap_err();
        check("RouteError", &body, &e);
    }

    // StoreError: a compare-and-swap conflict on a session with secrets.
    let session = Session::from_json(session_json().as_bytes(), &Default::default()).unwrap();
    let mut store = tokenkeeper::MemoryStore::new();
    tokenkeeper::SessionStore::save(&mut store, "default", &session, None).unwrap();
    let e = tokenkeeper::SessionStore::save(&mut store, "default", &session, Some(41)).unwrap_err();
    check("StoreError", "conflict", &e);

    // ConversionError: a request description that `http` refuses.
    #[cfg(feature = "http")]
    {
        let mut request = tokenkeeper::__private::grant::RefreshRequest {
            token_endpoint: "https://as/token",
            client_id: "c",
            client_auth: &auth,
            refresh_token: &RefreshToken::new(SECRET),
            scope: None,
            target: None,
            target_parameter: TargetParameter::Audience,
        }
        .build();
        request.headers.append("x-secret", format!("{SECRET}\n"));
        let e = http::Request::<Vec<u8>>::try_from(request).unwrap_err();
        check("ConversionError", "header", &e);
    }
    #[cfg(not(feature = "http"))]
    checked.insert("ConversionError");

    let listed: std::collections::BTreeSet<&str> = ERROR_TYPES.iter().copied().collect();
    assert_eq!(checked, listed, "error types produced and checked");
}

/// `Error::InvalidSession` from a stored session that carries a secret where
/// another type belongs (a corrupted or foreign-shaped store entry).
#[test]
fn stored_session_errors_keep_secrets_out_of_display() {
    let mut refused_sessions = 0;
    for json in [
        format!(r#"{{"tokenSet":{{"accessToken":"a","expiresAt":"{J}"}}}}"#),
        format!(r#"{{"tokenSet":"{J}"}}"#),
        format!(r#"{{"tokenSet":{{"accessToken":"{J}","refreshToken":7,"expiresAt":1}}}}"#),
        format!(r#"{{"tokenSet":{{"accessToken":["{J}"],"expiresAt":1}}}}"#),
        format!(r#"{{"tokenSet":{{"accessToken":"{J}","expiresAt":1}},"accessTokens":"{J}"}}"#),
        format!(r#"{{"tokenSet":{{"accessToken":"{J}""#),
        SECRET.to_owned(),
    ] {
        // Some of these are read leniently; the ones refused are checked.
        if let Err(e) = Session::from_json(json.as_bytes(), &Default::default()) {
            check_error(&format!("Error: {json}"), &e);
            refused_sessions += 1;
        }
    }
    assert!(refused_sessions >= 3, "{refused_sessions} sessions refused");
}
