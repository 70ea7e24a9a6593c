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
//! | `htu` and origins | [`htu()`], [`origin`] |
//! | the proof | [`ProofBuilder`], [`ProofParams`], [`UnsignedProof`], [`build_proof`] |
//! | server nonces per origin | [`NonceCache`] |
//! | `WWW-Authenticate` | [`parse_www_authenticate`], [`is_use_dpop_nonce`] |
//!
//! # Building a proof
//!
//! 1. Once per key: make a signer and a [`ProofBuilder`]; it encodes the
//!    header `{"typ":"dpop+jwt","alg":"ES256","jwk":{…}}` once.
//! 2. Per request: draw `jti` bytes from the host's
//!    [`Entropy`](crate::entropy::Entropy) ([`draw_jti`]), take the
//!    origin's nonce from the [`NonceCache`], and fill [`ProofParams`]:
//!    method, URL (normalised into `htu`: no query or fragment, default
//!    port dropped, lower-case scheme and host, punycode), `now` plus
//!    clock skew (`iat`), nonce, and for resource requests the access
//!    token (`ath` = base64url(SHA-256(token))).
//! 3. The builder writes the claims `jti`, `htm`, `htu`, `iat`, `nonce`,
//!    `ath` in this order, base64url-encodes them after the header and
//!    asks the signer to sign `BASE64URL(header) "." BASE64URL(claims)`.
//!    An immediate signer gives [`ProofOutcome::Ready`]; a deferred one
//!    (WebCrypto non-extractable key, KMS, HSM) gives
//!    [`ProofOutcome::Deferred`] with the [`UnsignedProof`], whose signing
//!    input the host signs and hands back to [`UnsignedProof::finish`].
//! 4. After the response: [`NonceCache::learn`] its `DPoP-Nonce` (any
//!    status). A token endpoint's `use_dpop_nonce` error, or a resource
//!    server's `WWW-Authenticate: DPoP error="use_dpop_nonce"`
//!    ([`is_use_dpop_nonce`]), is worth one retry with a fresh proof only
//!    when `learn` reported a new nonce.
//!
//! ```
//! use tokenkeeper::dpop::{DpopKey, P256Signer};
//! use tokenkeeper::__private::dpop::{ProofBuilder, ProofOutcome, ProofParams};
//! use tokenkeeper::Method;
//! use tokenkeeper::UnixTime;
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
//! let builder = ProofBuilder::new(P256Signer::new(key))?;
//! let jti = [7u8; 32]; // from `draw_jti(&mut entropy)` in real use
//! let params = ProofParams::new(
//!     &Method::POST,
//!     "https://AS.example:443/token?ignored#too",
//!     UnixTime::from_secs(1_700_000_000),
//!     &jti,
//! )
//! .with_nonce(Some("eyJ7S_zG.9-0"));
//!
//! let ProofOutcome::Ready(proof) = builder.build(&params)? else {
//!     unreachable!("P256Signer signs at once");
//! };
//! let parts: Vec<&str> = proof.as_str().split('.').collect();
//! assert_eq!(parts.len(), 3);
//! assert_eq!(parts[0], builder.encoded_header());
//! assert_eq!(parts[2].len(), 86); // 64-byte r || s
//!
//! use base64::Engine as _;
//! let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
//!     .decode(parts[1])
//!     .expect("base64url claims");
//! assert_eq!(
//!     std::str::from_utf8(&claims)?,
//!     r#"{"jti":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc","htm":"POST","htu":"https://as.example/token","iat":1700000000,"nonce":"eyJ7S_zG.9-0"}"#
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
    };
    pub use super::proof::{
        DpopProof, JTI_BYTES, MAX_JTI_BYTES, MIN_JTI_BYTES, ProofBuilder, ProofError, ProofOutcome,
        ProofParams, UnsignedProof, build_proof, draw_jti,
    };
}
