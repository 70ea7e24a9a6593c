//! The ureq adapter's [`Sessions`] over real HTTP against node-oidc-provider
//! (the `tokenkeeper-integration` harness): many users' sessions by id,
//! used from many threads — one refresh per session, counted by the server;
//! each session's own token (its `sub`) on its requests, Bearer and DPoP
//! with the resource server's nonce; sessions evicted and reloaded.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Mutex};

use support::{authorization, config, expire};
use tokenkeeper::dpop::{DpopKey, EcdsaSignature, P256Signer, SignError, SignOutcome, Signer};
use tokenkeeper::{MemoryStore, SessionStore as _, TokenRequest};
use tokenkeeper_integration::{Harness, HarnessOptions, jwt};
use tokenkeeper_ureq::Sessions;
use ureq::http;

const USERS: [&str; 3] = ["alice", "bob", "carol"];

fn store() -> Arc<Mutex<MemoryStore>> {
    Arc::new(Mutex::new(MemoryStore::new()))
}

fn signer() -> Arc<P256Signer> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Arc::new(P256Signer::new(
        DpopKey::generate(&mut tokenkeeper::SeededEntropy::new(seed)).unwrap(),
    ))
}

/// Logs each of [`USERS`] in through `sessions`: user → session id.
fn login_all(h: &Harness, sessions: &Sessions) -> BTreeMap<&'static str, String> {
    USERS
        .iter()
        .map(|&user| {
            let (url, transaction) = authorization(h);
            let (id, token) = sessions
                .login(&transaction, &h.login_as(&url, user))
                .unwrap();
            assert_eq!(jwt::claims(token.token.secret())["sub"], user);
            (user, id)
        })
        .collect()
}

/// The `sub` of the token a request to API1 was accepted with.
fn resource_sub(sessions: &Sessions, h: &Harness, id: &str) -> serde_json::Value {
    let request = http::Request::get(h.resource_url("/api1/data"))
        .body(())
        .unwrap();
    let response = sessions
        .send_authorized(id, &TokenRequest::new(), request)
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value =
        serde_json::from_reader(response.into_body().into_reader()).unwrap();
    body
}

#[test]
fn threads_on_several_sessions_refresh_each_once_and_get_their_own_tokens() {
    let h = Harness::start(HarnessOptions::default());
    // Logged in through one handle, then expired in a fresh one.
    let first = Sessions::builder(config(&h)).build().unwrap();
    let logged_in = login_all(&h, &first);
    let store = store();
    let sessions = Sessions::builder(config(&h))
        .store(Arc::clone(&store))
        .build()
        .unwrap();
    for id in logged_in.values() {
        let session = first.session(id).unwrap();
        assert_eq!(sessions.insert(expire(&session)).unwrap(), *id);
    }
    h.reset_stats();

    const PER_SESSION: usize = 4;
    let barrier = Arc::new(Barrier::new(USERS.len() * PER_SESSION));
    let threads: Vec<_> = logged_in
        .iter()
        .flat_map(|(&user, id)| (0..PER_SESSION).map(move |_| (user, id.clone())))
        .map(|(user, id)| {
            let (sessions, barrier) = (sessions.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let token = sessions
                    .get_access_token(&id, &TokenRequest::new())
                    .unwrap();
                (user, token.token.secret().to_owned())
            })
        })
        .collect();
    let mut tokens: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for thread in threads {
        let (user, token) = thread.join().unwrap();
        tokens.entry(user).or_default().push(token);
    }

    assert_eq!(
        h.stats().grant("refresh_token"),
        USERS.len() as u64,
        "one refresh per session, whatever the threads"
    );
    for (user, tokens) in &tokens {
        assert_eq!(tokens.len(), PER_SESSION);
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{user}: one token");
        assert_eq!(jwt::claims(&tokens[0])["sub"], *user);
        // What the store holds under the session's id is that token.
        let stored = store
            .lock()
            .unwrap()
            .load(&logged_in[user])
            .unwrap()
            .unwrap();
        assert_eq!(stored.token_set().access_token.secret(), tokens[0]);
    }
    let distinct: std::collections::BTreeSet<_> = tokens.values().map(|t| &t[0]).collect();
    assert_eq!(distinct.len(), USERS.len());
}

