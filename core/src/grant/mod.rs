//! Token endpoint request builders and client authentication.

pub mod client_auth;
pub mod client_credentials;
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub mod code;
pub mod refresh;
pub mod revocation;
#[cfg(feature = "exchange")]
#[cfg_attr(docsrs, doc(cfg(feature = "exchange")))]
pub mod token_exchange;

pub use client_auth::ClientAuth;
pub use client_credentials::ClientCredentialsRequest;
#[cfg(feature = "login")]
pub use code::CodeExchangeRequest;
pub use refresh::RefreshRequest;
pub use revocation::{RevocationRequest, TokenTypeHint};
#[cfg(feature = "exchange")]
pub use token_exchange::TokenExchangeRequest;

use alloc::string::String;

use crate::form::FormBody;
use crate::http::{Headers, HttpRequest, Method};

/// Empty headers with room for what a token request carries (content type,
/// accept, client authentication), so they are built without regrowing.
#[must_use]
pub(crate) fn request_headers() -> Headers {
    Headers::with_capacity(4, 192)
}

/// A `POST` of a form to a token-type endpoint, with the headers every
/// such request carries.
#[must_use]
pub fn form_post(url: &str, form: FormBody, mut headers: Headers) -> HttpRequest {
    headers.append("Content-Type", "application/x-www-form-urlencoded");
    headers.append("Accept", "application/json");
    HttpRequest {
        method: Method::POST,
        url: String::from(url),
        headers,
        body: form.finish().into_bytes(),
    }
}
