//! Drives the token manager two ways, chosen by the first byte:
//!
//! - even: the reference model of `core/tests/support/model.rs` in lockstep
//!   with one to three keepers sharing one store (logout, clear, new logins,
//!   leases and late answers, DPoP nonces, ID token failures, multi-resource
//!   entries with different requested scopes), every invariant and
//!   prediction checked after every step (the model's input format,
//!   `model::decode`, so `cargo test` replays the corpus);
//! - odd: one manager fed arbitrary bytes as responses and headers, checked
//!   after every step: no ready token expired at `now`, at most one refresh
//!   in flight, the newest refresh token never lost, the generation never
//!   going back, bad input leaving the whole session JSON as it was (except
//!   what the answer proved), no panic.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    Action, ClientSecret, Completion, Config, HttpResponse, RequestId, SeededEntropy, Session,
    TokenManager, TokenRequest, UnixTime,
};

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    Get {
        audience: Option<&'a str>,
        scope: Option<&'a str>,
        force: bool,
        merge: Option<bool>,
    },
    GetAfterWait {
        audience: Option<&'a str>,
        waited: u8,
    },
    Respond {
        which: u8,
        status: u16,
        headers: Vec<(&'a str, &'a str)>,
        body: &'a [u8],
    },
    RespondToken {
        which: u8,
        access_token: &'a str,
        refresh_token: Option<&'a str>,
        expires_in: i64,
        scope: Option<&'a str>,
    },
    TransportError(u8),
    Cancel(u8),
    Forward(u16),
    Back(u16),
    Timeout,
    ResourceResponse {
        status: u16,
        www_authenticate: &'a str,
        nonce: Option<&'a str>,
    },
    Authorize {
        method: &'a str,
        url: &'a str,
    },
    ReloadSession,
}

#[path = "../../core/tests/support/model.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let (setup, mut ops) = model::decode(rest);
        ops.truncate(64);
        if let Err(violation) = model::World::run(setup, &ops) {
            panic!("{violation}");
        }
        return;
    }
    let Ok((seed, ops)) = <(u8, Vec<Op<'_>>)>::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    raw_bytes(seed, ops);
});

fn raw_bytes(seed: u8, ops: Vec<Op<'_>>) {
    let config = Config::builder("https://as.example/oauth/token", "client")
        .client_auth(ClientAuth::SecretBasic(ClientSecret::new("secret")))
        .max_cache_entries(1 + usize::from(seed % 4))
        .strict_scopes(seed & 1 == 1)
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(u64::from(seed)));
    let dpop = seed & 2 != 0;
    if dpop {
        let key = DpopKey::generate(&mut SeededEntropy::new(u64::from(seed))).unwrap();
        m.enable_dpop(P256Signer::new(key)).unwrap();
    }
    let session = Session::from_json(
        br#"{"tokenSet":{"accessToken":"at0","refreshToken":"rt0","expiresAt":1000,"idToken":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.x"}}"#,
        &Default::default(),
    )
    .unwrap();
    m.set_session(session);
    let mut now: u64 = 500;
    let mut issued: Vec<RequestId> = Vec::new();
    let mut last_token: Option<tokenkeeper::AccessTokenInfo> = None;
    for op in ops.into_iter().take(64) {
        let at = UnixTime::from_secs(now);
        let rt_before = stored_rt(&m);
        let generation_before = m.session().map(|s| s.generation());
        let mut rotated_to: Option<String> = None;
        match op {
            Op::Get {
                audience,
                scope,
                force,
                merge,
            } => {
                let request = TokenRequest {
                    audience,
                    scope,
                    force_refresh: force,
                    merge_scopes: merge,
                };
                match m.get_access_token(&request, at) {
                    Action::Ready(token) => {
                        assert!(token.expires_at > at, "expired token served");
                        last_token = Some(token.to_owned());
                    }
                    Action::Send(out) => issued.push(out.id),
                    _ => {}
                }
            }
            Op::GetAfterWait { audience, waited } => {
                if let Some(&id) = pick(&issued, waited) {
                    let request = TokenRequest {
                        audience,
                        ..TokenRequest::new()
                    };
                    match m.get_access_token_after_wait(&request, id, at) {
                        Action::Ready(token) => assert!(token.expires_at > at),
                        Action::Send(out) => issued.push(out.id),
                        _ => {}
                    }
                }
            }
            Op::Respond {
                which,
                status,
                headers,
                body,
            } => {
                if let Some(&id) = pick(&issued, which) {
                    let mut response = HttpResponse::new(status, body.to_vec());
                    for (n, v) in headers.into_iter().take(8) {
                        response.headers.append(n, v);
                    }
                    rotated_to = rotated(&response.body);
                    let before = session_json(&m);
                    let failed = check_completion(m.handle_response(id, response, at), at);
                    unchanged_but_proved(&m, before, failed, rotated_to.as_deref());
                }
            }
            Op::RespondToken {
                which,
                access_token,
                refresh_token,
                expires_in,
                scope,
            } => {
                if let Some(&id) = pick(&issued, which) {
                    let mut body = serde_json::json!({
                        "access_token": access_token,
                        "token_type": if dpop { "DPoP" } else { "Bearer" },
                        "expires_in": expires_in,
                    });
                    if let Some(rt) = refresh_token {
                        body["refresh_token"] = rt.into();
                    }
                    if let Some(scope) = scope {
                        body["scope"] = scope.into();
                    }
                    let mut response = HttpResponse::new(200, body.to_string());
                    if dpop {
                        response.headers.append("DPoP-Nonce", "n-1");
                    }
                    rotated_to = rotated(&response.body);
                    let before = session_json(&m);
                    let failed = check_completion(m.handle_response(id, response, at), at);
                    unchanged_but_proved(&m, before, failed, rotated_to.as_deref());
                }
            }
            Op::TransportError(which) => {
                if let Some(&id) = pick(&issued, which) {
                    let before = session_json(&m);
                    let _ = m.handle_transport_error(id, at);
                    unchanged_but_proved(&m, before, Some(None), None);
                }
            }
            Op::Cancel(which) => {
                if let Some(&id) = pick(&issued, which) {
                    let before = session_json(&m);
                    let _ = m.cancel(id);
                    unchanged_but_proved(&m, before, Some(None), None);
                }
            }
            Op::Forward(s) => now = now.saturating_add(u64::from(s)),
            Op::Back(s) => now = now.saturating_sub(u64::from(s)),
            Op::Timeout => m.handle_timeout(at),
            Op::ResourceResponse {
                status,
                www_authenticate,
                nonce,
            } => {
                if let Some(token) = &last_token {
                    let mut response = HttpResponse::new(status, Vec::new())
                        .with_header("WWW-Authenticate", www_authenticate);
                    if let Some(nonce) = nonce {
                        response.headers.append("DPoP-Nonce", nonce);
                    }
                    let _ =
                        m.handle_resource_response("https://api.example/x", token, &response, at);
                }
            }
            Op::Authorize { method, url } => {
                if let Some(token) = &last_token {
                    let method = tokenkeeper::Method::new(method);
                    if let Ok(tokenkeeper::Authorization::Ready(headers)) =
                        m.authorize(&method, url, token, at)
                    {
                        let authorization = headers.get("authorization").unwrap_or("");
                        // A DPoP-bound token is never sent as Bearer.
                        if token.token_type == tokenkeeper::TokenType::DPoP {
                            assert!(authorization.starts_with("DPoP "));
                            assert!(headers.get("dpop").is_some());
                        }
                    }
                }
            }
            Op::ReloadSession => {
                let json = m.session().unwrap().to_json();
                let again = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
                assert_eq!(again.to_json(), json);
                m.set_session(again);
            }
        }
        // At most one refresh in flight.
        assert!(m.in_flight() <= 1);
        // The newest refresh token is never lost: it changes only to the
        // one a response carried.
        let rt_after = stored_rt(&m);
        if rt_after != rt_before {
            assert!(rt_after.is_some(), "refresh token dropped");
            assert_eq!(
                rt_after, rotated_to,
                "refresh token changed to one no response carried"
            );
        }
        // The generation never goes back.
        if let (Some(before), Some(after)) =
            (generation_before, m.session().map(|s| s.generation()))
        {
            assert!(after >= before);
        }
        while m.poll_event().is_some() {}
    }
}

