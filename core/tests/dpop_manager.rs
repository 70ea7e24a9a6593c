//! DPoP through the manager: proofs on token requests, the nonce retry at
//! the token endpoint and at resource servers, bound tokens, deferred
//! signers.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use support::{expired_session, t};
use tokenkeeper::dpop::{DpopError, HtuError};
use tokenkeeper::dpop::{
    DpopKey, EcdsaSignature, P256Signer, PublicJwk, SignError, SignOutcome, Signer,
};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    AccessTokenInfo, Action, Authorization, ClientSecret, Completion, Config, Error, HttpRequest,
    HttpResponse, Method, ResourceVerdict, SeededEntropy, TokenManager, TokenRequest, TokenType,
};

const TOKEN_ENDPOINT: &str = "https://as.example/oauth/token";

fn key() -> DpopKey {
    DpopKey::generate(&mut SeededEntropy::new(42)).unwrap()
}

fn manager() -> TokenManager {
    let config = Config::builder(TOKEN_ENDPOINT, "client-1")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("s")))
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(7));
    m.enable_dpop(P256Signer::new(key())).unwrap();
    m.set_session(expired_session(1000));
    m
}

fn claims_of(proof: &str) -> serde_json::Value {
    let payload = proof.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Verifies a compact DPoP proof without the crate's own JWK or verifier:
/// the public key is derived with `p256` from the private key's PKCS#8
/// export, the proof header's `jwk` must name exactly that key, and the
/// signature over `header.payload` is checked with `p256`'s verifier.
fn verify_independently(proof: &str, key: &DpopKey) {
    use p256::ecdsa::signature::Verifier as _;
    use p256::pkcs8::DecodePrivateKey as _;
    let secret = p256::SecretKey::from_pkcs8_der(key.to_pkcs8_der().unwrap().as_slice()).unwrap();
    let verifying = p256::ecdsa::VerifyingKey::from(&p256::ecdsa::SigningKey::from(&secret));
    let point = verifying.to_sec1_point(false);
    let bytes = point.as_bytes();
    let (signed, signature) = proof.rsplit_once('.').unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signed.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["jwk"]["kty"], "EC");
    assert_eq!(header["jwk"]["crv"], "P-256");
    assert_eq!(header["jwk"]["x"], URL_SAFE_NO_PAD.encode(&bytes[1..33]));
    assert_eq!(header["jwk"]["y"], URL_SAFE_NO_PAD.encode(&bytes[33..65]));
    let signature =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    verifying
        .verify(signed.as_bytes(), &signature)
        .expect("the proof's signature verifies with an independently derived key");
    // And a change to what was signed is refused.
    let mut tampered = signed.to_owned();
    tampered.push('x');
    assert!(verifying.verify(tampered.as_bytes(), &signature).is_err());
}

fn proof_of(request: &HttpRequest) -> serde_json::Value {
    claims_of(request.headers.get("dpop").expect("a DPoP proof"))
}

fn dpop_token(rt: &str) -> HttpResponse {
    HttpResponse::new(
        200,
        format!(
            r#"{{"access_token":"bound-at","token_type":"DPoP","expires_in":600,"refresh_token":"{rt}"}}"#
        ),
    )
}

