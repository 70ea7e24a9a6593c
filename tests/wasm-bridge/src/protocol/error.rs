//! The core's errors on the wire, rebuilt on the other side into the same
//! `tokenkeeper::Error`.

use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use tokenkeeper::grant::TokenExchangeError;
use tokenkeeper::{ResponseError, ServerError};

/// A `tokenkeeper::Error` on the wire. Every variant whose content is plain
/// data crosses; those holding nested error types of their own (ID token,
/// login, discovery, revocation, signing, DPoP, MFA) do not (the failure's
/// code and message still do).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireCoreError {
    MissingSession,
    MissingRefreshToken { access_token_expired: bool },
    SessionExpired,
    ReauthenticationRequired,
    LoggedOut,
    FailedToRefreshToken(WireResponseError),
    FailedToExchangeRefreshToken(WireResponseError),
    TokenRequestFailed(WireResponseError),
    MissingScopes { missing: String },
    SubjectMismatch,
    TokenTypeMismatch { received: String },
    AccessTokenAudienceMismatch { requested: String },
    Transport,
    RequestAbandoned,
    UnknownRequest,
    InvalidConfiguration(String),
    InvalidSession(String),
    TokenExchange(WireExchangeError),
}

/// A [`ResponseError`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireResponseError {
    Server {
        status: u16,
        error: String,
        error_description: Option<String>,
        error_uri: Option<String>,
    },
    TooLarge {
        limit: usize,
    },
    HeadersTooLarge {
        what: String,
        limit: usize,
    },
    NotJson {
        status: u16,
    },
    Malformed {
        status: u16,
        reason: String,
    },
    UnexpectedStatus {
        status: u16,
    },
}

/// A [`TokenExchangeError`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireExchangeError {
    MissingSubjectToken,
    InvalidSubjectTokenType,
    MissingActorTokenType,
    MissingActorToken,
    InvalidActorTokenType,
    InvalidRequestedTokenType,
    ReservedParameter(String),
    Failed(WireResponseError),
    MissingIssuedTokenType,
}

/// `text` as a `&'static str`, each distinct text leaked once: the core's
/// errors hold a few `&'static str` (reasons, limit names) and the tests'
/// `Failure` its code as one.
#[must_use]
pub fn intern(text: &str) -> &'static str {
    static TEXTS: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = texts.iter().find(|t| **t == text) {
        return found;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.push(leaked);
    leaked
}

impl WireResponseError {
    #[must_use]
    pub fn new(error: &ResponseError) -> Option<Self> {
        Some(match error {
            ResponseError::Server(e) => WireResponseError::Server {
                status: e.status,
                error: e.error.clone(),
                error_description: e.error_description.clone(),
                error_uri: e.error_uri.clone(),
            },
            ResponseError::TooLarge { limit } => WireResponseError::TooLarge { limit: *limit },
            ResponseError::HeadersTooLarge { what, limit } => WireResponseError::HeadersTooLarge {
                what: (*what).to_owned(),
                limit: *limit,
            },
            ResponseError::NotJson { status } => WireResponseError::NotJson { status: *status },
            ResponseError::Malformed { status, reason } => WireResponseError::Malformed {
                status: *status,
                reason: (*reason).to_owned(),
            },
            ResponseError::UnexpectedStatus { status } => {
                WireResponseError::UnexpectedStatus { status: *status }
            }
            _ => return None,
        })
    }

    #[must_use]
    pub fn get(&self) -> ResponseError {
        match self {
            WireResponseError::Server {
                status,
                error,
                error_description,
                error_uri,
            } => ResponseError::Server(ServerError {
                status: *status,
                error: error.clone(),
                error_description: error_description.clone(),
                error_uri: error_uri.clone(),
            }),
            WireResponseError::TooLarge { limit } => ResponseError::TooLarge { limit: *limit },
            WireResponseError::HeadersTooLarge { what, limit } => ResponseError::HeadersTooLarge {
                what: intern(what),
                limit: *limit,
            },
            WireResponseError::NotJson { status } => ResponseError::NotJson { status: *status },
            WireResponseError::Malformed { status, reason } => ResponseError::Malformed {
                status: *status,
                reason: intern(reason),
            },
            WireResponseError::UnexpectedStatus { status } => {
                ResponseError::UnexpectedStatus { status: *status }
            }
        }
    }
}

