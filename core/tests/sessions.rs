//! Many sessions in one process (`driver::Sessions`): thousands of sessions
//! behind an in-memory bound, each with its own answer; evicted sessions
//! come back from the store with their rotated tokens; single flight per
//! session with many callers; two sessions refreshing at once do not wait
//! for each other; machine tokens shared by the whole application;
//! 10,000 sessions with 1,000 in memory in bounded memory, measured with a
//! counting global allocator (the tests of this file run one at a time, so
//! no other test allocates while one counts).

use std::alloc::System;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use tokenkeeper::driver::{Ask, Call, Effect, Finished, Sessions, StoreOp, WaitReason};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    __private::form, ClientSecret, Config, HttpRequest, HttpResponse, MemoryStore, SeededEntropy,
    Session, SessionStore, TokenManager, TokenRequest, UnixTime,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Held by every test of this file: one at a time, so the allocator's
/// counts are one test's.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const NOW: u64 = 1_800_000_000;

fn now() -> UnixTime {
    UnixTime::from_secs(NOW)
}

/// A token endpoint serving many grants: refresh token `rt-<user>-<n>`
/// rotates to `rt-<user>-<n+1>` with access token `at-<user>-<n+1>`; a
/// spent refresh token is a replay (counted, refused).
#[derive(Default)]
struct Server {
    spent: BTreeSet<String>,
    refreshes: BTreeMap<String, u32>,
    replays: u32,
    machine: u32,
}

