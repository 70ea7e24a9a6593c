//! Tokens: the stored sets, token endpoint responses and the refresh decision.

pub mod freshness;
pub mod response;
pub mod set;
mod token_type;
pub(crate) mod wire;

pub use freshness::{Decision, Freshness};
pub use response::TokenResponse;
pub use set::{AccessTokenSet, TokenSet};
pub use token_type::TokenType;
