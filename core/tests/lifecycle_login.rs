//! End to end, without a network: discovery, login with PKCE, the callback,
//! the code exchange, ID token validation, a refreshed ID token, and the
//! access-token route serving the result.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tokenkeeper::__private::form;
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;
use tokenkeeper::discovery::{DiscoveryCache, DiscoveryKind, check_auth_method};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::id_token::IdTokenValidator;
use tokenkeeper::login::{LoginRequest, LoginTransaction, code_challenge_s256};
use tokenkeeper::route::{access_token_response, parse_access_token_response};
use tokenkeeper::{
    AccessTokenInfo, ClientSecret, HttpResponse, IdToken, SeededEntropy, TokenType, UnixTime,
};

const ISSUER: &str = "https://login.example.com/tenant1";
const CLIENT: &str = "web-app";
const REDIRECT: &str = "https://app.example.com/auth/callback";

fn metadata_body(issuer: &str) -> String {
    json!({
        "issuer": issuer,
        "authorization_endpoint": "https://login.example.com/tenant1/authorize",
        "token_endpoint": "https://login.example.com/tenant1/oauth/token",
        "revocation_endpoint": "https://login.example.com/tenant1/oauth/revoke",
        "jwks_uri": "https://login.example.com/tenant1/jwks",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "x-vendor": {"region": "eu"}
    })
    .to_string()
}

fn id_token(claims: serde_json::Value) -> IdToken {
    IdToken::new(format!(
        "{}.{}.signature-not-checked",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    ))
}

#[test]
fn login_to_route() {
    let limits = Limits::default();
    let t0 = UnixTime::from_secs(1_700_000_000);

    // 1. Discovery.
    let mut discovery = DiscoveryCache::new(ISSUER, DiscoveryKind::OpenIdConnect).unwrap();
    let request = discovery.poll_request(t0).expect("nothing cached yet");
    assert_eq!(
        request.url,
        "https://login.example.com/tenant1/.well-known/openid-configuration"
    );
    let metadata = discovery
        .handle_response(&HttpResponse::new(200, metadata_body(ISSUER)), t0, &limits)
        .unwrap()
        .clone();
    assert_eq!(metadata.extra["x-vendor"]["region"], "eu");
    assert_eq!(
        discovery.poll_timeout(),
        Some(UnixTime::from_secs(1_700_000_600))
    );
    let auth = ClientAuth::SecretBasic(ClientSecret::new("app-secret"));
    check_auth_method(&metadata, auth.method_name()).unwrap();

    // 2. Login.
    let authorize = metadata.authorization_endpoint.as_deref().unwrap();
    let (url, transaction) = LoginRequest::new(authorize, CLIENT, REDIRECT)
        .audience("https://api.example.com")
        .param("prompt", "login")
        .start(&mut SeededEntropy::new(2024))
        .unwrap();
    let query = form::parse(url.split_once('?').unwrap().1);
    let get = |name| form::find(&query, name).unwrap().into_owned();
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("redirect_uri"), REDIRECT);
    assert_eq!(get("scope"), "openid profile email offline_access");
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(
        get("code_challenge"),
        code_challenge_s256(transaction.code_verifier().secret())
    );
    let state = get("state");
    assert_eq!(state, transaction.state().secret());

    // The transaction survives a trip through a cookie.
    let cookie = serde_json::to_string(&transaction).unwrap();
    let transaction: LoginTransaction = serde_json::from_str(&cookie).unwrap();

    // 3. The callback, with RFC 9207 `iss`.
    let callback = format!(
        "{REDIRECT}?code=SplxlOBeZQQYbYS6WxSbIA&state={state}&iss={}",
        form::encode(ISSUER)
    );
    let code = transaction
        .validate_callback(
            &callback,
            Some(&metadata.issuer),
            metadata.authorization_response_iss_parameter_supported,
        )
        .unwrap();

    // 4. The code exchange.
    let exchange = transaction
        .code_exchange(&code, &metadata.token_endpoint, CLIENT, &auth)
        .build();
    let body = form::parse(std::str::from_utf8(&exchange.body).unwrap());
    assert_eq!(
        body.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["grant_type", "code", "redirect_uri", "code_verifier"]
    );
    assert_eq!(form::find(&body, "code").unwrap(), "SplxlOBeZQQYbYS6WxSbIA");
    assert!(
        exchange
            .headers
            .get("authorization")
            .unwrap()
            .starts_with("Basic ")
    );

    // 5. The token response and its ID token.
    let token_response = HttpResponse::new(
        200,
        json!({
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 86400,
            "scope": "openid profile email offline_access",
            "refresh_token": "rt-1",
            "id_token": id_token(json!({
                "iss": ISSUER, "sub": "auth0|42", "aud": CLIENT,
                "exp": t0.as_secs() + 36000, "iat": t0.as_secs(),
                "nonce": transaction.nonce().secret(),
                "email": "ada@example.com", "name": "Ada", "sid": "s-1"
            })).secret(),
        })
        .to_string(),
    );
    let tokens = TokenResponse::parse(&token_response, &limits).unwrap();
    let validator = IdTokenValidator::new(&metadata.issuer, CLIENT);
    let claims = validator
        .validate_login(
            tokens.id_token.as_ref().unwrap(),
            transaction.nonce().secret(),
            t0,
        )
        .unwrap();
    assert_eq!(claims.sub(), "auth0|42");
    assert_eq!(claims.email(), Some("ada@example.com"));
    assert_eq!(claims.sid(), Some("s-1"));

    // A replayed ID token from another login fails the nonce check.
    assert_eq!(
        validator
            .validate_login(tokens.id_token.as_ref().unwrap(), "other-nonce", t0)
            .unwrap_err()
            .code(),
        "nonce_mismatch"
    );

    // 6. A refresh an hour later: same user, and then another user.
    let t1 = UnixTime::from_secs(t0.as_secs() + 3600);
    let refreshed = |sub: &str| {
        id_token(json!({
            "iss": ISSUER, "sub": sub, "aud": CLIENT,
            "exp": t1.as_secs() + 36000, "iat": t1.as_secs()
        }))
    };
    assert!(
        validator
            .validate_refresh(&refreshed("auth0|42"), claims.sub(), t1)
            .is_ok()
    );
    assert_eq!(
        validator
            .validate_refresh(&refreshed("auth0|666"), claims.sub(), t1)
            .unwrap_err()
            .code(),
        "subject_mismatch"
    );

    // 7. The route serves the access token, and a client reads it back.
    let info = AccessTokenInfo {
        token: tokens.access_token.clone(),
        expires_at: tokens.expires_at(t0, std::time::Duration::from_secs(3600)),
        scope: tokens.scope.clone(),
        audience: transaction.audience().map(String::from),
        token_type: tokens.token_type.clone(),
    };
    let route = access_token_response(Ok(&info), t1);
    assert_eq!(
        route.body,
        r#"{"token":"at-1","scope":"openid profile email offline_access","expires_at":1700086400,"expires_in":82800,"token_type":"Bearer"}"#
    );
    let back = parse_access_token_response(&route.into_http(), &limits).unwrap();
    assert_eq!(back.token.secret(), "at-1");
    assert_eq!(back.token_type, TokenType::Bearer);
}

