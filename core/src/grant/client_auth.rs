//! Client authentication at the token endpoint (RFC 6749 §2.3).

use alloc::format;
use alloc::string::String;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::form::{FormBody, encode};
use crate::http::Headers;
use crate::secret::ClientSecret;

/// How the client proves its identity to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client: `client_id` in the body, no secret.
    None,
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret
    /// (RFC 6749 §2.3.1).
    SecretBasic(ClientSecret),
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    SecretPost(ClientSecret),
}

impl ClientAuth {
    /// The method's registered name (`none`, `client_secret_basic`, …), as
    /// discovery's `token_endpoint_auth_methods_supported` lists it.
    #[must_use]
    pub fn method_name(&self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
        }
    }

    /// Adds the authentication to a token endpoint request.
    pub fn apply(&self, client_id: &str, form: &mut FormBody, headers: &mut Headers) {
        match self {
            ClientAuth::None => {
                form.append("client_id", client_id);
            }
            ClientAuth::SecretBasic(secret) => {
                headers.append("Authorization", basic_authorization(client_id, secret));
            }
            ClientAuth::SecretPost(secret) => {
                form.append("client_id", client_id);
                form.append("client_secret", secret.secret());
            }
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`: RFC 6749 §2.3.1
/// form-encodes both before base64, so a `:` in the id cannot split it.
#[must_use]
pub fn basic_authorization(client_id: &str, secret: &ClientSecret) -> String {
    let credentials = format!("{}:{}", encode(client_id), encode(secret.secret()));
    let header = format!("Basic {}", STANDARD.encode(credentials.as_bytes()));
    let mut credentials = credentials;
    zeroize::Zeroize::zeroize(&mut credentials);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_form_encodes_before_base64() {
        // "my client:1" / "p@ss w:rd%" → "my+client%3A1:p%40ss+w%3Ard%25"
        let header = basic_authorization("my client:1", &ClientSecret::new("p@ss w:rd%"));
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"my+client%3A1:p%40ss+w%3Ard%25");
        // Plain values are unchanged by the encoding step.
        assert_eq!(
            basic_authorization("client", &ClientSecret::new("secret")),
            "Basic Y2xpZW50OnNlY3JldA=="
        );
    }

    #[test]
    fn post_and_none_put_the_id_in_the_body() {
        let mut form = FormBody::new();
        let mut headers = Headers::new();
        ClientAuth::SecretPost(ClientSecret::new("s e")).apply("id", &mut form, &mut headers);
        assert_eq!(form.finish(), "client_id=id&client_secret=s+e");
        assert!(headers.is_empty());

        let mut form = FormBody::new();
        ClientAuth::None.apply("pub", &mut form, &mut headers);
        assert_eq!(form.finish(), "client_id=pub");
        assert!(headers.is_empty());
    }
}
