//! DPoP in the manager: proofs on token requests, the server nonces, the
//! one `use_dpop_nonce` retry, and deferred signers.
//!
//! ```text
//! token request ──► proof (fresh jti, the token endpoint's nonce) ──► Send
//!                └─► deferred signer: Sign { id, signing_input }
//!                       handle_signature(id, signature) ──► Send
//! 400 use_dpop_nonce + a NEW DPoP-Nonce, first try ──► Resend (new proof)
//! 400 use_dpop_nonce otherwise ──► the error surfaces
//! ```
//!
//! Nonces are learned from every response, success or error. The token
//! endpoints' nonces and the resource servers' are kept in two caches, so
//! one is never sent to the other, even on a shared origin.
//!
//! The retry is decided first ([`TokenManager::nonce_retry_due`], which
//! learns the nonce), then made ([`TokenManager::retry_with_nonce`]: a
//! fresh proof, the lease and a shared store's claim renewed).

use super::{Completion, OutgoingRequest, TokenManager};
use crate::dpop::{
    DpopProof, EcdsaSignature, NonceCache, ProofBuilder, ProofOutcome, ProofParams, Signer,
    UnsignedProof, draw_jti,
};
use crate::error::{DpopError, Error};
use crate::flight::{Flight, RequestId};
use crate::form::FormBody;
use crate::grant::client_auth::ClientAssertionKey;
use crate::http::HttpRequest;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use crate::trace::decision;
use alloc::boxed::Box;
use alloc::string::String;

/// The DPoP state of a manager: the signer (with its encoded header) and
/// the nonces it has learned.
pub(super) struct DpopState {
    pub(super) builder: ProofBuilder<Box<dyn Signer + Send>>,
    /// Nonces of token endpoints.
    pub(super) token_nonces: NonceCache,
    /// Nonces of resource servers.
    pub(super) resource_nonces: NonceCache,
}

impl core::fmt::Debug for DpopState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DpopState")
            .field("jkt", &self.builder.public_jwk().thumbprint())
            .finish_non_exhaustive()
    }
}

/// A proof the signer will give later (a non-extractable WebCrypto key, a
/// KMS, an HSM): sign `signing_input` with ES256 (raw `r || s`, 64 bytes)
/// and hand the signature to [`TokenManager::handle_signature`].
#[derive(Debug)]
#[must_use = "the signing input must be signed and the signature handed back"]
pub struct SignatureRequest {
    /// The request the proof is for.
    pub id: RequestId,
    /// What to sign: `BASE64URL(header) "." BASE64URL(claims)`.
    pub signing_input: String,
}

/// A prepared token request: ready, or its proof waits for a signature
/// (with the request it goes on).
pub(super) enum Prepared {
    Ready(HttpRequest),
    Deferred(UnsignedProof, HttpRequest),
}

impl TokenManager {
    /// Turns DPoP on: every token request from now on carries a proof made
    /// with `signer`, and tokens must come back DPoP-bound.
    ///
    /// # Errors
    /// [`Error::Dpop`] ([`DpopError::UnsupportedAlgorithm`]) when the
    /// signer's algorithm is not ES256.
    pub fn enable_dpop(&mut self, signer: impl Signer + Send + 'static) -> Result<(), Error> {
        let signer: Box<dyn Signer + Send> = Box::new(signer);
        let builder = ProofBuilder::new(signer)?;
        self.dpop = Some(DpopState {
            builder,
            token_nonces: NonceCache::with_capacity(self.config.nonce_capacity),
            resource_nonces: NonceCache::with_capacity(self.config.nonce_capacity),
        });
        Ok(())
    }

