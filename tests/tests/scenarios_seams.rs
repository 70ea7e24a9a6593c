//! Seams against node-oidc-provider (issue 12), through each adapter:
//! a refresh buffer longer than the tokens live does not refresh on every
//! call.

#[macro_use]
mod scenarios_common;

use std::time::Duration;

use scenarios_common::{Driver, SharedStore, config_builder, expire, logged_in};
use tokenkeeper::TokenRequest;
use tokenkeeper_integration::{CONFIDENTIAL_POST, Harness, HarnessOptions};

scenarios!(a_buffer_longer_than_the_lifetime_refreshes_once);

/// The harness issues 60 s access tokens; the buffer is 120 s. Each new
/// token is "within the buffer" the moment it arrives, so without the cap
/// every call refreshed (10 calls, 10 grants — the seed SDK's storm). With
/// the buffer capped at half the granted lifetime, the token just obtained
/// is served.
fn a_buffer_longer_than_the_lifetime_refreshes_once<D: Driver>() {
    let h = Harness::start(HarnessOptions::default());
    let session = expire(&logged_in::<D>(&h, &CONFIDENTIAL_POST));
    let config = config_builder(&h, &CONFIDENTIAL_POST)
        .refresh_buffer(Duration::from_secs(120))
        .build()
        .unwrap();
    let keeper = D::build(config, SharedStore::with_session(session), None);
    h.reset_stats();
    let first = keeper.get(&TokenRequest::new()).unwrap();
    for _ in 0..9 {
        let again = keeper.get(&TokenRequest::new()).unwrap();
        assert_eq!(again.token, first.token);
    }
    assert_eq!(h.stats().grant("refresh_token"), 1, "{:?}", h.stats());
    let stored = keeper.session().unwrap();
    assert_eq!(stored.token_set().expires_in, Some(60));
}
