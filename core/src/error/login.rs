//! Why a login could not start, or its callback was refused.

use alloc::string::String;

/// Why a login could not start, or a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The authorization endpoint is not an absolute `http(s)` URL without
    /// a fragment. Code `invalid_authorization_endpoint`.
    #[error("the authorization endpoint must be an absolute http(s) URL without a fragment")]
    InvalidAuthorizationEndpoint,
    /// A login parameter is unusable (empty client id or redirect URI, a
    /// fragment in the redirect URI or a resource). Code
    /// `invalid_login_request`.
    #[error("invalid login request: {0}")]
    InvalidRequest(&'static str),
    /// An extra parameter would override one the flow sets itself. Code
    /// `reserved_parameter`.
    #[error("the parameter {0:?} is set by the login flow and cannot be given as an extra")]
    ReservedParameter(String),
    /// The callback repeats a response parameter (RFC 6749 §3.1). Code
    /// `duplicate_parameter`.
    #[error("the callback repeats the parameter {0:?}")]
    DuplicateParameter(&'static str),
    /// The callback's `iss` is not the expected issuer (RFC 9207 §2.4): a
    /// possible mix-up attack. Code `issuer_mismatch`.
    #[error("the callback's issuer {received:?} is not the expected {expected:?}")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The `iss` received.
        received: String,
    },
    /// The server advertises `authorization_response_iss_parameter_supported`
    /// but the callback has no `iss`. Code `missing_issuer`.
    #[error("the callback has no iss parameter, which the authorization server promised")]
    MissingIssuer,
    /// The callback has no `state`. Code `missing_state`.
    #[error("the callback has no state parameter")]
    MissingState,
    /// The callback's `state` is not this transaction's: a forged or
    /// crossed callback. Code `state_mismatch`.
    #[error("the callback's state does not match the login transaction")]
    StateMismatch,
    /// The authorization server reported an error (`error=access_denied`,
    /// …). Code `authorization_error`; [`LoginError::server_error`] gives
    /// the server's code.
    #[error("the authorization server returned an error: {error}{}", .error_description.as_deref().map(|d| alloc::format!(": {d}")).unwrap_or_default())]
    Authorization {
        /// `error`.
        error: String,
        /// `error_description`, when given.
        error_description: Option<String>,
        /// `error_uri`, when given.
        error_uri: Option<String>,
    },
    /// The callback has neither `code` nor `error`. Code `missing_code`.
    #[error("the callback has no authorization code")]
    MissingCode,
}

impl LoginError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::InvalidAuthorizationEndpoint => "invalid_authorization_endpoint",
            LoginError::InvalidRequest(_) => "invalid_login_request",
            LoginError::ReservedParameter(_) => "reserved_parameter",
            LoginError::DuplicateParameter(_) => "duplicate_parameter",
            LoginError::IssuerMismatch { .. } => "issuer_mismatch",
            LoginError::MissingIssuer => "missing_issuer",
            LoginError::MissingState => "missing_state",
            LoginError::StateMismatch => "state_mismatch",
            LoginError::Authorization { .. } => "authorization_error",
            LoginError::MissingCode => "missing_code",
        }
    }

    /// The authorization server's `error` code, for
    /// [`LoginError::Authorization`].
    #[must_use]
    pub fn server_error(&self) -> Option<&str> {
        match self {
            LoginError::Authorization { error, .. } => Some(error),
            _ => None,
        }
    }
}
