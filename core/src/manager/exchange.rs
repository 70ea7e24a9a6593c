//! Token exchange (RFC 8693): the result is handed back, never stored.
//!
//! ```text
//! exchange_token(request, now) ──► Dispatch (Send, or Sign for a deferred signer)
//! handle_response(id, response, now) ──► apply_exchange ──► Completion::Exchanged(response)
//! ```

use alloc::string::String;

use super::{Dispatch, TokenManager};
use crate::error::Error;
use crate::flight::FlightKind;
use crate::grant::ClientAuth;
use crate::grant::token_exchange::{
    TokenExchangeError, TokenExchangeRequest, require_issued_token_type,
};
use crate::time::UnixTime;
use crate::token::TokenResponse;
use crate::token::response::ParsedResponse;

impl TokenManager {
    /// Sends a token exchange built by the caller (see
    /// [`TokenExchangeRequest`]); its response, through
    /// [`TokenManager::handle_response`], gives
    /// [`Completion::Exchanged`](super::Completion::Exchanged).
    ///
    /// # Errors
    /// [`Error::TokenExchange`] when the request is invalid (token type URIs,
    /// a missing actor token type, …).
    pub fn exchange_token(
        &mut self,
        request: &TokenExchangeRequest<'_>,
        now: UnixTime,
    ) -> Result<Dispatch, Error> {
        let http = request.build().map_err(Error::TokenExchange)?;
        // The exchange authenticates as the client it was built for, which
        // need not be this manager's.
        let assertion = match request.client_auth() {
            ClientAuth::PrivateKeyJwt(key) => {
                Some((key.clone(), String::from(request.client_id())))
            }
            _ => None,
        };
        self.launch_as(
            FlightKind::TokenExchange,
            None,
            String::new(),
            http,
            assertion,
            now,
        )
    }

    /// Reads an exchange response (`issued_token_type` required); nothing
    /// is stored.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_exchange(
        &self,
        answer: &mut ParsedResponse<'_>,
    ) -> Result<TokenResponse, Error> {
        answer
            .take_token_response()
            .map_err(TokenExchangeError::Failed)
            .and_then(require_issued_token_type)
            .map_err(Error::TokenExchange)
    }
}
