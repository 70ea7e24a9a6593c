//! The reference model (`support/model.rs`) run in lockstep with real
//! keepers under proptest: random worlds (one to three keepers sharing one
//! store, DPoP, issuer checks, revocation, a server that only reads
//! `resource`, refresh buffers, scope grants) and random steps (token
//! requests over audiences and scopes with `merge_scopes(false)` and forced
//! refreshes, answers of every kind, transport errors, cancels, time,
//! leases, late answers, logout, clear, new logins, reloads, restarts).
//! Every invariant and prediction is checked after every step.
//!
//! `PROPTEST_CASES` sets the number of cases of each (defaults 256, 512,
//! 512, 192: about 30 s for the four on two cores in a debug build).

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
        1 => (keeper.clone(), any::<bool>()).prop_map(|(keeper, id_token)| Op::CodeLogin { keeper, id_token }),
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
        1 => (keeper.clone(), any::<bool>()).prop_map(|(keeper, id_token)| Op::CodeLogin { keeper, id_token }),
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
    World::run(setup, ops).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Any world, any steps.
    #[test]
    fn lockstep(setup in setup(1..=3), ops in prop::collection::vec(op(), 1..60)) {
        check(setup, &ops)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

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

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(192)))]

    /// One keeper, the multi-resource cache under scopes and expiry.
    #[test]
    fn lockstep_cache_and_scopes(
        setup in setup(1..=1).prop_map(|s| Setup { resource_only: false, ..s }),
        ops in prop::collection::vec(cache_op(), 1..40),
    ) {
        check(setup, &ops)?;
    }
}

// Named regressions: the exact sequences the proptests above shrank to,
// one per defect of issue 12 (Dn) or new finding (Nn), each of which failed
// before its fix.

fn run(setup: Setup, ops: &[Op]) {
    if let Err(violation) = World::run(setup, ops) {
        panic!("{violation}");
    }
}

/// A base world: one keeper, 60 s tokens, no revocation endpoint.
fn world() -> Setup {
    Setup {
        lifetime: 60,
        revocation: false,
        ..Setup::default()
    }
}

fn shared(keepers: usize) -> Setup {
    Setup {
        keepers,
        shared_store: true,
        ..world()
    }
}

const fn get_default(keeper: usize) -> Op {
    get_for(keeper, 0, 0)
}

const fn get_for(keeper: usize, audience: usize, scope: usize) -> Op {
    Op::Get {
        keeper,
        get: Get {
            audience,
            scope,
            merge: false,
            force: false,
        },
    }
}

const fn ok(rotate: bool) -> Reply {
    Reply::Ok {
        rotate,
        id_token: IdTok::None,
        omit_scope: false,
    }
}

const fn answer(which: usize, reply: Reply) -> Op {
    Op::Answer { which, reply }
}

const NONCE: Reply = Reply::UseDpopNonce { fresh: false };

#[test]
fn d1_the_rotation_is_kept_when_the_id_token_names_another_user() {
    let reply = Reply::Ok {
        rotate: true,
        id_token: IdTok::OtherSub,
        omit_scope: false,
    };
    run(world(), &[get_default(0), answer(0, reply)]);
}

#[test]
fn d1_the_rotation_is_kept_when_the_id_token_is_issued_in_the_future() {
    let reply = Reply::Ok {
        rotate: true,
        id_token: IdTok::IatInFuture,
        omit_scope: false,
    };
    let setup = Setup {
        issuer: true,
        ..world()
    };
    run(setup, &[get_default(0), answer(0, reply)]);
}

#[test]
fn d1_the_rotation_is_kept_when_the_id_token_is_opaque() {
    let reply = Reply::Ok {
        rotate: true,
        id_token: IdTok::Opaque,
        omit_scope: false,
    };
    run(world(), &[get_default(0), answer(0, reply)]);
}

#[test]
fn d2_an_expired_wider_entry_is_replaced_not_served() {
    let setup = Setup {
        seed_entry: true,
        ..world()
    };
    run(setup, &[get_for(0, 1, 2), answer(0, ok(false))]);
}

