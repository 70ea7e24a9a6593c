//! Scenarios of a user session's token lifecycle against node-oidc-provider
//! (refresh-token rotation on, two APIs), each run through every
//! adapter: login (three client authentication methods), cached reuse,
//! twenty rotations in a row, a forced refresh, two audiences from one
//! refresh token, and concurrent callers for both audiences.

#[macro_use]
mod scenarios_common;

use std::collections::BTreeSet;

use scenarios_common::{
    Ask, Driver, SharedStore, access_token, config, expire, logged_in, login, refresh_token,
    refresh_tokens_sent,
};
use tokenkeeper::{TokenRequest, TokenType};
use tokenkeeper_integration::{
    API1, API2, CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, Harness, HarnessOptions, PUBLIC_PKCE, jwt,
};

scenarios!(
    login_code_exchange_with_each_client_auth_method,
    cached_token_is_reused_without_a_request,
    twenty_rotations_in_a_row,
    forced_refresh_of_a_fresh_token,
    api1_then_api2_then_api1_from_the_cache,
    concurrent_callers_for_two_audiences_make_one_refresh_each,
);

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

/// Scenario 1: A login through the core with `client_secret_basic`,
/// `client_secret_post` and a public PKCE client (`none`): the code exchange
/// reaches the server once with the right authentication, the ID token is
/// checked, and the new session is saved.
fn login_code_exchange_with_each_client_auth_method<D: Driver>() {
    let h = harness();
    for (round, client) in [CONFIDENTIAL_BASIC, CONFIDENTIAL_POST, PUBLIC_PKCE]
        .iter()
        .enumerate()
    {
        let store = SharedStore::default();
        let keeper = D::build(config(&h, client), store.clone(), None);
        assert_eq!(
            keeper.get(&TokenRequest::new()).unwrap_err().code,
            "missing_session",
            "{}: nobody logged in yet",
            client.id
        );

        let token = login(&h, &keeper, client).unwrap();
        let claims = jwt::claims(token.token.secret());
        assert_eq!(claims["client_id"], client.id);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(jwt::audiences(token.token.secret()), [API1]);
        assert_eq!(token.token_type, TokenType::Bearer);

        // The session: saved once, with the user from the checked ID token,
        // a refresh token, and the returned access token.
        let session = keeper.session().unwrap();
        assert_eq!(session.user().unwrap()["sub"], "alice");
        assert!(session.token_set().id_token.is_some());
        assert!(!refresh_token(&session).is_empty());
        assert_eq!(access_token(&session), token.token.secret());
        let history = store.history();
        assert_eq!(history.len(), 1, "{}: the new session was saved", client.id);
        assert_eq!(history[0].to_json(), session.to_json());

        // Server side: one code exchange per login, no refresh, and the
        // client authenticated with its own method (secrets redacted by the
        // harness; PKCE verifier sent).
        let stats = h.stats();
        assert_eq!(stats.logins, round as u64 + 1);
        assert_eq!(stats.grant("authorization_code"), round as u64 + 1);
        assert_eq!(stats.grant("refresh_token"), 0);
        let exchange = stats.recent_token_requests.last().unwrap();
        assert_eq!(exchange["grant_type"], "authorization_code");
        assert_eq!(exchange["status"], 200);
        assert_eq!(exchange["params"]["code_verifier"], "[redacted]");
        let params = &exchange["params"];
        match client.auth {
            tokenkeeper_integration::ClientAuth::ClientSecretBasic => {
                assert_eq!(exchange["authorization_scheme"], "Basic");
                assert!(params.get("client_secret").is_none(), "{exchange}");
            }
            tokenkeeper_integration::ClientAuth::ClientSecretPost => {
                assert!(exchange.get("authorization_scheme").is_none(), "{exchange}");
                assert_eq!(params["client_id"], client.id);
                assert_eq!(params["client_secret"], "[redacted]");
            }
            _ => {
                assert!(exchange.get("authorization_scheme").is_none(), "{exchange}");
                assert_eq!(params["client_id"], client.id);
                assert!(params.get("client_secret").is_none(), "{exchange}");
            }
        }

        // And the token is good at the API it was issued for.
        let api = keeper
            .call_api(&TokenRequest::new(), &h.resource_url("/api1/data"))
            .unwrap();
        assert_eq!(api.status, 200, "{}: {:?}", client.id, api);
        assert_eq!(api.body["sub"], "alice");
    }
}

