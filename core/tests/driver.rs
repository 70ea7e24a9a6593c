//! The driver's effect interface by hand: every store operation is an
//! [`Effect::Store`] the test runs itself, so another writer can step in
//! between two of them.

mod support;

use support::{FakeServer, builder, expired_session, t};
use tokenkeeper::driver::{Ask, Call, Driver, Effect, Finished, StoreOp};
use tokenkeeper::store::DEFAULT_KEY;
#[cfg(feature = "login")]
use tokenkeeper::{__private::form, HttpResponse, login::LoginRequest};
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

// ---------------------------------------------- the fleet's double spend --

/// A driver of a shared store (claims in the session), as a process of a
/// fleet runs it.
fn shared_driver(seed: u64) -> Driver {
    let manager = TokenManager::new(
        builder().shared_store(true).build().unwrap(),
        SeededEntropy::new(seed),
    );
    Driver::starting(manager, DEFAULT_KEY, None)
}

/// Another process claims the stored session's refresh token (its claim
/// saved with compare-and-swap, its request about to leave); its request.
fn other_process_claims(store: &mut MemoryStore) -> tokenkeeper::OutgoingRequest {
    let config = builder().shared_store(true).build().unwrap();
    let mut other = TokenManager::new(config, SeededEntropy::new(99));
    let stored = store.load(DEFAULT_KEY).unwrap().unwrap();
    let generation = stored.generation();
    other.set_session(stored);
    let tokenkeeper::Action::Send(out) = other.get_access_token(&TokenRequest::new(), t(2000))
    else {
        panic!("the other process refreshes")
    };
    while other.poll_event().is_some() {}
    store
        .save(DEFAULT_KEY, other.session().unwrap(), Some(generation))
        .unwrap();
    assert!(store.session().unwrap().refresh_claim().is_some());
    out
}

/// Polls `call` until it needs something other than the store, running
/// store operations on `store`; that effect.
fn until_not_store(
    driver: &mut Driver,
    call: &mut Call<'_, '_>,
    store: &mut MemoryStore,
) -> Effect {
    loop {
        match driver.poll(call, t(2000)) {
            Effect::Store(op) => {
                let answer = op.run(store);
                driver.handle_store(call, answer);
            }
            other => return other,
        }
    }
}

/// Round 8 of the fleet test, in one process: the first caller's startup
/// load is answered; before that caller goes on, a second caller polls and
/// (the bug) starts a load of its own. The first caller claims the refresh
/// token on the session it loaded and waits for the store; another process
/// claims it in the store; the second load installs that process's session
/// (its claim) over the first caller's claim, and the first caller's save
/// then wrote the *other process's* claim back — compare-and-swap
/// succeeded, and the first caller sent the refresh token the other
/// process was spending.
#[test]
fn a_session_reloaded_under_a_pending_claim_never_sends_another_process_s_refresh() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut driver = shared_driver(1);
    let request = TokenRequest::new();
    let mut first = Call::token(Ask::User(&request));
    let mut second = Call::token(Ask::User(&request));

    let Effect::Store(load @ StoreOp::Load { .. }) = driver.poll(&mut first, t(2000)) else {
        panic!("the startup load")
    };
    let answer = load.run(&mut store);
    driver.handle_store(&mut first, answer);
    // The second caller polls before the first goes on (before the fix:
    // a second startup load).
    let second_effect = driver.poll(&mut second, t(2000));
    // The first caller asks: the session it loaded has no claim.
    let first_effect = driver.poll(&mut first, t(2000));
    // Another process claims the refresh token in the store meanwhile;
    // then the store operations asked for above are answered.
    let theirs = other_process_claims(&mut store);
    let theirs_owner = store
        .session()
        .unwrap()
        .refresh_claim()
        .unwrap()
        .owner
        .clone();
    for (call, effect) in [(&mut second, second_effect), (&mut first, first_effect)] {
        match effect {
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                driver.handle_store(call, answer);
            }
            Effect::Send { .. } => panic!("sent before the claim was saved"),
            _ => {}
        }
    }
    // Both callers go on, taking turns: neither may spend the token the
    // other process claimed; both reload until its tokens arrive.
    settle(&mut driver, [&mut first, &mut second], &mut store, &theirs);
    let claim = store.session().unwrap().refresh_claim().unwrap().clone();
    assert_eq!(claim.owner, theirs_owner, "the claim is still theirs");
}

/// Polls `calls` in turn, running their store operations, until each
/// waits for another process; panics if one sends a refresh.
fn settle(
    driver: &mut Driver,
    mut calls: [&mut Call<'_, '_>; 2],
    store: &mut MemoryStore,
    theirs: &tokenkeeper::OutgoingRequest,
) {
    let mut reloading = [false; 2];
    for _ in 0..50 {
        for (i, call) in calls.iter_mut().enumerate() {
            if reloading[i] {
                continue;
            }
            match driver.poll(call, t(2000)) {
                Effect::Store(op) => {
                    let answer = op.run(store);
                    driver.handle_store(call, answer);
                }
                Effect::Send { request, .. } => panic!(
                    "caller {i} sent {:?} while the other process spends {:?}",
                    support::field(&request.request, "refresh_token"),
                    support::field(&theirs.request, "refresh_token"),
                ),
                Effect::Wait(wait) => {
                    reloading[i] =
                        matches!(wait.reason, tokenkeeper::driver::WaitReason::OtherProcess);
                }
                other => panic!("caller {i}: unexpected {other:?}"),
            }
        }
        if reloading == [true, true] {
            return;
        }
    }
    panic!("the callers did not settle: {reloading:?}");
}

