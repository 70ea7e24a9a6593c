//! DPoP with a non-extractable Web Crypto key, in Node, against the
//! harness started with `HARNESS_DPOP_NONCE=required` (its URLs in
//! `WASM_HARNESS_DPOP_*`): the token endpoint demands a DPoP nonce, and so
//! does the resource server.
#![cfg(target_arch = "wasm32")]
#![allow(missing_docs)]

mod support;

use std::collections::BTreeSet;

use futures::future::join_all;
use support::{Harness, config, expire, get, login_request};
use tokenkeeper::{MemoryStore, TokenRequest, TokenType};
use tokenkeeper_wasm::{TokenKeeper, WebCryptoKey};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

fn dpop_harness() -> Harness {
    Harness::from_env_prefix("WASM_HARNESS_DPOP")
}

#[wasm_bindgen_test]
async fn the_key_is_non_extractable_and_its_signatures_verify() {
    let key = WebCryptoKey::generate().await.unwrap();
    assert!(!key.is_extractable());
    assert_eq!(key.thumbprint().len(), 43, "base64url SHA-256");
    // Web Crypto refuses to export the private key.
    let subtle = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|c| js_sys::Reflect::get(&c, &"subtle".into()))
        .unwrap();
    let subtle: web_sys::SubtleCrypto = wasm_bindgen::JsCast::unchecked_into(subtle);
    let export = subtle.export_key("pkcs8", key.private_key()).unwrap();
    assert!(
        JsFuture::from(export).await.is_err(),
        "pkcs8 export refused"
    );

    // Raw r || s over the bytes themselves, verifiable with the public JWK.
    let input = b"eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0";
    let signature = key.sign(input).await.unwrap();
    key.public_jwk().verify(input, &signature).unwrap();
    assert!(key.public_jwk().verify(b"other", &signature).is_err());

    // Brought back from its CryptoKeys (as from IndexedDB): the same key.
    let again = WebCryptoKey::from_keys(key.private_key().clone(), key.public_key().clone())
        .await
        .unwrap();
    assert_eq!(again.thumbprint(), key.thumbprint());
    // The public key is no private key.
    assert!(
        WebCryptoKey::from_keys(key.public_key().clone(), key.public_key().clone())
            .await
            .is_err()
    );
}

/// A DPoP login (`dpop_jkt`, a proof on the code exchange after the
/// server's `use_dpop_nonce`), with the Web Crypto key signing every proof.
async fn dpop_login(h: &Harness, key: &WebCryptoKey) -> TokenKeeper {
    let keeper = TokenKeeper::builder(config(h))
        .dpop(key.clone())
        .build()
        .unwrap();
    let (url, transaction) = login_request(h)
        .dpop_jkt(key.thumbprint())
        .start(&mut tokenkeeper_wasm::WebCryptoEntropy)
        .unwrap();
    let callback = h.login(&url).await;
    let token = keeper.login(&transaction, &callback).await.unwrap();
    assert_eq!(token.token_type, TokenType::DPoP);
    keeper
}

#[wasm_bindgen_test]
async fn dpop_login_refresh_and_api_call_with_nonces() {
    let h = dpop_harness();
    let key = WebCryptoKey::generate().await.unwrap();
    h.reset_stats().await;
    let keeper = dpop_login(&h, &key).await;
    let stats = h.stats().await;
    assert_eq!(
        stats["dpop_nonce_challenges"], 1,
        "the code exchange was retried once with the server's nonce"
    );
    assert_eq!(stats["token_requests_by_grant"]["authorization_code"], 2);

    // Refreshes carry proofs with the nonce learned: no more challenges
    // while it is current, and the tokens stay bound.
    for _ in 0..3 {
        let token = keeper
            .get_access_token(&TokenRequest::new().force_refresh())
            .await
            .unwrap();
        assert_eq!(token.token_type, TokenType::DPoP);
    }
    let stats = h.stats().await;
    let recent = stats["recent_token_requests"].as_array().unwrap();
    assert!(
        recent.iter().all(|r| r["dpop"] == true),
        "every token request had a proof: {recent:?}"
    );
    assert!(
        recent
            .iter()
            .filter(|r| r["grant_type"] == "refresh_token")
            .all(|r| r["status"] == 200 || r["error"] == "use_dpop_nonce")
    );

    // The API demands its own nonce: one 401 use_dpop_nonce, one retry.
    h.reset_stats().await;
    let response = keeper
        .send_authorized(&TokenRequest::new(), get(&h, "/api1/data"))
        .await
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["sub"], "alice");
    let stats = h.stats().await;
    assert_eq!(stats["resource_nonce_challenges"], 1);
    assert_eq!(stats["resource_requests"], 2);

    // The nonce is remembered: the next call goes through at once.
    let response = keeper
        .send_authorized(&TokenRequest::new(), get(&h, "/api1/data"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(h.stats().await["resource_requests"], 3);
}

#[wasm_bindgen_test]
async fn sixty_four_futures_one_dpop_refresh() {
    let h = dpop_harness();
    let key = WebCryptoKey::generate().await.unwrap();
    let session = dpop_login(&h, &key).await.session().unwrap();
    let keeper = TokenKeeper::builder(config(&h))
        .dpop(key)
        .store(MemoryStore::with_session(expire(&session)))
        .build()
        .unwrap();
    h.reset_stats().await;
    let request = TokenRequest::new();
    let answers = join_all((0..64).map(|_| keeper.get_access_token(&request))).await;
    let stats = h.stats().await;
    // A new manager knows no nonce yet: one challenge, one retry, one
    // refresh spent.
    assert_eq!(stats["token_responses_by_status"]["200"], 1);
    assert_eq!(
        stats["token_requests_by_grant"]["refresh_token"],
        1 + stats["dpop_nonce_challenges"].as_u64().unwrap()
    );
    let distinct: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(distinct.len(), 1);
}

#[wasm_bindgen_test]
async fn a_bound_token_needs_the_key() {
    let h = dpop_harness();
    let key = WebCryptoKey::generate().await.unwrap();
    let session = dpop_login(&h, &key).await.session().unwrap();
    // The same session without the key: a DPoP-bound token is never sent as
    // Bearer, so authorizing fails before anything is sent.
    let keeper = TokenKeeper::new(config(&h), session).unwrap();
    h.reset_stats().await;
    let error = keeper
        .send_authorized(&TokenRequest::new(), get(&h, "/api1/data"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "dpop_error", "{error:?}");
    assert_eq!(h.stats().await["resource_requests"], 0);
}
