//! The adapter's error: [`tokenkeeper_native::Error`] over reqwest's
//! error, and how a failed exchange is sorted into it.

/// Why a call failed: the core's error, or a transport
/// ([`reqwest::Error`]), TLS, timeout, certificate, client, request, store
/// or signing failure. See [`tokenkeeper_native::Error`] for each variant
/// and [`code`](tokenkeeper_native::Error::code) for the stable codes.
pub type Error = tokenkeeper_native::Error<reqwest::Error>;

/// Sorts a failed exchange: a TLS failure ([`Error::Tls`], reqwest's error
/// as the source, the TLS library's further down its chain), a timeout
/// ([`Error::Timeout`]), or another transport error.
pub(crate) fn transport(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout(Some(error))
    } else if tokenkeeper_native::is_tls(&error) {
        Error::Tls(Box::new(error))
    } else {
        Error::Transport(error)
    }
}
