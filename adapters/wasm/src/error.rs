//! The adapter's error: the core's, plus transport, store and WebCrypto
//! failures.

use tokenkeeper::StoreError;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core's answer: a failed refresh (with the server's error), a
    /// login required, … See [`tokenkeeper::Error::code`].
    #[error(transparent)]
    Core(#[from] tokenkeeper::Error),
    /// The `fetch` promise rejected: no response arrived (network error,
    /// CORS refusal, an invalid URL). Nothing stored changed. The text is
    /// JavaScript's error message.
    #[error("transport error: {0}")]
    Transport(String),
    /// No complete response within the configured timeout; the request was
    /// aborted. Nothing stored changed.
    #[error("the request timed out")]
    Timeout,
    /// The response body is larger than the configured limit
    /// ([`Limits::max_body_bytes`](tokenkeeper::Limits)): reading
    /// stopped there (at once when `Content-Length` announced more) and the
    /// request was aborted. Nothing stored changed.
    #[error("the response body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The session store failed. The session in memory is intact and is
    /// saved again after the next change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// WebCrypto failed (key generation, export or signing), or is missing.
    #[error("WebCrypto: {0}")]
    Crypto(String),
    /// The core asked for a step this adapter version does not know.
    #[error("unsupported step from the core: {0}")]
    Unsupported(String),
}

impl Error {
    /// A stable code: the core's [`code`](tokenkeeper::Error::code),
    /// `transport_error` (also for callers that waited on a request that
    /// failed in transport), `timeout`, `response_too_large` (as the core's
    /// own refusal of a large body), `store_error`, `crypto_error` or
    /// `unsupported`.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Error::Core(e) => e.code(),
            Error::Transport(_) => "transport_error",
            Error::Timeout => "timeout",
            Error::TooLarge { .. } => "response_too_large",
            Error::Store(_) => "store_error",
            Error::Crypto(_) => "crypto_error",
            Error::Unsupported(_) => "unsupported",
        }
    }

    /// [`Error::Unsupported`] naming the step (not `Debug`-printing it,
    /// which would keep the formatting machinery in every app).
    pub(crate) fn unsupported(step: &str) -> Error {
        Error::Unsupported(String::from(step))
    }

    /// The core's error, if it is one.
    #[must_use]
    pub fn core(&self) -> Option<&tokenkeeper::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }

    /// Whether only an interactive login can fix this.
    #[must_use]
    pub fn requires_login(&self) -> bool {
        self.core().is_some_and(tokenkeeper::Error::requires_login)
    }

    /// Whether sending again later may help (transport failures and
    /// timeouts).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Transport(_) | Error::Timeout | Error::Core(tokenkeeper::Error::Transport)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::Timeout.code(), "timeout");
        assert_eq!(Error::Transport("x".into()).code(), "transport_error");
        assert_eq!(
            Error::Core(tokenkeeper::Error::MissingSession).code(),
            tokenkeeper::Error::MissingSession.code()
        );
        assert!(Error::Core(tokenkeeper::Error::MissingSession).requires_login());
        assert!(Error::Timeout.is_transient());
        assert_eq!(Error::TooLarge { limit: 9 }.code(), "response_too_large");
        assert!(!Error::TooLarge { limit: 9 }.is_transient());
        assert!(!Error::Crypto("no".into()).is_transient());
        // The store error names what failed; the backend's own error is its
        // source (messages do not repeat their source).
        let store = Error::Store(StoreError::backend("full"));
        assert_eq!(store.to_string(), "session store failed");
        // `transparent`: the store error's source is this error's source.
        let backend = std::error::Error::source(&store).map(ToString::to_string);
        assert_eq!(backend.as_deref(), Some("full"));
    }
}
