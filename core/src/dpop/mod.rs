//! DPoP: OAuth 2.0 Demonstrating Proof of Possession (RFC 9449).
//!
//! A DPoP client proves, with every token request and every resource
//! request, that it holds a private key: it sends a fresh, signed *proof*
//! (a short JWT) in the `DPoP` header, and the tokens it receives are bound
//! to the key's thumbprint. This module holds the building blocks; the
//! token manager ties them together.
//!
//! | concept | item |
//! |---|---|
//! | the key pair, PKCS#8 / JWK import and export | [`DpopKey`] |
//! | the public JWK and its RFC 7638 thumbprint (`dpop_jkt`) | [`PublicJwk`] |
//! | signing as an effect: now, or later outside Rust | [`Signer`], [`SignOutcome`], [`EcdsaSignature`] |
//! | built-in signers | [`P256Signer`] (pure Rust), `RingSigner` (feature `ring`) |
//! | what can fail | [`DpopError`], [`SigningError`], [`KeyError`] |
//!
//! # Using it
//!
//! Give the manager a signer once
//! ([`TokenManager::enable_dpop`](crate::TokenManager::enable_dpop)); from
//! then on every token request and every
//! [`authorize`](crate::TokenManager::authorize)d resource request carries
//! a fresh proof, nonces are learnt per origin and retried once when a
//! server asks (`use_dpop_nonce`), and a DPoP-bound token is never sent as
//! Bearer. A signer that answers later (a WebCrypto non-extractable key, a
//! KMS, an HSM) returns [`SignOutcome::Deferred`]: the manager then asks
//! the host to sign (`Action::Sign`) and continues in
//! [`handle_signature`](crate::TokenManager::handle_signature).
//!
//! ```
//! use tokenkeeper::dpop::{DpopKey, P256Signer, Signer};
//! use tokenkeeper::{Config, SeededEntropy, TokenManager};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pem = "-----BEGIN PRIVATE KEY-----
//! MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSmQ9LAZsX7xpkQ+a
//! JYsHFUrmFP8fBiJlqu8JMlZzAUahRANCAATImjBJYW55ZM1DApQMiut5TYUv7P4+
//! fF4ytrGzOBd3t1g95yUKngw4N7yn8y1tx91O8HbRxkavv/MzmrY3QksQ
//! -----END PRIVATE KEY-----";
//! let key = DpopKey::from_pkcs8_pem(pem)?;
//! // The `dpop_jkt` authorization request parameter.
//! assert_eq!(key.thumbprint(), "Q3QhD6Boy72xBaSSDpR3EMpS_mcuixRTEU-qMYoPMq4");
//!
//! let signer = P256Signer::new(key);
//! assert_eq!(signer.algorithm(), "ES256");
//!
//! let config = Config::builder("https://as.example/token", "my-client").build()?;
//! let mut manager = TokenManager::new(config, SeededEntropy::new(7));
//! manager.enable_dpop(signer)?;
//! assert_eq!(
//!     manager.dpop_thumbprint(),
//!     Some("Q3QhD6Boy72xBaSSDpR3EMpS_mcuixRTEU-qMYoPMq4")
//! );
//! # Ok(())
//! # }
//! ```

mod challenge;
mod htu;
mod json;
mod jwk;
mod key;
mod nonce;
mod p256_signer;
mod proof;
#[cfg(feature = "ring")]
mod ring_signer;
mod signature;
mod signer;

pub use crate::error::{DpopError, SigningError};
pub use htu::HtuError;
pub use jwk::{MAX_JWK_JSON_BYTES, PublicJwk};
pub use key::{DpopKey, GENERATE_ATTEMPTS, KeyError, MAX_PKCS8_BYTES};
pub use p256_signer::P256Signer;
#[cfg(feature = "ring")]
#[cfg_attr(docsrs, doc(cfg(feature = "ring")))]
pub use ring_signer::RingSigner;
pub use signature::{ES256_SIGNATURE_LEN, EcdsaSignature};
pub use signer::{ES256, SignError, SignOutcome, Signer};

pub(crate) use internal::*;

/// What the manager uses and only tests and fuzz targets reach from outside
/// (through `crate::__private::dpop`): challenges, `htu`, nonces, proofs.
pub(crate) mod internal {
    pub use super::challenge::{
        Challenge, ChallengeError, MAX_CHALLENGE_PARAMS, MAX_CHALLENGES,
        MAX_WWW_AUTHENTICATE_BYTES, bearer_or_dpop_invalid_token, dpop_error, is_use_dpop_nonce,
        parse_challenge_fields, parse_challenges, parse_www_authenticate,
    };
    pub use super::htu::{htu, origin};
    pub use super::nonce::{
        DEFAULT_NONCE_CAPACITY, DPOP_NONCE_HEADER, MAX_NONCE_BYTES, NonceCache, is_valid_nonce,
        offered_nonce,
    };
    pub use super::proof::{
        DpopProof, JTI_BYTES, MAX_JTI_BYTES, MIN_JTI_BYTES, ProofBuilder, ProofError, ProofOutcome,
        ProofParams, UnsignedProof, build_proof, draw_jti,
    };
}
