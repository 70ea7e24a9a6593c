//! The bad paths, each run through every adapter against
//! node-oidc-provider: a refresh token the server does not know, a target
//! the grant does not cover, a wrong client secret, a server that is down,
//! an HTML error page, and a resource server that rejects the token.

#[macro_use]
mod scenarios_common;

use scenarios_common::{
    Ask, Config, Driver, SharedStore, access_token, client_auth, closed_port, config, expire,
    logged_in, refresh_token, with_refresh_token,
};
use tokenkeeper::{ResponseError, TokenRequest};
use tokenkeeper_integration::{
    API1, CONFIDENTIAL_POST, CannedResponse, Harness, HarnessOptions, TestClient, token_request,
};

scenarios!(
    unknown_refresh_token_is_invalid_grant_then_reauthentication,
    ungranted_target_is_invalid_target_and_burns_the_refresh_token,
    wrong_client_secret_is_invalid_client_and_the_session_is_untouched,
    server_down_is_a_transport_error_and_the_session_is_untouched,
    html_500_is_a_typed_error_and_the_next_call_succeeds,
    invalid_token_from_the_api_refreshes_and_resends_once,
);

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

/// `invalid_grant` for a refresh token the server does not know: the
/// refresh fails with the server's cause and the session is marked for
/// re-authentication (saved); the next ask is `reauthentication_required`
/// without any request.
fn unknown_refresh_token_is_invalid_grant_then_reauthentication<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let unknown = with_refresh_token(&expire(&session), "not-a-refresh-token-of-this-server");
    let store = SharedStore::with_session(unknown);
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let error = keeper.get(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code, "failed_to_refresh_token", "{error:?}");
    assert_eq!(error.server_error(), Some("invalid_grant"));
    assert!(matches!(
        error.refresh_cause(),
        Some(ResponseError::Server(e)) if e.status == 400
    ));
    assert!(
        error.requires_login,
        "the first invalid_grant already says only a login can help"
    );
    assert!(keeper.session().unwrap().is_reauthentication_required());
    assert!(
        store.stored().unwrap().is_reauthentication_required(),
        "the mark was saved"
    );
    assert_eq!(h.stats().grant("refresh_token"), 1);

    for request in [
        TokenRequest::new(),
        TokenRequest::new().force_refresh(),
        TokenRequest::new().audience(tokenkeeper_integration::API2),
    ] {
        let error = keeper.get(&request).unwrap_err();
        assert_eq!(error.code, "reauthentication_required", "{request:?}");
        assert!(error.requires_login);
    }
    assert_eq!(h.stats().token_requests_total, 1, "nothing sent again");
}

/// `invalid_target` for an audience the grant does not cover (resource
/// indicators are exact strings: `https://api1.example.com/` with a
/// trailing slash is another, unknown resource). node-oidc-provider
/// consumes the refresh token before it checks the resource, so the core
/// marks the session for re-authentication instead of replaying a spent
/// token (which would revoke the grant).
fn ungranted_target_is_invalid_target_and_burns_the_refresh_token<D: Driver>() {
    const SLASHED: &str = "https://api1.example.com/";
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(session.clone());
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let error = keeper
        .get(&TokenRequest::new().audience(SLASHED))
        .unwrap_err();
    assert_eq!(error.code, "failed_to_refresh_token", "{error:?}");
    assert_eq!(error.server_error(), Some("invalid_target"));
    let sent = h.stats().recent_token_requests;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["params"]["resource"], SLASHED, "sent byte for byte");
    assert!(keeper.session().unwrap().is_reauthentication_required());
    assert!(store.stored().unwrap().is_reauthentication_required());

    // The cached API1 token is still fresh and still served; what needs a
    // refresh asks for a login, without a request.
    let cached = keeper.get(&TokenRequest::new()).unwrap();
    assert_eq!(cached.token, session.token_set().access_token);
    let error = keeper
        .get(&TokenRequest::new().audience(SLASHED))
        .unwrap_err();
    assert_eq!(error.code, "reauthentication_required", "{error:?}");
    assert!(error.requires_login);
    // A forced refresh (a caller that just got a 401) cannot be answered
    // with the cached token when the refresh token is known dead: it asks
    // for a login, without a request.
    let forced = keeper
        .get(&TokenRequest::new().force_refresh())
        .unwrap_err();
    assert_eq!(forced.code, "reauthentication_required", "{forced:?}");
    assert!(forced.requires_login);
    assert_eq!(h.stats().token_requests_total, 1);

    // Server side: the refresh token really was consumed.
    let replay = token_request(
        &h,
        &CONFIDENTIAL_POST,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token(&session)),
            ("resource", API1),
        ],
        &[],
    );
    assert_eq!(
        replay.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        replay.body
    );
}

