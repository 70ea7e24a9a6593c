//! The persistence rules adapters share (`tokenkeeper::driver`), against a
//! scripted server and stores shared by two keepers.

mod support;

use support::{FakeServer, Shared, builder, expired_session, t};
use tokenkeeper::driver::{Ask, Keeper, Saved, Step};
use tokenkeeper::{
    Completion, Dispatch, SeededEntropy, Session, SessionStore, StoreError, TokenManager,
    TokenRequest, UnsharedStore,
};

fn keeper(store: &Shared, seed: u64) -> Keeper {
    let manager = TokenManager::new(builder().build().unwrap(), SeededEntropy::new(seed));
    let store: Box<dyn SessionStore + Send> = Box::new(store.clone());
    Keeper::new(manager, store, None).unwrap()
}

fn stored_rt(store: &Shared) -> String {
    let inner = store.inner.lock().unwrap();
    inner
        .session()
        .unwrap()
        .token_set()
        .refresh_token
        .as_ref()
        .unwrap()
        .secret()
        .to_string()
}

/// Drives one token request through `keeper` to the end.
fn get(keeper: &mut Keeper, server: &mut FakeServer, now: u64) -> Result<String, String> {
    let request = TokenRequest::new();
    match keeper.step(Ask::User(&request), None, t(now)).unwrap() {
        Step::Ready(token) => Ok(token.token.secret().to_string()),
        Step::Own(Dispatch::Send(out)) => {
            let response = server.handle(&out.request);
            let result = match keeper.manager.handle_response(out.id, response, t(now)) {
                Completion::Ready(token) => Ok(token.token.secret().to_string()),
                Completion::Failed(e) => Err(e.code().to_string()),
                other => panic!("{other:?}"),
            };
            keeper.persist().unwrap();
            result
        }
        Step::Failed(e) => Err(e.code().to_string()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_change_is_saved_with_compare_and_swap() {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save("default", &expired_session(1000), None)
        .unwrap();
    let mut k = keeper(&store, 1);
    let mut server = FakeServer::default();
    assert_eq!(get(&mut k, &mut server, 2000).unwrap(), "at-1-");
    assert_eq!(stored_rt(&store), "rt-1");
    assert_eq!(get(&mut k, &mut server, 9000).unwrap(), "at-2-");
    assert_eq!(stored_rt(&store), "rt-2");
    assert_eq!(
        store.inner.lock().unwrap().saves(),
        3,
        "the initial save and two refreshes"
    );
    // Nothing changed: nothing saved.
    assert_eq!(k.persist().unwrap(), Saved::Nothing);
}

#[test]
fn a_keeper_adopts_what_another_saved_instead_of_refreshing() {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save("default", &expired_session(1000), None)
        .unwrap();
    let (mut a, mut b) = (keeper(&store, 1), keeper(&store, 2));
    let mut server = FakeServer::default();
    assert_eq!(get(&mut a, &mut server, 2000).unwrap(), "at-1-");
    // B still holds the old, expired session with the spent refresh token.
    // Before spending it, it sees the store moved on and adopts the new one.
    assert_eq!(get(&mut b, &mut server, 2001).unwrap(), "at-1-");
    assert_eq!(server.refreshes, 1);
    assert_eq!(server.replays, 0);
}

#[test]
fn a_failed_save_stays_pending_and_a_rotation_is_never_dropped() {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save("default", &expired_session(1000), None)
        .unwrap();
    let mut k = keeper(&store, 1);
    let mut server = FakeServer::default();
    *store.down.lock().unwrap() = true;
    let request = TokenRequest::new();
    let Step::Own(Dispatch::Send(out)) = k.step(Ask::User(&request), None, t(2000)).unwrap() else {
        panic!()
    };
    let response = server.handle(&out.request);
    assert!(matches!(
        k.manager.handle_response(out.id, response, t(2000)),
        Completion::Ready(_)
    ));
    assert!(matches!(k.persist(), Err(StoreError::Backend(_))));
    assert_eq!(stored_rt(&store), "rt-0", "not saved yet");
    // Meanwhile another writer bumps the stored session (from the spent
    // token): the rotated token here must win the conflict.
    {
        let mut inner = store.inner.lock().unwrap();
        let mut other = inner.session().unwrap().clone();
        let json = other
            .to_json()
            .replace(r#""generation":0"#, r#""generation":5"#);
        other = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
        inner.clear("default").unwrap();
        inner.save("default", &other, None).unwrap();
    }
    *store.down.lock().unwrap() = false;
    assert_eq!(k.persist().unwrap(), Saved::Stored);
    assert_eq!(stored_rt(&store), "rt-1");
}

#[test]
fn a_conflict_without_rotation_adopts_the_stored_session() {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save("default", &expired_session(1000), None)
        .unwrap();
    let mut k = keeper(&store, 1);
    let mut server = FakeServer {
        rotate: false,
        ..FakeServer::default()
    };
    // The refresh leaves with `rt-0` (the server does not rotate, so it
    // stays valid)...
    let request = TokenRequest::new();
    let Step::Own(Dispatch::Send(out)) = k.step(Ask::User(&request), None, t(2000)).unwrap() else {
        panic!()
    };
    // ...meanwhile another writer logs in anew and saves first...
    {
        let mut inner = store.inner.lock().unwrap();
        let json = inner
            .session()
            .unwrap()
            .to_json()
            .replace("rt-0", "rt-other")
            .replace(r#""generation":0"#, r#""generation":9"#);
        inner.clear("default").unwrap();
        inner
            .save(
                "default",
                &Session::from_json(json.as_bytes(), &Default::default()).unwrap(),
                None,
            )
            .unwrap();
    }
    // ...the refresh succeeds, and its save finds the other writer's
    // session: without a rotation to keep, that session is adopted.
    let response = server.handle(&out.request);
    assert!(matches!(
        k.manager.handle_response(out.id, response, t(2000)),
        Completion::Ready(_)
    ));
    assert_eq!(k.persist().unwrap(), Saved::Adopted);
    assert_eq!(server.refreshes, 1);
    assert_eq!(server.replays, 0);
    assert_eq!(stored_rt(&store), "rt-other");
    assert_eq!(
        k.manager
            .session()
            .unwrap()
            .token_set()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret(),
        "rt-other"
    );
    // Nothing is left to save: the adopted session is the stored one.
    assert_eq!(k.persist().unwrap(), Saved::Nothing);
}

/// The same other writer, seen before the refresh leaves: the keeper
/// adopts its session and refreshes with its refresh token (once).
#[test]
fn a_session_saved_before_the_refresh_is_adopted_and_used() {
    let store = Shared::default();
    store
        .inner
        .lock()
        .unwrap()
        .save("default", &expired_session(1000), None)
        .unwrap();
    let mut k = keeper(&store, 1);
    let mut server = FakeServer {
        rotate: false,
        current_refresh_token: Some("rt-other".into()),
        ..FakeServer::default()
    };
    {
        let mut inner = store.inner.lock().unwrap();
        let json = inner
            .session()
            .unwrap()
            .to_json()
            .replace("rt-0", "rt-other")
            .replace(r#""generation":0"#, r#""generation":9"#);
        inner.clear("default").unwrap();
        inner
            .save(
                "default",
                &Session::from_json(json.as_bytes(), &Default::default()).unwrap(),
                None,
            )
            .unwrap();
    }
    assert_eq!(get(&mut k, &mut server, 2000), Ok("at-1-".to_owned()));
    assert_eq!(server.refreshes, 1);
    assert_eq!(server.replays, 0);
    assert_eq!(stored_rt(&store), "rt-other");
}

#[test]
fn an_unshared_store_keeps_no_copy_and_never_reloads() {
    let manager = TokenManager::new(builder().build().unwrap(), SeededEntropy::new(3));
    let store: Box<dyn SessionStore + Send> = Box::new(UnsharedStore::new());
    let mut k: Keeper = Keeper::new(manager, store, Some(expired_session(1000))).unwrap();
    let mut server = FakeServer::default();
    assert_eq!(get(&mut k, &mut server, 2000).unwrap(), "at-1-");
    assert_eq!(get(&mut k, &mut server, 9000).unwrap(), "at-2-");
    // The session lives in the manager only, rotated twice and current.
    let session = k.manager.session().unwrap();
    assert_eq!(
        session.token_set().refresh_token.as_ref().unwrap().secret(),
        "rt-2"
    );
    // The before-refresh check finds the handle's own generation: the
    // session is never replaced by the store's (empty) answer.
    assert!(!k.moved_on().unwrap());
    assert!(k.manager.session().is_some());
    assert_eq!(k.persist().unwrap(), Saved::Nothing);
    assert_eq!(server.refreshes, 2);
}
