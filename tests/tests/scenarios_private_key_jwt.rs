//! `private_key_jwt` (RFC 7523, ES256) client authentication through every
//! adapter against node-oidc-provider's `pkjwt` client: login, refreshes
//! and logout, and a fresh assertion on the DPoP nonce retry.
//!
//! node-oidc-provider refuses a client assertion whose `jti` it has seen
//! (`client assertion tokens must only be used once`), so every success
//! after the first proves the handle signed a new assertion.

#[macro_use]
mod scenarios_common;

use std::collections::BTreeSet;

use scenarios_common::{
    Ask, Config, Driver, LOGIN_SCOPE, SharedStore, client_auth, config, dpop_signer, login,
    refresh_token,
};
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::grant::TokenExchangeRequest;
use tokenkeeper::{TokenRequest, TokenType};
use tokenkeeper_integration::{
    API1, API2, CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, DpopKey, Harness, HarnessOptions, PKJWT,
    TestClient, client_assertion, jwt, token_request,
};

scenarios!(
    private_key_jwt_login_refresh_and_logout,
    private_key_jwt_signs_a_fresh_assertion_for_the_dpop_nonce_retry,
    private_key_jwt_client_exchanges_a_token_as_itself,
    exchange_as_another_client_on_a_pkjwt_handle,
    exchange_as_the_pkjwt_client_on_a_secret_handle,
);

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Every recorded token request authenticated with a client assertion of
/// `pkjwt` (and nothing else).
fn assert_all_pkjwt(h: &Harness) {
    let stats = h.stats();
    assert!(!stats.recent_token_requests.is_empty());
    for request in &stats.recent_token_requests {
        let params = &request["params"];
        assert_eq!(params["client_id"], PKJWT.id, "{request}");
        assert_eq!(params["client_assertion_type"], JWT_BEARER, "{request}");
        assert_eq!(params["client_assertion"], "[redacted]", "{request}");
        assert!(params.get("client_secret").is_none(), "{request}");
        assert!(request.get("authorization_scheme").is_none(), "{request}");
    }
}

/// Scenario 12: the `pkjwt` client on a configuration from discovery: the
/// login's code exchange, three forced refreshes (each rotating; each a
/// new assertion, or the provider would refuse it as a replay) and a
/// logout whose revocation is authenticated the same way.
fn private_key_jwt_login_refresh_and_logout<D: Driver>() {
    let h = Harness::start(HarnessOptions::default());
    let metadata = D::discover(h.issuer()).unwrap();
    assert!(
        metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "private_key_jwt"))
    );
    let config = Config::builder(metadata.token_endpoint.clone(), PKJWT.id)
        .metadata(&metadata)
        .client_auth(client_auth(&PKJWT))
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
        .build()
        .unwrap();
    let store = SharedStore::default();
    let keeper = D::build(config, store.clone(), None);

    let token = login(&h, &keeper, &PKJWT).unwrap();
    assert_eq!(jwt::claims(token.token.secret())["client_id"], PKJWT.id);
    assert_eq!(keeper.session().unwrap().user().unwrap()["sub"], "alice");
    assert_eq!(h.stats().grant("authorization_code"), 1);

    let mut refresh_tokens = vec![refresh_token(&keeper.session().unwrap())];
    for round in 1..=3 {
        let refreshed = keeper
            .get(&TokenRequest::new().force_refresh())
            .unwrap_or_else(|e| panic!("refresh {round}: {e:?}"));
        assert_eq!(jwt::claims(refreshed.token.secret())["client_id"], PKJWT.id);
        refresh_tokens.push(refresh_token(&keeper.session().unwrap()));
    }
    let api2 = keeper.get(&TokenRequest::new().audience(API2)).unwrap();
    assert_eq!(jwt::audiences(api2.token.secret()), [API2]);
    refresh_tokens.push(refresh_token(&keeper.session().unwrap()));
    assert_eq!(refresh_tokens.iter().collect::<BTreeSet<_>>().len(), 5);
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 4);
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&5));
    assert_all_pkjwt(&h);

    // Logout: the revocation is authenticated with an assertion too (a
    // refused revocation would be an error here), and the refresh token is
    // dead afterwards.
    keeper.logout().unwrap();
    assert!(store.stored().unwrap().is_logged_out());
    assert_eq!(
        keeper.get(&TokenRequest::new()).unwrap_err().code,
        "logged_out"
    );
    let refused = token_request(
        &h,
        &PKJWT,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_tokens.last().unwrap()),
        ],
        &[],
    );
    assert_eq!(
        refused.error().as_deref(),
        Some("invalid_grant"),
        "{}",
        refused.body
    );
}