#[test]
fn d3_a_clear_is_not_undone_by_a_pending_rotation() {
    run(
        shared(2),
        &[
            get_default(0),
            answer(0, ok(false)),
            get_for(1, 0, 1),
            Op::Clear { keeper: 0 },
            answer(0, ok(true)),
        ],
    );
}

#[test]
fn d3_a_third_keeper_never_spends_a_token_the_store_no_longer_holds() {
    run(
        shared(2),
        &[
            get_default(1),
            Op::Advance(30),
            get_default(0),
            Op::Reload { keeper: 1 },
            Op::Cancel { which: 1 },
            answer(0, ok(true)),
            get_default(0),
        ],
    );
}

#[test]
fn d4_an_abandoned_flight_is_not_resent_on_a_nonce_error() {
    let setup = Setup {
        dpop: true,
        ..world()
    };
    run(
        setup,
        &[
            get_default(0),
            Op::Advance(31),
            get_default(0),
            answer(0, NONCE),
        ],
    );
}

#[test]
fn d5_the_nonce_retry_is_judged_by_the_nonce_the_request_carried() {
    let setup = Setup {
        dpop: true,
        ..world()
    };
    // The first flight is abandoned at its lease; its late answer teaches
    // the nonce; the second flight went out without it.
    run(
        setup,
        &[
            get_default(0),
            Op::Advance(30),
            get_default(0),
            answer(0, Reply::ServerError),
            answer(0, NONCE),
        ],
    );
}

#[test]
fn d10_a_logout_during_a_refresh_revokes_the_rotated_token() {
    let setup = Setup {
        revocation: true,
        ..world()
    };
    run(
        setup,
        &[
            get_default(0),
            Op::Logout { keeper: 0 },
            answer(0, ok(true)),
            answer(0, ok(false)),
        ],
    );
}

#[test]
fn d12_invalid_grant_requires_login_at_once_and_a_forced_refresh_too() {
    let setup = Setup {
        fresh_start: true,
        ..world()
    };
    let forced = Op::Get {
        keeper: 0,
        get: Get {
            audience: 0,
            scope: 0,
            merge: false,
            force: true,
        },
    };
    run(setup, &[forced, answer(0, Reply::InvalidGrant), forced]);
}

#[test]
fn d13_a_token_for_another_api_is_never_served_for_this_one() {
    let setup = Setup {
        resource_only: true,
        ..world()
    };
    run(setup, &[get_for(0, 1, 0), answer(0, ok(false))]);
}

#[test]
fn d14_a_token_just_obtained_is_served_whatever_the_buffer() {
    let setup = Setup {
        refresh_buffer: 120,
        ..world()
    };
    run(
        setup,
        &[
            get_default(0),
            answer(0, ok(false)),
            get_default(0),
            get_default(0),
        ],
    );
}

#[test]

fn n1_a_new_login_raises_the_stored_generation() {
    // Keeper 1 last saw the old session at generation 0; the new login is
    // stored at generation 0 too, so keeper 1's claim wins its
    // compare-and-swap and writes the old session back.
    run(shared(2), &[Op::Login { keeper: 0 }, get_default(1)]);
}

#[test]

fn n1_a_new_login_after_a_clear_is_never_overwritten_by_the_old_session() {
    run(
        shared(2),
        &[
            Op::Clear { keeper: 0 },
            Op::Login { keeper: 0 },
            get_default(1),
        ],
    );
}

#[test]
fn n2_a_logout_survives_a_compare_and_swap_conflict() {
    run(
        shared(2),
        &[
            get_default(0),
            get_default(0),
            Op::TransportError { which: 0 },
            Op::Logout { keeper: 1 },
        ],
    );
}

#[test]

fn n3_no_nonce_retry_after_a_logout() {
    let setup = Setup {
        dpop: true,
        ..world()
    };
    run(
        setup,
        &[get_default(0), Op::Logout { keeper: 0 }, answer(0, NONCE)],
    );
}

#[test]

fn n4_a_nonce_retry_never_outlives_its_lease() {
    let setup = Setup {
        dpop: true,
        ..world()
    };
    run(
        setup,
        &[
            get_default(0),
            Op::TransportError { which: 0 },
            get_default(0),
            Op::Advance(30),
            answer(0, NONCE),
            get_default(0),
        ],
    );
}

