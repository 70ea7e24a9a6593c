//! The adapter's error: the core's, plus transport and store failures.

use tokenkeeper::StoreError;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The core's answer: a failed refresh (with the server's error), a
    /// login required, … See [`tokenkeeper::Error::code`].
    #[error(transparent)]
    Core(#[from] tokenkeeper::Error),
    /// The request could not be sent or no response arrived (connection
    /// refused, timeout, invalid URL). Nothing stored changed.
    #[error("transport error: {0}")]
    Transport(#[source] ureq::Error),
    /// The session store failed. The session in memory is intact and is
    /// saved again after the next change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deferred DPoP signer failed, or none is configured.
    #[error("DPoP signing failed: {0}")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The core asked for a step this adapter version does not know.
    #[error("unsupported step from the core: {0}")]
    Unsupported(String),
}

impl Error {
    /// A stable code: the core's [`code`](tokenkeeper::Error::code),
    /// `transport_error` (also for callers that waited on a request that
    /// failed in transport), `store_error`, `signing_error`, or
    /// `unsupported`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::Transport(_) => "transport_error",
            Error::Store(_) => "store_error",
            Error::Signing(_) => "signing_error",
            Error::Unsupported(_) => "unsupported",
        }
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
}
