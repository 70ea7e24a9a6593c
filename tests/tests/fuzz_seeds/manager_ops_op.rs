// A copy of `enum Op` in fuzz/fuzz_targets/manager_ops.rs, the input the
// manager_ops seeds are written for. `tests/fuzz_replay.rs` checks that it
// is still the target's text; when the target's `Op` changes, copy it here
// again, adapt `manager_ops_seeds` and rewrite the seeds with
// `TOKENKEEPER_WRITE_SEEDS=1 cargo test -p tokenkeeper-integration --test fuzz_replay`.

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    Get {
        audience: Option<&'a str>,
        scope: Option<&'a str>,
        force: bool,
        merge: Option<bool>,
    },
    GetAfterWait {
        audience: Option<&'a str>,
        waited: u8,
    },
    Respond {
        which: u8,
        status: u16,
        headers: Vec<(&'a str, &'a str)>,
        body: &'a [u8],
    },
    RespondToken {
        which: u8,
        access_token: &'a str,
        refresh_token: Option<&'a str>,
        expires_in: i64,
        scope: Option<&'a str>,
    },
    TransportError(u8),
    Cancel(u8),
    Forward(u16),
    Back(u16),
    Timeout,
    ResourceResponse {
        status: u16,
        www_authenticate: &'a str,
        nonce: Option<&'a str>,
    },
    Authorize {
        method: &'a str,
        url: &'a str,
    },
    ReloadSession,
}
