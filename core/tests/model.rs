//! The reference model (`support/model.rs`) run in lockstep with real
//! keepers under proptest: random worlds (one to three keepers sharing one
//! store, DPoP, issuer checks, revocation, a server that only reads
//! `resource`, refresh buffers, scope grants) and random steps (token
//! requests over audiences and scopes with `merge_scopes(false)` and forced
//! refreshes, answers of every kind, transport errors, cancels, time,
//! leases, late answers, logout, clear, new logins, reloads, restarts).
//! Every invariant and prediction is checked after every step.
//!
//! `PROPTEST_CASES` raises the number of cases (default 256, about 20 s).

#[path = "support/model.rs"]
mod model;

use model::{AUDIENCES, Get, IdTok, Op, Reply, SCOPES, Setup, World};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn setup(keepers: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Setup> {
    (
        keepers,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        prop_oneof![Just(0u64), Just(30), Just(120)],
        prop_oneof![Just(60u64), Just(600)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                keepers,
                shared_store,
                dpop,
                issuer,
                revocation,
                resource_only,
                refresh_buffer,
                lifetime,
                grant_subset,
                seed_entry,
                fresh_start,
            )| Setup {
                keepers,
                shared_store,
                dpop,
                issuer,
                revocation,
                resource_only,
                refresh_buffer,
                lifetime,
                lease: 30,
                grant_subset,
                seed_entry,
                fresh_start,
            },
        )
}

fn reply() -> impl Strategy<Value = Reply> {
    let id_token = prop_oneof![
        4 => Just(IdTok::None),
        2 => Just(IdTok::Good),
        1 => Just(IdTok::IatInFuture),
        1 => Just(IdTok::OtherSub),
        1 => Just(IdTok::Opaque),
    ];
    prop_oneof![
        8 => (prop::bool::weighted(0.8), id_token, prop::bool::weighted(0.2)).prop_map(
            |(rotate, id_token, omit_scope)| Reply::Ok { rotate, id_token, omit_scope }
        ),
        1 => any::<bool>().prop_map(|rotate| Reply::Bearer { rotate }),
        1 => Just(Reply::InvalidGrant),
        1 => Just(Reply::ServerError),
        2 => any::<bool>().prop_map(|fresh| Reply::UseDpopNonce { fresh }),
        1 => Just(Reply::Malformed),
    ]
}

fn get() -> impl Strategy<Value = Get> {
    (
        0..AUDIENCES.len(),
        0..SCOPES.len(),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(audience, scope, merge, force)| Get {
            audience,
            scope,
            merge,
            force,
        })
}

fn advance() -> impl Strategy<Value = Op> {
    prop_oneof![Just(1u64), Just(15), Just(30), Just(61), Just(601)].prop_map(Op::Advance)
}

/// Every kind of step.
fn op() -> impl Strategy<Value = Op> {
    let keeper = 0usize..3;
    prop_oneof![
        8 => (keeper.clone(), get()).prop_map(|(keeper, get)| Op::Get { keeper, get }),
        8 => (0usize..4, reply()).prop_map(|(which, reply)| Op::Answer { which, reply }),
        1 => (0usize..4).prop_map(|which| Op::TransportError { which }),
        1 => (0usize..4).prop_map(|which| Op::Cancel { which }),
        4 => advance(),
        2 => keeper.clone().prop_map(|keeper| Op::Timeout { keeper }),
        1 => keeper.clone().prop_map(|keeper| Op::Logout { keeper }),
        1 => keeper.clone().prop_map(|keeper| Op::Clear { keeper }),
        1 => keeper.clone().prop_map(|keeper| Op::Login { keeper }),
        1 => keeper.clone().prop_map(|keeper| Op::Reload { keeper }),
        1 => keeper.clone().prop_map(|keeper| Op::Restart { keeper }),
        1 => keeper.prop_map(|keeper| Op::Authorize { keeper }),
    ]
}

/// One keeper with DPoP: requests, answers (nonces above all), leases,
/// late answers, logout.
fn lease_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => get().prop_map(|get| Op::Get { keeper: 0, get }),
        5 => (0usize..3, reply()).prop_map(|(which, reply)| Op::Answer { which, reply }),
        3 => (0usize..3, any::<bool>()).prop_map(|(which, fresh)| Op::Answer {
            which,
            reply: Reply::UseDpopNonce { fresh },
        }),
        1 => (0usize..3).prop_map(|which| Op::TransportError { which }),
        3 => prop_oneof![Just(1u64), Just(15), Just(29), Just(30)].prop_map(Op::Advance),
        1 => Just(Op::Timeout { keeper: 0 }),
        1 => Just(Op::Logout { keeper: 0 }),
    ]
}