#[test]
fn n5_a_revocation_answer_keeps_a_new_logins_refresh_token() {
    let setup = Setup {
        revocation: true,
        ..world()
    };
    run(
        setup,
        &[
            Op::Logout { keeper: 0 },
            Op::Clear { keeper: 0 },
            Op::Login { keeper: 0 },
            get_default(0),
            answer(0, ok(false)),
            answer(0, ok(true)),
        ],
    );
}

#[test]

fn n6_a_late_answer_keeps_the_claim_of_the_refresh_that_replaced_it() {
    run(
        shared(2),
        &[
            get_default(1),
            Op::Advance(30),
            get_default(1),
            answer(0, ok(false)),
            get_default(0),
        ],
    );
}

#[test]

fn n6_a_late_transport_error_keeps_the_claim_of_the_refresh_that_replaced_it() {
    run(
        shared(2),
        &[
            get_default(0),
            Op::Advance(30),
            get_default(0),
            Op::TransportError { which: 0 },
            get_default(1),
        ],
    );
}

#[test]

fn d3b_a_pending_rotation_never_overwrites_a_newer_login() {
    run(
        shared(2),
        &[get_default(0), Op::Login { keeper: 1 }, answer(0, ok(true))],
    );
}

#[test]

fn d3b_a_pending_rotation_never_overwrites_a_login_made_after_a_clear() {
    run(
        shared(3),
        &[
            get_default(2),
            Op::Clear { keeper: 1 },
            Op::Login { keeper: 1 },
            answer(0, ok(true)),
        ],
    );
}

#[test]

fn n3_no_nonce_retry_of_a_refresh_token_another_answer_rotated() {
    let setup = Setup {
        dpop: true,
        ..world()
    };
    // The first flight's late answer rotates the token; the second flight,
    // past its lease deadline, must not be resent with the spent token.
    run(
        setup,
        &[
            get_default(0),
            Op::Advance(30),
            get_default(0),
            Op::Advance(30),
            answer(0, ok(true)),
            answer(0, NONCE),
        ],
    );
}

#[test]

fn n7_a_code_login_through_a_keeper_is_stored_whatever_the_store_held() {
    let setup = Setup {
        issuer: true,
        ..shared(2)
    };
    run(
        setup,
        &[
            Op::Clear { keeper: 1 },
            Op::Login { keeper: 0 },
            Op::CodeLogin {
                keeper: 1,
                id_token: true,
            },
        ],
    );
}

#[test]

fn n8_a_stale_logout_never_ends_a_newer_login() {
    run(
        shared(2),
        &[
            get_default(0),
            Op::Login { keeper: 1 },
            Op::Logout { keeper: 0 },
        ],
    );
}

#[test]
fn d9_a_login_for_openid_without_an_id_token_starts_no_session() {
    let setup = Setup {
        issuer: true,
        ..world()
    };
    run(
        setup,
        &[
            Op::CodeLogin {
                keeper: 0,
                id_token: false,
            },
            Op::CodeLogin {
                keeper: 0,
                id_token: true,
            },
            get_default(0),
        ],
    );
}

#[test]
fn d10_a_late_answer_after_a_logout_revokes_the_rotated_token() {
    let setup = Setup {
        revocation: true,
        ..world()
    };
    run(
        setup,
        &[
            get_default(0),
            Op::Advance(30),
            Op::Timeout { keeper: 0 },
            Op::Logout { keeper: 0 },
            answer(0, ok(true)),
        ],
    );
}

#[test]

fn n9_an_invalid_grant_verdict_survives_a_compare_and_swap_conflict() {
    // The late invalid_grant answer to keeper 0's abandoned flight proves
    // the grant dead; its save conflicts with keeper 1's claim and keeper 0
    // adopts the stored, still live session, then spends the dead token.
    run(
        shared(2),
        &[
            get_default(0),
            Op::Advance(31),
            get_default(1),
            Op::Advance(30),
            answer(0, Reply::InvalidGrant),
            get_default(0),
        ],
    );
}

