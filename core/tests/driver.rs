//! The driver's effect interface by hand: every store operation is an
//! [`Effect::Store`] the test runs itself, so another writer can step in
//! between two of them.

mod support;

use support::{FakeServer, builder, expired_session, t};
use tokenkeeper::driver::{Ask, Call, Driver, Effect, Finished, StoreOp};
use tokenkeeper::store::DEFAULT_KEY;
use tokenkeeper::{
    MemoryStore, SeededEntropy, SessionStore, StoreError, TokenManager, TokenRequest,
};

fn driver() -> Driver {
    let manager = TokenManager::new(builder().build().unwrap(), SeededEntropy::new(1));
    Driver::starting(manager, DEFAULT_KEY, None)
}

fn stored_rt(store: &MemoryStore) -> String {
    let session = store.session().unwrap();
    session
        .token_set()
        .refresh_token
        .as_ref()
        .unwrap()
        .secret()
        .to_owned()
}

/// What kind of effect, for the recorded sequence.
fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::Send { .. } => "send",
        Effect::Store(StoreOp::Load { .. }) => "load",
        Effect::Store(StoreOp::Generation { .. }) => "generation",
        Effect::Store(StoreOp::Save { .. }) => "save",
        Effect::Store(StoreOp::Clear { .. }) => "clear",
        Effect::Store(StoreOp::Floor { .. }) => "floor",
        Effect::Sign(_) => "sign",
        Effect::Wait(_) => "wait",
        Effect::Done(_) => "done",
        _ => "other",
    }
}

#[test]
fn a_compare_and_swap_conflict_through_the_effects_keeps_the_rotation() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut server = FakeServer::default();
    let mut driver = driver();
    let request = TokenRequest::new();
    let mut call = Call::token(Ask::User(&request));
    let mut seen = Vec::new();
    let mut interfered = false;
    let result = loop {
        let effect = driver.poll(&mut call, t(2000));
        seen.push(kind(&effect));
        match effect {
            Effect::Send { request, .. } => {
                let response = server.handle(&request.request);
                driver.handle_response(&mut call, response, t(2000));
            }
            Effect::Store(op) => {
                if matches!(op, StoreOp::Save { .. }) && !interfered {
                    // Another process saves a change of the same session
                    // (same starting point, its spent refresh token) first.
                    interfered = true;
                    let mut other = store.session().unwrap().clone();
                    other.set_user(serde_json::json!({"sub": "other writer"}));
                    let json = other
                        .to_json()
                        .replace(r#""generation":0"#, r#""generation":5"#);
                    let other =
                        tokenkeeper::Session::from_json(json.as_bytes(), &Default::default())
                            .unwrap();
                    store.save(DEFAULT_KEY, &other, Some(0)).unwrap();
                }
                let answer = op.run(&mut store);
                driver.handle_store(&mut call, answer);
            }
            Effect::Done(result) => break result,
            other => panic!("unexpected {other:?}"),
        }
    };
    let Ok(Finished::Token(token)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(token.token.secret(), "at-1-");
    // load (startup), generation (before the refresh), send, the save that
    // lost, the load that saw why, the save one generation above both.
    assert_eq!(
        seen,
        ["load", "generation", "send", "save", "load", "save", "done"],
        "{seen:?}"
    );
    assert_eq!(
        stored_rt(&store),
        "rt-1",
        "the rotated refresh token won the conflict"
    );
    assert!(
        store.session().unwrap().generation() > 5,
        "a generation only grows"
    );
    assert_eq!(
        driver.saved_generation(),
        Some(store.session().unwrap().generation())
    );
}

#[test]
fn a_failed_save_through_the_effects_is_the_callers_error_and_stays_pending() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut server = FakeServer::default();
    let mut driver = driver();
    let request = TokenRequest::new();
    let mut call = Call::token(Ask::User(&request));
    let result = loop {
        match driver.poll(&mut call, t(2000)) {
            Effect::Send { request, .. } => {
                let response = server.handle(&request.request);
                driver.handle_response(&mut call, response, t(2000));
            }
            Effect::Store(op @ StoreOp::Save { .. }) => {
                let _ = op;
                driver.handle_store(&mut call, Err(StoreError::backend("disk full")));
            }
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                driver.handle_store(&mut call, answer);
            }
            Effect::Done(result) => break result,
            other => panic!("unexpected {other:?}"),
        }
    };
    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            tokenkeeper::driver::Failure::Store(StoreError::Backend(_))
        ),
        "{error:?}"
    );
    assert_eq!(stored_rt(&store), "rt-0", "nothing was saved");
    // The next call (a cached token) saves the pending rotation.
    let mut call = Call::token(Ask::User(&request));
    let result = loop {
        match driver.poll(&mut call, t(2001)) {
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                driver.handle_store(&mut call, answer);
            }
            Effect::Done(result) => break result,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(matches!(result, Ok(Finished::Token(_))));
    assert_eq!(stored_rt(&store), "rt-1");
}
