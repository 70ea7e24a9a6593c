//! Issue 18 part 1, wired in: the manager checks the signature of every ID
//! token the token endpoint returns (login and refresh) against the
//! issuer's JWKS, which it asks the host to fetch (`Completion::Resend`
//! with the flight's id) and caches. Against the real node-oidc-provider:
//! its RS256 ID tokens, a client whose ID tokens are ES256, a key rotation
//! mid-run (a new `kid`, picked up by one refetch), and forged tokens
//! (bad signature, `alg` none, HMAC with the public key as secret, unknown
//! `kid`) each refused with its own code and nothing stored.
//!
//! The test plays the host: it sends each request the core describes and
//! hands back the answer, so every JWKS fetch is seen and counted.

#[macro_use]
#[allow(unused_macros)]
mod scenarios_common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scenarios_common::LOGIN_SCOPE;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokenkeeper::__private::jws;
use tokenkeeper::__private::jws::Algorithm;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::login::{LoginRequest, LoginTransaction};
use tokenkeeper::{
    Completion, Config, ConfigBuilder, Dispatch, HttpRequest, HttpResponse, Method, TokenManager,
    TokenRequest, UnixTime,
};
use tokenkeeper_integration::{
    API1, API2, CONFIDENTIAL_POST, CannedResponse, Harness, HarnessOptions, REDIRECT_URI,
};

fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

/// The host's part: send what the core described, whatever the answer's
/// status.
fn send(h: &Harness, request: &HttpRequest) -> HttpResponse {
    let result = if request.method == Method::GET {
        let mut call = h.agent().get(&request.url);
        for (name, value) in request.headers.iter() {
            call = call.header(name, value);
        }
        call.config().http_status_as_error(false).build().call()
    } else {
        let mut call = h.agent().post(&request.url);
        for (name, value) in request.headers.iter() {
            call = call.header(name, value);
        }
        call.config()
            .http_status_as_error(false)
            .build()
            .send(&request.body[..])
    };
    let mut response = result.expect("the request reaches the provider");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().expect("a body");
    HttpResponse::new(status, body)
}

/// What one exchange came to, and the JWKS fetches it made.
struct Outcome {
    result: Result<(), String>,
    jwks_fetches: usize,
}

/// Sends `first` and whatever the manager asks for next with the same id
/// (the JWKS), to the end.
fn drive(h: &Harness, manager: &mut TokenManager, first: Dispatch) -> Outcome {
    let Dispatch::Send(mut out) = first else {
        panic!("no deferred signer here")
    };
    let jwks_uri = manager.config().jwks_uri().map(String::from);
    let mut jwks_fetches = 0;
    loop {
        if Some(out.request.url.as_str()) == jwks_uri.as_deref() {
            assert_eq!(out.request.method, Method::GET);
            jwks_fetches += 1;
        }
        let response = send(h, &out.request);
        match manager.handle_response(out.id, response, now()) {
            Completion::Ready(_) => {
                return Outcome {
                    result: Ok(()),
                    jwks_fetches,
                };
            }
            Completion::Failed(error) => {
                return Outcome {
                    result: Err(error.code().to_owned()),
                    jwks_fetches,
                };
            }
            Completion::Resend(next) => {
                assert_eq!(next.id, out.id, "the follow-up keeps the flight's id");
                out = next;
            }
            other => panic!("unexpected completion {other:?}"),
        }
    }
}

fn builder(h: &Harness, client_id: &str, auth: ClientAuth) -> ConfigBuilder {
    let metadata = tokenkeeper_ureq::discover(h.agent(), h.issuer()).expect("discovery");
    assert!(
        metadata.jwks_uri.is_some(),
        "the provider announces its JWKS"
    );
    Config::builder(h.token_endpoint(), client_id)
        .metadata(&metadata)
        .client_auth(auth)
        .audience(API1)
        .scope(LOGIN_SCOPE)
}

fn post_auth() -> ClientAuth {
    scenarios_common::client_auth(&CONFIDENTIAL_POST)
}

