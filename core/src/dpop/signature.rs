//! [`EcdsaSignature`]: an ES256 signature in the JWS form, the 64 bytes
//! `r || s` (RFC 7518 §3.4).
//!
//! WebCrypto's `sign({ name: "ECDSA", hash: "SHA-256" }, …)` returns this
//! form directly; KMS and HSM APIs usually return ASN.1 DER, which
//! [`EcdsaSignature::from_der`] converts.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::signer::SignError;

/// Bytes of an ES256 signature: `r` and `s`, 32 big-endian bytes each.
pub const ES256_SIGNATURE_LEN: usize = 64;

/// An ES256 signature, `r || s` (64 bytes).
///
/// Only its length and encoding are checked when it is made; whether it
/// verifies is up to [`PublicJwk::verify`](super::PublicJwk::verify).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaSignature([u8; ES256_SIGNATURE_LEN]);

impl EcdsaSignature {
    /// A signature from its 64 bytes `r || s`.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; ES256_SIGNATURE_LEN]) -> Self {
        EcdsaSignature(bytes)
    }

    /// A signature from a slice that must be exactly 64 bytes `r || s` (the
    /// IEEE P1363 form WebCrypto produces).
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SignError> {
        <[u8; ES256_SIGNATURE_LEN]>::try_from(bytes)
            .map(EcdsaSignature)
            .map_err(|_| SignError::InvalidSignature)
    }

    /// A signature from its ASN.1 DER form (`SEQUENCE { r INTEGER, s
    /// INTEGER }`), as AWS KMS, Google Cloud KMS and PKCS#11 tokens return
    /// it.
    ///
    /// # Errors
    /// [`SignError::InvalidSignature`] when it is not a DER ECDSA P-256
    /// signature with non-zero `r` and `s`.
    pub fn from_der(der: &[u8]) -> Result<Self, SignError> {
        let signature =
            p256::ecdsa::Signature::from_der(der).map_err(|_| SignError::InvalidSignature)?;
        Self::from_slice(&signature.to_bytes())
    }

    /// The 64 bytes `r || s`.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; ES256_SIGNATURE_LEN] {
        &self.0
    }

    /// The signature as it appears in a compact JWS: unpadded base64url.
    #[must_use]
    pub fn to_base64url(&self) -> alloc::string::String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl From<p256::ecdsa::Signature> for EcdsaSignature {
    fn from(signature: p256::ecdsa::Signature) -> Self {
        let mut bytes = [0u8; ES256_SIGNATURE_LEN];
        bytes.copy_from_slice(&signature.to_bytes());
        EcdsaSignature(bytes)
    }
}

impl fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A signature is public (it travels in every proof).
        write!(f, "EcdsaSignature({})", self.to_base64url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_der() {
        assert_eq!(
            EcdsaSignature::from_slice(&[1u8; 63]),
            Err(SignError::InvalidSignature)
        );
        assert_eq!(
            EcdsaSignature::from_slice(&[1u8; 65]),
            Err(SignError::InvalidSignature)
        );
        let raw = EcdsaSignature::from_slice(&[1u8; 64]).unwrap();
        // SEQUENCE { INTEGER 0x0101…, INTEGER 0x0101… }
        let mut der = alloc::vec![0x30, 68, 0x02, 32];
        der.extend_from_slice(&[1u8; 32]);
        der.extend_from_slice(&[0x02, 32]);
        der.extend_from_slice(&[1u8; 32]);
        assert_eq!(EcdsaSignature::from_der(&der), Ok(raw));
        assert_eq!(
            EcdsaSignature::from_der(&[0x30, 0]),
            Err(SignError::InvalidSignature)
        );
        assert_eq!(
            EcdsaSignature::from_der(&[1u8; 64]),
            Err(SignError::InvalidSignature)
        );
    }
}
