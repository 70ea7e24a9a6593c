//! OpenID Connect discovery through a [`Transport`].

use tokenkeeper::discovery::{AuthorizationServerMetadata, DiscoveryKind, discovery_request};

use crate::{Error, Transport};

/// Fetches and validates `issuer`'s OpenID Connect discovery document
/// (`/.well-known/openid-configuration`).
///
/// # Errors
/// A transport error, or [`Error::Core`] with
/// [`tokenkeeper::Error::Discovery`] (an issuer mismatch, a bad document, …).
pub async fn discover<T: Transport>(
    transport: &T,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, Error<T::Error>> {
    let discovery = |e| Error::Core(tokenkeeper::Error::Discovery(e));
    let limits = tokenkeeper::Limits::default();
    let request = discovery_request(issuer, DiscoveryKind::OpenIdConnect).map_err(discovery)?;
    let response = transport.send(request, limits.max_body_bytes, None).await?;
    AuthorizationServerMetadata::parse(&response, issuer, &limits).map_err(discovery)
}