impl WireExchangeError {
    #[must_use]
    pub fn new(error: &TokenExchangeError) -> Option<Self> {
        use TokenExchangeError as E;
        Some(match error {
            E::MissingSubjectToken => WireExchangeError::MissingSubjectToken,
            E::InvalidSubjectTokenType => WireExchangeError::InvalidSubjectTokenType,
            E::MissingActorTokenType => WireExchangeError::MissingActorTokenType,
            E::MissingActorToken => WireExchangeError::MissingActorToken,
            E::InvalidActorTokenType => WireExchangeError::InvalidActorTokenType,
            E::InvalidRequestedTokenType => WireExchangeError::InvalidRequestedTokenType,
            E::ReservedParameter(p) => WireExchangeError::ReservedParameter(p.clone()),
            E::Failed(e) => WireExchangeError::Failed(WireResponseError::new(e)?),
            E::MissingIssuedTokenType => WireExchangeError::MissingIssuedTokenType,
            _ => return None,
        })
    }

    #[must_use]
    pub fn get(&self) -> TokenExchangeError {
        use TokenExchangeError as E;
        match self {
            WireExchangeError::MissingSubjectToken => E::MissingSubjectToken,
            WireExchangeError::InvalidSubjectTokenType => E::InvalidSubjectTokenType,
            WireExchangeError::MissingActorTokenType => E::MissingActorTokenType,
            WireExchangeError::MissingActorToken => E::MissingActorToken,
            WireExchangeError::InvalidActorTokenType => E::InvalidActorTokenType,
            WireExchangeError::InvalidRequestedTokenType => E::InvalidRequestedTokenType,
            WireExchangeError::ReservedParameter(p) => E::ReservedParameter(p.clone()),
            WireExchangeError::Failed(e) => E::Failed(e.get()),
            WireExchangeError::MissingIssuedTokenType => E::MissingIssuedTokenType,
        }
    }
}

impl WireCoreError {
    /// `error` on the wire, when it is a kind that crosses.
    #[must_use]
    pub fn new(error: &tokenkeeper::Error) -> Option<Self> {
        use tokenkeeper::Error as E;
        Some(match error {
            E::MissingSession => WireCoreError::MissingSession,
            E::MissingRefreshToken {
                access_token_expired,
            } => WireCoreError::MissingRefreshToken {
                access_token_expired: *access_token_expired,
            },
            E::SessionExpired => WireCoreError::SessionExpired,
            E::ReauthenticationRequired => WireCoreError::ReauthenticationRequired,
            E::LoggedOut => WireCoreError::LoggedOut,
            E::FailedToRefreshToken(e) => {
                WireCoreError::FailedToRefreshToken(WireResponseError::new(e)?)
            }
            E::FailedToExchangeRefreshToken(e) => {
                WireCoreError::FailedToExchangeRefreshToken(WireResponseError::new(e)?)
            }
            E::TokenRequestFailed(e) => {
                WireCoreError::TokenRequestFailed(WireResponseError::new(e)?)
            }
            E::MissingScopes { missing } => WireCoreError::MissingScopes {
                missing: missing.clone(),
            },
            E::SubjectMismatch => WireCoreError::SubjectMismatch,
            E::TokenTypeMismatch { received } => WireCoreError::TokenTypeMismatch {
                received: received.clone(),
            },
            E::AccessTokenAudienceMismatch { requested } => {
                WireCoreError::AccessTokenAudienceMismatch {
                    requested: requested.clone(),
                }
            }
            E::Transport => WireCoreError::Transport,
            E::RequestAbandoned => WireCoreError::RequestAbandoned,
            E::UnknownRequest => WireCoreError::UnknownRequest,
            E::InvalidConfiguration(m) => WireCoreError::InvalidConfiguration(m.clone()),
            E::InvalidSession(m) => WireCoreError::InvalidSession(m.clone()),
            E::TokenExchange(e) => WireCoreError::TokenExchange(WireExchangeError::new(e)?),
            _ => return None,
        })
    }