#[test]

fn n10_a_late_answer_is_not_forgotten_behind_abandoned_revocations() {
    let setup = Setup {
        revocation: true,
        ..world()
    };
    let mut ops = vec![get_default(0), Op::Advance(30), Op::Timeout { keeper: 0 }];
    ops.extend([Op::Logout { keeper: 0 }; 8]);
    ops.extend([
        Op::Advance(30),
        Op::Timeout { keeper: 0 },
        answer(0, ok(true)),
    ]);
    run(setup, &ops);
}

/// The fuzz target's input format (`model::decode`, the even-first-byte
/// mode of `fuzz/fuzz_targets/manager_ops.rs`) decodes as documented and
/// runs, so fuzz inputs can be replayed here.
#[test]
fn the_fuzz_input_format_decodes_and_runs() {
    let bytes = [0x01, 0x04, 0x00, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x04, 0x00];
    let (setup, ops) = model::decode(&bytes);
    assert_eq!(
        (setup.keepers, setup.revocation, setup.lifetime, setup.dpop),
        (2, true, 60, false)
    );
    let rotated = Reply::Ok {
        rotate: true,
        id_token: IdTok::None,
        omit_scope: false,
    };
    let get = Op::Get {
        keeper: 0,
        get: Get {
            audience: 0,
            scope: 0,
            merge: true,
            force: false,
        },
    };
    assert_eq!(
        ops,
        [
            get,
            answer(0, rotated),
            Op::Logout { keeper: 0 },
            answer(0, rotated),
        ]
    );
    run(setup, &ops);
}

/// Found by the `manager_ops` fuzz smoke (shrunk): a flight whose lease ran
/// out holds no claim any more (here keeper 1 took the refresh over and
/// released its claim on a server error); the late answer of keeper 0's
/// abandoned flight must not be judged against it.
#[test]
fn n6_a_flight_past_its_lease_holds_no_claim() {
    let get = |keeper, audience, scope, merge, force| Op::Get {
        keeper,
        get: Get {
            audience,
            scope,
            merge,
            force,
        },
    };
    let setup = Setup {
        keepers: 2,
        revocation: true,
        lifetime: 600,
        ..world()
    };
    run(
        setup,
        &[
            get(0, 1, 1, true, false),
            Op::Advance(114),
            get(2, 2, 3, true, true),
            Op::Advance(100),
            get(3, 2, 1, false, true),
            Op::Answer {
                which: 5,
                reply: Reply::ServerError,
            },
            Op::Answer {
                which: 6,
                reply: Reply::Ok {
                    rotate: false,
                    id_token: IdTok::None,
                    omit_scope: false,
                },
            },
        ],
    );
}

/// Found by fuzzing `manager_ops` (the input as it came, decoded by the
/// fuzz target's own format): keeper 1's `use_dpop_nonce` retry renewed its
/// flight's lease but not the claim in the shared store, so keeper 0 took
/// the expired claim and sent the same refresh token while the retry was on
/// the wire. A retry now renews the claim, saved before it leaves.
#[test]
fn n4_a_nonce_retry_renews_the_shared_claim() {
    const INPUT: &[u8] = &[
        0xfe, 0xff, 0xff, 0x00, 0x80, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40, 0x00, 0x61, 0x74, 0x3d, 0x31, 0x01, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x6f, 0x70, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x40, 0x01, 0x61, 0x74, 0x2d, 0x31, 0x00, 0x3c, 0x00, 0x00,
        0xff, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x73, 0x69, 0x64, 0x01, 0xab, 0xaa, 0xaa,
        0xea, 0x01, 0x00, 0x00, 0x00, 0x80, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1d,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xab, 0xaa, 0xaa, 0xea, 0x01, 0x00, 0x00,
        0x00, 0x80, 0x3d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x06, 0x04, 0x00,
        0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xed, 0xff, 0xff, 0xff, 0x04,
    ];
    let (setup, mut ops) = model::decode(INPUT);
    ops.truncate(64);
    assert!(setup.shared_store && setup.dpop);
    run(setup, &ops);
}
