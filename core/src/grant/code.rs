//! The `authorization_code` grant (RFC 6749 §4.1.3) with the PKCE
//! `code_verifier` (RFC 7636 §4.5).
//!
//! # Call order
//!
//! ```text
//! LoginTransaction::validate_callback(..) ─► AuthorizationCode
//! LoginTransaction::code_exchange(&code, token_endpoint, client_id, &auth)
//!     [.target(..)] .build() ─► HttpRequest
//! …send it…
//! TokenResponse::parse(&response, &limits) ─► TokenResponse
//! IdTokenValidator::validate_login(id_token, nonce, now)
//! ```

use crate::form::FormBody;
use crate::grant::refresh::TargetParameter;
use crate::grant::{ClientAuth, form_post};
use crate::http::HttpRequest;
use crate::login::{AuthorizationCode, CodeVerifier};

/// The inputs of one code exchange. `Debug` redacts the code and verifier.
#[derive(Debug, Clone, Copy)]
pub struct CodeExchangeRequest<'a> {
    /// The token endpoint URL.
    pub token_endpoint: &'a str,
    /// The client id.
    pub client_id: &'a str,
    /// How the client authenticates.
    pub client_auth: &'a ClientAuth,
    /// The code from the callback.
    pub code: &'a AuthorizationCode,
    /// The `redirect_uri` of the authorization request, byte for byte.
    pub redirect_uri: &'a str,
    /// The PKCE verifier of the login transaction.
    pub code_verifier: &'a CodeVerifier,
    /// An audience / resource to name in the token request (RFC 8707 §2.2
    /// allows narrowing to one resource here); usually `None`, the grant
    /// already carries what the authorization request named.
    pub target: Option<&'a str>,
    /// How the target is named on the wire.
    pub target_parameter: TargetParameter,
}

impl<'a> CodeExchangeRequest<'a> {
    /// A code exchange without a target.
    #[must_use]
    pub fn new(
        token_endpoint: &'a str,
        client_id: &'a str,
        client_auth: &'a ClientAuth,
        code: &'a AuthorizationCode,
        redirect_uri: &'a str,
        code_verifier: &'a CodeVerifier,
    ) -> Self {
        CodeExchangeRequest {
            token_endpoint,
            client_id,
            client_auth,
            code,
            redirect_uri,
            code_verifier,
            target: None,
            target_parameter: TargetParameter::Audience,
        }
    }

    /// Names `target` as `audience`, `resource` or both.
    #[must_use]
    pub fn target(mut self, target: &'a str, parameter: TargetParameter) -> Self {
        self.target = Some(target);
        self.target_parameter = parameter;
        self
    }

    /// The HTTP request: `POST` of `grant_type=authorization_code`, `code`,
    /// `redirect_uri`, `code_verifier`, the target if any, then the client
    /// authentication.
    #[must_use]
    pub fn build(&self) -> HttpRequest {
        let mut form = FormBody::new();
        let mut headers = super::request_headers();
        form.append("grant_type", "authorization_code")
            .append("code", self.code.secret())
            .append("redirect_uri", self.redirect_uri)
            .append("code_verifier", self.code_verifier.secret());
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
        let code = AuthorizationCode::new("c0de/+");
        let verifier = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let auth = ClientAuth::SecretPost(ClientSecret::new("s3cret"));
        let request = CodeExchangeRequest::new(
            "https://as.example/oauth/token",
            "client-1",
            &auth,
            &code,
            "https://app.example/callback",
            &verifier,
        )
        .target("https://api.example.com/", TargetParameter::Resource)
        .build();
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url, "https://as.example/oauth/token");
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=authorization_code&code=c0de%2F%2B\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcallback\
             &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\
             &resource=https%3A%2F%2Fapi.example.com%2F&client_id=client-1&client_secret=s3cret"
        );
        assert_eq!(
            request.headers.get("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let printed = alloc::format!("{request:?}");
        assert!(!printed.contains("c0de"));
    }

    #[test]
    fn basic_auth_and_no_target() {
        let code = AuthorizationCode::new("abc");
        let verifier = CodeVerifier::new("v");
        let auth = ClientAuth::SecretBasic(ClientSecret::new("secret"));
        let exchange = CodeExchangeRequest::new(
            "https://as.example/token",
            "client",
            &auth,
            &code,
            "app:/cb",
            &verifier,
        );
        let printed = alloc::format!("{exchange:?}");
        assert!(!printed.contains("abc") && !printed.contains("secret\""));
        let request = exchange.build();
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=authorization_code&code=abc&redirect_uri=app%3A%2Fcb&code_verifier=v"
        );
        assert_eq!(
            request.headers.get("authorization"),
            Some("Basic Y2xpZW50OnNlY3JldA==")
        );
    }
}
