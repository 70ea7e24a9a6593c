//! End to end, without a network: Auth0 fixed endpoints, client
//! credentials, token exchange, revocation, and the access-token route fed
//! by the token manager.

use tokenkeeper::__private::form;
use tokenkeeper::__private::grant as token_exchange;
use tokenkeeper::__private::grant::ClientCredentialsRequest;
use tokenkeeper::__private::grant::{parse_revocation_response, revoke_refresh_token};
use tokenkeeper::Limits;
use tokenkeeper::TokenResponse;
use tokenkeeper::discovery::Endpoints;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::{ClientAuth, TokenExchangeRequest};
use tokenkeeper::grant::{RetryAfter, RevocationError};
use tokenkeeper::grant::{TokenExchangeError, token_types};
use tokenkeeper::route::{AccessTokenQuery, access_token_response, parse_access_token_response};
use tokenkeeper::{
    Action, ClientSecret, Config, HttpResponse, RefreshToken, SeededEntropy, Session, TokenManager,
    UnixTime,
};

fn body(request: &tokenkeeper::HttpRequest) -> Vec<(String, String)> {
    form::parse(std::str::from_utf8(&request.body).unwrap())
}

#[test]
fn machine_to_machine_and_exchange() {
    let endpoints = Endpoints::auth0("tenant.eu.auth0.com").unwrap();
    let auth = ClientAuth::SecretPost(ClientSecret::new("m2m-secret"));
    let limits = Limits::default();

    // Client credentials for one API.
    let request = ClientCredentialsRequest::new(&endpoints.token_endpoint, "m2m", &auth)
        .target("https://api.example.com/", TargetParameter::Audience)
        .scope("read:reports")
        .build();
    assert_eq!(request.url, "https://tenant.eu.auth0.com/oauth/token");
    let pairs = body(&request);
    assert_eq!(
        form::find(&pairs, "grant_type").unwrap(),
        "client_credentials"
    );
    assert_eq!(
        form::find(&pairs, "audience").unwrap(),
        "https://api.example.com/"
    );
    let tokens = TokenResponse::parse(
        &HttpResponse::new(
            200,
            r#"{"access_token":"m2m-at","token_type":"Bearer","expires_in":86400,"scope":"read:reports"}"#,
        ),
        &limits,
    )
    .unwrap();
    assert_eq!(tokens.refresh_token, None);

    // Exchange it for a token for another API, acting for a user.
    let request = TokenExchangeRequest::new(
        &endpoints.token_endpoint,
        "m2m",
        &auth,
        tokens.access_token.secret(),
        token_types::ACCESS_TOKEN,
    )
    .actor("user-id-token", token_types::ID_TOKEN)
    .target("https://other-api.example.com", TargetParameter::Resource)
    .build()
    .unwrap();
    let pairs = body(&request);
    assert_eq!(
        form::find(&pairs, "grant_type").unwrap(),
        token_exchange::TOKEN_EXCHANGE_GRANT_TYPE
    );
    assert_eq!(form::find(&pairs, "subject_token").unwrap(), "m2m-at");
    assert_eq!(
        form::find(&pairs, "resource").unwrap(),
        "https://other-api.example.com"
    );
    let exchanged = token_exchange::parse_response(
        &HttpResponse::new(
            200,
            r#"{"access_token":"xchg","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}"#,
        ),
        &limits,
    )
    .unwrap();
    assert_eq!(exchanged.access_token.secret(), "xchg");

    // Inputs are checked before anything is built.
    let e = TokenExchangeRequest::new(&endpoints.token_endpoint, "m2m", &auth, "t", "not-a-uri")
        .build()
        .unwrap_err();
    assert_eq!(e, TokenExchangeError::InvalidSubjectTokenType);
    let e = TokenExchangeRequest::new(
        &endpoints.token_endpoint,
        "m2m",
        &auth,
        "t",
        "urn:acme:legacy-token",
    )
    .actor_parts(Some("actor"), None)
    .build()
    .unwrap_err();
    assert_eq!(e.code(), "missing_actor_token_type");
}

#[test]
fn revoke_a_refresh_token() {
    let endpoints = Endpoints::auth0("tenant.auth0.com").unwrap();
    let auth = ClientAuth::SecretBasic(ClientSecret::new("secret"));
    let rt = RefreshToken::new("rt-to-revoke");
    let revocation_endpoint = endpoints.revocation_endpoint.as_deref().unwrap();
    let request = revoke_refresh_token(revocation_endpoint, "web-app", &auth, &rt).build();
    assert_eq!(request.url, "https://tenant.auth0.com/oauth/revoke");
    assert_eq!(
        std::str::from_utf8(&request.body).unwrap(),
        "token=rt-to-revoke&token_type_hint=refresh_token"
    );
    let limits = Limits::default();
    assert!(parse_revocation_response(&HttpResponse::new(200, "{}"), &limits).is_ok());
    let busy = HttpResponse::new(503, "").with_header("Retry-After", "30");
    let e = parse_revocation_response(&busy, &limits).unwrap_err();
    assert_eq!(
        e,
        RevocationError::Unavailable {
            retry_after: Some(RetryAfter::Delay(std::time::Duration::from_secs(30)))
        }
    );
    let refused = HttpResponse::new(401, r#"{"error":"invalid_client"}"#);
    assert_eq!(
        parse_revocation_response(&refused, &limits)
            .unwrap_err()
            .code(),
        "failed_to_revoke"
    );
}

#[test]
fn route_served_from_the_manager() {
    let endpoints = Endpoints::auth0("tenant.auth0.com").unwrap();
    let config = Config::builder(endpoints.token_endpoint.clone(), "web-app")
        .build()
        .unwrap();
    let mut manager = TokenManager::new(config, SeededEntropy::new(1));
    let now = UnixTime::from_secs(1_000);
    let limits = Limits::default();

    // No session: 401 missing_session, read back by the client.
    let query = AccessTokenQuery::parse("/auth/access-token");
    let outcome = match manager.get_access_token(&query.token_request(), now) {
        Action::Ready(token) => Ok(token.to_owned()),
        Action::LoginRequired(error) => Err(error),
        other => panic!("{other:?}"),
    };
    let route = access_token_response(outcome.as_ref(), now);
    assert_eq!(route.status, 401);
    let e = parse_access_token_response(&route.into_http(), &limits).unwrap_err();
    assert_eq!(e.code(), "missing_session");

    // A session with a fresh token: 200.
    let stored = br#"{"tokenSet":{"accessToken":"at-live","refreshToken":"rt","expiresAt":1600,"scope":"openid profile"}}"#;
    manager.set_session(Session::from_json(stored, &Default::default()).unwrap());
    let outcome = match manager.get_access_token(&query.token_request(), now) {
        Action::Ready(token) => Ok(token.to_owned()),
        other => panic!("{other:?}"),
    };
    let route = access_token_response(outcome.as_ref(), now);
    assert_eq!(
        route.body,
        r#"{"token":"at-live","scope":"openid profile","expires_at":1600,"expires_in":600,"token_type":"Bearer"}"#
    );
    let back = parse_access_token_response(&route.into_http(), &limits).unwrap();
    assert_eq!(back.token.secret(), "at-live");
    assert_eq!(back.expires_at, UnixTime::from_secs(1600));
}
