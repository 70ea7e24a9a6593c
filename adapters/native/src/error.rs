//! The native adapters' error: the core's, plus transport, TLS, store and
//! signing failures. Generic over the HTTP library's error `T` (each
//! adapter names it: `tokenkeeper_ureq::Error` is `Error<ureq::Error>`), so
//! the core carries no transport's error type and this one exists once.

use tokenkeeper::StoreError;
use tokenkeeper::driver::Failure;

/// A boxed error from outside (a TLS library, a signer, a PEM parser).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a call failed. `T` is the HTTP library's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<T: std::error::Error + 'static> {
    /// The core's answer: a failed refresh (with the server's error), a
    /// login required, … See [`tokenkeeper::Error::code`].
    #[error(transparent)]
    Core(#[from] tokenkeeper::Error),
    /// The request could not be sent or no response arrived (connection
    /// refused, invalid URL, a plain `http://` URL without a TLS feature).
    /// Nothing stored changed.
    #[error("transport error")]
    Transport(#[source] T),
    /// The TLS connection failed: most often the server's certificate is
    /// not trusted (add its CA with the adapter's
    /// `Builder::root_certificates_pem`, or configure your own agent or
    /// client). The HTTP or TLS library's error is the
    /// [`source`](std::error::Error::source), the TLS library's error in its
    /// chain. Nothing stored changed.
    #[error("TLS connection failed")]
    Tls(#[source] BoxError),
    /// No complete response in time: the agent's or client's timeout ran
    /// out, or — for token requests — the end of the flight's lease
    /// ([`ConfigBuilder::lease`]) came near, after which another caller may
    /// take over the refresh; the request is abandoned then, so a late
    /// answer is never applied. Nothing stored changed.
    ///
    /// [`ConfigBuilder::lease`]: tokenkeeper::ConfigBuilder::lease
    #[error("no response in time (transport timeout or the flight's lease)")]
    Timeout(#[source] Option<T>),
    /// A root certificate given to the adapter's
    /// `Builder::root_certificates_pem` could not be read.
    #[error("invalid root certificate PEM")]
    Certificate(#[source] BoxError),
    /// The HTTP client given to the reqwest adapter's `Builder::client`
    /// follows redirects: token endpoints never redirect, and following one
    /// could send a refresh token elsewhere. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, or pass its builder
    /// to `Builder::client_builder`, which sets that itself. (The ureq
    /// adapter sets `max_redirects(0)` on every token request instead.)
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
    Signing(#[source] BoxError),
    /// The core asked for a step this adapter version does not know.
    #[error("unsupported step from the core: {0}")]
    Unsupported(String),
}

impl<T: std::error::Error + 'static> Error<T> {
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

    /// The error for a call the driver ended with `failure`; `failed` is
    /// the transport or signing error the adapter reported on the way.
    pub(crate) fn from_failure(failure: Failure, failed: Option<Self>) -> Self {
        match failure {
            Failure::Core(error) => Error::Core(error),
            Failure::Store(error) => Error::Store(error),
            Failure::LeaseExpired => Error::Timeout(None),
            // A caller that waited on another's failed flight has no error
            // of its own: the flight's lease ended it.
            Failure::Transport | Failure::Signing => failed.unwrap_or(Error::Timeout(None)),
            other => Error::Unsupported(format!("{other:?}")),
        }
    }
}

/// Whether the TLS library's error (rustls' or native-tls', as the crate's
/// features say) is in `error`'s source chain — directly, or inside an
/// I/O error, whose `source` skips the error it wraps.
#[must_use]
pub fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
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
