//! The crate's errors, and how the routes answer them: a status and
//! `{"error":{"code","message"}}`.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::session_cookie::SessionCookieError;

/// What can go wrong in the integration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (a short secret, a base URL that is
    /// not absolute, a server without an authorization endpoint).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The driver's error: the core's answer (a failed check, the
    /// server's error, login required) or the transport's.
    #[error(transparent)]
    Driver(#[from] tokenkeeper_reqwest::Error),
    /// The session cookie could not be written.
    #[error(transparent)]
    SessionCookie(#[from] SessionCookieError),
    /// The stateful store failed.
    #[error("the session store failed")]
    Store(#[source] tokenkeeper::StoreError),
}

impl Error {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Error::Config(_) => "invalid_configuration",
            Error::Driver(e) => e.code(),
            Error::SessionCookie(SessionCookieError::TooLarge { .. }) => "session_too_large",
            Error::SessionCookie(_) => "session_cookie_error",
            Error::Store(_) => "store_error",
        }
    }

    /// The status a route answers this error with: 400 for a callback the
    /// checks refuse (state, `iss`, the server's `error`, the ID token, a
    /// spent code), 502 when the authorization server cannot be reached,
    /// 500 for the app's own problems (configuration, an oversized
    /// session, the store).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Driver(tokenkeeper_reqwest::Error::Core(_)) => StatusCode::BAD_REQUEST,
            Error::Driver(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A JSON error answer: `{"error":{"code","message"}}`, not cached.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [(http::header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(&self);
        while let Some(inner) = source {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            source = inner.source();
        }
        error_response(self.status(), self.code(), &message)
    }
}