/// The same double spend through a load the host asks for (a reload)
/// while a caller's claim waits for the store: whatever replaces the
/// session under a pending claim, the refresh leaves only while the
/// session saved carries this manager's own claim.
#[test]
fn a_host_reload_under_a_pending_claim_never_sends_another_process_s_refresh() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut driver = shared_driver(1);
    let mut startup = Call::persist();
    assert!(matches!(
        until_not_store(&mut driver, &mut startup, &mut store),
        Effect::Done(Ok(_))
    ));
    let request = TokenRequest::new();
    let mut reload = Call::load();
    let Effect::Store(load @ StoreOp::Load { .. }) = driver.poll(&mut reload, t(2000)) else {
        panic!("the reload")
    };
    let mut caller = Call::token(Ask::User(&request));
    let waiting = driver.poll(&mut caller, t(2000));
    assert!(matches!(waiting, Effect::Wait(_)), "{waiting:?}");
    let theirs = other_process_claims(&mut store);
    let answer = load.run(&mut store);
    driver.handle_store(&mut reload, answer);
    assert!(matches!(
        until_not_store(&mut driver, &mut reload, &mut store),
        Effect::Done(Ok(Finished::Loaded(true)))
    ));
    match until_not_store(&mut driver, &mut caller, &mut store) {
        Effect::Send { request, .. } => panic!(
            "sent {:?} while the other process spends {:?}",
            support::field(&request.request, "refresh_token"),
            support::field(&theirs.request, "refresh_token"),
        ),
        Effect::Wait(wait) => assert!(
            matches!(wait.reason, tokenkeeper::driver::WaitReason::OtherProcess),
            "{wait:?}"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// Callers that arrive while the startup load is answered but not yet
/// gone on with wait for it: one load, not one per caller.
#[test]
fn callers_during_startup_share_one_load() {
    let mut store = MemoryStore::with_session(expired_session(1000));
    let mut driver = shared_driver(1);
    let request = TokenRequest::new();
    let mut first = Call::token(Ask::User(&request));
    let mut second = Call::token(Ask::User(&request));
    let Effect::Store(load @ StoreOp::Load { .. }) = driver.poll(&mut first, t(2000)) else {
        panic!("the startup load")
    };
    let answer = load.run(&mut store);
    driver.handle_store(&mut first, answer);
    let effect = driver.poll(&mut second, t(2000));
    assert!(
        !matches!(effect, Effect::Store(StoreOp::Load { .. })),
        "a second startup load: {effect:?}"
    );
}

/// Runs `call` to its end, answering store operations from `store` (none
/// may come when `store` is `None`); the kinds of effect seen.
fn run_to_end(
    driver: &mut Driver,
    mut call: Call<'_, '_>,
    server: &mut FakeServer,
    mut store: Option<&mut tokenkeeper::UnsharedStore>,
    now: u64,
) -> (
    Result<Finished, tokenkeeper::driver::Failure>,
    Vec<&'static str>,
) {
    let mut seen = Vec::new();
    loop {
        let effect = driver.poll(&mut call, t(now));
        seen.push(kind(&effect));
        match effect {
            Effect::Send { request, .. } => {
                let response = server.handle(&request.request);
                driver.handle_response(&mut call, response, t(now));
            }
            Effect::Store(op) => {
                let store = store.as_deref_mut().expect("no store operation in memory");
                let answer = op.run(store);
                driver.handle_store(&mut call, answer);
            }
            Effect::Done(result) => return (result, seen),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Two drivers on the same expired session: one memory-only, one to run
/// against an `UnsharedStore` (the reference it must end like).
fn memory_and_unshared() -> (Driver, Driver) {
    let start = || {
        let manager = TokenManager::new(builder().build().unwrap(), SeededEntropy::new(1));
        Driver::starting(manager, DEFAULT_KEY, Some(expired_session(1000)))
    };
    (start().memory_only(), start())
}

#[test]
fn a_memory_only_driver_runs_no_store_operation_and_ends_as_an_unshared_store_would() {
    let (mut memory, mut unshared) = memory_and_unshared();
    let mut store = tokenkeeper::UnsharedStore::new();
    let (mut server_a, mut server_b) = (FakeServer::default(), FakeServer::default());
    let forced = TokenRequest::new().force_refresh();
    let mut tokens = Vec::new();
    for (round, now) in [2000, 2001, 2002].into_iter().enumerate() {
        let request = if round == 0 {
            TokenRequest::new()
        } else {
            forced
        };
        let (a, seen_a) = run_to_end(
            &mut memory,
            Call::token(Ask::User(&request)),
            &mut server_a,
            None,
            now,
        );
        let (b, seen_b) = run_to_end(
            &mut unshared,
            Call::token(Ask::User(&request)),
            &mut server_b,
            Some(&mut store),
            now,
        );
        // Only the transport: the startup's load and install, the check
        // before the refresh and the save after it are answered inside.
        assert_eq!(seen_a, ["send", "done"], "round {round}");
        assert!(seen_b.contains(&"save"), "{seen_b:?}");
        let (Ok(Finished::Token(a)), Ok(Finished::Token(b))) = (a, b) else {
            panic!("round {round}: both refresh");
        };
        assert_eq!(a.token.secret(), b.token.secret());
        tokens.push(a.token.secret().to_owned());
        assert_eq!(
            memory.manager.session().unwrap().to_json(),
            unshared.manager.session().unwrap().to_json()
        );
        assert_eq!(memory.saved_generation(), unshared.saved_generation());
        assert_eq!(
            memory.saved_generation(),
            Some(memory.manager.session().unwrap().generation()),
            "saved: nothing left pending"
        );
    }
    assert_eq!(tokens.len(), 3);
    assert!(tokens.windows(2).all(|w| w[0] != w[1]), "{tokens:?}");
    // A local logout (clear) and a new session (install): no store either.
    let (cleared, seen) = run_to_end(&mut memory, Call::clear(), &mut server_a, None, 2003);
    assert!(cleared.is_ok(), "{cleared:?}");
    assert_eq!(seen, ["done"]);
    assert!(memory.manager.session().is_none());
    let (installed, seen) = run_to_end(
        &mut memory,
        Call::install(expired_session(5000)),
        &mut server_a,
        None,
        2004,
    );
    assert!(installed.is_ok(), "{installed:?}");
    assert_eq!(seen, ["done"]);
    let generation = memory.manager.session().unwrap().generation();
    assert!(
        generation > 3,
        "a new session goes above every generation seen: {generation}"
    );
}

/// A code login on a driver that has saved a session, then logged out:
/// the new session goes above every generation seen — in memory (the session here
/// the only copy) as it does against a store's floor.
#[cfg(feature = "login")]
#[test]
fn a_login_on_a_memory_only_driver_goes_above_every_generation_seen_as_with_a_store() {
    let (mut memory, mut unshared) = memory_and_unshared();
    let mut store = tokenkeeper::UnsharedStore::new();
    let (mut server_a, mut server_b) = (FakeServer::default(), FakeServer::default());
    let forced = TokenRequest::new().force_refresh();
    for now in [2000, 2001, 2002] {
        for (driver, server, store) in [
            (&mut memory, &mut server_a, None),
            (&mut unshared, &mut server_b, Some(&mut store)),
        ] {
            let (result, _) =
                run_to_end(driver, Call::token(Ask::User(&forced)), server, store, now);
            assert!(matches!(result, Ok(Finished::Token(_))), "{result:?}");
        }
    }
    let seen = memory.manager.session().unwrap().generation();
    assert!(seen >= 3, "{seen}");

    let mut generations = Vec::new();
    for (driver, mut store) in [(&mut memory, None), (&mut unshared, Some(&mut store))] {
        // Logged out first: the login's session starts from nothing.
        let (cleared, _) = run_to_end(
            driver,
            Call::clear(),
            &mut FakeServer::default(),
            store.as_deref_mut(),
            2500,
        );
        assert!(cleared.is_ok(), "{cleared:?}");
        let (url, transaction) =
            LoginRequest::new("https://as.example/authorize", "client-1", "https://app/cb")
                .scope("profile offline_access")
                .start(&mut SeededEntropy::new(11))
                .unwrap();
        let pairs = form::parse(url.split_once('?').unwrap().1);
        let state = form::find(&pairs, "state").unwrap();
        let callback = format!("https://app/cb?code=c&state={state}");
        let dispatch = driver
            .manager
            .exchange_code(&transaction, &callback, t(3000))
            .unwrap();
        let mut call = Call::flight(dispatch);
        let result = loop {
            match driver.poll(&mut call, t(3000)) {
                Effect::Send { .. } => {
                    let answer = HttpResponse::new(
                        200,
                        r#"{"access_token":"at-new","token_type":"Bearer","expires_in":60,"refresh_token":"rt-new","scope":"profile offline_access"}"#,
                    )
                    .with_header("Content-Type", "application/json");
                    driver.handle_response(&mut call, answer, t(3000));
                }
                Effect::Store(op) => {
                    let store = store.as_deref_mut().expect("no store operation in memory");
                    let answer = op.run(store);
                    driver.handle_store(&mut call, answer);
                }
                Effect::Done(result) => break result,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert!(result.is_ok(), "{result:?}");
        let session = driver.manager.session().unwrap();
        assert_eq!(session.token_set().access_token.secret(), "at-new");
        assert!(
            session.generation() > seen,
            "a new session goes above {seen}: {}",
            session.generation()
        );
        assert_eq!(driver.saved_generation(), Some(session.generation()));
        generations.push(session.generation());
    }
    assert_eq!(generations[0], generations[1], "in memory as with a store");
}
