//! The examples `login` and `dpop` run as their own processes against the
//! local authorization server (node-oidc-provider, started by the
//! harness); the checks are shared with the reqwest adapter's
//! (`tokenkeeper_integration::example_runs`). The older examples
//! (`get_token`, `client_credentials`, `custom_store`) are run in
//! `integration.rs`.
//!
//! Plain `cargo test -p tokenkeeper-ureq` builds the examples; `--test
//! examples` alone does not (`example()` then says so).

use tokenkeeper_integration::example_runs;

#[test]
fn the_login_example_logs_alice_in_and_saves_a_private_session() {
    example_runs::the_login_example_logs_alice_in_and_saves_a_private_session("ureq");
}

#[test]
fn the_dpop_example_binds_tokens_to_one_key_kept_on_disk() {
    example_runs::the_dpop_example_binds_tokens_to_one_key_kept_on_disk("ureq");
}
