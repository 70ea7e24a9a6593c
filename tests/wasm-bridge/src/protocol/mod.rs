//! The wire between the scenario suite's Wasm driver (native, in the test
//! process) and the bridge (wasm, in the Node host): JSON lines.
//!
//! ```text
//! test process                          Node host (host.cjs + bridge wasm)
//!   [Request, …] one line on stdin  ──>  each started at once (same tick)
//!   Reply (id, outcome) per line    <──  as each call ends
//!   store thread: StoreRequest      <──  SessionStore op (blocking FIFO)
//!                 StoreReply        ──>  the op's answer
//! ```
//!
//! Everything the scenarios read crosses faithfully: sessions as their
//! JSON, tokens field by field, token and discovery responses in their wire
//! shape (parsed again by the core), the configuration as the builder
//! calls that made it ([`ConfigDescription`]), and the core's error as a
//! [`WireCoreError`] rebuilt into the same `tokenkeeper::Error` on the
//! other side (for the variants listed there; the others cross as code and
//! message only).

mod config;
mod error;
mod request;
mod results;
mod store;

pub use config::*;
pub use error::*;
pub use request::*;
pub use results::*;
pub use store::*;

use serde::{Deserialize, Serialize};
use tokenkeeper::login::LoginTransaction;

/// One call for the bridge, tagged with the id its [`Reply`] carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub command: Command,
}

/// What the bridge does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// A `tokenkeeper_wasm::TokenKeeper` on `config`, its store the test
    /// process's store `store`, with DPoP on the key `dpop_jwk` (a private
    /// JWK) imported into Web Crypto.
    Build {
        keeper: u64,
        store: u64,
        config: ConfigDescription,
        dpop_jwk: Option<String>,
    },
    /// Forget keeper `keeper`.
    Drop { keeper: u64 },
    /// `tokenkeeper_wasm::discover`.
    Discover { issuer: String },
    /// `get_access_token`.
    Get {
        keeper: u64,
        request: WireTokenRequest,
    },
    /// `get_client_credentials_token`.
    Machine {
        keeper: u64,
        request: WireTokenRequest,
    },
    /// `get_connection_token`.
    Connection {
        keeper: u64,
        request: WireConnectionRequest,
    },
    /// `login`.
    Login {
        keeper: u64,
        transaction: LoginTransaction,
        callback: String,
    },
    /// `logout`.
    Logout { keeper: u64 },
    /// `exchange_token`.
    Exchange {
        keeper: u64,
        request: WireExchangeRequest,
    },
    /// `send_authorized` of `GET url` (`accept: application/json`).
    CallApi {
        keeper: u64,
        request: WireTokenRequest,
        url: String,
    },
    /// `session()`.
    Session { keeper: u64 },
    /// The DPoP key's thumbprint.
    DpopThumbprint { keeper: u64 },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub outcome: Result<Answer, WireFailure>,
}

/// A successful call's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `Build`, `Drop`, `Logout`.
    Done,
    /// `Discover`: the metadata as a discovery document.
    Metadata { json: String },
    /// `Get`, `Machine`, `Connection`, `Login`.
    Token(WireToken),
    /// `Exchange`: the token response in its wire shape.
    Exchanged { json: String },
    /// `CallApi`.
    Api {
        status: u16,
        body: String,
        www_authenticate: Option<String>,
    },
    /// `Session`: its JSON.
    Session { json: Option<String> },
    /// `DpopThumbprint`.
    Thumbprint { jkt: Option<String> },
}

/// A failed call: the adapter error's code, `requires_login`, `Display`,
/// and its core error when it is one of the kinds that cross.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireFailure {
    pub code: String,
    pub requires_login: bool,
    pub message: String,
    pub core: Option<Box<WireCoreError>>,
}

impl WireFailure {
    /// A failure of the bridge itself (a bad command, a keeper it does not
    /// know): code `bridge_error`.
    #[must_use]
    pub fn bridge(message: impl Into<String>) -> Self {
        WireFailure {
            code: String::from("bridge_error"),
            requires_login: false,
            message: message.into(),
            core: None,
        }
    }
}