/// A wrong client secret: `failed_to_refresh_token` caused by
/// `invalid_client` (HTTP 401), nothing changed or saved; the same stored
/// session then refreshes with the right secret (the server did not
/// consume the refresh token either).
fn wrong_client_secret_is_invalid_client_and_the_session_is_untouched<D: Driver>() {
    let h = harness();
    let session = expire(&logged_in::<D>(&h, &CONFIDENTIAL_POST));
    let store = SharedStore::with_session(session.clone());
    let wrong = TestClient {
        secret: Some("not-the-secret"),
        ..CONFIDENTIAL_POST
    };
    let keeper = D::build(config(&h, &wrong), store.clone(), None);
    h.reset_stats();

    let error = keeper.get(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code, "failed_to_refresh_token", "{error:?}");
    assert_eq!(error.server_error(), Some("invalid_client"));
    assert!(matches!(
        error.refresh_cause(),
        Some(ResponseError::Server(e)) if e.status == 401
    ));
    assert!(!error.requires_login);
    let after = keeper.session().unwrap();
    assert_eq!(after.to_json(), session.to_json(), "untouched");
    assert!(!after.is_reauthentication_required());
    assert!(store.history().is_empty(), "nothing saved");

    let right = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    right.get(&TokenRequest::new()).unwrap();
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 2);
    assert_eq!(stats.token_responses_by_status.get("401"), Some(&1));
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&1));
}

/// The token endpoint down (a port nobody listens on): a transport error
/// for every caller, also for those that waited on the failed refresh; the
/// session is untouched and nothing is saved.
fn server_down_is_a_transport_error_and_the_session_is_untouched<D: Driver>() {
    let h = harness();
    let session = expire(&logged_in::<D>(&h, &CONFIDENTIAL_POST));
    let store = SharedStore::with_session(session.clone());
    let down = Config::builder(
        format!("http://127.0.0.1:{}/token", closed_port()),
        CONFIDENTIAL_POST.id,
    )
    .client_auth(client_auth(&CONFIDENTIAL_POST))
    .issuer(h.issuer())
    .audience(API1)
    .build()
    .unwrap();
    let keeper = D::build(down, store.clone(), None);

    let answers = keeper.at_once(vec![(Ask::User, TokenRequest::new()); 4]);
    for answer in answers {
        let error = answer.unwrap_err();
        assert_eq!(error.code, "transport_error", "{error:?}");
        assert!(!error.requires_login);
    }
    let error = keeper.get(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code, "transport_error", "{error:?}");
    let after = keeper.session().unwrap();
    assert_eq!(after.to_json(), session.to_json(), "untouched");
    assert!(store.history().is_empty(), "nothing saved");
}

/// A 500 with an HTML body (a proxy's error page): a typed error naming
/// the status, the session untouched, and the next call succeeds with the
/// same refresh token.
fn html_500_is_a_typed_error_and_the_next_call_succeeds<D: Driver>() {
    let h = harness();
    let session = expire(&logged_in::<D>(&h, &CONFIDENTIAL_POST));
    let store = SharedStore::with_session(session.clone());
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();
    h.fail_next(CannedResponse::new(
        500,
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><body><h1>500 Internal Server Error</h1></body></html>",
    ));

    let error = keeper.get(&TokenRequest::new()).unwrap_err();
    assert_eq!(error.code, "failed_to_refresh_token", "{error:?}");
    let cause = error.refresh_cause().unwrap();
    assert_eq!(cause, &ResponseError::NotJson { status: 500 });
    assert!(cause.to_string().contains("500"), "{cause}");
    assert_eq!(error.server_error(), None);
    assert!(!error.requires_login);
    assert_eq!(keeper.session().unwrap().to_json(), session.to_json());
    assert!(store.history().is_empty(), "nothing saved");

    let token = keeper.get(&TokenRequest::new()).unwrap();
    assert_ne!(token.token, session.token_set().access_token);
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 2);
    assert_eq!(stats.recent_token_requests[0]["canned"], true);
    assert_eq!(
        stats.recent_token_requests[0]["params"]["refresh_token"],
        stats.recent_token_requests[1]["params"]["refresh_token"],
        "the same refresh token, untouched by the failure"
    );
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&1));
    assert!(!keeper.session().unwrap().is_reauthentication_required());
    assert_eq!(store.history().len(), 1, "the success was saved");
}

/// An API1 token sent to API2: `401 invalid_token`. The core marks the
/// token rejected, the handle gets a new one (a refresh, saved) and resends
/// once; API2 still refuses an API1 token, so that 401 is the answer. The
/// second 401 rejected the replacement too (the core cannot tell a wrong
/// audience from a revoked token), so the next use refreshes again, and
/// that token is good where it belongs. (Moved from the adapters' own
/// integration tests.)
fn invalid_token_from_the_api_refreshes_and_resends_once<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(session.clone());
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let api = keeper
        .call_api(&TokenRequest::new(), &h.resource_url("/api2/data"))
        .unwrap();
    assert_eq!(api.status, 401, "{api:?}");
    let challenge = api.www_authenticate.unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let stats = h.stats();
    assert_eq!(stats.resource_requests, 2, "sent, then resent once");
    assert_eq!(
        stats.grant("refresh_token"),
        1,
        "the rejected token was replaced"
    );
    let current = keeper.session().unwrap();
    assert_ne!(access_token(&current), access_token(&session));
    assert_eq!(store.stored().unwrap().generation(), current.generation());

    let api = keeper
        .call_api(&TokenRequest::new(), &h.resource_url("/api1/data"))
        .unwrap();
    assert_eq!(api.status, 200, "{api:?}");
    assert_eq!(h.stats().grant("refresh_token"), 2);
}