/// A real login of `alice` up to the callback: the transaction and the
/// callback URL.
fn authorize(h: &Harness, client_id: &str) -> (LoginTransaction, String) {
    let endpoint = h.authorization_endpoint();
    let (url, transaction) = LoginRequest::new(&endpoint, client_id, REDIRECT_URI)
        .scope(LOGIN_SCOPE)
        .resource(API1)
        .resource(API2)
        .param("prompt", "consent")
        .start(&mut tokenkeeper_ureq::OsEntropy)
        .expect("authorization URL");
    let callback = h.login(&url);
    (transaction, callback)
}

fn login(h: &Harness, manager: &mut TokenManager, client_id: &str) -> Outcome {
    let (transaction, callback) = authorize(h, client_id);
    let first = manager
        .exchange_code(&transaction, &callback, now())
        .expect("the callback is valid");
    drive(h, manager, first)
}

fn refresh(h: &Harness, manager: &mut TokenManager) -> Outcome {
    let request = TokenRequest::new().force_refresh();
    let first = match manager.get_access_token(&request, now()) {
        tokenkeeper::Action::Send(out) => Dispatch::Send(out),
        other => panic!("a forced refresh sends: {other:?}"),
    };
    drive(h, manager, first)
}

fn id_token_header(manager: &TokenManager) -> jws::JwsHeader {
    let session = manager.session().expect("a session");
    let id_token = session.token_set().id_token.as_ref().expect("an ID token");
    jws::decode_header(id_token.secret()).expect("a JWS header")
}

fn manager(config: Config) -> TokenManager {
    TokenManager::new(config, tokenkeeper_ureq::OsEntropy)
}

#[test]
fn login_and_refresh_check_the_rs256_signature_fetching_the_jwks_once() {
    let h = Harness::start(HarnessOptions::default());
    let config = builder(&h, CONFIDENTIAL_POST.id, post_auth())
        .build()
        .unwrap();
    assert!(config.verifies_id_token_signatures(), "on by default");
    let mut m = manager(config);
    assert!(m.jwks_cache().unwrap().fetched_at().is_none());

    let login = login(&h, &mut m, CONFIDENTIAL_POST.id);
    assert_eq!(login.result, Ok(()));
    assert_eq!(login.jwks_fetches, 1, "nothing cached: one fetch");
    assert_eq!(id_token_header(&m).alg, Algorithm::Rs256);
    assert!(m.jwks_cache().unwrap().fetched_at().is_some());

    // The refresh's new ID token is checked by the cached keys: no fetch.
    let refreshed = refresh(&h, &mut m);
    assert_eq!(refreshed.result, Ok(()));
    assert_eq!(refreshed.jwks_fetches, 0);
    assert_eq!(m.in_flight(), 0);
}

#[test]
fn es256_id_tokens_are_checked_by_the_providers_p256_key() {
    let h = Harness::start(HarnessOptions::default());
    let mut m = manager(
        builder(&h, "public-es256", ClientAuth::None)
            .build()
            .unwrap(),
    );
    let login = login(&h, &mut m, "public-es256");
    assert_eq!(login.result, Ok(()));
    assert_eq!(login.jwks_fetches, 1);
    let header = id_token_header(&m);
    assert_eq!(header.alg, Algorithm::Es256);
    assert_eq!(header.kid.as_deref(), Some("harness-es256"));
    assert_eq!(refresh(&h, &mut m).result, Ok(()));
}