fn nonce_error(nonce: &str) -> HttpResponse {
    HttpResponse::new(400, r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#)
        .with_header("DPoP-Nonce", nonce)
}

#[test]
fn token_endpoint_nonce_is_retried_once_and_remembered() {
    let mut m = manager();
    let Action::Send(first) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let proof = proof_of(&first.request);
    assert_eq!(proof["htm"], "POST");
    assert_eq!(proof["htu"], TOKEN_ENDPOINT);
    assert_eq!(proof["iat"], 2000);
    assert!(proof.get("nonce").is_none());
    assert!(proof.get("ath").is_none());
    // One retry, same id, a new proof with the nonce and a new jti.
    let Completion::Resend(retry) = m.handle_response(first.id, nonce_error("n-1"), t(2000)) else {
        panic!()
    };
    assert_eq!(retry.id, first.id);
    let retried = proof_of(&retry.request);
    assert_eq!(retried["nonce"], "n-1");
    assert_ne!(retried["jti"], proof["jti"]);
    match m.handle_response(retry.id, dpop_token("rt-1"), t(2001)) {
        Completion::Ready(token) => assert_eq!(token.token_type, &TokenType::DPoP),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.session().unwrap().token_set().token_type,
        Some(TokenType::DPoP)
    );
    // The next refresh sends the nonce on its first try.
    let Action::Send(next) = m.get_access_token(&TokenRequest::new().force_refresh(), t(2002))
    else {
        panic!()
    };
    assert_eq!(proof_of(&next.request)["nonce"], "n-1");
}

#[test]
fn nonce_error_without_a_new_nonce_or_twice_surfaces() {
    let mut m = manager();
    // No DPoP-Nonce header at all: no retry.
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let bare = HttpResponse::new(400, r#"{"error":"use_dpop_nonce"}"#);
    match m.handle_response(out.id, bare, t(2000)) {
        Completion::Failed(e) => assert_eq!(e.server_error().unwrap().error, "use_dpop_nonce"),
        other => panic!("{other:?}"),
    }
    // A second nonce error after the retry: surfaced, not looped.
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Completion::Resend(retry) = m.handle_response(out.id, nonce_error("n-1"), t(2000)) else {
        panic!()
    };
    assert!(matches!(
        m.handle_response(retry.id, nonce_error("n-2"), t(2000)),
        Completion::Failed(_)
    ));
    // The same nonce again is not new: no retry either.
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert_eq!(proof_of(&out.request)["nonce"], "n-2");
    assert!(matches!(
        m.handle_response(out.id, nonce_error("n-2"), t(2000)),
        Completion::Failed(_)
    ));
    assert_eq!(m.in_flight(), 0);
    // Nothing stored changed through all of it.
    assert_eq!(
        m.session()
            .unwrap()
            .token_set()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret(),
        "rt-0"
    );
}

#[test]
fn bearer_for_a_dpop_request_is_an_error_but_the_rotation_is_kept() {
    let mut m = manager();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let bearer = HttpResponse::new(
        200,
        r#"{"access_token":"x","token_type":"Bearer","expires_in":60,"refresh_token":"rt-9"}"#,
    );
    match m.handle_response(out.id, bearer, t(2000)) {
        Completion::Failed(e) => assert_eq!(e.code(), "token_type_mismatch"),
        other => panic!("{other:?}"),
    }
    let set = m.session().unwrap().token_set();
    assert_eq!(
        set.access_token.secret(),
        "at-login",
        "the Bearer token is not stored"
    );
    assert_eq!(
        set.refresh_token.as_ref().unwrap().secret(),
        "rt-9",
        "the rotated refresh token is kept"
    );
}

fn bound_token() -> AccessTokenInfo {
    AccessTokenInfo {
        token: tokenkeeper::AccessToken::new("bound-at"),
        expires_at: t(9999),
        scope: None,
        audience: None,
        token_type: TokenType::DPoP,
    }
}

#[test]
fn resource_requests_carry_ath_and_their_own_nonce() {
    let mut m = manager();
    // Learn an authorization server nonce first.
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Completion::Resend(retry) = m.handle_response(out.id, nonce_error("as-nonce"), t(2000))
    else {
        panic!()
    };
    assert!(matches!(
        m.handle_response(retry.id, dpop_token("rt-1"), t(2000)),
        Completion::Ready(_)
    ));
    let url = "https://rs.example:8443/api/orders?page=2#x";
    let token = bound_token();
    let Authorization::Ready(headers) = m.authorize(&Method::GET, url, &token, t(2001)).unwrap()
    else {
        panic!()
    };
    assert_eq!(headers.get("authorization"), Some("DPoP bound-at"));
    verify_independently(headers.get("dpop").unwrap(), &key());
    let proof = claims_of(headers.get("dpop").unwrap());
    assert_eq!(proof["htm"], "GET");
    assert_eq!(proof["htu"], "https://rs.example:8443/api/orders");
    let ath = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(b"bound-at"));
    assert_eq!(proof["ath"], ath);
    assert!(
        proof.get("nonce").is_none(),
        "the AS nonce never goes to a resource server"
    );
    // The resource server demands its nonce: one retry.
    let challenge = HttpResponse::new(401, "")
        .with_header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#)
        .with_header("DPoP-Nonce", "rs-nonce");
    assert_eq!(
        m.handle_resource_response(url, &token, &challenge, t(2001)),
        ResourceVerdict::RetryWithNonce
    );
    let Authorization::Ready(headers) = m.authorize(&Method::GET, url, &token, t(2001)).unwrap()
    else {
        panic!()
    };
    assert_eq!(claims_of(headers.get("dpop").unwrap())["nonce"], "rs-nonce");
    // A second request sent at the same time, without the nonce, gets the
    // same challenge: it retries too (the first answer taught the cache the
    // nonce, which once made this one `Accepted`, its 401 passed on).
    assert_eq!(
        m.handle_resource_response(url, &token, &challenge, t(2001)),
        ResourceVerdict::RetryWithNonce
    );
    // One nonce retry per request: a server that keeps refusing cannot
    // make a caller loop.
    let mut retries = tokenkeeper::ResourceRetries::new();
    assert_eq!(
        retries.admit(m.handle_resource_response(url, &token, &challenge, t(2001))),
        Some(ResourceVerdict::RetryWithNonce)
    );
    assert_eq!(
        retries.admit(m.handle_resource_response(url, &token, &challenge, t(2001))),
        None
    );
    // A challenge with no usable nonce: nothing to retry with.
    let bare = HttpResponse::new(401, "")
        .with_header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#);
    assert_eq!(
        m.handle_resource_response(url, &token, &bare, t(2001)),
        ResourceVerdict::Accepted
    );
    // And the resource server's nonce never goes to the token endpoint.
    let Action::Send(next) = m.get_access_token(&TokenRequest::new().force_refresh(), t(2002))
    else {
        panic!()
    };
    assert_eq!(proof_of(&next.request)["nonce"], "as-nonce");
    // Nonces arrive with successes too.
    let ok = HttpResponse::new(200, "{}").with_header("DPoP-Nonce", "rs-nonce-2");
    assert_eq!(
        m.handle_resource_response(url, &token, &ok, t(2003)),
        ResourceVerdict::Accepted
    );
    let Authorization::Ready(headers) = m.authorize(&Method::GET, url, &token, t(2003)).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        claims_of(headers.get("dpop").unwrap())["nonce"],
        "rs-nonce-2"
    );
}

