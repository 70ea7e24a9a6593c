//! Why an ID token was refused (OIDC Core §3.1.3.7, §12.2).

use alloc::string::String;

use crate::time::UnixTime;

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a compact JWT, or a required claim is missing or of the wrong
    /// type. Code `id_token_malformed`.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// `sub` is missing or empty. Code `missing_sub`.
    #[error("the ID token has no sub claim")]
    MissingSub,
    /// A login asked for the `openid` scope and the token response carried
    /// no `id_token` (OIDC Core 3.1.3.3 requires one). Code
    /// `missing_id_token`.
    #[error("the token response of an openid login carried no ID token")]
    Missing,
    /// `iss` is not the expected issuer. Code `issuer_mismatch`.
    #[error("the ID token's issuer {received:?} is not the expected {expected:?}")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The `iss` received.
        received: String,
    },
    /// `aud` does not contain the client id. Code `audience_mismatch`.
    #[error("the ID token's audience does not contain the client id")]
    AudienceMismatch,
    /// `azp` is missing with several audiences, or is not the client id.
    /// Code `azp_mismatch`.
    #[error("the ID token's authorized party (azp) is missing or not the client id")]
    AzpMismatch,
    /// `exp` has passed (beyond the tolerance). Code `id_token_expired`.
    #[error("the ID token expired at {exp}")]
    Expired {
        /// The `exp` claim.
        exp: UnixTime,
    },
    /// `iat` is in the future (beyond the tolerance). Code `iat_in_future`.
    #[error("the ID token was issued in the future ({iat})")]
    IatInFuture {
        /// The `iat` claim.
        iat: UnixTime,
    },
    /// `nbf` is in the future (beyond the tolerance). Code
    /// `id_token_not_yet_valid`.
    #[error("the ID token is not valid before {nbf}")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: UnixTime,
    },
    /// `nonce` is missing or not the login transaction's. Code
    /// `nonce_mismatch`.
    #[error("the ID token's nonce does not match the login transaction")]
    NonceMismatch,
    /// A refreshed ID token names another user than before (OIDC Core
    /// §12.2). Code `subject_mismatch`.
    #[error("the refreshed ID token belongs to another subject")]
    SubjectMismatch,
    /// The JWS `alg` is neither `RS256` nor `ES256` (signature checking
    /// only). Code `unsupported_algorithm`.
    #[error("the ID token's algorithm {0:?} is not supported (RS256 and ES256 only)")]
    UnsupportedAlgorithm(String),
    /// The JWS `alg` is `none` (signature checking only). Code
    /// `alg_none_refused`.
    #[error("the ID token is unsigned (alg none)")]
    AlgNone,
    /// The JWS `alg` is an HMAC algorithm (signature checking only). Code
    /// `hmac_alg_refused`.
    #[error("the ID token's algorithm {0:?} is an HMAC algorithm, refused")]
    HmacAlgorithm(String),
    /// No single key of the JWKS matches the token's header. Code
    /// `jwk_not_found`.
    #[error("no single key of the JWKS matches the ID token")]
    KeyNotFound,
    /// The key named by the token's `kid` is not a key for its `alg`. Code
    /// `jwk_alg_mismatch`.
    #[error("the key with the ID token's kid is not a key for its algorithm")]
    KeyAlgorithmMismatch,
    /// The key named by the token's `kid` was refused when the JWKS was
    /// parsed. Code `jwk_unusable`.
    #[error("the key with the ID token's kid is unusable: {0}")]
    KeyUnusable(&'static str),
    /// The signature does not verify. Code `invalid_signature`.
    #[error("the ID token's signature is invalid")]
    InvalidSignature,
    /// The JWKS document is unusable. Code `invalid_jwks`.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(&'static str),
    /// The token endpoint answered, but the issuer's JWKS could not be
    /// fetched to check the ID token (the fetch failed in transport or was
    /// given up). The answer is refused as for a bad signature; a rotated
    /// refresh token in it is kept. Code `jwks_unavailable`.
    #[error("the issuer's JWKS could not be fetched to check the ID token")]
    KeysUnavailable,
}

impl IdTokenError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            IdTokenError::Malformed(_) => "id_token_malformed",
            IdTokenError::MissingSub => "missing_sub",
            IdTokenError::Missing => "missing_id_token",
            IdTokenError::IssuerMismatch { .. } => "issuer_mismatch",
            IdTokenError::AudienceMismatch => "audience_mismatch",
            IdTokenError::AzpMismatch => "azp_mismatch",
            IdTokenError::Expired { .. } => "id_token_expired",
            IdTokenError::IatInFuture { .. } => "iat_in_future",
            IdTokenError::NotYetValid { .. } => "id_token_not_yet_valid",
            IdTokenError::NonceMismatch => "nonce_mismatch",
            IdTokenError::SubjectMismatch => "subject_mismatch",
            IdTokenError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            IdTokenError::AlgNone => "alg_none_refused",
            IdTokenError::HmacAlgorithm(_) => "hmac_alg_refused",
            IdTokenError::KeyNotFound => "jwk_not_found",
            IdTokenError::KeyAlgorithmMismatch => "jwk_alg_mismatch",
            IdTokenError::KeyUnusable(_) => "jwk_unusable",
            IdTokenError::InvalidSignature => "invalid_signature",
            IdTokenError::InvalidJwks(_) => "invalid_jwks",
            IdTokenError::KeysUnavailable => "jwks_unavailable",
        }
    }
}

impl From<IdTokenError> for super::Error {
    /// [`IdTokenError::SubjectMismatch`] becomes
    /// [`Error::SubjectMismatch`](super::Error::SubjectMismatch); the
    /// others are wrapped as [`Error::IdToken`](super::Error::IdToken),
    /// keeping their codes.
    fn from(error: IdTokenError) -> Self {
        match error {
            IdTokenError::SubjectMismatch => super::Error::SubjectMismatch,
            other => super::Error::IdToken(other),
        }
    }
}
