//! Why a token exchange (RFC 8693) was refused before or after it was sent.

use alloc::string::String;

use super::ResponseError;

/// Why a token exchange was refused before or after it was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenExchangeError {
    /// The subject token is empty. Code `missing_subject_token`.
    #[error("the subject token is empty")]
    MissingSubjectToken,
    /// The subject token type is not a URI of 10–100 characters. Code
    /// `invalid_subject_token_type`.
    #[error("the subject token type must be a URN or an absolute URL of 10 to 100 characters")]
    InvalidSubjectTokenType,
    /// An actor token without its type. Code `missing_actor_token_type`.
    #[error("an actor token needs an actor token type")]
    MissingActorTokenType,
    /// An actor token type without an actor token, or an empty actor token.
    /// Code `missing_actor_token`.
    #[error("an actor token type was given without an actor token")]
    MissingActorToken,
    /// The actor token type is not a URI of 10–100 characters. Code
    /// `invalid_actor_token_type`.
    #[error("the actor token type must be a URN or an absolute URL of 10 to 100 characters")]
    InvalidActorTokenType,
    /// The requested token type is not a URI of 10–100 characters. Code
    /// `invalid_requested_token_type`.
    #[error("the requested token type must be a URN or an absolute URL of 10 to 100 characters")]
    InvalidRequestedTokenType,
    /// An extra parameter would override one the grant sets. Code
    /// `reserved_parameter`.
    #[error("the parameter {0:?} is set by the token exchange and cannot be given as an extra")]
    ReservedParameter(String),
    /// The server refused the exchange, or its answer is unusable. Code
    /// `exchange_failed`; the cause has the server's error.
    #[error("the token exchange failed")]
    Failed(#[source] ResponseError),
    /// A success without `issued_token_type` (RFC 8693 §2.2.1). Code
    /// `missing_issued_token_type`.
    #[error("the token exchange response has no issued_token_type")]
    MissingIssuedTokenType,
}

impl TokenExchangeError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            TokenExchangeError::MissingSubjectToken => "missing_subject_token",
            TokenExchangeError::InvalidSubjectTokenType => "invalid_subject_token_type",
            TokenExchangeError::MissingActorTokenType => "missing_actor_token_type",
            TokenExchangeError::MissingActorToken => "missing_actor_token",
            TokenExchangeError::InvalidActorTokenType => "invalid_actor_token_type",
            TokenExchangeError::InvalidRequestedTokenType => "invalid_requested_token_type",
            TokenExchangeError::ReservedParameter(_) => "reserved_parameter",
            TokenExchangeError::Failed(_) => "exchange_failed",
            TokenExchangeError::MissingIssuedTokenType => "missing_issued_token_type",
        }
    }
}