impl Server {
    fn handle(&mut self, request: &HttpRequest) -> HttpResponse {
        let body = std::str::from_utf8(&request.body).unwrap();
        let fields: BTreeMap<String, String> = form::parse(body).into_iter().collect();
        if fields.get("grant_type").map(String::as_str) == Some("client_credentials") {
            self.machine += 1;
            return json(format!(
                r#"{{"access_token":"machine-{}","token_type":"Bearer","expires_in":3600}}"#,
                self.machine
            ));
        }
        let presented = fields["refresh_token"].clone();
        if !self.spent.insert(presented.clone()) {
            self.replays += 1;
            return HttpResponse::new(400, r#"{"error":"invalid_grant"}"#)
                .with_header("Content-Type", "application/json");
        }
        let (user, n) = presented
            .strip_prefix("rt-")
            .and_then(|rest| rest.rsplit_once('-'))
            .unwrap();
        *self.refreshes.entry(user.to_string()).or_default() += 1;
        let next: u32 = n.parse::<u32>().unwrap() + 1;
        json(format!(
            r#"{{"access_token":"at-{user}-{next}","refresh_token":"rt-{user}-{next}","token_type":"Bearer","expires_in":3600,"scope":"openid offline_access"}}"#
        ))
    }

    fn refreshes(&self, user: &str) -> u32 {
        self.refreshes.get(user).copied().unwrap_or(0)
    }
}

fn json(body: String) -> HttpResponse {
    HttpResponse::new(200, body).with_header("Content-Type", "application/json")
}

/// User `i`'s session: access token `at-u<i>-0`, fresh or expired.
fn session(i: usize, expired: bool) -> Session {
    let expires_at = if expired { NOW - 10 } else { NOW + 3600 };
    let json = format!(
        r#"{{"user":{{"sub":"u{i}"}},"tokenSet":{{"accessToken":"at-u{i}-0","refreshToken":"rt-u{i}-0","expiresAt":{expires_at},"scope":"openid profile email offline_access","requestedScope":"openid profile email offline_access"}},"internal":{{"sid":"s{i}","createdAt":1}}}}"#
    );
    Session::from_json(json.as_bytes(), &Default::default()).unwrap()
}

fn id(i: usize) -> String {
    format!("u{i}")
}

fn sessions(capacity: usize) -> Sessions {
    let config = Config::builder("https://as.example/oauth/token", "client-1")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret-1")))
        .build()
        .unwrap();
    Sessions::new(TokenManager::new(config, SeededEntropy::new(3)), capacity)
}

fn store_with(n: usize, expired: bool) -> MemoryStore {
    let mut store = MemoryStore::new();
    for i in 0..n {
        store.save(&id(i), &session(i, expired), None).unwrap();
    }
    store
}

/// Drives `call` on `id` to its end (one caller, so it never waits).
fn drive(
    sessions: &mut Sessions,
    store: &mut MemoryStore,
    server: &mut Server,
    id: &str,
    mut call: Call<'_, '_>,
) -> Finished {
    loop {
        match sessions.poll(id, &mut call, now()) {
            Effect::Store(op) => {
                let answer = op.run(store);
                sessions.handle_store(id, &mut call, answer);
            }
            Effect::Send { request, .. } => {
                let response = server.handle(&request.request);
                sessions.handle_response(id, &mut call, response, now());
            }
            Effect::Done(result) => return result.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A token for `id`: the cached path first, else a call.
fn token(
    sessions: &mut Sessions,
    store: &mut MemoryStore,
    server: &mut Server,
    id: &str,
) -> String {
    let request = TokenRequest::new();
    if let Some(token) = sessions.cached_token(id, &request, now()) {
        return token.token.secret().to_string();
    }
    match drive(
        sessions,
        store,
        server,
        id,
        Call::token(Ask::User(&request)),
    ) {
        Finished::Token(token) => token.token.secret().to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ten_thousand_sessions_each_get_their_own_token_within_the_bound() {
    let _serial = serial();
    let mut sessions = sessions(100);
    let mut store = store_with(10_000, false);
    let mut server = Server::default();
    for round in 0..2 {
        for i in 0..10_000 {
            let got = token(&mut sessions, &mut store, &mut server, &id(i));
            assert_eq!(got, format!("at-u{i}-0"), "round {round}");
            assert!(sessions.len() <= 100, "{} in memory", sessions.len());
        }
    }
    assert_eq!(sessions.len(), 100);
    // The last 100 are in memory: answered by the cached path alone.
    for i in 9_900..10_000 {
        let token = sessions.cached_token(&id(i), &TokenRequest::new(), now());
        assert_eq!(token.unwrap().token.secret(), format!("at-u{i}-0"));
    }
    assert!(
        sessions
            .cached_token(&id(0), &TokenRequest::new(), now())
            .is_none()
    );
    assert_eq!(server.refreshes.len(), 0);
    assert_eq!(store.saves(), 10_000, "cached answers save nothing");
}

#[test]
fn evicted_sessions_come_back_from_the_store_with_their_rotated_tokens() {
    let _serial = serial();
    let mut sessions = sessions(10);
    let mut store = store_with(200, true);
    let mut server = Server::default();
    for i in 0..200 {
        let got = token(&mut sessions, &mut store, &mut server, &id(i));
        assert_eq!(got, format!("at-u{i}-1"));
        let stored = store.get(&id(i)).unwrap();
        assert_eq!(
            stored.token_set().refresh_token.as_ref().unwrap().secret(),
            format!("rt-u{i}-1"),
            "the rotation is saved under the session's id"
        );
    }
    assert!(sessions.len() <= 10);
    // Session 0 was evicted long ago: reloaded with its rotated tokens, it
    // needs no refresh.
    assert!(sessions.session(&id(0)).is_none());
    for i in 0..200 {
        assert_eq!(
            token(&mut sessions, &mut store, &mut server, &id(i)),
            format!("at-u{i}-1")
        );
        assert_eq!(server.refreshes(&id(i)), 1);
    }
    // A forced refresh of a reloaded session spends the rotated token.
    let forced = TokenRequest::new().force_refresh();
    match drive(
        &mut sessions,
        &mut store,
        &mut server,
        &id(3),
        Call::token(Ask::User(&forced)),
    ) {
        Finished::Token(token) => assert_eq!(token.token.secret(), "at-u3-2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.replays, 0);
}

#[test]
fn one_refresh_per_session_for_many_callers() {
    let _serial = serial();
    let mut sessions = sessions(4);
    let mut store = store_with(2, true);
    let mut server = Server::default();
    let request = TokenRequest::new();
    let owner_id = id(0);
    let mut owner = Call::token(Ask::User(&request));
    // The first caller loads, then owns the refresh.
    let sent = loop {
        match sessions.poll(&owner_id, &mut owner, now()) {
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                sessions.handle_store(&owner_id, &mut owner, answer);
            }
            Effect::Send { request, .. } => break request,
            other => panic!("{other:?}"),
        }
    };
    // Fifty more callers of that session wait for its flight.
    let mut waiters: Vec<Call<'_, '_>> =
        (0..50).map(|_| Call::token(Ask::User(&request))).collect();
    for waiter in &mut waiters {
        assert!(sessions.cached_token(&owner_id, &request, now()).is_none());
        match sessions.poll(&owner_id, waiter, now()) {
            Effect::Wait(wait) => assert_eq!(wait.reason, WaitReason::Flight),
            other => panic!("{other:?}"),
        }
    }
    // Fill the table past its bound: the busy session stays in memory.
    for i in 1..2 {
        let _ = token(&mut sessions, &mut store, &mut server, &id(i));
    }
    for i in 10..20 {
        let mut call = Call::load();
        let _ = sessions.poll(&id(i), &mut call, now());
        sessions.abandon(&id(i), &mut call);
    }
    assert!(sessions.session(&owner_id).is_some());
    let response = server.handle(&sent.request);
    sessions.handle_response(&owner_id, &mut owner, response, now());
    let owned = drive_on(&mut sessions, &mut store, &owner_id, &mut owner);
    assert_eq!(owned, "at-u0-1");
    for waiter in &mut waiters {
        assert_eq!(
            drive_on(&mut sessions, &mut store, &owner_id, waiter),
            "at-u0-1"
        );
    }
    assert_eq!(server.refreshes(&owner_id), 1);
    assert_eq!(server.replays, 0);
}

/// Drives a call that needs no server any more to its token.
fn drive_on(
    sessions: &mut Sessions,
    store: &mut MemoryStore,
    id: &str,
    call: &mut Call<'_, '_>,
) -> String {
    loop {
        match sessions.poll(id, call, now()) {
            Effect::Store(op) => {
                let answer = op.run(store);
                sessions.handle_store(id, call, answer);
            }
            Effect::Done(Ok(Finished::Token(token))) => return token.token.secret().to_string(),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn two_sessions_refresh_at_once_without_waiting_for_each_other() {
    let _serial = serial();
    let mut sessions = sessions(10);
    let mut store = store_with(2, true);
    let mut server = Server::default();
    let request = TokenRequest::new();
    let (a, b) = (id(0), id(1));
    let mut call_a = Call::token(Ask::User(&request));
    let mut call_b = Call::token(Ask::User(&request));
    let mut to_send = |sessions: &mut Sessions, id: &str, call: &mut Call<'_, '_>| loop {
        match sessions.poll(id, call, now()) {
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                sessions.handle_store(id, call, answer);
            }
            Effect::Send { request, .. } => break request,
            other => panic!("{id}: {other:?}"),
        }
    };
    // Both flights are out at the same time.
    let sent_a = to_send(&mut sessions, &a, &mut call_a);
    let sent_b = to_send(&mut sessions, &b, &mut call_b);
    // B's answer arrives first.
    let response = server.handle(&sent_b.request);
    sessions.handle_response(&b, &mut call_b, response, now());
    let response = server.handle(&sent_a.request);
    sessions.handle_response(&a, &mut call_a, response, now());
    assert_eq!(
        drive_on(&mut sessions, &mut store, &b, &mut call_b),
        "at-u1-1"
    );
    assert_eq!(
        drive_on(&mut sessions, &mut store, &a, &mut call_a),
        "at-u0-1"
    );
    assert_eq!(
        store
            .get(&a)
            .unwrap()
            .token_set()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret(),
        "rt-u0-1"
    );
}

#[test]
fn machine_tokens_are_shared_by_the_application() {
    let _serial = serial();
    let mut sessions = sessions(2);
    let mut store = MemoryStore::new();
    let mut server = Server::default();
    let request = TokenRequest::new().audience("https://api.example");
    for who in ["u1", "u2", ""] {
        match drive(
            &mut sessions,
            &mut store,
            &mut server,
            who,
            Call::token(Ask::Machine(&request)),
        ) {
            Finished::Token(token) => assert_eq!(token.token.secret(), "machine-1"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.machine, 1);
    assert_eq!(store.saves(), 0);
    let _ = StoreOp::Clear { key: String::new() }.key();
}

#[test]
fn a_session_not_stored_needs_a_login() {
    let _serial = serial();
    let mut sessions = sessions(2);
    let mut store = MemoryStore::new();
    let request = TokenRequest::new();
    let mut call = Call::token(Ask::User(&request));
    let result = loop {
        match sessions.poll("nobody", &mut call, now()) {
            Effect::Store(op) => {
                let answer = op.run(&mut store);
                sessions.handle_store("nobody", &mut call, answer);
            }
            Effect::Done(result) => break result,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        result.unwrap_err().to_string(),
        tokenkeeper::Error::MissingSession.to_string()
    );
}

/// The bytes allocated and not freed since `region` began.
fn live_bytes(region: &Region<'_, System>) -> isize {
    let change = region.change();
    change.bytes_allocated as isize - change.bytes_deallocated as isize + change.bytes_reallocated
}

#[test]
fn ten_thousand_sessions_with_a_thousand_in_memory_get_their_tokens_in_bounded_memory() {
    let _serial = serial();
    const USERS: usize = 10_000;
    const CAP: usize = 1_000;
    // Every third session's access token has expired: it is refreshed
    // (rotated) on its first ask, and must come back rotated after its
    // eviction.
    let expired = |i: usize| i.is_multiple_of(3);
    let expected = |i: usize| format!("at-u{i}-{}", u32::from(expired(i)));
    let mut store = MemoryStore::new();
    for i in 0..USERS {
        store.save(&id(i), &session(i, expired(i)), None).unwrap();
    }
    let mut server = Server::default();
    let mut sessions = sessions(CAP);
    let ids: Vec<String> = (0..USERS).map(id).collect();

    // Counted from here: what the sessions in memory hold (the store was
    // filled before; a rotated session it saves replaces the one it held,
    // and the server's record of spent tokens grows with the refreshes,
    // whatever the cap).
    let region = Region::new(GLOBAL);
    for (i, id) in ids.iter().enumerate().take(CAP) {
        let got = token(&mut sessions, &mut store, &mut server, id);
        assert_eq!(got, expected(i));
    }
    assert_eq!(sessions.len(), CAP);
    let at_cap = live_bytes(&region);

    for (i, id) in ids.iter().enumerate().skip(CAP) {
        let got = token(&mut sessions, &mut store, &mut server, id);
        assert_eq!(got, expected(i));
        assert!(sessions.len() <= CAP, "{} in memory", sessions.len());
    }
    let at_all = live_bytes(&region);
    // A second round: the evicted sessions come back from the store with
    // their rotated tokens, nothing refreshed twice, nothing replayed.
    for (i, id) in ids.iter().enumerate() {
        let got = token(&mut sessions, &mut store, &mut server, id);
        assert_eq!(got, expected(i), "round 2");
    }
    let after_round_two = live_bytes(&region);
    let stats = region.change();

    let refreshed = (0..USERS).filter(|&i| expired(i)).count();
    assert_eq!(server.refreshes.len(), refreshed);
    assert!(server.refreshes.values().all(|&n| n == 1));
    assert_eq!(server.replays, 0);
    assert_eq!(sessions.len(), CAP);

    println!(
        "sessions memory: {CAP} users asked: {at_cap} bytes live ({} per session in memory); \
         {USERS} users asked: {at_all} bytes; after a second round: {after_round_two} bytes; \
         {} allocations in all",
        at_cap / CAP as isize,
        stats.allocations
    );
    // Bounded: ten times the users, not ten times the memory (a rotated
    // session the store saves replaces the one it held, of the same size).
    assert!(
        at_all <= at_cap + at_cap / 4,
        "{at_all} bytes for {USERS} users, {at_cap} for {CAP}"
    );
    assert!(
        after_round_two <= at_all + at_cap / 4,
        "{after_round_two} bytes after the second round, {at_all} after the first"
    );
}

/// Drives `call` on `id` with no store at all: a store operation fails the
/// test.
fn run_in_memory(
    sessions: &mut Sessions,
    server: &mut Server,
    id: &str,
    mut call: Call<'_, '_>,
) -> Result<Finished, tokenkeeper::driver::Failure> {
    loop {
        match sessions.poll(id, &mut call, now()) {
            Effect::Store(op) => panic!("a store operation in memory: {op:?}"),
            Effect::Send { request, .. } => {
                let response = server.handle(&request.request);
                sessions.handle_response(id, &mut call, response, now());
            }
            Effect::Done(result) => return result,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// With no store, memory holds the only copy of every session: installed
/// sessions stay past the capacity and refresh with no store operation;
/// slots of ids that hold no session still go.
#[test]
fn memory_only_sessions_are_never_evicted_and_run_no_store_operation() {
    let _serial = serial();
    let mut sessions = sessions(2).memory_only();
    let mut server = Server::default();
    for i in 0..5 {
        let result = run_in_memory(
            &mut sessions,
            &mut server,
            &id(i),
            Call::install(session(i, true)),
        );
        assert!(result.is_ok(), "{result:?}");
    }
    assert_eq!(sessions.len(), 5, "none evicted past the capacity of 2");
    let forced = TokenRequest::new().force_refresh();
    for round in 1..=2u32 {
        for i in 0..5 {
            let result = run_in_memory(
                &mut sessions,
                &mut server,
                &id(i),
                Call::token(Ask::User(&forced)),
            );
            let Ok(Finished::Token(token)) = result else {
                panic!("{result:?}")
            };
            assert_eq!(token.token.secret(), format!("at-u{i}-{round}"));
        }
    }
    assert_eq!(server.replays, 0);
    // Unknown ids: no session, and their slots go again.
    let request = TokenRequest::new();
    for unknown in 0..10 {
        let result = run_in_memory(
            &mut sessions,
            &mut server,
            &format!("nobody-{unknown}"),
            Call::token(Ask::User(&request)),
        );
        assert!(result.is_err(), "{result:?}");
    }
    assert_eq!(sessions.len(), 5);
}
