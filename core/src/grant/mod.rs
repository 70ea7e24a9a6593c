//! Token endpoint request builders and client authentication.

pub(crate) mod client_auth;
pub(crate) mod client_credentials;
pub(crate) mod code;
pub(crate) mod refresh;
pub(crate) mod revocation;
pub(crate) mod token_exchange;

pub use crate::form::FormBody;
pub use client_auth::{
    ASSERTION_LIFETIME_SECS, ClientAssertionKey, ClientAuth, JWT_BEARER_ASSERTION,
};
pub use refresh::TargetParameter;
pub use revocation::{RetryAfter, RevocationError};
pub use token_exchange::{TokenExchangeError, TokenExchangeRequest, token_types};

pub(crate) use internal::*;

/// The request builders the manager drives, reached from outside only by
/// tests and fuzz targets (through `crate::__private::grant`).
pub(crate) mod internal {
    pub use super::client_auth::basic_authorization;
    pub use super::client_credentials::ClientCredentialsRequest;
    pub use super::code::CodeExchangeRequest;
    pub use super::refresh::RefreshRequest;
    pub use super::revocation::{
        RevocationRequest, TokenTypeHint, parse_revocation_response, revoke_refresh_token,
    };
    pub use super::token_exchange::{is_valid_token_type, parse_response};
}

use alloc::string::String;

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
