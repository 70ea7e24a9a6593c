//! Invariant 6 for the lifecycle parsers: no input makes them panic, and
//! whatever they refuse comes back as the typed error the input calls for
//! (checked against an oracle computed here, not only "some error").

use proptest::prelude::*;
use tokenkeeper::__private::grant as token_exchange;
use tokenkeeper::__private::grant::is_valid_token_type;
use tokenkeeper::__private::grant::parse_revocation_response;
use tokenkeeper::Limits;
use tokenkeeper::discovery::DiscoveryKind;
use tokenkeeper::discovery::{AuthorizationServerMetadata, Endpoints, discovery_url};
use tokenkeeper::grant::RetryAfter;
use tokenkeeper::id_token::{IdTokenValidator, Jwks, verify_es256};
use tokenkeeper::login::LoginRequest;
use tokenkeeper::route::{AccessTokenQuery, parse_access_token_response};
use tokenkeeper::{HttpResponse, IdToken, SeededEntropy, UnixTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// What discovery must answer for `body` with `status` (the issuer
/// configured is `https://as.example`): the error code, or `None` when the
/// oracle leaves the verdict to the parser (a JSON object: valid metadata or
/// a member-level error).
fn discovery_oracle(status: u16, body: &str) -> Option<&'static str> {
    if !(200..300).contains(&status) {
        return Some("discovery_http_error");
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Err(_) => Some("metadata_not_json"),
        Ok(serde_json::Value::Object(_)) => None,
        Ok(_) => Some("metadata_not_object"),
    }
}

/// The member-level codes a JSON object may still be refused with.
const DISCOVERY_OBJECT_CODES: &[&str] = &[
    "metadata_missing_issuer",
    "issuer_mismatch",
    "metadata_missing_token_endpoint",
    "metadata_invalid_endpoint",
    "metadata_invalid_member",
    "unsupported_auth_method",
];

/// A P-256 key of our own, and its JWKS (`kid` "k1"): the ID token
/// signatures below are made with `p256` directly, independently of the
/// crate's signer.
fn signing_key(seed: u8) -> SigningKey {
    let mut bytes = [seed; 32];
    bytes[0] = 1;
    SigningKey::from_slice(&bytes).unwrap()
}

fn jwks_for(key: &SigningKey, kid: &str) -> Jwks {
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let json = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
    }]});
    Jwks::from_json(json.to_string().as_bytes(), &Limits::default()).unwrap()
}

fn sign_jwt(key: &SigningKey, kid: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD
        .encode(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

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
        let result = AuthorizationServerMetadata::parse(&response, "https://as.example", &Limits::default());
        match (discovery_oracle(status, &body), result) {
            (Some(expected), Err(e)) => prop_assert_eq!(e.code(), expected),
            (Some(expected), Ok(_)) => prop_assert!(false, "accepted, expected {}", expected),
            (None, Ok(metadata)) => prop_assert_eq!(metadata.issuer.as_str(), "https://as.example"),
            (None, Err(e)) => prop_assert!(
                DISCOVERY_OBJECT_CODES.contains(&e.code()),
                "a JSON object refused with {}", e.code()
            ),
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
        // A random callback does not carry the transaction's state: it is
        // refused before anything it says is believed (an `error` or a
        // `code` without the right state is never acted on).
        prop_assume!(!callback.contains(tx.state().secret()));
        let e = tx.validate_callback(&callback, iss.as_deref(), required).unwrap_err();
        prop_assert!(
            ["duplicate_parameter", "issuer_mismatch", "missing_issuer", "missing_state", "state_mismatch"]
                .contains(&e.code()),
            "callback {:?} refused with {}", callback, e.code()
        );
    }

    #[test]
    fn callbacks_are_refused_for_the_right_reason(
        state in 0u8..3, iss in 0u8..3, error: bool, code: bool, required: bool,
    ) {
        // state / iss: 0 absent, 1 right, 2 wrong.
        let (_, tx) = LoginRequest::new("https://as.example/authorize", "c", "https://app/cb")
            .start(&mut SeededEntropy::new(3))
            .unwrap();
        let mut params = Vec::new();
        match state {
            1 => params.push(format!("state={}", tx.state().secret())),
            2 => params.push("state=not-the-state".to_owned()),
            _ => {}
        }
        match iss {
            1 => params.push("iss=https%3A%2F%2Fas.example".to_owned()),
            2 => params.push("iss=https%3A%2F%2Fevil.example".to_owned()),
            _ => {}
        }
        if error {
            params.push("error=access_denied".to_owned());
        }
        if code {
            params.push("code=the-code".to_owned());
        }
        let callback = format!("https://app/cb?{}", params.join("&"));
        let expected = if iss == 2 {
            "issuer_mismatch"
        } else if iss == 0 && required {
            "missing_issuer"
        } else if state == 0 {
            "missing_state"
        } else if state == 2 {
            "state_mismatch"
        } else if error {
            "authorization_error"
        } else if !code {
            "missing_code"
        } else {
            "ok"
        };
        let result = tx.validate_callback(&callback, Some("https://as.example"), required);
        match result {
            Ok(authorization_code) => {
                prop_assert_eq!(expected, "ok", "{} accepted", callback);
                prop_assert_eq!(authorization_code.secret(), "the-code");
            }
            Err(e) => prop_assert_eq!(e.code(), expected, "{}", callback),
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
        let key = signing_key(7);
        let jwks = jwks_for(&key, "k1");
        for candidate in [token.clone(), parts.join(".")] {
            let _ = validator.validate(&IdToken::new(candidate.clone()), Some("n"), now);
            // Random strings are never valid signatures, with a real key set
            // (the signature path is reached whenever the header parses).
            prop_assert!(verify_es256(&candidate, &jwks).is_err());
        }
        // A token signed with the key verifies; any change to what was
        // signed, or a signature by another key under the same kid, fails.
        let claims = serde_json::json!({"sub": token, "parts": parts});
        let genuine = sign_jwt(&key, "k1", &claims);
        prop_assert_eq!(verify_es256(&genuine, &jwks), Ok(()));
        let (_, signature) = genuine.rsplit_once('.').unwrap();
        let other = sign_jwt(&signing_key(9), "k1", &claims);
        prop_assert!(matches!(
            verify_es256(&other, &jwks),
            Err(tokenkeeper::id_token::IdTokenError::InvalidSignature)
        ));
        let tampered_claims = sign_jwt(&key, "k1", &serde_json::json!({"sub": token, "parts": parts, "x": 1}));
        let swapped = format!("{}.{signature}", tampered_claims.rsplit_once('.').unwrap().0);
        prop_assert!(matches!(
            verify_es256(&swapped, &jwks),
            Err(tokenkeeper::id_token::IdTokenError::InvalidSignature)
        ));
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