#[test]
fn invalid_token_on_a_dpop_challenge_forces_a_refresh() {
    let mut m = manager();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let Completion::Ready(token) = m.handle_response(out.id, dpop_token("rt-1"), t(2000)) else {
        panic!()
    };
    let token = token.to_owned();
    let rejected = HttpResponse::new(401, "").with_header(
        "WWW-Authenticate",
        r#"DPoP algs="ES256", error="invalid_token""#,
    );
    assert_eq!(
        m.handle_resource_response("https://rs.example/x", &token, &rejected, t(2001)),
        ResourceVerdict::TokenRejected
    );
    assert!(matches!(
        m.get_access_token(&TokenRequest::new(), t(2001)),
        Action::Send(_)
    ));
}

#[test]
fn a_bound_token_is_never_sent_as_bearer() {
    let config = Config::builder(TOKEN_ENDPOINT, "c").build().unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(1));
    let err = m
        .authorize(&Method::GET, "https://rs.example/x", &bound_token(), t(1))
        .unwrap_err();
    assert_eq!(err.code(), "dpop_error");
    assert_eq!(err, Error::Dpop(DpopError::NotEnabled));
}

/// DPoP failures are typed: each says what failed, under the one
/// `dpop_error` code the route contract and the adapters know.
#[test]
fn dpop_errors_say_what_failed() {
    let config = Config::builder(TOKEN_ENDPOINT, "c").build().unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(1));
    m.enable_dpop(P256Signer::new(key())).unwrap();
    // A URL that cannot be a proof's `htu`.
    let err = m
        .authorize(&Method::GET, "ftp://rs.example/x", &bound_token(), t(1))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Dpop(DpopError::InvalidUrl(HtuError::UnsupportedScheme))
    );
    assert_eq!(err.code(), "dpop_error");
    assert_eq!(dpop_cause(&err), "invalid_htu");
    // A token type this crate cannot present.
    let mut odd = bound_token();
    odd.token_type = TokenType::Other("MAC".into());
    let err = m
        .authorize(&Method::GET, "https://rs.example/x", &odd, t(1))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Dpop(DpopError::UnsupportedTokenType("MAC".into()))
    );
    // A signer that is not ES256.
    struct Rs256(PublicJwk);
    impl Signer for Rs256 {
        fn algorithm(&self) -> &'static str {
            "RS256"
        }
        fn public_jwk(&self) -> &PublicJwk {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
            Err(SignError::Failed("never called"))
        }
    }
    let err = m
        .enable_dpop(Rs256(key().public_jwk().clone()))
        .unwrap_err();
    assert_eq!(err, Error::Dpop(DpopError::UnsupportedAlgorithm));
    // A signer that fails: the signer's own error is the source.
    struct Offline(PublicJwk);
    impl Signer for Offline {
        fn algorithm(&self) -> &'static str {
            "ES256"
        }
        fn public_jwk(&self) -> &PublicJwk {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
            Err(SignError::Failed("hsm offline"))
        }
    }
    m.enable_dpop(Offline(key().public_jwk().clone())).unwrap();
    m.set_session(expired_session(1000));
    let Action::Failed(err) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert_eq!(
        err,
        Error::Dpop(DpopError::Signer(SignError::Failed("hsm offline")))
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "the DPoP signer failed");
    assert_eq!(m.in_flight(), 0);
}

