//! What the library decides, made visible: with the `tracing` feature each
//! decision is a `tracing` event under the target `tokenkeeper`, with
//! plain fields (`event`, `request_id`, `audience`, `reason`, `code`,
//! `generation`) and never a secret. Without the feature the macros
//! expand to nothing.
//!
//! | `event` | level | when |
//! |---|---|---|
//! | `cache_hit` | debug | a cached token is returned, no I/O |
//! | `refresh_started` | info | a refresh leaves; `reason`: `expired`, `within_buffer`, `forced`, `no_token`, `no_expiry` |
//! | `wait` | debug | another caller's refresh is in flight |
//! | `joined` | debug | a waiter takes the result of the flight it waited on |
//! | `reload` | debug | (shared stores) another process holds the refresh claim |
//! | `login_required` | info | only a login can help; `code` says why |
//! | `nonce_retry` | debug | a `use_dpop_nonce` answer earns its one retry |
//! | `refresh_finished` | info | new tokens stored; `rotated` |
//! | `invalid_grant` | warn | the refresh token is dead |
//! | `request_failed` | info | a token request failed; `code` |
//! | `abandoned_answer` | warn | an answer for a session that moved on; its rotated token goes to revocation |
//! | `claim_conflict` | info | a compare-and-swap save lost; `outcome`: `adopted`, `rotation_wins`, `logout_wins`, `session_ended` |

// Spans: `response` (field `request_id`) around the handling of each
// answer and `transport_error` around a lost one, so a subscriber groups
// the decisions of one request.

/// Records one decision (see the module docs).
macro_rules! decision {
    ($level:ident, $($field:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::$level!(target: "tokenkeeper", $($field)*);
    }};
}

/// Enters a span for the rest of the scope (no-op without the feature):
/// every decision recorded inside carries its fields (`request_id`).
macro_rules! span {
    ($name:literal, $($field:tt)*) => {
        #[cfg(feature = "tracing")]
        let _span = tracing::debug_span!(target: "tokenkeeper", $name, $($field)*).entered();
    };
}

pub(crate) use decision;
pub(crate) use span;
