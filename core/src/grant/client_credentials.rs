//! The `client_credentials` grant (RFC 6749 §4.4): a token for the client
//! itself (machine to machine), no user and no refresh token.
//!
//! # Call order
//!
//! ```text
//! ClientCredentialsRequest { .. }.build() ─► HttpRequest
//! …send it…
//! TokenResponse::parse(&response, &limits) ─► TokenResponse
//! ```
//!
//! A public client cannot use this grant: [`ClientCredentialsRequest::build`]
//! still builds the request (the server refuses it with
//! `unauthorized_client`), so the check belongs to the configuration.

use crate::form::FormBody;
use crate::grant::refresh::TargetParameter;
use crate::grant::{ClientAuth, form_post};
use crate::http::HttpRequest;

/// The inputs of one client credentials request.
#[derive(Debug, Clone, Copy)]
pub struct ClientCredentialsRequest<'a> {
    /// The token endpoint URL.
    pub token_endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// How the client authenticates.
    pub client_auth: &'a ClientAuth,
    /// `scope`, when asked for.
    pub scope: Option<&'a str>,
    /// The API the token is for, byte for byte as given.
    pub target: Option<&'a str>,
    /// How the target is named on the wire (`audience` for Auth0,
    /// `resource` for RFC 8707 servers, or both).
    pub target_parameter: TargetParameter,
}

impl<'a> ClientCredentialsRequest<'a> {
    /// A request with no scope and no target.
    #[must_use]
    pub fn new(token_endpoint: &'a str, client_id: &'a str, client_auth: &'a ClientAuth) -> Self {
        ClientCredentialsRequest {
            token_endpoint,
            client_id,
            client_auth,
            scope: None,
            target: None,
            target_parameter: TargetParameter::Audience,
        }
    }

    /// With `scope`.
    #[must_use]
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// For `target`, named as `parameter` says.
    #[must_use]
    pub fn target(mut self, target: &'a str, parameter: TargetParameter) -> Self {
        self.target = Some(target);
        self.target_parameter = parameter;
        self
    }

    /// The HTTP request: `POST` of `grant_type=client_credentials`, `scope`,
    /// the target, then the client authentication.
    #[must_use]
    pub fn build(&self) -> HttpRequest {
        let mut form = FormBody::new();
        let mut headers = super::request_headers();
        form.append("grant_type", "client_credentials");
        if let Some(scope) = self.scope {
            form.append("scope", scope);
        }
        if let Some(target) = self.target {
            self.target_parameter.apply(&mut form, target);
        }
        self.client_auth
            .apply(self.client_id, &mut form, &mut headers);
        form_post(self.token_endpoint, form, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ClientSecret;

    fn body(request: &HttpRequest) -> &str {
        core::str::from_utf8(&request.body).unwrap()
    }

    #[test]
    fn audience_and_scope_with_basic_auth() {
        let auth = ClientAuth::SecretBasic(ClientSecret::new("secret"));
        let request =
            ClientCredentialsRequest::new("https://as.example/oauth/token", "client", &auth)
                .scope("read:data write:data")
                .target("https://api.example.com", TargetParameter::Audience)
                .build();
        assert_eq!(request.url, "https://as.example/oauth/token");
        assert_eq!(
            body(&request),
            "grant_type=client_credentials&scope=read%3Adata+write%3Adata\
             &audience=https%3A%2F%2Fapi.example.com"
        );
        assert_eq!(
            request.headers.get("authorization"),
            Some("Basic Y2xpZW50OnNlY3JldA==")
        );
    }

    #[test]
    fn resource_kept_byte_for_byte_with_post_auth() {
        let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
        let request = ClientCredentialsRequest::new("https://as.example/token", "c", &auth)
            .target("https://api.example.com/", TargetParameter::Resource)
            .build();
        assert_eq!(
            body(&request),
            "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example.com%2F\
             &client_id=c&client_secret=s"
        );
        let bare = ClientCredentialsRequest::new("https://as.example/token", "c", &auth).build();
        assert_eq!(
            body(&bare),
            "grant_type=client_credentials&client_id=c&client_secret=s"
        );
        assert!(!alloc::format!("{auth:?}").contains("\"s\""));
    }
}
