//! Secrets never appear in `Debug` or `Display` output: every public type
//! that can hold one is formatted with a known secret inside.

use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::client_credentials::ClientCredentialsRequest;
use tokenkeeper::grant::refresh::{RefreshRequest, TargetParameter};
use tokenkeeper::grant::revocation::revoke_refresh_token;
use tokenkeeper::grant::token_exchange::{TokenExchangeRequest, token_types};
use tokenkeeper::login::{CodeVerifier, LoginRequest};
use tokenkeeper::route::access_token_response;
use tokenkeeper::token::TokenResponse;
use tokenkeeper::{
    AccessToken, Action, ClientSecret, Completion, Config, Error, HttpResponse, IdToken,
    RefreshToken, SeededEntropy, Session, TokenManager, TokenRequest, UnixTime, form,
};

const SECRET: &str = "SeCrEt-0123456789-xyz";

fn assert_hidden(label: &str, printed: &str) {
    assert!(
        !printed.contains(SECRET),
        "{label} leaks the secret: {printed}"
    );
    // Percent- or base64-encoded forms must not leak either.
    assert!(
        !printed.contains(&form::encode(SECRET)) || form::encode(SECRET) == SECRET,
        "{label}"
    );
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
        r#"{{"user":{{"sub":"u"}},"tokenSet":{{"accessToken":"{SECRET}","refreshToken":"{SECRET}","idToken":"{SECRET}","expiresAt":1}},
        "accessTokens":[{{"accessToken":"{SECRET}","audience":"https://api","expiresAt":1}}]}}"#
    )
}

#[test]
fn secret_types() {
    check!("AccessToken", AccessToken::new(SECRET));
    check!("RefreshToken", RefreshToken::new(SECRET));
    check!("IdToken", IdToken::new(SECRET));
    check!("ClientSecret", ClientSecret::new(SECRET));
    check!("MfaToken", tokenkeeper::secret::MfaToken::new(SECRET));
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
        r#"{{"access_token":"{SECRET}","refresh_token":"{SECRET}","id_token":"{SECRET}","token_type":"Bearer","expires_in":60}}"#
    );
    let response = HttpResponse::new(200, body.clone());
    check!("HttpResponse", response);
    check!(
        "TokenResponse",
        TokenResponse::parse(&response, &Default::default()).unwrap()
    );
    let mfa = HttpResponse::new(
        403,
        format!(r#"{{"error":"mfa_required","mfa_token":"{SECRET}"}}"#),
    );
    let error = Error::MfaRequired(
        tokenkeeper::token::response::parse_mfa_required(&mfa, &Default::default()).unwrap(),
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
    let body = format!(r#"{{"access_token":"{SECRET}","token_type":"Bearer","expires_in":60}}"#);
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
