//! The keepers' store operations on the wire (the bridge's store asks, the
//! test process answers).

use serde::{Deserialize, Serialize};
use tokenkeeper::StoreError;

/// A `SessionStore` operation the bridge's store asks of the test process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreRequest {
    pub store: u64,
    pub key: String,
    pub op: StoreOp,
}

/// The `SessionStore` method.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreOp {
    Load,
    Save {
        session: String,
        expected: Option<u64>,
    },
    Generation,
    Clear,
    Floor,
}

/// Its result.
pub type StoreReply = Result<StoreAnswer, WireStoreError>;

/// A store operation's success.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreAnswer {
    Session(Option<String>),
    Generation(Option<u64>),
    Floor(u64),
    Done,
}

/// A [`StoreError`] on the wire (a backend error as its message).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireStoreError {
    Conflict { found: Option<u64> },
    Backend(String),
}

impl WireStoreError {
    #[must_use]
    pub fn new(error: &StoreError) -> Self {
        match error {
            StoreError::Conflict { found } => WireStoreError::Conflict { found: *found },
            other => WireStoreError::Backend(
                std::error::Error::source(other)
                    .map_or_else(|| other.to_string(), ToString::to_string),
            ),
        }
    }

    #[must_use]
    pub fn get(&self) -> StoreError {
        match self {
            WireStoreError::Conflict { found } => StoreError::Conflict { found: *found },
            WireStoreError::Backend(message) => StoreError::backend(message.clone()),
        }
    }
}
