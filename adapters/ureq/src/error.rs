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
    /// refused, invalid URL, a plain `http://` URL without a TLS feature).
    /// Nothing stored changed.
    #[error("transport error")]
    Transport(#[source] ureq::Error),
    /// The TLS connection failed: most often the server's certificate is
    /// not trusted (add its CA with [`Builder::root_certificates_pem`] or
    /// your own agent's `TlsConfig`). The TLS library's error is the
    /// [`source`](std::error::Error::source). Nothing stored changed.
    ///
    /// [`Builder::root_certificates_pem`]: crate::Builder::root_certificates_pem
    #[error("TLS connection failed")]
    Tls(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No complete response in time: the agent's timeout ran out, or — for
    /// token requests — the end of the flight's lease
    /// ([`ConfigBuilder::lease`]) came near, after which another caller may
    /// take over the refresh; the request is abandoned then, so a late
    /// answer is never applied. Nothing stored changed.
    ///
    /// [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
    #[error("no response in time (transport timeout or the flight's lease)")]
    Timeout(#[source] Option<ureq::Error>),
    /// A root certificate given to [`Builder::root_certificates_pem`] could
    /// not be read.
    ///
    /// [`Builder::root_certificates_pem`]: crate::Builder::root_certificates_pem
    #[error("invalid root certificate PEM")]
    Certificate(#[source] ureq::Error),
    /// The session store failed. The session in memory is intact and is
    /// saved again after the next change.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The deferred DPoP signer failed, or none is configured.
    #[error("DPoP signing failed")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The core asked for a step this adapter version does not know.
    #[error("unsupported step from the core: {0}")]
    Unsupported(String),
}

impl Error {
    /// A stable code: the core's [`code`](tokenkeeper::Error::code),
    /// `transport_error` (also for callers that waited on a request that
    /// failed in transport), `tls_error`, `timeout`, `invalid_certificate`,
    /// `store_error`, `signing_error`, or `unsupported`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::Transport(_) => "transport_error",
            Error::Tls(_) => "tls_error",
            Error::Timeout(_) => "timeout",
            Error::Certificate(_) => "invalid_certificate",
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

/// The adapter's error for a call the driver ended with `failure`;
/// `failed` is the transport or signing error the adapter reported.
pub(crate) fn from_failure(failure: tokenkeeper::driver::Failure, failed: Option<Error>) -> Error {
    use tokenkeeper::driver::Failure;
    match failure {
        Failure::Core(error) => Error::Core(error),
        Failure::Store(error) => Error::Store(error),
        Failure::LeaseExpired => Error::Timeout(None),
        Failure::Transport | Failure::Signing => failed.unwrap_or(Error::Timeout(None)),
        other => Error::Unsupported(format!("{other:?}")),
    }
}

/// Sorts a failed exchange: a TLS failure ([`Error::Tls`], with the TLS
/// library's own error as the source), a timeout ([`Error::Timeout`]), or
/// another transport error.
pub(crate) fn transport(error: ureq::Error) -> Error {
    match error {
        ureq::Error::Timeout(_) => Error::Timeout(Some(error)),
        #[cfg(feature = "rustls")]
        ureq::Error::Rustls(tls) => Error::Tls(Box::new(tls)),
        #[cfg(feature = "native-tls")]
        ureq::Error::NativeTls(tls) => Error::Tls(Box::new(tls)),
        // A handshake that fails while reading or writing comes back as an
        // I/O error around the TLS library's error.
        ureq::Error::Io(io) if is_tls(&io) => {
            Error::Tls(io.into_inner().unwrap_or_else(|| "TLS failure".into()))
        }
        other => Error::Transport(other),
    }
}

/// Whether `io` carries the TLS library's error.
fn is_tls(io: &std::io::Error) -> bool {
    let Some(inner) = io.get_ref() else {
        return false;
    };
    #[cfg(feature = "rustls")]
    if inner.is::<rustls::Error>() {
        return true;
    }
    #[cfg(feature = "native-tls")]
    if inner.is::<native_tls::Error>() {
        return true;
    }
    let _ = inner;
    false
}
