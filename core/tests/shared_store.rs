//! Two managers (two processes) sharing one session through a store with
//! compare-and-swap: only one of them can ever spend the refresh token.

mod support;

use support::{FakeServer, expired_session, t};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::store::DEFAULT_KEY;
use tokenkeeper::{
    Action, ChangeReason, ClientSecret, Completion, Config, Event, MemoryStore, SeededEntropy,
    SessionStore, StoreError, TokenManager, TokenRequest,
};

fn manager(seed: u64) -> TokenManager {
    let config = Config::builder("https://as.example/oauth/token", "client-1")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret-1")))
        .shared_store(true)
        .build()
        .unwrap();
    TokenManager::new(config, SeededEntropy::new(seed))
}

/// What an adapter does after each call: save on every change, with the
/// generation it last saw as the expected one.
fn persist(
    m: &mut TokenManager,
    store: &mut MemoryStore,
    saved: &mut u64,
) -> Result<(), StoreError> {
    let mut changed = false;
    while let Some(Event::SessionChanged { .. }) = m.poll_event() {
        changed = true;
    }
    if changed {
        let session = m.session().unwrap();
        store.save(DEFAULT_KEY, session, Some(*saved))?;
        *saved = session.generation();
    }
    Ok(())
}

#[test]
fn only_one_process_spends_the_refresh_token() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut server = FakeServer::default();
    let (mut a, mut b) = (manager(1), manager(2));
    a.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    b.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    let (mut saved_a, mut saved_b) = (0, 0);
    let req = TokenRequest::new();

    // Both see an expired token and want to refresh.
    let Action::Send(out_a) = a.get_access_token(&req, t(2000)) else {
        panic!()
    };
    let Action::Send(out_b) = b.get_access_token(&req, t(2000)) else {
        panic!()
    };
    // A persists its claim first; B's save then conflicts, before anything is sent.
    persist(&mut a, &mut store, &mut saved_a).unwrap();
    assert!(store.session().unwrap().refresh_claim().is_some());
    assert!(matches!(
        persist(&mut b, &mut store, &mut saved_b),
        Err(StoreError::Conflict { .. })
    ));
    assert!(b.cancel(out_b.id));
    b.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    saved_b = b.session().unwrap().generation();
    // B now sees A's live claim: reload later instead of refreshing.
    match b.get_access_token(&req, t(2001)) {
        Action::Reload { until } => assert_eq!(until, t(2060)),
        other => panic!("{other:?}"),
    }
    // A's refresh completes; the claim goes with the new tokens in one save.
    let response = server.handle(&out_a.request);
    assert!(matches!(
        a.handle_response(out_a.id, response, t(2001)),
        Completion::Ready(_)
    ));
    persist(&mut a, &mut store, &mut saved_a).unwrap();
    assert!(store.session().unwrap().refresh_claim().is_none());
    // B reloads and is served the new token without I/O.
    b.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    match b.get_access_token(&req, t(2002)) {
        Action::Ready(token) => assert_eq!(token.token.secret(), "at-1-"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.refreshes, 1);
    assert_eq!(server.replays, 0);
    let _ = saved_b;
}

#[test]
fn a_crashed_owner_claim_runs_out() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let (mut a, mut b) = (manager(1), manager(2));
    a.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    let mut saved_a = 0;
    let Action::Send(_) = a.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    persist(&mut a, &mut store, &mut saved_a).unwrap();
    drop(a); // crashed with its claim stored
    b.set_session(store.load(DEFAULT_KEY).unwrap().unwrap());
    assert!(matches!(
        b.get_access_token(&TokenRequest::new(), t(2059)),
        Action::Reload { .. }
    ));
    // At the claim's deadline B may refresh (and claims for itself).
    assert!(matches!(
        b.get_access_token(&TokenRequest::new(), t(2060)),
        Action::Send(_)
    ));
    assert!(matches!(
        b.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::RefreshClaimed,
            ..
        })
    ));
}

#[test]
fn a_failed_refresh_releases_the_claim() {
    let store = MemoryStore::with_session(expired_session(1000));
    let mut a = manager(1);
    a.set_session(store.session().unwrap().clone());
    let Action::Send(out) = a.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert!(matches!(
        a.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::RefreshClaimed,
            ..
        })
    ));
    let _ = a.handle_response(out.id, tokenkeeper::HttpResponse::new(503, "busy"), t(2000));
    assert!(matches!(
        a.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::RefreshReleased,
            ..
        })
    ));
    assert!(a.session().unwrap().refresh_claim().is_none());
    // A transport error releases it too.
    let Action::Send(out) = a.get_access_token(&TokenRequest::new(), t(2001)) else {
        panic!()
    };
    let _ = a.handle_transport_error(out.id, t(2001));
    let reasons: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(a.session().unwrap().refresh_claim().is_none());
}

#[test]
fn without_shared_store_no_claims_are_written() {
    let config = Config::builder("https://as.example/oauth/token", "c")
        .build()
        .unwrap();
    let mut m = TokenManager::new(config, SeededEntropy::new(1));
    m.set_session(expired_session(1000));
    let Action::Send(_) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    assert!(m.poll_event().is_none());
    assert!(m.session().unwrap().refresh_claim().is_none());
}

/// The claim is written by the call that starts the refresh, not by a
/// later one: the session read right after `get_access_token` (before any
/// other call) already holds it, and its event is queued with the
/// generation that session carries. A claim parked for a later `&mut`
/// call (the old `settle()`) would leave this session unclaimed, so a host
/// that saved it here would let another process spend the token too.
#[test]
fn the_claim_is_in_the_session_when_the_refresh_starts() {
    let mut m = manager(3);
    m.set_session(expired_session(1000));
    let before = m.session().unwrap().generation();
    let Action::Send(out) = m.get_access_token(&TokenRequest::new(), t(2000)) else {
        panic!()
    };
    let session = m.session().unwrap();
    let claim = session.refresh_claim().expect("claimed in the same call");
    assert_eq!(claim.until, t(2060));
    assert_eq!(session.generation(), before + 1);
    assert_eq!(
        m.poll_event(),
        Some(Event::SessionChanged {
            generation: before + 1,
            reason: ChangeReason::RefreshClaimed,
        })
    );
    assert_eq!(m.poll_event(), None);
    // Cancelled unsent: released and announced at once, too.
    assert!(m.cancel(out.id));
    assert!(m.session().unwrap().refresh_claim().is_none());
    assert!(matches!(
        m.poll_event(),
        Some(Event::SessionChanged {
            reason: ChangeReason::RefreshReleased,
            ..
        })
    ));
}
