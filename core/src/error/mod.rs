//! Typed errors. Every error has a stable [`code`](Error::code) string; where
//! the Auth0 Next.js SDK has the same condition, the code is the SDK's
//! (`missing_session`, `missing_refresh_token`, `failed_to_refresh_token`,
//! `session_expired`, `mfa_required`).
//!
//! A leaf, as in rustls: the errors of every module are defined here (one
//! file per concern) and re-exported from the module that raises them, so
//! nothing here imports the code above it. The only crate imports are the
//! two leaf modules `time` (`UnixTime` in ID token and retry errors) and
//! `secret` (the `mfa_token` of [`MfaRequired`], which must stay redacted
//! and wiped): neither imports anything from the crate.
//! `core/tests/architecture.rs` holds these rules.

mod discovery;
mod dpop;
mod id_token;
mod login;
mod revocation;
mod token_exchange;

use alloc::string::String;
use core::fmt;

use crate::secret::MfaToken;

pub use discovery::DiscoveryError;
pub use dpop::{DpopError, HtuError, SignError, SigningError};
pub use id_token::IdTokenError;
pub use login::LoginError;
pub use revocation::{RetryAfter, RevocationError};
pub use token_exchange::TokenExchangeError;

/// An OAuth 2.0 error response (RFC 6749 §5.2) from a server.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The HTTP status it came with.
    pub status: u16,
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// `error_description`, when given.
    pub error_description: Option<String>,
    /// `error_uri`, when given.
    pub error_uri: Option<String>,
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("status", &self.status)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("error_uri", &self.error_uri)
            .finish()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.error, self.status)?;
        if let Some(description) = &self.error_description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl core::error::Error for ServerError {}

/// Why a response from a server could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The server answered with an OAuth error (including a 2xx carrying `error`).
    #[error("the server returned an error: {0}")]
    Server(ServerError),
    /// The body is larger than the configured limit.
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A header list or a header value exceeds a configured limit.
    #[error("response headers exceed the limit on {what} ({limit})")]
    HeadersTooLarge {
        /// Which limit: `"count"` or `"value size"`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON (an HTML error page from a proxy, say).
    #[error("HTTP {status}: the response body is not JSON")]
    NotJson {
        /// The HTTP status.
        status: u16,
    },
    /// The body is JSON but not a valid response of the expected kind.
    #[error("HTTP {status}: invalid response: {reason}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// A non-success status with a JSON body that is not an OAuth error.
    #[error("unexpected HTTP status {status}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
}