/// With a token endpoint that demands DPoP nonces, the first request of a
/// `pkjwt` client is answered `use_dpop_nonce` after the provider has
/// already accepted (and remembered) its client assertion: the retry must
/// carry a new one. First the raw fact (the same assertion twice is
/// refused), then the handle: login and client credentials succeed, with
/// exactly one nonce challenge.
fn private_key_jwt_signs_a_fresh_assertion_for_the_dpop_nonce_retry<D: Driver>() {
    let h = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        ..HarnessOptions::default()
    });

    // Raw: one assertion for both tries.
    let assertion = client_assertion(&PKJWT, h.issuer());
    let id_only = TestClient {
        auth: tokenkeeper_integration::ClientAuth::None,
        ..PKJWT
    };
    let params = [
        ("grant_type", "client_credentials"),
        ("resource", API1),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let key = DpopKey::generate();
    let proof = key.proof("POST", h.token_endpoint(), None, None);
    let challenged = token_request(&h, &id_only, &params, &[("DPoP", &proof)]);
    assert_eq!(challenged.error().as_deref(), Some("use_dpop_nonce"));
    let nonce = challenged.header("dpop-nonce").unwrap().to_owned();
    let proof = key.proof("POST", h.token_endpoint(), Some(&nonce), None);
    let reused = token_request(&h, &id_only, &params, &[("DPoP", &proof)]);
    assert_eq!(reused.status, 401, "{}", reused.body);
    assert_eq!(reused.error().as_deref(), Some("invalid_client"));
    h.reset_stats();

    // The handle: the core's nonce retry signs a new assertion.
    let store = SharedStore::default();
    let keeper = D::build(config(&h, &PKJWT), store, Some(dpop_signer()));
    let token = login(&h, &keeper, &PKJWT).unwrap();
    assert_eq!(token.token_type, TokenType::DPoP);
    let stats = h.stats();
    assert_eq!(stats.dpop_nonce_challenges, 1);
    assert_eq!(stats.token_requests_total, 2);
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&1));

    // Client credentials for the same client: the nonce is remembered.
    let machine = keeper
        .at_once(vec![(Ask::Machine, TokenRequest::new().audience(API2)); 4])
        .into_iter()
        .map(|a| a.unwrap().token.secret().to_owned())
        .collect::<BTreeSet<_>>();
    assert_eq!(machine.len(), 1);
    let machine = machine.first().unwrap();
    assert_eq!(jwt::claims(machine)["sub"], PKJWT.id);
    assert_eq!(
        jwt::claims(machine)["cnf"]["jkt"],
        keeper.dpop_thumbprint().unwrap()
    );
    let refreshed = keeper.get(&TokenRequest::new().force_refresh()).unwrap();
    assert_eq!(refreshed.token_type, TokenType::DPoP);
    let stats = h.stats();
    assert_eq!(stats.grant("client_credentials"), 1);
    assert_eq!(stats.grant("refresh_token"), 1);
    assert_eq!(stats.dpop_nonce_challenges, 1, "no further challenge");
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&3));
    assert_all_pkjwt(&h);
}

/// A `pkjwt` handle exchanges its user's token as itself (the exchange
/// request names the same client and method): the core adds the assertion
/// when the request leaves.
fn private_key_jwt_client_exchanges_a_token_as_itself<D: Driver>() {
    let h = Harness::start(HarnessOptions::default());
    let keeper = D::build(config(&h, &PKJWT), SharedStore::default(), None);
    let subject = login(&h, &keeper, &PKJWT).unwrap();
    h.reset_stats();

    let auth = client_auth(&PKJWT);
    let request = TokenExchangeRequest::new(
        h.token_endpoint(),
        PKJWT.id,
        &auth,
        subject.token.secret(),
        "urn:ietf:params:oauth:token-type:access_token",
    )
    .target(API2, TargetParameter::Resource);
    let exchanged = keeper.exchange(&request).unwrap();
    let at = exchanged.access_token.secret();
    assert_eq!(jwt::claims(at)["act"]["sub"], PKJWT.id);
    assert_eq!(jwt::audiences(at), [API2]);
    assert_all_pkjwt(&h);
}

/// Runs an exchange of `subject_client`'s login token on a handle
/// configured for `subject_client`, sent as `exchanging_client`; returns
/// the server's view of the exchange request and the outcome.
fn exchange_as<D: Driver>(
    subject_client: &TestClient,
    exchanging_client: &TestClient,
) -> (
    serde_json::Value,
    Result<tokenkeeper::TokenResponse, scenarios_common::Failure>,
) {
    let h = Harness::start(HarnessOptions::default());
    let keeper = D::build(config(&h, subject_client), SharedStore::default(), None);
    let subject = login(&h, &keeper, subject_client).unwrap();
    let auth = client_auth(exchanging_client);
    let request = TokenExchangeRequest::new(
        h.token_endpoint(),
        exchanging_client.id,
        &auth,
        subject.token.secret(),
        "urn:ietf:params:oauth:token-type:access_token",
    )
    .target(API2, TargetParameter::Resource);
    let outcome = keeper.exchange(&request);
    let sent = h.stats().recent_token_requests.last().unwrap().clone();
    (sent, outcome)
}

/// A `TokenExchangeRequest` names its own client and authentication, and
/// with secret-based configurations the exchange may be sent as another
/// client (scenario 9 does). On a `pkjwt` handle, an exchange sent as
/// `confidential-basic` should carry only that client's Basic header.
fn exchange_as_another_client_on_a_pkjwt_handle<D: Driver>() {
    let (sent, outcome) = exchange_as::<D>(&PKJWT, &CONFIDENTIAL_BASIC);
    assert_eq!(sent["authorization_scheme"], "Basic", "{sent}");
    assert!(
        sent["params"].get("client_assertion").is_none(),
        "the handle's own assertion was added to another client's request: {sent}"
    );
    let exchanged = outcome.unwrap();
    assert_eq!(
        jwt::claims(exchanged.access_token.secret())["act"]["sub"],
        CONFIDENTIAL_BASIC.id
    );
}

/// The other way round: a `client_secret_post` handle sends an exchange
/// as the `pkjwt` client (`ClientAuth::PrivateKeyJwt` in the request); it
/// should carry that client's assertion.
fn exchange_as_the_pkjwt_client_on_a_secret_handle<D: Driver>() {
    let (sent, outcome) = exchange_as::<D>(&CONFIDENTIAL_POST, &PKJWT);
    assert_eq!(sent["params"]["client_id"], PKJWT.id, "{sent}");
    assert_eq!(sent["params"]["client_assertion"], "[redacted]", "{sent}");
    let exchanged = outcome.unwrap();
    assert_eq!(
        jwt::claims(exchanged.access_token.secret())["act"]["sub"],
        PKJWT.id
    );
}
