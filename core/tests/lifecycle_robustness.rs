//! Invariant 6 for the lifecycle parsers: no input makes them panic, and
//! whatever they refuse comes back as a typed error with a code.

use proptest::prelude::*;
use tokenkeeper::discovery::DiscoveryKind;
use tokenkeeper::discovery::{AuthorizationServerMetadata, Endpoints, discovery_url};
use tokenkeeper::grant::revocation::{RetryAfter, parse_revocation_response};
use tokenkeeper::grant::token_exchange::{self, is_valid_token_type};
use tokenkeeper::id_token::{IdTokenValidator, Jwks, verify_es256};
use tokenkeeper::limits::Limits;
use tokenkeeper::login::LoginRequest;
use tokenkeeper::route::{AccessTokenQuery, parse_access_token_response};
use tokenkeeper::{HttpResponse, IdToken, SeededEntropy, UnixTime};

fn json_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,a-z0-9 .-]{0,80}",
        Just(
            r#"{"issuer":"https://as.example","token_endpoint":"https://as.example/t"}"#.to_owned()
        ),
        Just(r#"{"token":"t","expires_at":1e300,"token_type":7}"#.to_owned()),
        Just(r#"{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}"#.to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn discovery_never_panics(body in json_like(), status in 100u16..600, issuer in any::<String>()) {
        let response = HttpResponse::new(status, body.clone());
        if let Err(e) = AuthorizationServerMetadata::parse(&response, "https://as.example", &Limits::default()) {
            prop_assert!(!e.code().is_empty());
        }
        let _ = discovery_url(&issuer, DiscoveryKind::OpenIdConnect);
        let _ = discovery_url(&issuer, DiscoveryKind::OAuth2);
        let _ = Endpoints::auth0(&issuer);
    }

    #[test]
    fn callbacks_never_panic(callback in any::<String>(), iss in proptest::option::of(any::<String>()), required: bool) {
        let (_, tx) = LoginRequest::new("https://as.example/authorize", "c", "https://app/cb")
            .start(&mut SeededEntropy::new(3))
            .unwrap();
        if let Err(e) = tx.validate_callback(&callback, iss.as_deref(), required) {
            prop_assert!(!e.code().is_empty());
        }
    }

    #[test]
    fn login_requests_never_panic(endpoint in any::<String>(), client in any::<String>(), extra in any::<String>()) {
        let _ = LoginRequest::new(&endpoint, &client, "https://app/cb")
            .param(&extra, &extra)
            .start(&mut SeededEntropy::new(1));
    }

    #[test]
    fn id_tokens_never_panic(token in any::<String>(), parts in proptest::collection::vec("[A-Za-z0-9_-]{0,40}", 0..5)) {
        let validator = IdTokenValidator::new("https://as.example/", "c");
        let now = UnixTime::from_secs(1_700_000_000);
        for candidate in [token.clone(), parts.join(".")] {
            let _ = validator.validate(&IdToken::new(candidate.clone()), Some("n"), now);
            let _ = verify_es256(&candidate, &Jwks::default());
        }
    }

    #[test]
    fn responses_never_panic(body in json_like(), status in 100u16..600, header in any::<String>()) {
        let response = HttpResponse::new(status, body.clone()).with_header("Retry-After", &header);
        let limits = Limits::default();
        let _ = parse_access_token_response(&response, &limits);
        let _ = parse_revocation_response(&response, &limits);
        let _ = token_exchange::parse_response(&response, &limits);
        let _ = Jwks::parse(&response, &limits);
        let _ = RetryAfter::parse(&header);
        let _ = is_valid_token_type(&header);
        let _ = AccessTokenQuery::parse(&header);
    }
}
