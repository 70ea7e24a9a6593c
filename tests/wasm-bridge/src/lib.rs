//! The scenario suite's bridge to the wasm adapter: `tokenkeeper-wasm`
//! compiled for wasm32 and run in Node (`host.cjs`), driven by JSON
//! commands from the test process.
//!
//! - [`protocol`] (every target): the commands, answers and store
//!   operations on the wire, and the conversions of the core's types to and
//!   from it. The suite's Wasm driver uses it natively.
//! - `entry` (wasm32 only): the exported `command` that runs a command on
//!   a `tokenkeeper_wasm::TokenKeeper`, and the store that asks the test
//!   process for every operation.
//!
//! ```text
//! scenario ─> Wasm driver ─stdin──> host.cjs ─> command() ─> TokenKeeper ─> fetch
//!                  ^        <─stdout─ Reply          │ SessionStore op
//!             SharedStore <─FIFO── tokenkeeperStoreOp ┘ (blocking)
//! ```

#![forbid(unsafe_code)]

// The wire types mirror the core's field for field and variant for
// variant (`WireToken` is `AccessTokenInfo`, `WireCoreError` is
// `tokenkeeper::Error`, …): their members' docs are the core's.
#[allow(missing_docs)]
pub mod protocol;

#[cfg(target_arch = "wasm32")]
mod entry;