fn pick(ids: &[RequestId], which: u8) -> Option<&RequestId> {
    if ids.is_empty() {
        None
    } else {
        ids.get(usize::from(which) % ids.len())
    }
}

fn stored_rt(m: &TokenManager) -> Option<String> {
    m.session()?
        .token_set()
        .refresh_token
        .as_ref()
        .map(|r| r.secret().to_string())
}

fn rotated(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("refresh_token")?.as_str().map(String::from)
}

/// Checks a completion; gives `Some(error)` when the answer failed (`None`
/// inside: no error to judge by).
fn check_completion(
    completion: Completion<'_>,
    at: UnixTime,
) -> Option<Option<tokenkeeper::Error>> {
    match completion {
        Completion::Ready(token) => {
            assert!(token.expires_at > at, "expired token completed");
            None
        }
        Completion::Failed(error) => Some(Some(error)),
        _ => None,
    }
}

fn session_json(m: &TokenManager) -> Option<String> {
    m.session().map(Session::to_json)
}

/// Bad input (a failed answer, a transport error, a cancel) leaves the
/// whole session JSON as it was, except what the answer proved: a rotated
/// refresh token, a dead grant (`invalid_grant`, `invalid_target`); the
/// generation and the refresh claim may move. `missing_scopes` stores the
/// token by design.
fn unchanged_but_proved(
    m: &TokenManager,
    before: Option<String>,
    failed: Option<Option<tokenkeeper::Error>>,
    rotated_to: Option<&str>,
) {
    let Some(error) = failed else {
        return;
    };
    if error.as_ref().is_some_and(|e| e.code() == "missing_scopes") {
        return;
    }
    let after = session_json(m);
    let rt_proved = rotated_to.is_some() && stored_rt(m).as_deref() == rotated_to;
    let grant_dead = error
        .as_ref()
        .and_then(tokenkeeper::Error::server_error)
        .is_some_and(|s| s.error == "invalid_grant" || s.error == "invalid_target");
    assert_eq!(
        model::normalized(before.as_deref(), rt_proved, grant_dead),
        model::normalized(after.as_deref(), rt_proved, grant_dead),
        "bad input ({:?}) changed the session beyond what it proved",
        error.as_ref().map(tokenkeeper::Error::code)
    );
}
