//! Why a revocation (RFC 7009) did not succeed.

use core::time::Duration;

use super::{ResponseError, ServerError};
use crate::time::UnixTime;

/// A `Retry-After` value (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfter {
    /// A delay in seconds.
    Delay(Duration),
    /// An HTTP date.
    At(UnixTime),
}

/// Why a revocation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The server cannot revoke this kind of token
    /// (`unsupported_token_type`, RFC 7009 §2.2.1). Code
    /// `unsupported_token_type`.
    #[error("the authorization server cannot revoke this type of token: {0}")]
    UnsupportedTokenType(ServerError),
    /// The server refused with an OAuth error (`invalid_client`, …). Code
    /// `failed_to_revoke`, as the SDK.
    #[error("the token could not be revoked: {0}")]
    Rejected(ServerError),
    /// HTTP 503: the server is unavailable; retry later (RFC 7009 §2.2.1).
    /// Code `revocation_unavailable`.
    #[error("the revocation endpoint is unavailable; retry later")]
    Unavailable {
        /// The `Retry-After` header, when sent and readable.
        retry_after: Option<RetryAfter>,
    },
    /// Any other status, or a body that is not an OAuth error. Code
    /// `unexpected_response`.
    #[error("unexpected revocation response (HTTP {status})")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
    },
    /// The response exceeds a limit. Code `response_limit_exceeded`.
    #[error("revocation response refused: {0}")]
    Limit(ResponseError),
}

impl RevocationError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            RevocationError::UnsupportedTokenType(_) => "unsupported_token_type",
            RevocationError::Rejected(_) => "failed_to_revoke",
            RevocationError::Unavailable { .. } => "revocation_unavailable",
            RevocationError::UnexpectedResponse { .. } => "unexpected_response",
            RevocationError::Limit(_) => "response_limit_exceeded",
        }
    }

    /// The server's OAuth error, when it sent one.
    #[must_use]
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            RevocationError::UnsupportedTokenType(e) | RevocationError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}