/// Keepers sharing the store: the store-changing steps weigh more.
fn shared_op() -> impl Strategy<Value = Op> {
    let keeper = 0usize..3;
    prop_oneof![
        6 => (keeper.clone(), get()).prop_map(|(keeper, get)| Op::Get { keeper, get }),
        6 => (0usize..4, reply()).prop_map(|(which, reply)| Op::Answer { which, reply }),
        1 => (0usize..4).prop_map(|which| Op::TransportError { which }),
        1 => (0usize..4).prop_map(|which| Op::Cancel { which }),
        3 => advance(),
        1 => keeper.clone().prop_map(|keeper| Op::Timeout { keeper }),
        2 => keeper.clone().prop_map(|keeper| Op::Logout { keeper }),
        2 => keeper.clone().prop_map(|keeper| Op::Clear { keeper }),
        2 => keeper.clone().prop_map(|keeper| Op::Login { keeper }),
        2 => keeper.clone().prop_map(|keeper| Op::Reload { keeper }),
        1 => keeper.prop_map(|keeper| Op::Restart { keeper }),
    ]
}

/// One keeper, the multi-resource cache: scopes, `merge_scopes(false)`,
/// expiry.
fn cache_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => get().prop_map(|get| Op::Get { keeper: 0, get }),
        6 => (0usize..2, prop::bool::weighted(0.8), prop::bool::weighted(0.2)).prop_map(
            |(which, rotate, omit_scope)| Op::Answer {
                which,
                reply: Reply::Ok { rotate, id_token: IdTok::None, omit_scope },
            }
        ),
        3 => prop_oneof![Just(1u64), Just(61), Just(601)].prop_map(Op::Advance),
    ]
}

fn check(setup: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    match World::run(setup, ops) {
        Err(e)
            if std::env::var("MODEL_HUNT_IGNORE").is_ok_and(|tags| {
                let words: Vec<&str> = e.split(|c: char| !c.is_alphanumeric()).collect();
                tags.split(',').any(|t| words.contains(&t))
            }) =>
        {
            Err(TestCaseError::reject(e))
        }
        other => other.map_err(TestCaseError::fail),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_global_rejects: 1_000_000,
        ..ProptestConfig::with_cases(cases(96))
    })]

    /// Any world, any steps.
    #[test]
    fn lockstep(setup in setup(1..=3), ops in prop::collection::vec(op(), 1..60)) {
        check(setup, &ops)?;
    }

    /// One keeper with DPoP: leases, late answers, nonce retries.
    #[test]
    fn lockstep_leases_and_nonces(
        setup in setup(1..=1).prop_map(|s| Setup { dpop: true, ..s }),
        ops in prop::collection::vec(lease_op(), 1..40),
    ) {
        check(setup, &ops)?;
    }

    /// Two or three keepers on one store: claims, compare-and-swap,
    /// logout, clear, new logins, reloads, restarts.
    #[test]
    fn lockstep_shared_store(
        setup in setup(2..=3),
        ops in prop::collection::vec(shared_op(), 1..50),
    ) {
        check(setup, &ops)?;
    }

    /// One keeper, the multi-resource cache under scopes and expiry.
    #[test]
    fn lockstep_cache_and_scopes(
        setup in setup(1..=1).prop_map(|s| Setup { resource_only: false, ..s }),
        ops in prop::collection::vec(cache_op(), 1..40),
    ) {
        check(setup, &ops)?;
    }
}
