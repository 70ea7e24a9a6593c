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
    /// refused, invalid URL). Nothing stored changed.
    #[error("transport error")]
    Transport(#[source] reqwest::Error),
    /// The TLS connection failed: most often the server's certificate is
    /// not trusted (add its CA with [`Builder::root_certificates_pem`] or
    /// your own client builder's `tls_certs_merge`). reqwest's error is the
    /// [`source`](std::error::Error::source), the TLS library's error
    /// further down its chain. Nothing stored changed.
    ///
    /// [`Builder::root_certificates_pem`]: crate::Builder::root_certificates_pem
    #[error("TLS connection failed")]
    Tls(#[source] reqwest::Error),
    /// No complete response in time: the client's timeout ran out, or — for
    /// token requests — the end of the flight's lease
    /// ([`ConfigBuilder::lease`]) came near, after which another caller may
    /// take over the refresh; the request is abandoned then, so a late
    /// answer is never applied. Nothing stored changed.
    ///
    /// [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
    #[error("no response in time (transport timeout or the flight's lease)")]
    Timeout(#[source] Option<reqwest::Error>),
    /// A root certificate given to [`Builder::root_certificates_pem`] could
    /// not be read.
    ///
    /// [`Builder::root_certificates_pem`]: crate::Builder::root_certificates_pem
    #[error("invalid root certificate PEM")]
    Certificate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The [`reqwest::Client`] given to [`Builder::client`] follows
    /// redirects: token endpoints never redirect, and following one could
    /// send a refresh token elsewhere. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, or pass its builder
    /// to [`Builder::client_builder`], which sets that itself.
    ///
    /// [`Builder::client`]: crate::Builder::client
    /// [`Builder::client_builder`]: crate::Builder::client_builder
    #[error(
        "the reqwest client follows redirects: build it with `redirect(Policy::none())`, \
         or pass its builder to `Builder::client_builder`"
    )]
    ClientFollowsRedirects,
    /// The request could not be built (an invalid method or header).
    #[error("invalid request")]
    InvalidRequest(#[from] http::Error),
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
    /// `client_follows_redirects`, `invalid_request`, `store_error`,
    /// `signing_error`, or `unsupported`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::Transport(_) => "transport_error",
            Error::Tls(_) => "tls_error",
            Error::Timeout(_) => "timeout",
            Error::Certificate(_) => "invalid_certificate",
            Error::ClientFollowsRedirects => "client_follows_redirects",
            Error::InvalidRequest(_) => "invalid_request",
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

/// Sorts a failed exchange: a TLS failure ([`Error::Tls`]), a timeout
/// ([`Error::Timeout`]), or another transport error.
pub(crate) fn transport(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout(Some(error))
    } else if is_tls(&error) {
        Error::Tls(error)
    } else {
        Error::Transport(error)
    }
}

/// Whether the TLS library's error is in `error`'s source chain (directly,
/// or inside an I/O error, whose `source` skips its inner error).
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let is_tls_error = |e: &(dyn std::error::Error + 'static)| {
        #[cfg(feature = "rustls")]
        if e.is::<rustls::Error>() {
            return true;
        }
        #[cfg(feature = "native-tls")]
        if e.is::<native_tls::Error>() {
            return true;
        }
        let _ = e;
        false
    };
    let mut next = Some(error);
    while let Some(e) = next {
        // I/O errors nest (hyper's around the TLS stream's around the TLS
        // library's): look inside each.
        let mut layer = Some(e);
        while let Some(l) = layer {
            if is_tls_error(l) {
                return true;
            }
            layer = l
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .map(|inner| inner as &(dyn std::error::Error + 'static));
        }
        next = e.source();
    }
    false
}