#[test]
fn a_key_rotation_mid_run_is_picked_up_by_one_refetch() {
    let h = Harness::start(HarnessOptions::default());
    // A short refetch interval: the rotation comes seconds after login.
    let mut m = manager(
        builder(&h, CONFIDENTIAL_POST.id, post_auth())
            .jwks_refetch_interval(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    assert_eq!(login(&h, &mut m, CONFIDENTIAL_POST.id).jwks_fetches, 1);
    assert_eq!(id_token_header(&m).kid.as_deref(), Some("harness-rs256"));

    let rotated = h
        .agent()
        .post(&format!("{}/__harness/keys/rotate", h.control_url()))
        .send("{}")
        .expect("rotate")
        .body_mut()
        .read_to_string()
        .expect("rotate answer");
    let rotated: Value = serde_json::from_str(&rotated).expect("rotate JSON");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1100));

    // The refresh's ID token names the new kid: the cache (still fresh)
    // does not know it, so the manager refetches once and verifies.
    let refreshed = refresh(&h, &mut m);
    assert_eq!(refreshed.result, Ok(()));
    assert_eq!(refreshed.jwks_fetches, 1, "one refetch for the new kid");
    assert_eq!(id_token_header(&m).kid.as_deref(), Some(new_kid.as_str()));
    let cached = m.jwks_cache().unwrap().jwks().unwrap();
    assert!(cached.contains_kid(&new_kid) && cached.contains_kid("harness-rs256"));

    // The next refresh is served from the refetched keys.
    assert_eq!(refresh(&h, &mut m).jwks_fetches, 0);
}

// ------------------------------------------------------------ forged tokens

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 (RFC 2104), for the key-confusion attack.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

/// Claims that pass every claim check of this login.
fn claims(h: &Harness, client_id: &str, nonce: &str) -> Value {
    let t = now().as_secs();
    json!({"iss": h.issuer(), "sub": "alice", "aud": client_id,
           "exp": t + 300, "iat": t, "nonce": nonce})
}

/// A token endpoint answer carrying `id_token`.
fn canned(id_token: &str) -> CannedResponse {
    let body = json!({
        "access_token": "opaque-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": LOGIN_SCOPE,
        "id_token": id_token,
    });
    CannedResponse::new(200, "application/json", &body.to_string())
}

/// Logs in with the token endpoint answering `forge(nonce)` instead.
fn forged_login(h: &Harness, m: &mut TokenManager, forge: impl Fn(&str) -> String) -> Outcome {
    let (transaction, callback) = authorize(h, CONFIDENTIAL_POST.id);
    h.fail_next(canned(&forge(transaction.nonce().secret())));
    let first = m.exchange_code(&transaction, &callback, now()).unwrap();
    drive(h, m, first)
}

#[test]
fn forged_id_tokens_are_refused_each_with_its_code_and_nothing_stored() {
    let h = Harness::start(HarnessOptions::default());
    let jwks_uri = h.discovery()["jwks_uri"].as_str().unwrap().to_owned();
    let jwks = h
        .agent()
        .get(&jwks_uri)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    let rsa_public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap()
        .to_string();
    let client = CONFIDENTIAL_POST.id;
    let header = |h: Value| b64(h.to_string());
    let rs256 = json!({"alg": "RS256", "kid": "harness-rs256"});

    type Forge<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let cases: Vec<(&str, Forge<'_>, &str)> = vec![
        (
            "bad signature",
            Box::new(|nonce: &str| {
                let signing = format!(
                    "{}.{}",
                    header(rs256.clone()),
                    b64(claims(&h, client, nonce).to_string())
                );
                format!("{signing}.{}", b64([7u8; 256]))
            }),
            "invalid_signature",
        ),
        (
            "alg none",
            Box::new(|nonce: &str| {
                format!(
                    "{}.{}.",
                    header(json!({"alg": "none"})),
                    b64(claims(&h, client, nonce).to_string())
                )
            }),
            "alg_none_refused",
        ),
        (
            "HS256 with the public key as secret",
            Box::new(|nonce: &str| {
                let signing = format!(
                    "{}.{}",
                    header(json!({"alg": "HS256", "kid": "harness-rs256"})),
                    b64(claims(&h, client, nonce).to_string())
                );
                let mac = hmac_sha256(rsa_public.as_bytes(), signing.as_bytes());
                format!("{signing}.{}", b64(mac))
            }),
            "hmac_alg_refused",
        ),
        (
            "unknown kid",
            Box::new(|nonce: &str| {
                let signing = format!(
                    "{}.{}",
                    header(json!({"alg": "RS256", "kid": "not-in-the-jwks"})),
                    b64(claims(&h, client, nonce).to_string())
                );
                format!("{signing}.{}", b64([7u8; 256]))
            }),
            "jwk_not_found",
        ),
    ];
    let mut codes = Vec::new();
    for (name, forge, code) in &cases {
        let mut m = manager(builder(&h, client, post_auth()).build().unwrap());
        let outcome = forged_login(&h, &mut m, forge);
        assert_eq!(outcome.result, Err((*code).to_owned()), "{name}");
        assert!(m.session().is_none(), "{name}: nothing stored");
        assert_eq!(m.in_flight(), 0, "{name}: the flight ended");
        codes.push(*code);
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), cases.len(), "each refusal has its own code");

    // The same bad-signature token with signature checks turned off is
    // accepted: its claims are right, only the signature refuses it.
    let mut unchecked = manager(
        builder(&h, client, post_auth())
            .verify_id_token_signatures(false)
            .build()
            .unwrap(),
    );
    assert!(unchecked.jwks_cache().is_none());
    let outcome = forged_login(&h, &mut unchecked, &cases[0].1);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.jwks_fetches, 0);
    assert!(unchecked.session().is_some());
}

