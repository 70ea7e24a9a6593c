//! The adapter's error: [`tokenkeeper_native::Error`] over ureq's error,
//! and how a failed exchange is sorted into it.

/// Why a call failed: the core's error, or a transport ([`ureq::Error`]),
/// TLS, timeout, certificate, store or signing failure. See
/// [`tokenkeeper_native::Error`] for each variant and
/// [`code`](tokenkeeper_native::Error::code) for the stable codes.
pub type Error = tokenkeeper_native::Error<ureq::Error>;

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
        ureq::Error::Io(io) if tokenkeeper_native::is_tls(&io) => {
            Error::Tls(io.into_inner().unwrap_or_else(|| "TLS failure".into()))
        }
        other => Error::Transport(other),
    }
}