impl ResponseError {
    /// A stable code: the server's `error` for [`ResponseError::Server`],
    /// otherwise one of `response_too_large`, `headers_too_large`,
    /// `unexpected_response`, `invalid_response`, `unexpected_status`.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            ResponseError::Server(e) => &e.error,
            ResponseError::TooLarge { .. } => "response_too_large",
            ResponseError::HeadersTooLarge { .. } => "headers_too_large",
            ResponseError::NotJson { .. } => "unexpected_response",
            ResponseError::Malformed { .. } => "invalid_response",
            ResponseError::UnexpectedStatus { .. } => "unexpected_status",
        }
    }

    /// The server's error, when it sent one.
    #[must_use]
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ResponseError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// The authorization server asked for multi-factor authentication
/// (`error=mfa_required`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaRequired {
    /// `error_description`, when given.
    pub description: Option<String>,
    /// The `mfa_token` to continue the MFA flow with (absent: re-login).
    pub mfa_token: Option<MfaToken>,
    /// `mfa_requirements` as sent (JSON), when given.
    pub mfa_requirements: Option<String>,
}

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// There is no session (nobody logged in). Code `missing_session`.
    #[error("The user does not have an active session.")]
    MissingSession,
    /// No refresh token and no usable access token. Code `missing_refresh_token`.
    #[error(
        "{}",
        if *access_token_expired {
            "The access token has expired and a refresh token was not provided. The user needs to re-authenticate."
        } else {
            "No access token found and a refresh token was not provided. The user needs to re-authenticate."
        }
    )]
    MissingRefreshToken {
        /// `true` when an access token exists but has expired; `false` when
        /// there is none for the request.
        access_token_expired: bool,
    },
    /// The session ceiling (`session_expiry`) has passed. Code `session_expired`.
    #[error("The session has expired and the user must re-authenticate.")]
    SessionExpired,
    /// An earlier refresh was answered `invalid_grant`: the refresh token is
    /// dead, and it is not sent again. Code `reauthentication_required`.
    #[error(
        "The refresh token was rejected by the authorization server. The user needs to re-authenticate."
    )]
    ReauthenticationRequired,
    /// The session was logged out (refresh token revoked). Code `logged_out`.
    #[error("The session was logged out. The user needs to re-authenticate.")]
    LoggedOut,
    /// A refresh failed; the cause says why. Code `failed_to_refresh_token`.
    #[error("The access token has expired and there was an error while trying to refresh it.")]
    FailedToRefreshToken(#[source] ResponseError),
    /// The Token Vault exchange of the refresh token for a connection's
    /// access token failed; the cause has the server's error. Code
    /// `failed_to_exchange_refresh_token` (the SDK's
    /// `AccessTokenForConnectionError`).
    #[error(
        "There was an error trying to exchange the refresh token for a connection access token."
    )]
    FailedToExchangeRefreshToken(#[source] ResponseError),
    /// A token request other than a refresh failed. Code `token_request_failed`.
    #[error("the token request failed")]
    TokenRequestFailed(#[source] ResponseError),
    /// Multi-factor authentication is required. Code `mfa_required`.
    #[error("Multi-factor authentication is required.")]
    MfaRequired(MfaRequired),
    /// Strict scope mode: the server granted fewer scopes than asked
    /// (space-separated). The token was stored all the same. Code `missing_scopes`.
    #[error("the authorization server did not grant the scopes: {missing}")]
    MissingScopes {
        /// The scopes asked for and not granted, space-separated.
        missing: String,
    },
    /// A refreshed ID token names another user (`sub`) than the session;
    /// nothing from the response was stored. Code `subject_mismatch`.
    #[error("the refreshed ID token belongs to another subject than the session")]
    SubjectMismatch,
    /// A token asked for with DPoP came back as another type (RFC 9449 §5).
    /// Code `token_type_mismatch`.
    #[error("a DPoP-bound token was requested but the server issued a {received} token")]
    TokenTypeMismatch {
        /// The `token_type` the server sent.
        received: String,
    },
    /// The server returned a JWT access token (RFC 9068) whose `aud` does
    /// not name the audience asked for: it is not for that API (a server
    /// that ignores the target parameter, e.g. `audience` sent to an RFC
    /// 8707 `resource` server). It is not cached. Code
    /// `access_token_audience_mismatch`.
    #[error("the access token returned is not for the requested audience {requested:?}")]
    AccessTokenAudienceMismatch {
        /// The audience asked for.
        requested: String,
    },
    /// The host reported that the request could not be sent or no response
    /// arrived; nothing stored changed. Code `transport_error`.
    #[error("the request failed in transport; nothing was changed")]
    Transport,
    /// The request was cancelled or its lease expired before a response
    /// arrived; nothing stored changed. Code `request_abandoned`.
    #[error("the request was abandoned before a response arrived")]
    RequestAbandoned,
    /// A response arrived for a request id the manager does not know (already
    /// finished, or never issued). Code `unknown_request`.
    #[error("no request with this id is in flight")]
    UnknownRequest,
    /// The configuration is invalid. Code `invalid_configuration`.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    /// A stored session could not be read. Code `invalid_session`.
    #[error("invalid session: {0}")]
    InvalidSession(String),
    /// Signing a `private_key_jwt` client assertion failed; the cause says
    /// why ([`SigningError::code`]). Code `signing_failed`.
    #[error("signing the client assertion failed")]
    Signing(#[source] SigningError),
    /// A DPoP operation failed; the cause says why ([`DpopError::code`]).
    /// Code `dpop_error`.
    #[error("DPoP failed")]
    Dpop(#[source] DpopError),
    /// An ID token failed validation; the code is the check that failed
    /// (`issuer_mismatch`, `nonce_mismatch`, `id_token_expired`, …).
    #[error("the ID token was refused")]
    IdToken(#[source] IdTokenError),
    /// A login callback or request was invalid; the code says why
    /// (`state_mismatch`, `authorization_error`, …).
    #[error("the login failed")]
    Login(#[source] LoginError),
    /// Discovery failed; the code says why (`issuer_mismatch`, …).
    #[error("discovery failed")]
    Discovery(#[source] DiscoveryError),
    /// Revocation failed; the code says why (`failed_to_revoke`, …).
    #[error("the revocation failed")]
    Revocation(#[source] RevocationError),
    /// A token exchange failed; the code says why.
    #[error("the token exchange failed")]
    TokenExchange(#[source] TokenExchangeError),
}

impl From<DpopError> for Error {
    fn from(error: DpopError) -> Self {
        Error::Dpop(error)
    }
}

impl From<SigningError> for Error {
    fn from(error: SigningError) -> Self {
        Error::Signing(error)
    }
}

impl Error {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingSession => "missing_session",
            Error::MissingRefreshToken { .. } => "missing_refresh_token",
            Error::SessionExpired => "session_expired",
            Error::ReauthenticationRequired => "reauthentication_required",
            Error::LoggedOut => "logged_out",
            Error::FailedToRefreshToken(_) => "failed_to_refresh_token",
            Error::FailedToExchangeRefreshToken(_) => "failed_to_exchange_refresh_token",
            Error::TokenRequestFailed(_) => "token_request_failed",
            Error::MfaRequired(_) => "mfa_required",
            Error::MissingScopes { .. } => "missing_scopes",
            Error::SubjectMismatch => "subject_mismatch",
            Error::TokenTypeMismatch { .. } => "token_type_mismatch",
            Error::AccessTokenAudienceMismatch { .. } => "access_token_audience_mismatch",
            Error::Transport => "transport_error",
            Error::RequestAbandoned => "request_abandoned",
            Error::UnknownRequest => "unknown_request",
            Error::InvalidConfiguration(_) => "invalid_configuration",
            Error::InvalidSession(_) => "invalid_session",
            Error::Signing(_) => "signing_failed",
            Error::Dpop(_) => "dpop_error",
            Error::IdToken(e) => e.code(),
            Error::Login(e) => e.code(),
            Error::Discovery(e) => e.code(),
            Error::Revocation(e) => e.code(),
            Error::TokenExchange(e) => e.code(),
        }
    }

    /// Whether only an interactive login can fix this.
    #[must_use]
    pub fn requires_login(&self) -> bool {
        match self {
            Error::MissingSession
            | Error::MissingRefreshToken { .. }
            | Error::SessionExpired
            | Error::ReauthenticationRequired
            | Error::LoggedOut
            | Error::SubjectMismatch => true,
            // The refresh that learns the refresh token is dead says so at
            // once, not only the calls after it (`invalid_target` consumed
            // the token on servers such as node-oidc-provider).
            Error::FailedToRefreshToken(ResponseError::Server(server)) => {
                server.error == "invalid_grant" || server.error == "invalid_target"
            }
            _ => false,
        }
    }

    /// The server's OAuth error behind this one, if any.
    #[must_use]
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::FailedToRefreshToken(cause)
            | Error::FailedToExchangeRefreshToken(cause)
            | Error::TokenRequestFailed(cause)
            | Error::TokenExchange(TokenExchangeError::Failed(cause)) => cause.server_error(),
            Error::Revocation(e) => e.server_error(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn sdk_codes_and_messages() {
        assert_eq!(Error::MissingSession.code(), "missing_session");
        let e = Error::MissingRefreshToken {
            access_token_expired: true,
        };
        assert_eq!(e.code(), "missing_refresh_token");
        assert!(e.to_string().starts_with("The access token has expired"));
        let e = Error::MissingRefreshToken {
            access_token_expired: false,
        };
        assert!(e.to_string().starts_with("No access token found"));
        let server = ServerError {
            status: 400,
            error: "invalid_grant".into(),
            error_description: Some("grant request is invalid".into()),
            error_uri: None,
        };
        let e = Error::FailedToRefreshToken(ResponseError::Server(server));
        assert_eq!(e.code(), "failed_to_refresh_token");
        assert_eq!(e.server_error().unwrap().error, "invalid_grant");
        assert_eq!(
            ResponseError::NotJson { status: 502 }.to_string(),
            "HTTP 502: the response body is not JSON"
        );
    }

    #[test]
    fn server_error_reaches_through_every_wrapper() {
        let server = ServerError {
            status: 400,
            error: "invalid_target".into(),
            error_description: None,
            error_uri: None,
        };
        let exchange = Error::TokenExchange(TokenExchangeError::Failed(ResponseError::Server(
            server.clone(),
        )));
        assert_eq!(exchange.server_error(), Some(&server));
        let revocation = Error::Revocation(RevocationError::Rejected(server.clone()));
        assert_eq!(revocation.server_error(), Some(&server));
        assert_eq!(Error::Transport.server_error(), None);
    }

    #[test]
    fn mfa_token_is_redacted() {
        let e = Error::MfaRequired(MfaRequired {
            description: None,
            mfa_token: Some(MfaToken::new("mfa-secret-123")),
            mfa_requirements: None,
        });
        let printed = alloc::format!("{e:?} {e}");
        assert!(!printed.contains("mfa-secret-123"));
        assert_eq!(e.code(), "mfa_required");
    }
}
