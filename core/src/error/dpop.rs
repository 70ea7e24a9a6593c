//! What can fail in DPoP (RFC 9449) and in signing client assertions
//! (RFC 7523): typed, so a host can tell a signer that refused from a key
//! that does not match or a token it cannot present.

use alloc::string::String;

/// Why a URL cannot be used as a DPoP `htu` or origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtuError {
    /// Not an absolute URL the WHATWG parser accepts.
    #[error("not a valid absolute URL")]
    Invalid,
    /// A scheme other than `http` or `https`.
    #[error("DPoP needs an http or https URL")]
    UnsupportedScheme,
}

/// Why a signature could not be made or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signing backend failed; the reason is a static description.
    #[error("signing failed: {0}")]
    Failed(&'static str),
    /// A signature is malformed (wrong length, bad DER) or does not verify.
    #[error("invalid ES256 signature")]
    InvalidSignature,
}

/// Why a DPoP operation failed: a proof could not be made or finished, or
/// a token cannot be presented. [`Error::code`](super::Error::code) is
/// `dpop_error` for all of them; [`DpopError::code`] names the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The token is DPoP-bound and DPoP is not enabled on this manager.
    /// Code `dpop_not_enabled`.
    #[error("the token is DPoP-bound and DPoP is not enabled")]
    NotEnabled,
    /// The token's type is neither `Bearer` nor `DPoP`: this crate cannot
    /// present it. Code `unsupported_token_type`.
    #[error("cannot present a token of type {0}")]
    UnsupportedTokenType(String),
    /// The signer's algorithm is not ES256, the only one proofs are made
    /// with. Code `unsupported_algorithm`.
    #[error("the DPoP signer's algorithm is not ES256")]
    UnsupportedAlgorithm,
    /// The request URL cannot be a proof's `htu`. Code `invalid_htu`.
    #[error("the request URL cannot be used as the proof's htu")]
    InvalidUrl(#[source] HtuError),
    /// The `jti` drawn is not 16 to 64 bytes (the host's entropy
    /// misbehaves). Code `invalid_jti`.
    #[error("the proof's jti is {len} bytes long")]
    JtiLength {
        /// The length drawn.
        len: usize,
    },
    /// The server's nonce is not RFC 9449 `1*NQCHAR`. Code `invalid_nonce`.
    #[error("the DPoP nonce is not valid")]
    InvalidNonce,
    /// The signer refused or failed. Code `signer_failed`.
    #[error("the DPoP signer failed")]
    Signer(#[source] SignError),
    /// A deferred signer's signature does not verify against the DPoP key
    /// (signed with another key, or malformed). Code `signature_mismatch`.
    #[error("the deferred signature does not verify against the DPoP key")]
    SignatureMismatch,
}

impl DpopError {
    /// A stable, machine-readable code for the cause.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DpopError::NotEnabled => "dpop_not_enabled",
            DpopError::UnsupportedTokenType(_) => "unsupported_token_type",
            DpopError::UnsupportedAlgorithm => "unsupported_algorithm",
            DpopError::InvalidUrl(_) => "invalid_htu",
            DpopError::JtiLength { .. } => "invalid_jti",
            DpopError::InvalidNonce => "invalid_nonce",
            DpopError::Signer(_) => "signer_failed",
            DpopError::SignatureMismatch => "signature_mismatch",
        }
    }
}

/// Why a `private_key_jwt` client assertion could not be signed.
/// [`Error::code`](super::Error::code) is `signing_failed` for all of
/// them; [`SigningError::code`] names the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The signer's algorithm is not ES256, the one client assertions are
    /// signed with. Code `unsupported_algorithm`.
    #[error("client assertions are signed with ES256")]
    UnsupportedAlgorithm,
    /// The signer answered that it signs later; a client assertion is
    /// needed as the request is built. Code `signer_deferred`.
    #[error("private_key_jwt needs a signer that answers at once")]
    Deferred,
    /// The signer refused or failed. Code `signer_failed`.
    #[error("the client assertion signer failed")]
    Signer(#[source] SignError),
}

impl SigningError {
    /// A stable, machine-readable code for the cause.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            SigningError::UnsupportedAlgorithm => "unsupported_algorithm",
            SigningError::Deferred => "signer_deferred",
            SigningError::Signer(_) => "signer_failed",
        }
    }
}