/// Scenario 2: A fresh cached token is returned again and again without any
/// token request reaching the server, and the API accepts it.
fn cached_token_is_reused_without_a_request<D: Driver>() {
    let h = harness();
    let store = SharedStore::default();
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    let first = login(&h, &keeper, &CONFIDENTIAL_POST).unwrap();
    h.reset_stats();

    for _ in 0..5 {
        let again = keeper.get(&TokenRequest::new()).unwrap();
        assert_eq!(again.token, first.token);
        assert_eq!(again.expires_at, first.expires_at);
        let explicit = keeper.get(&TokenRequest::new().audience(API1)).unwrap();
        assert_eq!(explicit.token, first.token, "API1 is the default audience");
    }
    let api = keeper
        .call_api(&TokenRequest::new(), &h.resource_url("/api1/data"))
        .unwrap();
    assert_eq!(api.status, 200, "{api:?}");

    let stats = h.stats();
    assert_eq!(stats.token_requests_total, 0, "{stats:?}");
    assert_eq!(stats.resource_requests, 1);
    assert_eq!(store.history().len(), 1, "only the login was saved");
}

/// Scenario 3: Twenty forced refreshes in a row: each rotates the refresh
/// token, the handle sends the newest one every time and saves every
/// rotation. The provider revokes the whole grant when a spent refresh token
/// comes back, so the twentieth success proves none ever did.
fn twenty_rotations_in_a_row<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_BASIC);
    let store = SharedStore::with_session(session.clone());
    let keeper = D::build(config(&h, &CONFIDENTIAL_BASIC), store.clone(), None);
    h.reset_stats();

    let mut refresh_tokens = vec![refresh_token(&session)];
    let mut access_tokens = vec![access_token(&session)];
    for round in 1..=20 {
        let token = keeper
            .get(&TokenRequest::new().force_refresh())
            .unwrap_or_else(|e| panic!("refresh {round}: {e:?}"));
        let current = keeper.session().unwrap();
        assert_eq!(access_token(&current), token.token.secret());
        assert_eq!(jwt::audiences(token.token.secret()), [API1]);
        refresh_tokens.push(refresh_token(&current));
        access_tokens.push(token.token.secret().to_owned());
    }

    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 20);
    assert_eq!(stats.token_requests_total, 20);
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&20));
    assert_eq!(
        refresh_tokens.iter().collect::<BTreeSet<_>>().len(),
        21,
        "every refresh rotated"
    );
    assert_eq!(access_tokens.iter().collect::<BTreeSet<_>>().len(), 21);
    // Each request carried the token the previous response rotated in.
    assert_eq!(refresh_tokens_sent(&h), refresh_tokens[..20]);
    // And every rotation was persisted, in order (20 saves, 20 new tokens).
    let saved: Vec<String> = store.history().iter().map(refresh_token).collect();
    assert_eq!(saved, refresh_tokens[1..]);
    assert_eq!(saved.iter().collect::<BTreeSet<_>>().len(), 20);
    let generations: Vec<u64> = store.history().iter().map(|s| s.generation()).collect();
    assert!(
        generations.windows(2).all(|w| w[0] < w[1]),
        "{generations:?}"
    );

    // A new handle on the same store starts where this one stopped.
    let reloaded = D::build(config(&h, &CONFIDENTIAL_BASIC), store.clone(), None);
    assert_eq!(
        reloaded.session().unwrap().to_json(),
        keeper.session().unwrap().to_json()
    );
}

/// Scenario 4: A forced refresh while the cached token is fresh: one request,
/// a new token that is then served from the cache.
fn forced_refresh_of_a_fresh_token<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(session.clone());
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let cached = keeper.get(&TokenRequest::new()).unwrap();
    assert_eq!(cached.token.secret(), access_token(&session));
    assert_eq!(h.stats().token_requests_total, 0, "fresh: no request");

    let forced = keeper.get(&TokenRequest::new().force_refresh()).unwrap();
    assert_ne!(forced.token, cached.token);
    assert!(forced.expires_at >= cached.expires_at);
    assert_eq!(h.stats().grant("refresh_token"), 1);
    let current = keeper.session().unwrap();
    assert_ne!(refresh_token(&current), refresh_token(&session), "rotated");
    assert_eq!(
        store.stored().unwrap().to_json(),
        current.to_json(),
        "saved"
    );

    let after = keeper.get(&TokenRequest::new()).unwrap();
    assert_eq!(after.token, forced.token, "the new token is the cached one");
    assert_eq!(h.stats().token_requests_total, 1);
    let api = keeper
        .call_api(&TokenRequest::new(), &h.resource_url("/api1/data"))
        .unwrap();
    assert_eq!(api.status, 200, "{api:?}");
}

