//! The reqwest adapter's [`Sessions`] over real HTTP against
//! node-oidc-provider (the `tokenkeeper-integration` harness): each
//! session's own token (its `sub`) on `send_authorized`, Bearer and DPoP
//! with the resource server's nonce retry; a deferred signer
//! (`Effect::Sign`) serving every session's token requests and proofs;
//! tasks on several sessions, one refresh per session.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::{authorization, config, expire};
use tokenkeeper::TokenRequest;
use tokenkeeper::dpop::{DpopKey, P256Signer, SignError, SignOutcome, Signer};
use tokenkeeper_integration::{Harness, HarnessOptions, jwt};
use tokenkeeper_reqwest::Sessions;

const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Logs each of [`USERS`] in through `sessions`: user → session id.
async fn login_all(h: &Harness, sessions: &Sessions) -> BTreeMap<&'static str, String> {
    let mut ids = BTreeMap::new();
    for user in USERS {
        let (url, transaction) = authorization(h);
        let (id, token) = sessions
            .login(&transaction, &h.login_as(&url, user))
            .await
            .unwrap();
        assert_eq!(jwt::claims(token.token.secret())["sub"], user);
        ids.insert(user, id);
    }
    ids
}

/// The resource server's answer to session `id`'s request to API1.
async fn resource(sessions: &Sessions, h: &Harness, id: &str) -> serde_json::Value {
    let request = sessions
        .client()
        .get(h.resource_url("/api1/data"))
        .build()
        .unwrap();
    let response = sessions
        .send_authorized(id, &TokenRequest::new(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_authorized_presents_each_sessions_own_bearer_token() {
    let h = Harness::start(HarnessOptions::default());
    let sessions = Sessions::builder(config(&h)).build().unwrap();
    let ids = login_all(&h, &sessions).await;
    // In another order than the logins: the last session logged in must
    // not lend its token to the others.
    for (user, id) in ids.iter().rev().chain(ids.iter()) {
        let body = resource(&sessions, &h, id).await;
        assert_eq!(body["sub"], *user, "session {id}");
        assert_eq!(body["token_type"], "Bearer");
    }
    assert_eq!(h.stats().resource_requests, 2 * USERS.len() as u64);
}

/// A DPoP signer that always defers: the handle's deferred signer (the
/// same key, "elsewhere") signs.
struct Deferring(Arc<P256Signer>);

impl Signer for Deferring {
    fn algorithm(&self) -> &'static str {
        self.0.algorithm()
    }
    fn public_jwk(&self) -> &tokenkeeper::dpop::PublicJwk {
        self.0.public_jwk()
    }
    fn sign(&self, _: &[u8]) -> Result<SignOutcome, SignError> {
        Ok(SignOutcome::Deferred)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_sessions_with_a_deferred_signer_retry_the_resource_servers_nonce() {
    let h = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        ..HarnessOptions::default()
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let key = Arc::new(P256Signer::new(
        DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(seed)).unwrap(),
    ));
    let remote = Arc::clone(&key);
    let signed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&signed);
    let sessions = Sessions::builder(config(&h))
        .dpop(Deferring(Arc::clone(&key)))
        .deferred_signer(move |input: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            let remote = Arc::clone(&remote);
            // A KMS answers later, on another task.
            Box::pin(async move {
                tokio::task::yield_now().await;
                remote.sign_now(input.as_bytes()).map_err(Into::into)
            })
        })
        .build()
        .unwrap();
    let thumbprint = sessions.dpop_thumbprint().unwrap();
    assert_eq!(thumbprint, key.public_jwk().thumbprint());

    let ids = login_all(&h, &sessions).await;
    // Every code exchange's proof, plus the one resent with the token
    // endpoint's nonce, learned once for every session.
    assert_eq!(h.stats().dpop_nonce_challenges, 1);
    assert_eq!(signed.load(Ordering::SeqCst), USERS.len() + 1);

    for (user, id) in &ids {
        let body = resource(&sessions, &h, id).await;
        assert_eq!(body["sub"], *user, "session {id}");
        assert_eq!(body["token_type"], "DPoP");
    }
    let stats = h.stats();
    // The first request met the resource server's nonce and was resent;
    // the others carried it.
    assert_eq!(stats.resource_nonce_challenges, 1);
    assert_eq!(stats.resource_requests, USERS.len() as u64 + 1);
    assert_eq!(signed.load(Ordering::SeqCst), 2 * USERS.len() + 2);

    // Each session's refresh is signed by the deferred signer and bound to
    // the key; the token is that session's.
    for (user, id) in &ids {
        let refreshed = sessions
            .get_access_token(id, &TokenRequest::new().force_refresh())
            .await
            .unwrap();
        let claims = jwt::claims(refreshed.token.secret());
        assert_eq!(claims["sub"], *user);
        assert_eq!(claims["cnf"]["jkt"], thumbprint);
    }
    assert_eq!(h.stats().grant("refresh_token"), USERS.len() as u64);
    assert_eq!(signed.load(Ordering::SeqCst), 3 * USERS.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_several_sessions_refresh_each_once() {
    let h = Harness::start(HarnessOptions::default());
    let first = Sessions::builder(config(&h)).build().unwrap();
    let ids = login_all(&h, &first).await;
    let sessions = Sessions::builder(config(&h)).build().unwrap();
    for id in ids.values() {
        let expired = expire(&first.session(id).unwrap());
        assert_eq!(sessions.insert(expired).await.unwrap(), *id);
    }
    h.reset_stats();

    let mut tasks = Vec::new();
    for (&user, id) in &ids {
        for _ in 0..4 {
            let (sessions, id) = (sessions.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let token = sessions
                    .get_access_token(&id, &TokenRequest::new())
                    .await
                    .unwrap();
                (user, token.token.secret().to_owned())
            }));
        }
    }
    let mut tokens: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for task in tasks {
        let (user, token) = task.await.unwrap();
        tokens.entry(user).or_default().push(token);
    }
    assert_eq!(h.stats().grant("refresh_token"), USERS.len() as u64);
    for (user, tokens) in &tokens {
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{user}: one token");
        assert_eq!(jwt::claims(&tokens[0])["sub"], *user);
    }
}
