//! One store, several handles, each run through every adapter
//! against node-oidc-provider: two handles in one process adopt each
//! other's saved changes instead of spending a refresh token twice, and two
//! "processes" (handles with their own single flight) that share a store
//! with refresh claims make one refresh between them.
//!
//! (Moved here from the adapters' own integration tests, where each
//! adapter had a copy.)

#[macro_use]
mod scenarios_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use scenarios_common::{
    Ask, Driver, SharedStore, access_token, config, config_builder, expire, logged_in,
    refresh_token,
};
use tokenkeeper::TokenRequest;
use tokenkeeper_integration::{CONFIDENTIAL_POST, Harness, HarnessOptions};

scenarios!(
    two_handles_on_one_store_adopt_each_others_changes,
    two_processes_sharing_a_store_make_one_refresh,
);

fn harness() -> Harness {
    Harness::start(HarnessOptions::default())
}

/// Handle B's copy goes stale when A refreshes: before refreshing, B sees
/// the store moved on and adopts A's session; when B's own save conflicts
/// (it changed its copy without a refresh), it reloads A's session and
/// uses A's new token for its one retry. No refresh token is replayed.
fn two_handles_on_one_store_adopt_each_others_changes<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(expire(&session));
    let a = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    let b = D::build(config(&h, &CONFIDENTIAL_POST), store.clone(), None);
    h.reset_stats();

    // A refreshes and saves. B's copy is stale (spent refresh token): before
    // refreshing it sees the store moved on and adopts A's session.
    let token_a = a.get(&TokenRequest::new()).unwrap();
    let token_b = b.get(&TokenRequest::new()).unwrap();
    assert_eq!(token_a.token, token_b.token);
    assert_eq!(h.stats().grant("refresh_token"), 1, "B did not refresh");

    // A refreshes again; B, still on the older generation, changes its own
    // copy without a refresh (the API rejects its token): its save conflicts,
    // so B reloads A's session and uses A's new token for the one retry.
    let token_a2 = a.get(&TokenRequest::new().force_refresh()).unwrap();
    let api = b
        .call_api(&TokenRequest::new(), &h.resource_url("/api2/data"))
        .unwrap();
    assert_eq!(api.status, 401, "{api:?}");
    assert_eq!(h.stats().grant("refresh_token"), 2, "B did not refresh");
    let session_b = b.session().unwrap();
    assert_eq!(access_token(&session_b), token_a2.token.secret());
    // B saved its own last change (the retry's 401 rejected that token too).
    let stored = store.stored().unwrap();
    assert_eq!(session_b.generation(), stored.generation());
    assert_eq!(refresh_token(&session_b), refresh_token(&stored));

    // No refresh token was replayed: both handles can still refresh.
    b.get(&TokenRequest::new().force_refresh()).unwrap();
    a.get(&TokenRequest::new()).unwrap();
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 3);
    assert_eq!(stats.token_responses_by_status.get("400"), None);
}

/// Two handles stand for two processes: each has its own single flight,
/// only the refresh claim saved in the store (`shared_store`) keeps them
/// apart. 32 callers on each, released together: one refresh in all, one
/// token for everyone, the claim released, nothing replayed.
fn two_processes_sharing_a_store_make_one_refresh<D: Driver>() {
    let h = harness();
    let session = logged_in::<D>(&h, &CONFIDENTIAL_POST);
    let store = SharedStore::with_session(expire(&session));
    let shared = || {
        config_builder(&h, &CONFIDENTIAL_POST)
            .shared_store(true)
            .build()
            .unwrap()
    };
    let a = D::build(shared(), store.clone(), None);
    let b = D::build(shared(), store.clone(), None);
    h.reset_stats();

    let barrier = Arc::new(Barrier::new(2));
    let processes: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|keeper| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                keeper.at_once(vec![(Ask::User, TokenRequest::new()); 32])
            })
        })
        .collect();
    let tokens: BTreeSet<String> = processes
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .map(|answer| answer.unwrap().token.secret().to_owned())
        .collect();
    assert_eq!(h.stats().grant("refresh_token"), 1, "one refresh in all");
    assert_eq!(tokens.len(), 1, "both processes share the new token");
    let stored = store.stored().unwrap();
    assert!(stored.refresh_claim().is_none(), "the claim was released");
    assert_eq!(access_token(&stored), *tokens.first().unwrap());

    // Nothing was replayed: both can refresh again.
    b.get(&TokenRequest::new().force_refresh()).unwrap();
    a.get(&TokenRequest::new().force_refresh()).unwrap();
    let stats = h.stats();
    assert_eq!(stats.grant("refresh_token"), 3);
    assert_eq!(stats.token_responses_by_status.get("400"), None);
}
