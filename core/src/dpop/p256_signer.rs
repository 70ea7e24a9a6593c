//! [`P256Signer`]: the built-in ES256 signer on the pure-Rust `p256`
//! crate. Works in `no_std` and WASM.
//!
//! Signatures are deterministic (RFC 6979): the same key and input always
//! give the same signature, so proofs can be tested byte for byte, and no
//! randomness is drawn.

use core::fmt;

use p256::ecdsa::signature::Signer as _;

use super::jwk::PublicJwk;
use super::key::DpopKey;
use super::signature::EcdsaSignature;
use super::signer::{ES256, SignError, SignOutcome, Signer};

/// An ES256 signer holding a [`DpopKey`]; it always answers at once.
#[derive(Clone, PartialEq, Eq)]
pub struct P256Signer {
    key: DpopKey,
}

impl P256Signer {
    /// A signer for `key`.
    #[must_use]
    pub fn new(key: DpopKey) -> Self {
        P256Signer { key }
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &DpopKey {
        &self.key
    }

    /// Signs `message` (deterministic RFC 6979 ECDSA over SHA-256).
    ///
    /// # Errors
    /// [`SignError::Failed`] in the negligible case (probability about
    /// 2⁻²⁵⁶) that the RFC 6979 nonce gives `r = 0` or `s = 0`.
    pub fn sign_now(&self, message: &[u8]) -> Result<EcdsaSignature, SignError> {
        let signature: p256::ecdsa::Signature = self
            .key
            .signing_key()
            .try_sign(message)
            .map_err(|_| SignError::Failed("ECDSA signing failed"))?;
        Ok(EcdsaSignature::from(signature))
    }
}

impl From<DpopKey> for P256Signer {
    fn from(key: DpopKey) -> Self {
        P256Signer::new(key)
    }
}

impl Signer for P256Signer {
    fn algorithm(&self) -> &'static str {
        ES256
    }

    fn public_jwk(&self) -> &PublicJwk {
        self.key.public_jwk()
    }

    fn sign(&self, signing_input: &[u8]) -> Result<SignOutcome, SignError> {
        self.sign_now(signing_input).map(SignOutcome::Signature)
    }
}

impl fmt::Debug for P256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("P256Signer").field(&self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    #[test]
    fn deterministic_and_verifying() {
        let signer = P256Signer::new(DpopKey::generate(&mut SeededEntropy::new(3)).unwrap());
        let a = signer.sign(b"hello").unwrap();
        let b = signer.sign(b"hello").unwrap();
        assert_eq!(a, b);
        let SignOutcome::Signature(signature) = a else {
            panic!("P256Signer answers at once");
        };
        signer.public_jwk().verify(b"hello", &signature).unwrap();
        assert_eq!(
            signer.public_jwk().verify(b"hellO", &signature),
            Err(SignError::InvalidSignature)
        );
        assert_eq!(signer.algorithm(), "ES256");
        assert!(!alloc::format!("{signer:?}").contains("d\":"));
    }
}