#[test]
fn the_ureq_keeper_checks_signatures_through_its_driver() {
    let h = Harness::start(HarnessOptions::default());
    let config = builder(&h, CONFIDENTIAL_POST.id, post_auth())
        .build()
        .unwrap();
    let keeper = tokenkeeper_ureq::TokenKeeper::builder(config)
        .build()
        .unwrap();
    let (transaction, callback) = authorize(&h, CONFIDENTIAL_POST.id);
    keeper
        .login(&transaction, &callback)
        .expect("a verified login");
    let fetched = keeper
        .with_manager(|m| m.jwks_cache().and_then(|c| c.fetched_at()))
        .unwrap();
    assert!(fetched.is_some(), "the driver fetched the JWKS on request");

    // A forged answer through the same thin adapter: refused.
    keeper.clear_session().unwrap();
    let (transaction, callback) = authorize(&h, CONFIDENTIAL_POST.id);
    let forged = format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "kid": "harness-rs256"}).to_string()),
        b64(claims(&h, CONFIDENTIAL_POST.id, transaction.nonce().secret()).to_string()),
        b64([1u8; 256])
    );
    h.fail_next(canned(&forged));
    let error = keeper.login(&transaction, &callback).unwrap_err();
    assert_eq!(error.code(), "invalid_signature");
    assert!(keeper.session().is_none(), "nothing stored");
}

#[test]
fn a_forged_id_token_on_refresh_is_refused_and_the_tokens_stay() {
    let h = Harness::start(HarnessOptions::default());
    let mut m = manager(
        builder(&h, CONFIDENTIAL_POST.id, post_auth())
            .build()
            .unwrap(),
    );
    assert_eq!(login(&h, &mut m, CONFIDENTIAL_POST.id).result, Ok(()));
    let before = m.session().unwrap().token_set().clone();

    let mut forged_claims = claims(&h, CONFIDENTIAL_POST.id, "unused");
    forged_claims.as_object_mut().unwrap().remove("nonce");
    let forged = format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "kid": "harness-rs256"}).to_string()),
        b64(forged_claims.to_string()),
        b64([3u8; 256])
    );
    h.fail_next(canned(&forged));
    let outcome = refresh(&h, &mut m);
    assert_eq!(outcome.result, Err("invalid_signature".to_owned()));
    assert_eq!(outcome.jwks_fetches, 0, "the keys were cached at login");
    let after = m.session().unwrap().token_set();
    assert_eq!(after.id_token, before.id_token, "the ID token stays");
    assert_eq!(
        after.access_token, before.access_token,
        "the access token stays"
    );
}
