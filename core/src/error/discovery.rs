//! Why discovery, its metadata or an endpoint configuration was refused.

use alloc::string::String;
use alloc::vec::Vec;

use super::ResponseError;

/// Why discovery, its metadata or an endpoint configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured issuer is not an absolute `http(s)` URL without query
    /// or fragment. Code `invalid_issuer`.
    #[error("invalid issuer: {0}")]
    InvalidIssuer(&'static str),
    /// The domain given to [`Endpoints::auth0`](crate::discovery::Endpoints::auth0) is not a host name (with an
    /// optional port and `https://` prefix). Code `invalid_domain`.
    #[error("invalid domain: it must be a host name such as tenant.example.com")]
    InvalidDomain,
    /// The response exceeds a limit (body size, headers, JSON depth). Code
    /// `metadata_limit_exceeded`.
    #[error("discovery response refused: {0}")]
    Limit(ResponseError),
    /// The discovery endpoint answered with a status other than 2xx. Code
    /// `discovery_http_error`.
    #[error("the discovery endpoint answered HTTP {status}")]
    HttpStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The body is not JSON. Code `metadata_not_json`.
    #[error("the discovery document is not JSON")]
    NotJson,
    /// The body is JSON but not an object. Code `metadata_not_object`.
    #[error("the discovery document is not a JSON object")]
    NotAnObject,
    /// The document has no `issuer`. Code `metadata_missing_issuer`.
    #[error("the discovery document has no issuer")]
    MissingIssuer,
    /// The document's `issuer` is not the configured issuer. Code
    /// `issuer_mismatch`.
    #[error("the discovery document's issuer {received:?} is not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        received: String,
    },
    /// The document has no `token_endpoint`. Code
    /// `metadata_missing_token_endpoint`.
    #[error("the discovery document has no token_endpoint")]
    MissingTokenEndpoint,
    /// An endpoint member is not an absolute `http(s)` URL. Code
    /// `metadata_invalid_endpoint`.
    #[error("the discovery document's {member} is not an absolute http(s) URL")]
    InvalidEndpoint {
        /// The member name, e.g. `token_endpoint`.
        member: &'static str,
    },
    /// An endpoint of an `https` issuer is plain `http` on a host that is
    /// not loopback (`127.0.0.0/8`, `[::1]`, `localhost`): refresh tokens,
    /// codes and client secrets would be sent in clear text. Code
    /// `metadata_insecure_endpoint`.
    #[error("the discovery document's {member} is not https (only loopback hosts may use http)")]
    InsecureEndpoint {
        /// The member name, e.g. `token_endpoint`.
        member: &'static str,
    },
    /// A known member has the wrong JSON type. Code `metadata_invalid_member`.
    #[error("the discovery document's {member} is not {expected}")]
    InvalidMember {
        /// The member name.
        member: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The configured client authentication method is not among the
    /// server's `token_endpoint_auth_methods_supported`. Code
    /// `unsupported_auth_method`.
    #[error(
        "the client authentication method {method:?} is not supported by the authorization \
         server (token_endpoint_auth_methods_supported: {supported:?})"
    )]
    UnsupportedAuthMethod {
        /// The configured method.
        method: String,
        /// What the server supports.
        supported: Vec<String>,
    },
}

impl DiscoveryError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DiscoveryError::InvalidIssuer(_) => "invalid_issuer",
            DiscoveryError::InvalidDomain => "invalid_domain",
            DiscoveryError::Limit(_) => "metadata_limit_exceeded",
            DiscoveryError::HttpStatus { .. } => "discovery_http_error",
            DiscoveryError::NotJson => "metadata_not_json",
            DiscoveryError::NotAnObject => "metadata_not_object",
            DiscoveryError::MissingIssuer => "metadata_missing_issuer",
            DiscoveryError::IssuerMismatch { .. } => "issuer_mismatch",
            DiscoveryError::MissingTokenEndpoint => "metadata_missing_token_endpoint",
            DiscoveryError::InvalidEndpoint { .. } => "metadata_invalid_endpoint",
            DiscoveryError::InsecureEndpoint { .. } => "metadata_insecure_endpoint",
            DiscoveryError::InvalidMember { .. } => "metadata_invalid_member",
            DiscoveryError::UnsupportedAuthMethod { .. } => "unsupported_auth_method",
        }
    }

    /// Whether the configuration (not the server's answer) is at fault.
    #[must_use]
    pub fn is_configuration_error(&self) -> bool {
        matches!(
            self,
            DiscoveryError::InvalidIssuer(_)
                | DiscoveryError::InvalidDomain
                | DiscoveryError::UnsupportedAuthMethod { .. }
        )
    }
}

impl From<DiscoveryError> for super::Error {
    /// Wrapped as [`Error::Discovery`](super::Error::Discovery),
    /// keeping the code.
    fn from(error: DiscoveryError) -> Self {
        super::Error::Discovery(error)
    }
}