#[test]
fn mix_up_and_forgery_are_refused() {
    let limits = Limits::default();
    let t0 = UnixTime::from_secs(1_700_000_000);

    // A discovery document naming another issuer.
    let mut discovery = DiscoveryCache::new(ISSUER, DiscoveryKind::OpenIdConnect).unwrap();
    let _ = discovery.poll_request(t0);
    let e = discovery
        .handle_response(
            &HttpResponse::new(200, metadata_body("https://evil.example.com/tenant1")),
            t0,
            &limits,
        )
        .unwrap_err();
    assert_eq!(e.code(), "issuer_mismatch");
    assert!(discovery.metadata().is_none());

    // A server that only takes private_key_jwt.
    discovery
        .handle_response(
            &HttpResponse::new(
                200,
                metadata_body(ISSUER).replace(
                    r#"["client_secret_basic","client_secret_post"]"#,
                    r#"["private_key_jwt"]"#,
                ),
            ),
            t0,
            &limits,
        )
        .unwrap();
    let metadata = discovery.metadata().unwrap();
    let e = check_auth_method(
        metadata,
        ClientAuth::SecretPost(ClientSecret::new("s")).method_name(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "unsupported_auth_method");

    let (_, transaction) = LoginRequest::new(
        metadata.authorization_endpoint.as_deref().unwrap(),
        CLIENT,
        REDIRECT,
    )
    .start(&mut SeededEntropy::new(7))
    .unwrap();
    let state = transaction.state().secret().to_owned();
    let check = |query: String| {
        transaction
            .validate_callback(&query, Some(ISSUER), true)
            .unwrap_err()
            .code()
    };
    let iss = form::encode(ISSUER);
    // A callback for another login (CSRF).
    assert_eq!(
        check(format!("code=c&state=attacker-state&iss={iss}")),
        "state_mismatch"
    );
    // A code from another authorization server (mix-up).
    assert_eq!(
        check(format!(
            "code=c&state={state}&iss={}",
            form::encode("https://evil.example.com/tenant1")
        )),
        "issuer_mismatch"
    );
    // The issuer promised `iss` and it is missing.
    assert_eq!(check(format!("code=c&state={state}")), "missing_issuer");
    // The user declined.
    assert_eq!(
        check(format!(
            "error=access_denied&error_description=denied&state={state}&iss={iss}"
        )),
        "authorization_error"
    );
    assert_eq!(check(format!("state={state}&iss={iss}")), "missing_code");
}