    /// The core's error again.
    #[must_use]
    pub fn get(&self) -> tokenkeeper::Error {
        use tokenkeeper::Error as E;
        match self {
            WireCoreError::MissingSession => E::MissingSession,
            WireCoreError::MissingRefreshToken {
                access_token_expired,
            } => E::MissingRefreshToken {
                access_token_expired: *access_token_expired,
            },
            WireCoreError::SessionExpired => E::SessionExpired,
            WireCoreError::ReauthenticationRequired => E::ReauthenticationRequired,
            WireCoreError::LoggedOut => E::LoggedOut,
            WireCoreError::FailedToRefreshToken(e) => E::FailedToRefreshToken(e.get()),
            WireCoreError::FailedToExchangeRefreshToken(e) => {
                E::FailedToExchangeRefreshToken(e.get())
            }
            WireCoreError::TokenRequestFailed(e) => E::TokenRequestFailed(e.get()),
            WireCoreError::MissingScopes { missing } => E::MissingScopes {
                missing: missing.clone(),
            },
            WireCoreError::SubjectMismatch => E::SubjectMismatch,
            WireCoreError::TokenTypeMismatch { received } => E::TokenTypeMismatch {
                received: received.clone(),
            },
            WireCoreError::AccessTokenAudienceMismatch { requested } => {
                E::AccessTokenAudienceMismatch {
                    requested: requested.clone(),
                }
            }
            WireCoreError::Transport => E::Transport,
            WireCoreError::RequestAbandoned => E::RequestAbandoned,
            WireCoreError::UnknownRequest => E::UnknownRequest,
            WireCoreError::InvalidConfiguration(m) => E::InvalidConfiguration(m.clone()),
            WireCoreError::InvalidSession(m) => E::InvalidSession(m.clone()),
            WireCoreError::TokenExchange(e) => E::TokenExchange(e.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, error: &str) -> ResponseError {
        ResponseError::Server(ServerError {
            status,
            error: error.into(),
            error_description: Some("why".into()),
            error_uri: None,
        })
    }

    #[test]
    fn core_errors_cross_unchanged() {
        use tokenkeeper::Error as E;
        let errors = [
            E::MissingSession,
            E::MissingRefreshToken {
                access_token_expired: true,
            },
            E::SessionExpired,
            E::ReauthenticationRequired,
            E::LoggedOut,
            E::FailedToRefreshToken(server(400, "invalid_grant")),
            E::FailedToRefreshToken(ResponseError::NotJson { status: 500 }),
            E::FailedToRefreshToken(ResponseError::Malformed {
                status: 200,
                reason: "no access_token",
            }),
            E::FailedToRefreshToken(ResponseError::HeadersTooLarge {
                what: "count",
                limit: 3,
            }),
            E::FailedToExchangeRefreshToken(server(400, "invalid_request")),
            E::TokenRequestFailed(ResponseError::UnexpectedStatus { status: 502 }),
            E::TokenRequestFailed(ResponseError::TooLarge { limit: 9 }),
            E::MissingScopes {
                missing: "a b".into(),
            },
            E::SubjectMismatch,
            E::TokenTypeMismatch {
                received: "Bearer".into(),
            },
            E::AccessTokenAudienceMismatch {
                requested: "x".into(),
            },
            E::Transport,
            E::RequestAbandoned,
            E::UnknownRequest,
            E::InvalidConfiguration("c".into()),
            E::InvalidSession("s".into()),
            E::TokenExchange(TokenExchangeError::Failed(server(400, "invalid_target"))),
            E::TokenExchange(TokenExchangeError::ReservedParameter("scope".into())),
        ];
        for error in errors {
            let wire = WireCoreError::new(&error).expect("crosses");
            let json = serde_json::to_string(&wire).unwrap();
            let back: WireCoreError = serde_json::from_str(&json).unwrap();
            assert_eq!(back.get(), error, "{json}");
        }
    }
}
