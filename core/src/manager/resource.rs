//! Requests to resource servers: the `Authorization` header (and DPoP
//! proof), and what a 401 means for the token.

use alloc::format;
use alloc::string::String;

use super::{AccessTokenInfo, ChangeReason, Event, TokenManager};
use crate::error::Error;
use crate::http::{Headers, HttpResponse, Method};
use crate::time::UnixTime;
use crate::token::TokenType;

/// What a resource server's response means for the token that was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ResourceVerdict {
    /// Nothing about the token: use the response as it is.
    Accepted,
    /// The server asked for a DPoP nonce and sent one: authorize again (a
    /// new proof carries it) and resend, once.
    RetryWithNonce,
    /// The server rejected the token (`invalid_token`). It is marked
    /// unusable: get a token again (it will be refreshed) and resend, once.
    TokenRejected,
}

impl TokenManager {
    /// The headers that authorize a request to a resource server with
    /// `token`: `Authorization: Bearer …` for a Bearer token. A DPoP-bound
    /// token is never sent as Bearer.
    ///
    /// # Errors
    /// [`Error::Dpop`] when the token is DPoP-bound and no DPoP key is
    /// configured, or for a token type this crate cannot present.
    pub fn authorize(
        &mut self,
        method: &Method,
        url: &str,
        token: &AccessTokenInfo,
        now: UnixTime,
    ) -> Result<Headers, Error> {
        let _ = (method, url, now);
        let mut headers = Headers::new();
        match &token.token_type {
            TokenType::Bearer => {
                headers.append("Authorization", format!("Bearer {}", token.token.secret()));
                Ok(headers)
            }
            TokenType::DPoP => Err(Error::Dpop(String::from(
                "the token is DPoP-bound and no DPoP key is configured",
            ))),
            TokenType::Other(other) => Err(Error::Dpop(format!(
                "cannot present a token of type {other}"
            ))),
        }
    }

    /// Learns from a resource server's response to a request authorized
    /// with `token`. See [`ResourceVerdict`].
    pub fn handle_resource_response(
        &mut self,
        url: &str,
        token: &AccessTokenInfo,
        response: &HttpResponse,
        now: UnixTime,
    ) -> ResourceVerdict {
        let _ = (url, now);
        if response.status != 401 {
            return ResourceVerdict::Accepted;
        }
        let invalid_token = response
            .headers
            .get_all("www-authenticate")
            .any(|v| v.contains("invalid_token"));
        if !invalid_token {
            return ResourceVerdict::Accepted;
        }
        self.invalidate(token.token.secret());
        ResourceVerdict::TokenRejected
    }

    /// Marks every stored copy of `access_token` expired.
    fn invalidate(&mut self, access_token: &str) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut found = session.cache.invalidate(access_token);
        if session.token_set.access_token.secret() == access_token {
            session.token_set.expires_at = Some(UnixTime::EPOCH);
            found = true;
        }
        if found {
            let generation = session.bump_generation();
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::TokenRejected,
            });
        }
    }
}
