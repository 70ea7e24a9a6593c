//! The cached path allocates nothing: counted with an instrumented global
//! allocator. A plain `main` (no libtest harness), so no other thread
//! allocates while it counts.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokenkeeper::driver::{Ask, Call, Effect, Sessions};
use tokenkeeper::{
    Action, Config, MemoryStore, SeededEntropy, Session, SessionStore, TokenManager, TokenRequest,
    UnixTime,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    cached_path_does_not_allocate();
    many_sessions_cached_path_does_not_allocate();
    // The closing line test runners look for.
    println!("no_alloc: 2 passed, 0 failed");
}

fn cached_path_does_not_allocate() {
    let entries: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"accessToken":"at-{i}","audience":"https://api{i}","requestedScope":"openid profile email offline_access read:data","expiresAt":9999999999}}"#))
        .collect();
    let json = format!(
        r#"{{"tokenSet":{{"accessToken":"main","refreshToken":"rt","expiresAt":9999999999}},"accessTokens":[{}]}}"#,
        entries.join(",")
    );
    let config = Config::builder("https://as.example/token", "c")
        .max_cache_entries(1000)
        .build()
        .unwrap();
    let mut manager = TokenManager::new(config, SeededEntropy::new(1));
    manager.set_session(Session::from_json(json.as_bytes(), &Default::default()).unwrap());
    let now = UnixTime::from_secs(1_800_000_000);
    let requests = [
        TokenRequest::new(),
        TokenRequest::new()
            .audience("https://api50")
            .scope("read:data"),
        TokenRequest::new().audience("https://api99"),
    ];
    // Warm up (first use of lazily initialised statics, if any).
    for request in &requests {
        assert!(matches!(
            manager.get_access_token(request, now),
            Action::Ready(_)
        ));
    }
    let region = Region::new(GLOBAL);
    let mut served = 0;
    for _ in 0..1000 {
        for request in &requests {
            if let Action::Ready(token) = manager.get_access_token(request, now) {
                served += token.token.len();
            }
        }
    }
    let change = region.change();
    assert!(served > 0);
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");
}

/// `Sessions::cached_token` for sessions in memory (1,000 of them, found by
/// id, with 10 cache entries each) allocates nothing either.
fn many_sessions_cached_path_does_not_allocate() {
    let config = Config::builder("https://as.example/token", "c")
        .build()
        .unwrap();
    let mut sessions = Sessions::new(TokenManager::new(config, SeededEntropy::new(1)), 1000);
    let mut store = MemoryStore::new();
    let now = UnixTime::from_secs(1_800_000_000);
    let ids: Vec<String> = (0..1000).map(|i| format!("{i:032x}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let entries: Vec<String> = (0..10)
            .map(|e| format!(r#"{{"accessToken":"at-{i}-{e}","audience":"https://api{e}","expiresAt":9999999999}}"#))
            .collect();
        let json = format!(
            r#"{{"tokenSet":{{"accessToken":"main-{i}","refreshToken":"rt","expiresAt":9999999999}},"accessTokens":[{}]}}"#,
            entries.join(",")
        );
        let session = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
        store.save(id, &session, None).unwrap();
        // Loaded into memory by a first call.
        let request = TokenRequest::new();
        let mut call = Call::token(Ask::User(&request));
        loop {
            match sessions.poll(id, &mut call, now) {
                Effect::Store(op) => {
                    let answer = op.run(&mut store);
                    sessions.handle_store(id, &mut call, answer);
                }
                Effect::Done(result) => {
                    assert!(result.is_ok());
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(sessions.len(), 1000);
    let requests = [
        TokenRequest::new(),
        TokenRequest::new().audience("https://api7"),
    ];
    let region = Region::new(GLOBAL);
    let mut served = 0;
    for round in 0..10 {
        for id in ids.iter().skip(round).step_by(7) {
            for request in &requests {
                if let Some(token) = sessions.cached_token(id, request, now) {
                    served += token.token.len();
                }
            }
        }
    }
    let change = region.change();
    assert!(served > 0);
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");
}
