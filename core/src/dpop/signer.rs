//! The signer interface: signing is an effect, like HTTP.
//!
//! A [`Signer`] either answers at once ([`SignOutcome::Signature`]) or says
//! it will answer later ([`SignOutcome::Deferred`]): a non-extractable
//! WebCrypto key in a browser, a KMS or an HSM. For the latter, the proof
//! builder hands back an [`UnsignedProof`](super::UnsignedProof) whose
//! signing input the host signs itself; the signature comes back through
//! [`UnsignedProof::finish`](super::UnsignedProof::finish). No key
//! material ever has to be in Rust.
//!
//! Built in: [`P256Signer`](super::P256Signer) (pure Rust, `no_std`,
//! deterministic RFC 6979 signatures) and, behind the `ring` feature,
//! `RingSigner` (faster, randomized).

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::sync::Arc;

use super::jwk::PublicJwk;
use super::signature::EcdsaSignature;

/// The JWS `alg` of every signer in this crate: ECDSA P-256 with SHA-256.
pub const ES256: &str = "ES256";

/// Signs DPoP proofs (and other JWS) with an ES256 key.
pub trait Signer {
    /// The JWS `alg` header value. Proofs are only built for
    /// [`ES256`] signers, matching the P-256 [`PublicJwk`].
    fn algorithm(&self) -> &'static str;

    /// The public key, put into each proof's `jwk` header.
    fn public_jwk(&self) -> &PublicJwk;

    /// Signs `signing_input` (`BASE64URL(header) || '.' ||
    /// BASE64URL(claims)`, the bytes to be signed, not a digest), or
    /// answers [`SignOutcome::Deferred`] when the signature will be
    /// produced outside this call.
    ///
    /// # Errors
    /// [`SignError`] when signing failed.
    fn sign(&self, signing_input: &[u8]) -> Result<SignOutcome, SignError>;
}

/// What a [`Signer`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum SignOutcome {
    /// The signature, now.
    Signature(EcdsaSignature),
    /// The signer answers later: the host signs the signing input itself
    /// and hands the signature to the proof.
    Deferred,
}

pub use crate::error::SignError;

macro_rules! forward_signer {
    ($($ptr:ty),*) => {$(
        impl<T: Signer + ?Sized> Signer for $ptr {
            fn algorithm(&self) -> &'static str {
                (**self).algorithm()
            }
            fn public_jwk(&self) -> &PublicJwk {
                (**self).public_jwk()
            }
            fn sign(&self, signing_input: &[u8]) -> Result<SignOutcome, SignError> {
                (**self).sign(signing_input)
            }
        }
    )*};
}

forward_signer!(&T, Box<T>, Rc<T>, Arc<T>);