#[test]
fn sessions_beyond_the_capacity_are_reloaded_from_the_store_with_their_tokens() {
    let h = Harness::start(HarnessOptions::default());
    let store = store();
    let sessions = Sessions::builder(config(&h))
        .store(Arc::clone(&store))
        .capacity(1)
        .build()
        .unwrap();
    let ids = login_all(&h, &sessions);
    assert_eq!(sessions.in_memory(), 1);
    h.reset_stats();
    for _ in 0..2 {
        for (user, id) in &ids {
            let token = sessions.get_access_token(id, &TokenRequest::new()).unwrap();
            assert_eq!(jwt::claims(token.token.secret())["sub"], *user);
            assert_eq!(sessions.in_memory(), 1);
        }
    }
    // Reloaded, not refreshed: the stored tokens are fresh.
    assert_eq!(h.stats().token_requests_total, 0);
}

/// With no store, memory holds the only copy of each session: none is
/// evicted for the capacity (before, the default store kept no copy, and a
/// session evicted past the capacity was lost: `missing_session`).
#[test]
fn without_a_store_sessions_beyond_the_capacity_stay_in_memory_and_are_not_lost() {
    let h = Harness::start(HarnessOptions::default());
    let sessions = Sessions::builder(config(&h)).capacity(1).build().unwrap();
    let ids = login_all(&h, &sessions);
    assert_eq!(sessions.in_memory(), USERS.len(), "none evicted");
    h.reset_stats();
    for _ in 0..2 {
        for (user, id) in &ids {
            let token = sessions.get_access_token(id, &TokenRequest::new()).unwrap();
            assert_eq!(jwt::claims(token.token.secret())["sub"], *user);
        }
    }
    assert_eq!(h.stats().token_requests_total, 0, "served from memory");
    for id in ids.values() {
        let generation = sessions.session(id).map(|s| s.generation());
        assert!(generation.is_some());
        assert_eq!(sessions.generation(id), generation);
    }
    assert_eq!(sessions.generation("nobody"), None);
    // Ids that hold no session still take no lasting room.
    for unknown in ["nobody-1", "nobody-2", "nobody-3"] {
        let error = sessions
            .get_access_token(unknown, &TokenRequest::new())
            .unwrap_err();
        assert_eq!(error.code(), "missing_session");
    }
    assert_eq!(sessions.in_memory(), USERS.len());
    // A local logout frees its slot.
    let (_, first) = ids.iter().next().unwrap();
    sessions.clear(first).unwrap();
    assert!(sessions.session(first).is_none());
    assert_eq!(sessions.in_memory(), USERS.len() - 1);
}

#[test]
fn send_authorized_presents_each_sessions_own_bearer_token() {
    let h = Harness::start(HarnessOptions::default());
    let sessions = Sessions::builder(config(&h)).build().unwrap();
    let ids = login_all(&h, &sessions);
    for (user, id) in ids.iter().rev() {
        let body = resource_sub(&sessions, &h, id);
        assert_eq!(body["sub"], *user);
        assert_eq!(body["token_type"], "Bearer");
    }
    assert_eq!(h.stats().resource_requests, USERS.len() as u64);
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

#[test]
fn dpop_sessions_with_a_deferred_signer_retry_the_resource_servers_nonce() {
    let h = Harness::start(HarnessOptions {
        dpop_nonce_required: true,
        ..HarnessOptions::default()
    });
    let key = signer();
    let remote = Arc::clone(&key);
    let signed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&signed);
    let sessions = Sessions::builder(config(&h))
        .dpop(Deferring(Arc::clone(&key)))
        .deferred_signer(move |input: &str| -> Result<EcdsaSignature, _> {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            remote.sign_now(input.as_bytes()).map_err(Into::into)
        })
        .build()
        .unwrap();
    let thumbprint = sessions.dpop_thumbprint().unwrap();
    let ids = login_all(&h, &sessions);
    assert!(signed.load(std::sync::atomic::Ordering::SeqCst) >= USERS.len());
    // The token endpoint's nonce is learned once, for every session.
    assert_eq!(h.stats().dpop_nonce_challenges, 1);

    for (user, id) in &ids {
        let body = resource_sub(&sessions, &h, id);
        assert_eq!(body["sub"], *user);
        assert_eq!(body["token_type"], "DPoP");
    }
    let stats = h.stats();
    // The first request met the resource server's nonce and was resent;
    // the others carried it.
    assert_eq!(stats.resource_nonce_challenges, 1);
    assert_eq!(stats.resource_requests, USERS.len() as u64 + 1);

    // A refresh of one session is signed by the deferred signer too.
    let (user, id) = ids.iter().next().unwrap();
    let refreshed = sessions
        .get_access_token(id, &TokenRequest::new().force_refresh())
        .unwrap();
    let claims = jwt::claims(refreshed.token.secret());
    assert_eq!(claims["sub"], *user);
    assert_eq!(claims["cnf"]["jkt"], thumbprint);
    assert_eq!(h.stats().grant("refresh_token"), 1);
}
