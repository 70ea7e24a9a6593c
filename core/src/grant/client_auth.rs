//! Client authentication at the token endpoint (RFC 6749 §2.3).

use alloc::format;
use alloc::string::String;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use alloc::string::ToString;
use alloc::sync::Arc;
use core::fmt;

use crate::dpop::{SignOutcome, Signer};
use crate::error::{Error, SigningError};
use crate::form::{FormBody, encode};
use crate::http::Headers;
use crate::secret::ClientSecret;
use crate::time::UnixTime;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion stays valid (OIDC Core §9: short-lived).
pub const ASSERTION_LIFETIME_SECS: u64 = 60;

/// The key that signs `private_key_jwt` client assertions: the same
/// [`Signer`] interface as DPoP proofs (ES256).
#[derive(Clone)]
pub struct ClientAssertionKey {
    signer: Arc<dyn Signer + Send + Sync>,
    kid: Option<String>,
}

impl ClientAssertionKey {
    /// Signs assertions with `signer`, which must answer at once (a
    /// deferred signer cannot sign assertions: the request would need two
    /// signatures from outside).
    pub fn new(signer: impl Signer + Send + Sync + 'static) -> Self {
        ClientAssertionKey {
            signer: Arc::new(signer),
            kid: None,
        }
    }

    /// Names the key (`kid` header) as the client's registered JWKS does.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// A client assertion (RFC 7523): `iss` = `sub` = the client id, `aud` =
    /// `audience` (the issuer), a fresh `jti`, `iat` = `now` and `exp` 60 s
    /// later, signed with ES256.
    ///
    /// # Errors
    /// [`Error::Signing`] when the signer fails, defers, or is not ES256.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: UnixTime,
        jti: &[u8],
    ) -> Result<String, Error> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        if self.signer.algorithm() != "ES256" {
            return Err(Error::Signing(SigningError::UnsupportedAlgorithm));
        }
        let mut header = serde_json::json!({"alg": "ES256", "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = serde_json::Value::from(kid.as_str());
        }
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now.as_secs(),
            "exp": now.as_secs().saturating_add(ASSERTION_LIFETIME_SECS),
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        match self.signer.sign(jwt.as_bytes()) {
            Ok(SignOutcome::Signature(signature)) => {
                jwt.push('.');
                jwt.push_str(&signature.to_base64url());
                Ok(jwt)
            }
            Ok(_) => Err(Error::Signing(SigningError::Deferred)),
            Err(e) => Err(Error::Signing(SigningError::Signer(e))),
        }
    }

    /// Appends `client_id`, `client_assertion_type` and a fresh
    /// `client_assertion` to a token request form.
    ///
    /// # Errors
    /// As [`ClientAssertionKey::assertion`].
    pub fn append(
        &self,
        form: &mut FormBody,
        client_id: &str,
        audience: &str,
        now: UnixTime,
        jti: &[u8],
    ) -> Result<(), Error> {
        let assertion = self.assertion(client_id, audience, now, jti)?;
        form.append("client_id", client_id)
            .append("client_assertion_type", JWT_BEARER_ASSERTION)
            .append("client_assertion", &assertion);
        Ok(())
    }
}

impl fmt::Debug for ClientAssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAssertionKey")
            .field("jkt", &self.signer.public_jwk().thumbprint())
            .field("kid", &self.kid)
            .finish()
    }
}

impl PartialEq for ClientAssertionKey {
    fn eq(&self, other: &Self) -> bool {
        self.signer.public_jwk() == other.signer.public_jwk() && self.kid == other.kid
    }
}

impl Eq for ClientAssertionKey {}

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
    /// `private_key_jwt`: a signed JWT assertion (RFC 7523), fresh for every
    /// request (the manager adds it when the request leaves, so a retry
    /// gets a new `jti`).
    PrivateKeyJwt(ClientAssertionKey),
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
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }

    /// Adds the authentication to a token endpoint request. For
    /// `private_key_jwt` it adds nothing: the assertion needs the time and
    /// fresh entropy, and is added when the request leaves (see
    /// [`ClientAssertionKey::append`]).
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
            ClientAuth::PrivateKeyJwt(_) => {}
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
