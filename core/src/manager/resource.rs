//! Requests to resource servers: the `Authorization` header (and the DPoP
//! proof with `ath`), and what a 401 means for the token.
//!
//! ```text
//! authorize(method, url, token, now) ──► Authorization::Ready(headers)
//!                                    └─► Authorization::Sign(pending)   deferred signer
//! …send the API request…
//! handle_resource_response(url, token, response, now)
//!   ├─► Accepted                                    use the response
//!   ├─► RetryWithNonce   DPoP error="use_dpop_nonce" and a DPoP-Nonce: authorize again, resend
//!                        once (`ResourceRetries` counts)
//!   └─► TokenRejected    error="invalid_token": the token is marked expired; get a token
//!                        (it refreshes) and resend once
//! ```

use alloc::format;
use alloc::string::String;
use core::fmt;

use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::{AccessTokenInfo, ChangeReason, TokenManager};
use crate::dpop::{
    DpopProof, EcdsaSignature, ProofOutcome, ProofParams, UnsignedProof,
    bearer_or_dpop_invalid_token, draw_jti, is_use_dpop_nonce, parse_www_authenticate,
};
use crate::error::{DpopError, Error};
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

/// The retries one API request may still make: at most one with a new DPoP
/// nonce and at most one with a refreshed token, so a server that keeps
/// refusing cannot make a caller loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceRetries {
    nonce_used: bool,
    refresh_used: bool,
}

impl ResourceRetries {
    /// Fresh: both retries available.
    #[must_use]
    pub const fn new() -> Self {
        ResourceRetries {
            nonce_used: false,
            refresh_used: false,
        }
    }

    /// What to do after `verdict`: `Some(verdict)` when a retry is due and
    /// still available (it is spent now) — [`ResourceVerdict::RetryWithNonce`]:
    /// authorize again and resend; [`ResourceVerdict::TokenRejected`]: get a
    /// token again (it refreshes), authorize and resend. `None`: use the
    /// response as it is.
    #[must_use]
    pub fn admit(&mut self, verdict: ResourceVerdict) -> Option<ResourceVerdict> {
        let used = match verdict {
            ResourceVerdict::RetryWithNonce => &mut self.nonce_used,
            ResourceVerdict::TokenRejected => &mut self.refresh_used,
            ResourceVerdict::Accepted => return None,
        };
        if *used {
            return None;
        }
        *used = true;
        Some(verdict)
    }
}

/// The headers that authorize an API request. `Debug` shows no token.
#[must_use]
#[non_exhaustive]
pub enum Authorization {
    /// Add these headers (`Authorization`, and `DPoP` for a bound token).
    Ready(Headers),
    /// The DPoP proof waits for a deferred signer.
    Sign(PendingAuthorization),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `Headers` redacts `Authorization` and `DPoP` values.
            Authorization::Ready(headers) => f.debug_tuple("Ready").field(headers).finish(),
            Authorization::Sign(pending) => f.debug_tuple("Sign").field(pending).finish(),
        }
    }
}

/// An authorization whose DPoP proof needs a signature from outside (a
/// non-extractable WebCrypto key, a KMS). `Debug` shows no token, and the
/// `Authorization` value it holds is wiped when it is dropped.
#[must_use]
pub struct PendingAuthorization {
    proof: UnsignedProof,
    /// `DPoP <access token>`.
    authorization: Zeroizing<String>,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("proof", &self.proof)
            .field(
                "authorization",
                &format_args!("<redacted {} bytes>", self.authorization.len()),
            )
            .finish()
    }
}

/// The header value is `Zeroizing`; the proof holds no secret (its `ath`
/// is a hash of the token).
impl ZeroizeOnDrop for PendingAuthorization {}

impl PendingAuthorization {
    /// What to sign (ES256, raw `r || s`).
    #[must_use]
    pub fn signing_input(&self) -> &str {
        self.proof.signing_input()
    }

    /// The headers, with the proof finished by `signature`.
    #[must_use]
    pub fn finish(self, signature: &EcdsaSignature) -> Headers {
        let PendingAuthorization {
            proof,
            authorization,
        } = self;
        dpop_headers(&authorization, proof.finish(signature))
    }
}

fn dpop_headers(authorization: &str, proof: DpopProof) -> Headers {
    let mut headers = Headers::new();
    headers.append("Authorization", authorization);
    headers.append("DPoP", proof.into_string());
    headers
}