    /// The JWK thumbprint of the DPoP key (the `dpop_jkt` authorization
    /// parameter), when DPoP is on.
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.dpop
            .as_ref()
            .map(|d| d.builder.public_jwk().thumbprint())
    }

    /// What a token request needs as it leaves, fresh on every try: a
    /// `private_key_jwt` client assertion, and (`dpop`) a proof with the
    /// token endpoint's current nonce, or the unsigned proof for a deferred
    /// signer.
    ///
    /// Also gives the nonce the proof carries: a `use_dpop_nonce` answer is
    /// judged against what the request carried, not against the cache
    /// (another answer may have taught the cache meanwhile).
    pub(super) fn prepare_token_request(
        &mut self,
        mut request: HttpRequest,
        assertion: Option<&(ClientAssertionKey, String)>,
        dpop: bool,
        now: UnixTime,
    ) -> Result<(Prepared, Option<Box<str>>), Error> {
        if let Some((key, client_id)) = assertion {
            let jti = draw_jti(&mut *self.entropy);
            let audience = self
                .config
                .issuer
                .as_deref()
                .unwrap_or(&self.config.token_endpoint);
            let mut form = FormBody::new();
            key.append(&mut form, client_id, audience, now, &jti)?;
            if !request.body.is_empty() {
                request.body.push(b'&');
            }
            request.body.extend_from_slice(form.finish().as_bytes());
        }
        let Some(state) = self.dpop.as_ref().filter(|_| dpop) else {
            return Ok((Prepared::Ready(request), None));
        };
        let jti = draw_jti(&mut *self.entropy);
        let nonce = state.token_nonces.peek(&request.url);
        let params = ProofParams::new(&request.method, &request.url, now, &jti)
            .with_nonce(nonce)
            .with_clock_skew(self.config.dpop_clock_skew);
        let carried = nonce.map(Box::from);
        match state.builder.build(&params)? {
            ProofOutcome::Ready(proof) => {
                Ok((Prepared::Ready(with_proof(request, proof)), carried))
            }
            ProofOutcome::Deferred(unsigned) => {
                Ok((Prepared::Deferred(unsigned, request), carried))
            }
        }
    }

    /// Finishes a deferred proof with the host's signature and returns the
    /// request to send.
    ///
    /// # Errors
    /// [`Error::UnknownRequest`] when no request `id` waits for a signature;
    /// [`Error::Dpop`] ([`DpopError::SignatureMismatch`]) when the signature
    /// does not verify against the key (the request is then dropped, and
    /// nothing stored changed).
    pub fn handle_signature(
        &mut self,
        id: RequestId,
        signature: &EcdsaSignature,
        now: UnixTime,
    ) -> Result<OutgoingRequest, Error> {
        let _ = now;
        let jwk = self
            .dpop
            .as_ref()
            .map(|d| d.builder.public_jwk().clone())
            .ok_or(Error::UnknownRequest)?;
        let (unsigned, base) = self
            .state
            .flights
            .take_pending_proof(id)
            .ok_or(Error::UnknownRequest)?;
        match unsigned.finish_verified(signature, &jwk) {
            Ok(proof) => Ok(OutgoingRequest {
                id,
                request: with_proof(base, proof),
            }),
            Err(_) => {
                let _ = self.cancel(id);
                Err(Error::Dpop(DpopError::SignatureMismatch))
            }
        }
    }

    /// Learns the token endpoint's nonce from any response, and tells
    /// whether it is a `use_dpop_nonce` error worth the one retry (a new
    /// nonce arrived).
    ///
    /// `carried` is the nonce the answered request's proof carried: the
    /// retry is worth it when the server offers another one, whatever the
    /// cache learned from other answers meanwhile.
    fn token_nonce_retry(
        &mut self,
        url: &str,
        carried: Option<&str>,
        answer: &ParsedResponse<'_>,
    ) -> bool {
        let Some(dpop) = &mut self.dpop else {
            return false;
        };
        dpop.token_nonces.learn(url, answer.headers());
        crate::dpop::offered_nonce(answer.headers())
            .is_some_and(|offered| Some(offered) != carried)
            // RFC 9449 §8: a JSON body with the `use_dpop_nonce` error.
            && answer.is_error("use_dpop_nonce")
    }
}

impl TokenManager {
    /// Learns the token endpoint's nonce from `answer` to `flight`, and
    /// decides whether the answer earns the one `use_dpop_nonce` retry
    /// (RFC 9449 §8): only when the server offered another nonce than the
    /// request carried. Never for a flight abandoned at its lease deadline
    /// or answered at it (its refresh token may be on the wire again), nor
    /// for a refresh whose token is no longer the session's live one
    /// (another answer rotated it, or the session logged out).
    pub(super) fn nonce_retry_due(
        &mut self,
        flight: &Flight,
        answer: &ParsedResponse<'_>,
        abandoned: bool,
        now: UnixTime,
    ) -> bool {
        let live = flight.refresh_token().is_none_or(|spent| {
            self.state.session.as_ref().is_some_and(|s| {
                s.token_set.refresh_token.as_ref() == Some(spent) && !s.is_logged_out()
            })
        });
        flight.request.as_ref().is_some_and(|base| {
            self.token_nonce_retry(&base.url, flight.sent_nonce.as_deref(), answer)
        }) && flight.dpop
            && flight.attempt == 0
            && !abandoned
            && now < flight.deadline
            && live
    }

    /// Sends `flight` again with a fresh proof carrying the new nonce.
    pub(super) fn retry_with_nonce(&mut self, mut flight: Flight, now: UnixTime) -> Completion<'_> {
        let id = flight.id;
        let Some(base) = flight.request.clone() else {
            // Unreachable: a retry is only due for a kept request.
            self.state.flights.restart(flight);
            let _ = self.cancel(id);
            return Completion::Failed(Error::UnknownRequest);
        };
        decision!(debug, event = "nonce_retry", request_id = id.as_u64());
        flight.attempt = 1;
        // The retry is a new request on the wire: its lease starts now, and
        // with a shared store the claim is renewed with it (saved before the
        // retry leaves: `Keeper::confirm_resend`).
        flight.deadline = now.saturating_add(self.config.lease);
        if flight.refresh_token().is_some() && self.config.shared_store {
            self.claim_refresh(flight.deadline);
        }
        let prepared = self.prepare_token_request(*base, flight.assertion.as_deref(), true, now);
        match prepared {
            Ok((Prepared::Ready(request), sent_nonce)) => {
                flight.sent_nonce = sent_nonce;
                self.state.flights.restart(flight);
                Completion::Resend(OutgoingRequest { id, request })
            }
            Ok((Prepared::Deferred(unsigned, with_assertion), sent_nonce)) => {
                flight.sent_nonce = sent_nonce;
                let signing_input = String::from(unsigned.signing_input());
                flight.pending_proof = Some(Box::new((unsigned, with_assertion)));
                self.state.flights.restart(flight);
                Completion::Sign(SignatureRequest { id, signing_input })
            }
            Err(error) => {
                self.state.flights.restart(flight);
                let _ = self.cancel(id);
                Completion::Failed(error)
            }
        }
    }
}

/// `request` with a `DPoP` header carrying `proof`.
pub(super) fn with_proof(mut request: HttpRequest, proof: DpopProof) -> HttpRequest {
    request.headers.set("DPoP", proof.into_string());
    request
}