/// Scenario 5: One refresh token, two audiences (RFC 8707 `resource`): API1
/// (main token set, expired: refresh), API2 (no token yet: refresh), API1
/// again (from the cache). Exactly two refreshes; the access tokens' `aud`
/// are API1 and API2 and each API accepts its own.
fn api1_then_api2_then_api1_from_the_cache<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(expire(&session));
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let api1 = keeper.get(&TokenRequest::new().audience(API1)).unwrap();
    assert_eq!(jwt::claims(api1.token.secret())["aud"], API1);
    let api2 = keeper.get(&TokenRequest::new().audience(API2)).unwrap();
    assert_eq!(jwt::claims(api2.token.secret())["aud"], API2);
    assert_eq!(api2.audience.as_deref(), Some(API2));
    let api1_again = keeper.get(&TokenRequest::new().audience(API1)).unwrap();
    assert_eq!(api1_again.token, api1.token, "API1 from the cache");
    let api2_again = keeper.get(&TokenRequest::new().audience(API2)).unwrap();
    assert_eq!(api2_again.token, api2.token, "API2 from the cache");

    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 2, "{stats:?}");
    let resources: Vec<&serde_json::Value> = stats
        .recent_token_requests
        .iter()
        .map(|r| &r["params"]["resource"])
        .collect();
    assert_eq!(resources, [API1, API2]);
    assert!(
        stats
            .recent_token_requests
            .iter()
            .all(|r| r["params"].get("audience").is_none()),
        "Resource mode sends no `audience`"
    );

    // The session keeps API1 in the main token set and API2 in its cache.
    let current = keeper.session().unwrap();
    assert_eq!(access_token(&current), api1.token.secret());
    let entries = current.access_tokens();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].audience, API2);
    assert_eq!(entries[0].access_token, api2.token);
    assert_eq!(store.stored().unwrap().to_json(), current.to_json());

    for (audience, path) in [(API1, "/api1/data"), (API2, "/api2/data")] {
        let api = keeper
            .call_api(
                &TokenRequest::new().audience(audience),
                &h.resource_url(path),
            )
            .unwrap();
        assert_eq!(api.status, 200, "{path}: {api:?}");
        assert_eq!(api.body["aud"], audience);
    }
    assert_eq!(
        h.stats().grant("refresh_token"),
        2,
        "the API calls used the cache"
    );
}

/// Scenario 6: Sixteen callers per audience at once on an expired session:
/// exactly one refresh per audience, and never two in flight (the second
/// refresh sent the token the first rotated in; a replay would have made the
/// provider revoke the grant, and a later refresh still succeeds).
fn concurrent_callers_for_two_audiences_make_one_refresh_each<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(expire(&session));
    let keeper = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    let asks = (0..32)
        .map(|i| {
            let audience = if i % 2 == 0 { API1 } else { API2 };
            (Ask::User, TokenRequest::new().audience(audience))
        })
        .collect();
    let answers = keeper.at_once(asks);

    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 2, "{stats:?}");
    assert_eq!(stats.token_requests_total, 2);
    for (audience, parity) in [(API1, 0), (API2, 1)] {
        let tokens: BTreeSet<String> = answers
            .iter()
            .skip(parity)
            .step_by(2)
            .map(|a| a.as_ref().unwrap().token.secret().to_owned())
            .collect();
        assert_eq!(tokens.len(), 1, "{audience}: all 16 share one token");
        assert_eq!(jwt::audiences(tokens.first().unwrap()), [audience]);
    }

    // Never two in flight: the first refresh spent the login's refresh
    // token, the second the one the first rotated in.
    let history = store.history();
    let sent = refresh_tokens_sent(&h);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], refresh_token(&session));
    assert_eq!(sent[1], refresh_token(&history[0]));
    let saved: BTreeSet<String> = history.iter().map(refresh_token).collect();
    assert_eq!(saved.len(), 2, "both rotations saved");
    assert_eq!(
        refresh_token(&store.stored().unwrap()),
        refresh_token(&keeper.session().unwrap())
    );

    // No replay happened: the grant is alive.
    let later = keeper.get(&TokenRequest::new().force_refresh()).unwrap();
    assert_eq!(jwt::audiences(later.token.secret()), [API1]);
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 3);
    assert_eq!(stats.token_responses_by_status.get("200"), Some(&3));
    assert_eq!(stats.token_responses_by_status.get("400"), None);
}