impl TokenManager {
    /// The headers that authorize a request to a resource server with
    /// `token`: `Authorization: Bearer …` for a Bearer token;
    /// `Authorization: DPoP …` and a `DPoP` proof (with `ath` and the
    /// server's current nonce) for a DPoP-bound one. A DPoP-bound token is
    /// never sent as Bearer.
    ///
    /// # Errors
    /// [`Error::Dpop`]: [`DpopError::NotEnabled`] when the token is
    /// DPoP-bound and DPoP is not enabled, [`DpopError::InvalidUrl`] when
    /// the URL cannot be used as `htu`, [`DpopError::UnsupportedTokenType`]
    /// for a token type this crate cannot present, [`DpopError::Signer`]
    /// when the signer fails.
    pub fn authorize(
        &mut self,
        method: &Method,
        url: &str,
        token: &AccessTokenInfo,
        now: UnixTime,
    ) -> Result<Authorization, Error> {
        match &token.token_type {
            TokenType::Bearer => {
                let mut headers = Headers::new();
                let value = Zeroizing::new(format!("Bearer {}", token.token.secret()));
                headers.append("Authorization", &*value);
                Ok(Authorization::Ready(headers))
            }
            TokenType::DPoP => {
                let dpop = self
                    .dpop
                    .as_mut()
                    .ok_or(Error::Dpop(DpopError::NotEnabled))?;
                let jti = draw_jti(&mut *self.entropy);
                // `get` counts as a use for the nonce cache's recency.
                let _ = dpop.resource_nonces.get(url);
                let params = ProofParams::new(method, url, now, &jti)
                    .with_nonce(dpop.resource_nonces.peek(url))
                    .with_access_token(&token.token)
                    .with_clock_skew(self.config.dpop_clock_skew);
                let authorization = Zeroizing::new(format!("DPoP {}", token.token.secret()));
                match dpop.builder.build(&params)? {
                    ProofOutcome::Ready(proof) => {
                        Ok(Authorization::Ready(dpop_headers(&authorization, proof)))
                    }
                    ProofOutcome::Deferred(proof) => {
                        Ok(Authorization::Sign(PendingAuthorization {
                            proof,
                            authorization,
                        }))
                    }
                }
            }
            TokenType::Other(other) => Err(Error::Dpop(DpopError::UnsupportedTokenType(
                String::from(other.as_str()),
            ))),
        }
    }

    /// Learns from a resource server's response to a request authorized
    /// with `token`: its `DPoP-Nonce` (any status), and on a 401 what the
    /// `WWW-Authenticate` challenges say. See [`ResourceVerdict`].
    pub fn handle_resource_response(
        &mut self,
        url: &str,
        token: &AccessTokenInfo,
        response: &HttpResponse,
        now: UnixTime,
    ) -> ResourceVerdict {
        let _ = now;
        // Whether a nonce came to retry with. Not "a nonce new to the
        // cache": two requests sent at once without one both get the
        // challenge, and the first answer teaches the cache the nonce the
        // second must retry with too. `ResourceRetries` keeps it to one
        // retry per request.
        let offered = match self.dpop.as_mut() {
            Some(dpop) => {
                dpop.resource_nonces.learn(url, &response.headers);
                crate::dpop::offered_nonce(&response.headers).is_some()
            }
            None => false,
        };
        if response.status != 401 {
            return ResourceVerdict::Accepted;
        }
        // A malformed challenge says nothing we can act on.
        let Ok(challenges) = parse_www_authenticate(&response.headers) else {
            return ResourceVerdict::Accepted;
        };
        if is_use_dpop_nonce(&challenges) {
            return if offered {
                ResourceVerdict::RetryWithNonce
            } else {
                ResourceVerdict::Accepted
            };
        }
        if bearer_or_dpop_invalid_token(&challenges) {
            self.invalidate(token.token.secret());
            return ResourceVerdict::TokenRejected;
        }
        ResourceVerdict::Accepted
    }

    /// Marks every stored copy of `access_token` expired.
    fn invalidate(&mut self, access_token: &str) {
        let Some(session) = self.state.session.as_mut() else {
            return;
        };
        let mut found = session.cache.invalidate(access_token);
        if session.token_set.access_token.secret() == access_token {
            session.token_set.expires_at = Some(UnixTime::EPOCH);
            found = true;
        }
        if found {
            self.state
                .events
                .session_changed(session, &[ChangeReason::TokenRejected]);
        }
        self.machine_cache.invalidate(access_token);
    }
}