fn dpop_cause(error: &Error) -> &'static str {
    match error {
        Error::Dpop(cause) => cause.code(),
        _ => "",
    }
}

/// A signer that answers later, like a non-extractable WebCrypto key: the
/// test signs "outside" with the key it holds.
struct Deferred(PublicJwk);

impl Signer for Deferred {
    fn algorithm(&self) -> &'static str {
        "ES256"
    }
    fn public_jwk(&self) -> &PublicJwk {
        &self.0
    }
    fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
        Ok(SignOutcome::Deferred)
    }
}

#[test]
fn deferred_signer_round_trip() {
    let key = key();
    let outside = P256Signer::new(key.clone());
    let config = Config::builder(TOKEN_ENDPOINT, "c").build().unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(3));
    m.enable_dpop(Deferred(key.public_jwk().clone())).unwrap();
    m.set_session(expired_session(1000));
    let Action::Sign(request) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let signature = outside.sign_now(request.signing_input.as_bytes()).unwrap();
    let out = m.handle_signature(request.id, &signature, t(2000)).unwrap();
    let proof = out.request.headers.get("dpop").unwrap();
    assert!(proof.starts_with(&request.signing_input));
    verify_independently(proof, &key);
    // The nonce retry asks for a signature again.
    let Completion::Sign(again) = m.handle_response(out.id, nonce_error("n"), t(2000)) else {
        panic!()
    };
    let signature = outside.sign_now(again.signing_input.as_bytes()).unwrap();
    let out = m.handle_signature(again.id, &signature, t(2000)).unwrap();
    verify_independently(out.request.headers.get("dpop").unwrap(), &key);
    assert!(matches!(
        m.handle_response(out.id, dpop_token("rt-1"), t(2000)),
        Completion::Ready(_)
    ));
    // Resource requests too.
    let Authorization::Sign(pending) = m
        .authorize(
            &Method::POST,
            "https://rs.example/y",
            &bound_token(),
            t(2001),
        )
        .unwrap()
    else {
        panic!()
    };
    let signature = outside
        .sign_now(pending.signing_input().as_bytes())
        .unwrap();
    let headers = pending.finish(&signature);
    assert_eq!(claims_of(headers.get("dpop").unwrap())["htm"], "POST");
    verify_independently(headers.get("dpop").unwrap(), &key);
    // A wrong signature is refused and the request dropped (unless the
    // check is compiled out: the server then refuses the proof).
    if cfg!(feature = "verify-signatures") {
        let Action::Sign(request) =
            m.get_access_token(&TokenRequest::new().force_refresh(), t(2002))
        else {
            panic!()
        };
        let wrong = EcdsaSignature::from_slice(&[1u8; 64]).unwrap();
        let refused = m.handle_signature(request.id, &wrong, t(2002)).unwrap_err();
        assert_eq!(refused.code(), "dpop_error");
        assert_eq!(refused, Error::Dpop(DpopError::SignatureMismatch));
        assert_eq!(m.in_flight(), 0);
    }
}

#[test]
fn resource_retries_are_spent_once_each() {
    let mut retries = tokenkeeper::ResourceRetries::new();
    assert_eq!(retries.admit(ResourceVerdict::Accepted), None);
    assert_eq!(
        retries.admit(ResourceVerdict::RetryWithNonce),
        Some(ResourceVerdict::RetryWithNonce)
    );
    assert_eq!(retries.admit(ResourceVerdict::RetryWithNonce), None);
    assert_eq!(
        retries.admit(ResourceVerdict::TokenRejected),
        Some(ResourceVerdict::TokenRejected)
    );
    assert_eq!(retries.admit(ResourceVerdict::TokenRejected), None);
}
