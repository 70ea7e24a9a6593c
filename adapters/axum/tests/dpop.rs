//! DPoP through the integration, against the real server: the login asks
//! for `dpop_jkt` and exchanges the code with a proof, `/auth/access-token`
//! hands out DPoP-bound tokens (refreshes included), and `Api::send`
//! presents them with a proof, answering the resource server's nonce
//! challenge with one retry. The token endpoint demands its own nonce too.

mod support;

use axum::routing::get;
use support::{API1, API2, Browser};
use tokenkeeper::TokenRequest;
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper_axum::Api;
use tokenkeeper_axum::driver::OsEntropy;
use tokenkeeper_integration::jwt;
use tokenkeeper_integration::{Harness, HarnessOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_login_route_and_api_calls_with_nonces() {
    let harness = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        rs_nonce_required: true,
        ..HarnessOptions::default()
    });
    let api1 = harness.resource_url("/api1/data");
    let signer = P256Signer::new(DpopKey::generate(&mut OsEntropy).unwrap());
    let thumbprint = signer.key().thumbprint().to_owned();
    let app = support::start_with(
        harness,
        |b| b.dpop(signer),
        move |router, auth| {
            router
                .route(
                    "/call",
                    get(move |api: Api| {
                        let url = api1.clone();
                        async move {
                            let request = api.client().get(&url).build().unwrap();
                            match api.send(&TokenRequest::new(), request).await {
                                Ok(r) => format!("{}", r.status().as_u16()),
                                Err(e) => format!("error {e}"),
                            }
                        }
                    }),
                )
                .layer(auth.layer())
        },
    )
    .await;

    // The login binds the code to the key (RFC 9449 §10).
    let mut browser = Browser::new();
    let login = browser.get(&format!("{}/auth/login", app.base)).await;
    assert_eq!(login.status, 302);
    let authorize = url::Url::parse(login.location()).unwrap();
    let jkt = authorize
        .query_pairs()
        .find(|(n, _)| n == "dpop_jkt")
        .map(|(_, v)| v.into_owned());
    assert_eq!(jkt.as_deref(), Some(thumbprint.as_str()));
    let callback = tokio::task::block_in_place(|| app.harness.login(authorize.as_str()));
    let done = browser.get(&callback).await;
    assert_eq!(done.status, 302, "{}", done.body);
    let stats = app.harness.stats();
    let exchange = stats
        .recent_token_requests
        .iter()
        .find(|r| r["grant_type"] == "authorization_code" && r["status"] == 200)
        .expect("a code exchange");
    assert_eq!(exchange["dpop"], true, "{exchange}");
    assert!(
        stats.dpop_nonce_challenges >= 1,
        "the server's nonce answered"
    );

    // The route hands out the bound token, and a bound refresh for API2.
    for (query, audience) in [
        ("", API1),
        ("?audience=https%3A%2F%2Fapi2.example.com", API2),
    ] {
        let r = browser
            .get(&format!("{}/auth/access-token{query}", app.base))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let token = body["token"].as_str().unwrap();
        assert_eq!(jwt::audiences(token), [audience]);
        assert_eq!(jwt::claims(token)["cnf"]["jkt"], thumbprint.as_str());
    }
    let refreshes: Vec<_> = app
        .harness
        .stats()
        .recent_token_requests
        .into_iter()
        .filter(|r| r["grant_type"] == "refresh_token" && r["status"] == 200)
        .collect();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0]["dpop"], true);

    // The API call: DPoP proof, the resource server's nonce challenge,
    // one retry with its nonce.
    let before = app.harness.stats().resource_nonce_challenges;
    let call = browser.get(&format!("{}/call", app.base)).await;
    assert_eq!(call.body, "200");
    let stats = app.harness.stats();
    assert_eq!(stats.resource_nonce_challenges, before + 1);
    // A nonce the server rotates is answered again.
    app.harness.rotate_rs_nonce();
    let call = browser.get(&format!("{}/call", app.base)).await;
    assert_eq!(call.body, "200");
    assert_eq!(app.harness.stats().resource_nonce_challenges, before + 2);
}
