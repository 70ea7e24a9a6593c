//! [`RingSigner`]: a fast native ES256 signer on `ring` (feature `ring`,
//! which implies `std`).
//!
//! Unlike [`P256Signer`](super::P256Signer), ring's ECDSA is
//! **randomized**: each signature draws its nonce from ring's own
//! `SystemRandom` (the operating system's generator). That is the one
//! place where randomness is drawn without going through
//! [`Entropy`](crate::entropy::Entropy), and the reason proofs made with
//! this signer differ from call to call (they verify all the same).
//! ring also keeps its own copy of the private key, which it does not
//! wipe on drop.

use core::fmt;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

use super::jwk::PublicJwk;
use super::key::{DpopKey, KeyError, MAX_PKCS8_BYTES};
use super::signature::EcdsaSignature;
use super::signer::{ES256, SignError, SignOutcome, Signer};

/// An ES256 signer on ring's `EcdsaKeyPair`; it always answers at once.
pub struct RingSigner {
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
    public: PublicJwk,
}

impl RingSigner {
    /// A signer from a PKCS#8 DER P-256 private key that includes its
    /// public key (as [`DpopKey::to_pkcs8_der`] writes it).
    ///
    /// # Errors
    /// [`KeyError::Pkcs8`] when ring rejects the key, [`KeyError::TooLarge`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if der.len() > MAX_PKCS8_BYTES {
            return Err(KeyError::TooLarge {
                limit: MAX_PKCS8_BYTES,
            });
        }
        let rng = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| KeyError::Pkcs8)?;
        // The public key is the uncompressed SEC1 point 0x04 || x || y.
        let point = key_pair.public_key().as_ref();
        let (Some(x), Some(y)) = (
            point.get(1..33).and_then(|x| <&[u8; 32]>::try_from(x).ok()),
            point
                .get(33..65)
                .and_then(|y| <&[u8; 32]>::try_from(y).ok()),
        ) else {
            return Err(KeyError::InvalidPublicKey);
        };
        let public = PublicJwk::from_coordinates(x, y)?;
        Ok(RingSigner {
            key_pair,
            rng,
            public,
        })
    }

    /// A signer for the same key as `key`.
    ///
    /// # Errors
    /// [`KeyError`] when the key cannot be exported or ring rejects it
    /// (not expected).
    pub fn from_key(key: &DpopKey) -> Result<Self, KeyError> {
        Self::from_pkcs8_der(&key.to_pkcs8_der()?)
    }

    /// Signs `message` (randomized ECDSA over SHA-256).
    ///
    /// # Errors
    /// [`SignError::Failed`] when ring's random source fails.
    pub fn sign_now(&self, message: &[u8]) -> Result<EcdsaSignature, SignError> {
        let signature = self
            .key_pair
            .sign(&self.rng, message)
            .map_err(|_| SignError::Failed("ring ECDSA signing failed"))?;
        EcdsaSignature::from_slice(signature.as_ref())
    }
}

impl Signer for RingSigner {
    fn algorithm(&self) -> &'static str {
        ES256
    }

    fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    fn sign(&self, signing_input: &[u8]) -> Result<SignOutcome, SignError> {
        self.sign_now(signing_input).map(SignOutcome::Signature)
    }
}

impl fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingSigner")
            .field("alg", &ES256)
            .field("jkt", &self.public.thumbprint())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn signatures_verify_with_p256() {
        let key = DpopKey::generate(&mut SeededEntropy::new(5)).unwrap();
        let signer = RingSigner::from_key(&key).unwrap();
        assert_eq!(signer.public_jwk(), key.public_jwk());
        assert_eq!(signer.algorithm(), "ES256");
        let message = b"eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0";
        let a = signer.sign_now(message).unwrap();
        let b = signer.sign_now(message).unwrap();
        assert_ne!(a, b, "ring's ECDSA is randomized");
        for signature in [a, b] {
            let p256_signature = p256::ecdsa::Signature::from_slice(signature.as_bytes()).unwrap();
            key.public_jwk()
                .verifying_key()
                .verify(message, &p256_signature)
                .unwrap();
        }
        assert!(RingSigner::from_pkcs8_der(b"junk").is_err());
        let printed = alloc::format!("{signer:?}");
        assert!(printed.contains("<redacted>") && printed.contains(key.thumbprint()));
    }
}
