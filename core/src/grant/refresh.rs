//! The `refresh_token` grant (RFC 6749 §6).

use crate::form::FormBody;
use crate::grant::{ClientAuth, form_post};
use crate::http::HttpRequest;
use crate::secret::RefreshToken;

/// Which parameter names the target API of a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TargetParameter {
    /// `audience` (Auth0 style). The default, as the SDK.
    #[default]
    Audience,
    /// `resource` (RFC 8707 resource indicators).
    Resource,
    /// Both `audience` and `resource`, with the same value.
    Both,
}

impl TargetParameter {
    /// Adds `target` under the configured name(s), byte for byte as given.
    pub fn apply(self, form: &mut FormBody, target: &str) {
        if matches!(self, TargetParameter::Audience | TargetParameter::Both) {
            form.append("audience", target);
        }
        if matches!(self, TargetParameter::Resource | TargetParameter::Both) {
            form.append("resource", target);
        }
    }
}

/// The inputs of one refresh request.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    /// The token endpoint URL.
    pub token_endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// How the client authenticates.
    pub client_auth: &'a ClientAuth,
    /// The refresh token to spend.
    pub refresh_token: &'a RefreshToken,
    /// `scope`, sent only when the caller asked for a scope.
    pub scope: Option<&'a str>,
    /// The audience / resource, sent only when the caller named one.
    pub target: Option<&'a str>,
    /// How the target is named on the wire.
    pub target_parameter: TargetParameter,
}

impl RefreshRequest<'_> {
    /// The HTTP request: `POST`, form body, client authentication,
    /// `Accept: application/json`.
    #[must_use]
    pub fn build(&self) -> HttpRequest {
        let mut form = FormBody::new();
        let mut headers = super::request_headers();
        form.append("grant_type", "refresh_token");
        form.append("refresh_token", self.refresh_token.secret());
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

    #[test]
    fn builds_the_wire_request() {
        let rt = RefreshToken::new("rt/1+x");
        let auth = ClientAuth::SecretBasic(ClientSecret::new("secret"));
        let request = RefreshRequest {
            token_endpoint: "https://as.example/oauth/token",
            client_id: "client",
            client_auth: &auth,
            refresh_token: &rt,
            scope: Some("openid read:data"),
            target: Some("https://api1.example.com"),
            target_parameter: TargetParameter::Both,
        }
        .build();
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url, "https://as.example/oauth/token");
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt%2F1%2Bx&scope=openid+read%3Adata\
             &audience=https%3A%2F%2Fapi1.example.com&resource=https%3A%2F%2Fapi1.example.com"
        );
        assert_eq!(request.headers.get("accept"), Some("application/json"));
        assert_eq!(
            request.headers.get("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            request.headers.get("authorization"),
            Some("Basic Y2xpZW50OnNlY3JldA==")
        );
    }

    #[test]
    fn omits_scope_and_target_when_not_asked() {
        let rt = RefreshToken::new("rt");
        let auth = ClientAuth::SecretPost(ClientSecret::new("s"));
        let request = RefreshRequest {
            token_endpoint: "https://as.example/token",
            client_id: "c",
            client_auth: &auth,
            refresh_token: &rt,
            scope: None,
            target: None,
            target_parameter: TargetParameter::Audience,
        }
        .build();
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt&client_id=c&client_secret=s"
        );
        assert_eq!(request.headers.get("authorization"), None);
    }

    #[test]
    fn trailing_slash_is_kept_byte_for_byte() {
        let mut form = FormBody::new();
        TargetParameter::Resource.apply(&mut form, "https://api1.example.com");
        TargetParameter::Resource.apply(&mut form, "https://api1.example.com/");
        assert_eq!(
            form.finish(),
            "resource=https%3A%2F%2Fapi1.example.com&resource=https%3A%2F%2Fapi1.example.com%2F"
        );
    }
}
