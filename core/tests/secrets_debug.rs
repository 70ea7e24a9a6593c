//! Secrets held only in passing never reach `Debug` output (issue 12,
//! defect 8): a pending DPoP authorization (the `Authorization` header
//! waiting for a deferred signature) and a manager in the middle of a
//! login's code exchange (the ID token nonce it will check). And the types
//! that carry secrets on the wire wipe them when dropped; that is checked
//! as a trait bound, since reading freed memory would need `unsafe`.

use tokenkeeper::__private::form;
use tokenkeeper::dpop::{DpopKey, P256Signer, PublicJwk, SignError, SignOutcome, Signer};
use tokenkeeper::login::{AuthorizationCode, CodeVerifier, LoginRequest, Nonce, State};
use tokenkeeper::{
    AccessToken, AccessTokenInfo, Authorization, ClientSecret, Config, Dispatch, Headers,
    HttpRequest, HttpResponse, IdToken, Method, PendingAuthorization, RefreshToken, SeededEntropy,
    TokenManager, TokenType, UnixTime,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

const ACCESS_TOKEN: &str = "AcCeSs-ToKeN-0123456789-xyz";
const ISSUER: &str = "https://as.example";

fn t(s: u64) -> UnixTime {
    UnixTime::from_secs(s)
}

/// Both `Debug` forms of `value`, checked for every secret.
fn assert_hidden(label: &str, value: &impl std::fmt::Debug, secrets: &[&str]) {
    for printed in [format!("{value:?}"), format!("{value:#?}")] {
        for secret in secrets {
            assert!(
                !printed.contains(secret),
                "{label} prints the secret {secret:?}: {printed}"
            );
        }
    }
}

/// A signer that answers later (a non-extractable WebCrypto key).
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
fn a_pending_dpop_authorization_does_not_print_its_token() {
    let key = DpopKey::generate(&mut SeededEntropy::new(42)).unwrap();
    let config = Config::builder("https://as.example/token", "c")
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(3));
    m.enable_dpop(Deferred(key.public_jwk().clone())).unwrap();
    let token = AccessTokenInfo {
        token: AccessToken::new(ACCESS_TOKEN),
        expires_at: t(9999),
        scope: None,
        audience: None,
        token_type: TokenType::DPoP,
    };
    let authorization = m
        .authorize(&Method::GET, "https://rs.example/x", &token, t(1))
        .unwrap();
    assert!(
        matches!(authorization, Authorization::Sign(_)),
        "{authorization:?}"
    );
    assert_hidden("Authorization::Sign", &authorization, &[ACCESS_TOKEN]);
    let Authorization::Sign(pending) = authorization else {
        unreachable!()
    };
    assert_hidden("PendingAuthorization", &pending, &[ACCESS_TOKEN]);
    // Redacted, not emptied: finishing still gives the header.
    let signature = P256Signer::new(key)
        .sign_now(pending.signing_input().as_bytes())
        .unwrap();
    let headers = pending.finish(&signature);
    let expected = format!("DPoP {ACCESS_TOKEN}");
    assert_eq!(headers.get("authorization"), Some(expected.as_str()));
    assert!(headers.get("dpop").is_some());
    assert_hidden("the finished headers", &headers, &[ACCESS_TOKEN]);
}

#[test]
fn a_manager_mid_login_does_not_print_the_nonce() {
    let config = Config::builder("https://as.example/token", "client-1")
        .client_auth(tokenkeeper::grant::ClientAuth::SecretPost(
            ClientSecret::new("client-SeCrEt-42"),
        ))
        .issuer(ISSUER)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(1));
    let (url, transaction) = LoginRequest::new(
        "https://as.example/authorize",
        "client-1",
        "https://app.example/cb",
    )
    .scope("openid offline_access")
    .start(&mut SeededEntropy::new(11))
    .unwrap();
    let pairs = form::parse(url.split_once('?').unwrap().1);
    let state = form::find(&pairs, "state").unwrap();
    let code = "CoDe-SeCrEt-0123456789";
    let callback = format!(
        "https://app.example/cb?code={code}&state={state}&iss={}",
        form::encode(ISSUER)
    );
    let dispatch = m.exchange_code(&transaction, &callback, t(1000)).unwrap();
    assert!(matches!(dispatch, Dispatch::Send(_)), "{dispatch:?}");
    assert_eq!(m.in_flight(), 1, "the code exchange is in flight");
    let secrets = [
        transaction.nonce().secret(),
        transaction.code_verifier().secret(),
        code,
        "client-SeCrEt-42",
    ];
    assert!(secrets.iter().all(|s| s.len() >= 16), "{secrets:?}");
    assert_hidden("TokenManager mid-login", &m, &secrets);
    assert_hidden("the code exchange request", &dispatch, &secrets);
}

/// Compiles only for types that wipe themselves when dropped.
fn wipes_on_drop<T: ZeroizeOnDrop>() {}

/// Compiles only for types that can be wiped on demand.
fn wipeable<T: Zeroize>() {}

#[test]
fn wire_types_wipe_their_secrets_when_dropped() {
    // Token request bodies (refresh tokens, codes, client secrets) and
    // header storage (`Authorization: Basic …`, `DPoP …`).
    wipes_on_drop::<HttpRequest>();
    wipes_on_drop::<Headers>();
    // Token responses (access, refresh and ID tokens).
    wipes_on_drop::<HttpResponse>();
    // The `Authorization: DPoP <token>` value waiting for its proof.
    wipes_on_drop::<PendingAuthorization>();
    // The wrappers, as before.
    wipes_on_drop::<AccessToken>();
    wipes_on_drop::<RefreshToken>();
    wipes_on_drop::<IdToken>();
    wipes_on_drop::<ClientSecret>();
    wipes_on_drop::<Nonce>();
    wipes_on_drop::<State>();
    wipes_on_drop::<CodeVerifier>();
    wipes_on_drop::<AuthorizationCode>();
    wipeable::<Headers>();

    // Wiping on demand empties the header storage.
    let mut headers = Headers::new();
    headers.append("Authorization", format!("Bearer {ACCESS_TOKEN}"));
    headers.zeroize();
    assert!(headers.is_empty());
    assert_eq!(headers.get("authorization"), None);
}
