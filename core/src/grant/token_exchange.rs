//! OAuth 2.0 Token Exchange (RFC 8693): trade a subject token (and
//! optionally an actor token) for another token.
//!
//! # Call order
//!
//! ```text
//! TokenExchangeRequest::new(endpoint, client_id, &auth, subject_token, subject_token_type)
//!     [.actor(token, type)] [.requested_token_type(..)] [.scope(..)]
//!     [.target(..)] [.param(name, value)]
//!     .build() ─► Result<HttpRequest, TokenExchangeError>   inputs validated first
//! …send it…
//! parse_response(&response, &limits) ─► TokenResponse       issued_token_type required
//! ```
//!
//! Token-type identifiers must be URIs: a URN `urn:<nid>:<nss>` (such as
//! the `urn:ietf:params:oauth:token-type:*` ones in [`token_types`]) or an
//! absolute `http(s)` URL, 10 to 100 characters, as the Auth0 SDK checks.
//! The result is not cached or stored; the caller decides what to keep.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::discovery::is_http_url;
pub use crate::error::TokenExchangeError;
use crate::form::FormBody;
use crate::grant::refresh::TargetParameter;
use crate::grant::{ClientAuth, form_post};
use crate::http::{HttpRequest, HttpResponse};
use crate::limits::Limits;
use crate::token::TokenResponse;

/// The grant type of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token-type identifiers registered by RFC 8693 §3.
pub mod token_types {
    /// An OAuth 2.0 access token.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// An OAuth 2.0 refresh token.
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// A JWT.
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
    /// A base64url-encoded SAML 1.1 assertion.
    pub const SAML1: &str = "urn:ietf:params:oauth:token-type:saml1";
    /// A base64url-encoded SAML 2.0 assertion.
    pub const SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
}

/// Whether `value` is an acceptable token-type identifier: 10–100
/// characters, and either a URN (`urn:<nid>:<nss>`, NID of 1–32 letters,
/// digits and hyphens starting with a letter or digit, NSS of URI
/// characters) or an absolute `http(s)` URL.
#[must_use]
pub fn is_valid_token_type(value: &str) -> bool {
    if !(10..=100).contains(&value.len()) {
        return false;
    }
    let is_urn = value
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !is_urn {
        return is_http_url(value);
    }
    let Some((nid, nss)) = value[4..].split_once(':') else {
        return false;
    };
    let nid_ok = (1..=32).contains(&nid.len())
        && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && nid
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    let nss_ok = !nss.is_empty()
        && nss
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"()+,-.:=@;$_!*'%/?#".contains(&b));
    nid_ok && nss_ok
}

/// The form members the exchange sets itself or the client authentication
/// adds: an extra parameter may not be one of them.
pub const RESERVED: [&str; 13] = [
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "scope",
    "audience",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// The inputs of one token exchange. `Debug` redacts the tokens.
#[derive(Clone)]
#[must_use]
pub struct TokenExchangeRequest<'a> {
    token_endpoint: &'a str,
    client_id: &'a str,
    client_auth: &'a ClientAuth,
    subject_token: &'a str,
    subject_token_type: &'a str,
    actor_token: Option<&'a str>,
    actor_token_type: Option<&'a str>,
    requested_token_type: Option<&'a str>,
    scope: Option<&'a str>,
    target: Option<&'a str>,
    target_parameter: TargetParameter,
    extra: Vec<(&'a str, &'a str)>,
}

impl<'a> TokenExchangeRequest<'a> {
    /// The client the exchange authenticates as.
    #[must_use]
    pub fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// How that client authenticates.
    #[must_use]
    pub fn client_auth(&self) -> &'a ClientAuth {
        self.client_auth
    }

    /// An exchange of `subject_token` (of type `subject_token_type`).
    pub fn new(
        token_endpoint: &'a str,
        client_id: &'a str,
        client_auth: &'a ClientAuth,
        subject_token: &'a str,
        subject_token_type: &'a str,
    ) -> Self {
        TokenExchangeRequest {
            token_endpoint,
            client_id,
            client_auth,
            subject_token,
            subject_token_type,
            actor_token: None,
            actor_token_type: None,
            requested_token_type: None,
            scope: None,
            target: None,
            target_parameter: TargetParameter::Audience,
            extra: Vec::new(),
        }
    }

    /// The party acting for the subject (delegation, RFC 8693 §1.1).
    pub fn actor(mut self, actor_token: &'a str, actor_token_type: &'a str) -> Self {
        self.actor_token = Some(actor_token);
        self.actor_token_type = Some(actor_token_type);
        self
    }

    /// Sets the actor token and its type separately (either may be absent;
    /// [`build`](Self::build) refuses one without the other).
    pub fn actor_parts(
        mut self,
        actor_token: Option<&'a str>,
        actor_token_type: Option<&'a str>,
    ) -> Self {
        self.actor_token = actor_token;
        self.actor_token_type = actor_token_type;
        self
    }

    /// `requested_token_type`.
    pub fn requested_token_type(mut self, token_type: &'a str) -> Self {
        self.requested_token_type = Some(token_type);
        self
    }

    /// `scope`.
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The target API, named as `parameter` says, byte for byte.
    pub fn target(mut self, target: &'a str, parameter: TargetParameter) -> Self {
        self.target = Some(target);
        self.target_parameter = parameter;
        self
    }

    /// Another parameter (`organization`, a custom one for an Auth0
    /// Action, …), sent after the grant's own.
    pub fn param(mut self, name: &'a str, value: &'a str) -> Self {
        self.extra.push((name, value));
        self
    }

    /// Validates the inputs and builds the request: `POST` of
    /// `grant_type`, `subject_token`, `subject_token_type`, `actor_token`,
    /// `actor_token_type`, `requested_token_type`, `scope`, the target, the
    /// extras, then the client authentication.
    ///
    /// # Errors
    /// A [`TokenExchangeError`] for a bad input; nothing is built then.
    pub fn build(&self) -> Result<HttpRequest, TokenExchangeError> {
        self.check()?;
        let mut form = FormBody::new();
        let mut headers = super::request_headers();
        form.append("grant_type", GRANT_TYPE)
            .append("subject_token", self.subject_token)
            .append("subject_token_type", self.subject_token_type);
        if let (Some(token), Some(token_type)) = (self.actor_token, self.actor_token_type) {
            form.append("actor_token", token)
                .append("actor_token_type", token_type);
        }
        if let Some(requested) = self.requested_token_type {
            form.append("requested_token_type", requested);
        }
        if let Some(scope) = self.scope {
            form.append("scope", scope);
        }
        if let Some(target) = self.target {
            self.target_parameter.apply(&mut form, target);
        }
        for (name, value) in &self.extra {
            form.append(name, value);
        }
        self.client_auth
            .apply(self.client_id, &mut form, &mut headers);
        Ok(form_post(self.token_endpoint, form, headers))
    }

    fn check(&self) -> Result<(), TokenExchangeError> {
        if self.subject_token.is_empty() {
            return Err(TokenExchangeError::MissingSubjectToken);
        }
        if !is_valid_token_type(self.subject_token_type) {
            return Err(TokenExchangeError::InvalidSubjectTokenType);
        }
        match (self.actor_token, self.actor_token_type) {
            (Some(""), _) => return Err(TokenExchangeError::MissingActorToken),
            (Some(_), None) => return Err(TokenExchangeError::MissingActorTokenType),
            (None, Some(_)) => return Err(TokenExchangeError::MissingActorToken),
            (Some(_), Some(t)) if !is_valid_token_type(t) => {
                return Err(TokenExchangeError::InvalidActorTokenType);
            }
            _ => {}
        }
        if self
            .requested_token_type
            .is_some_and(|t| !is_valid_token_type(t))
        {
            return Err(TokenExchangeError::InvalidRequestedTokenType);
        }
        if let Some((name, _)) = self.extra.iter().find(|(n, _)| RESERVED.contains(n)) {
            return Err(TokenExchangeError::ReservedParameter(String::from(*name)));
        }
        Ok(())
    }
}

impl fmt::Debug for TokenExchangeRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |t: &str| alloc::format!("<redacted {} bytes>", t.len());
        f.debug_struct("TokenExchangeRequest")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("subject_token", &redacted(self.subject_token))
            .field("subject_token_type", &self.subject_token_type)
            .field("actor_token", &self.actor_token.map(redacted))
            .field("actor_token_type", &self.actor_token_type)
            .field("requested_token_type", &self.requested_token_type)
            .field("scope", &self.scope)
            .field("target", &self.target)
            .field("target_parameter", &self.target_parameter)
            .field(
                "extra",
                &self.extra.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Parses a token exchange response (RFC 8693 §2.2): a token response
/// whose `issued_token_type` is present.
///
/// # Errors
/// [`TokenExchangeError::Failed`] for an error response or an unusable
/// body; [`TokenExchangeError::MissingIssuedTokenType`].
pub fn parse_response(
    response: &HttpResponse,
    limits: &Limits,
) -> Result<TokenResponse, TokenExchangeError> {
    require_issued_token_type(parse_response_lenient(response, limits)?)
}

/// The check [`parse_response`] adds to [`parse_response_lenient`].
pub(crate) fn require_issued_token_type(
    parsed: TokenResponse,
) -> Result<TokenResponse, TokenExchangeError> {
    if parsed
        .issued_token_type
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err(TokenExchangeError::MissingIssuedTokenType);
    }
    Ok(parsed)
}

/// As [`parse_response`], but a missing `issued_token_type` is accepted:
/// for servers that answer an exchange with a plain token response (Auth0
/// Custom Token Exchange documents none).
///
/// # Errors
/// [`TokenExchangeError::Failed`].
pub fn parse_response_lenient(
    response: &HttpResponse,
    limits: &Limits,
) -> Result<TokenResponse, TokenExchangeError> {
    TokenResponse::parse(response, limits).map_err(TokenExchangeError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ClientSecret;

    const ENDPOINT: &str = "https://as.example/oauth/token";

    fn auth() -> ClientAuth {
        ClientAuth::SecretPost(ClientSecret::new("s"))
    }

    #[test]
    fn token_type_uris() {
        for good in [
            token_types::ACCESS_TOKEN,
            token_types::REFRESH_TOKEN,
            token_types::ID_TOKEN,
            token_types::JWT,
            token_types::SAML2,
            "urn:acme:legacy-token",
            "URN:Acme:Token",
            "http://auth0.com/oauth/token-type/federated-connection-access-token",
            "https://api.yourcompany.com/token-type/v1",
        ] {
            assert!(is_valid_token_type(good), "{good}");
        }
        let long = alloc::format!("urn:acme:{}", "x".repeat(92));
        assert_eq!(long.len(), 101);
        for bad in [
            "urn:a:b",
            "access_token",
            "urn:acme",
            "urn::token-type",
            "urn:-acme:token-type",
            "urn:acme:token type",
            "urn:acme:token<type>",
            "urn:abcdefghijklmnopqrstuvwxyz0123456:x",
            "ftp://example.com/token",
            "not a uri at all",
            "https://",
            long.as_str(),
        ] {
            assert!(!is_valid_token_type(bad), "{bad}");
        }
        assert!(is_valid_token_type(&long[..100]));
    }

    #[test]
    fn builds_the_full_request() {
        let auth = auth();
        let request = TokenExchangeRequest::new(
            ENDPOINT,
            "client",
            &auth,
            "subject/+token",
            token_types::ACCESS_TOKEN,
        )
        .actor("actor-token", token_types::ID_TOKEN)
        .requested_token_type(token_types::REFRESH_TOKEN)
        .scope("openid read")
        .target("https://api.example.com/", TargetParameter::Both)
        .param("organization", "org_1")
        .build()
        .unwrap();
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token=subject%2F%2Btoken\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &actor_token=actor-token\
             &actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token\
             &scope=openid+read\
             &audience=https%3A%2F%2Fapi.example.com%2F&resource=https%3A%2F%2Fapi.example.com%2F\
             &organization=org_1&client_id=client&client_secret=s"
        );
        assert_eq!(request.url, ENDPOINT);
    }

    #[test]
    fn minimal_request() {
        let auth = ClientAuth::None;
        let request =
            TokenExchangeRequest::new(ENDPOINT, "c", &auth, "st", "urn:acme:legacy-token")
                .build()
                .unwrap();
        assert_eq!(
            core::str::from_utf8(&request.body).unwrap(),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token=st&subject_token_type=urn%3Aacme%3Alegacy-token&client_id=c"
        );
    }

    #[test]
    fn bad_inputs_each_have_a_code() {
        let auth = auth();
        let base =
            |token, token_type| TokenExchangeRequest::new(ENDPOINT, "c", &auth, token, token_type);
        let code = |r: TokenExchangeRequest<'_>| r.build().unwrap_err().code();
        let good = token_types::ACCESS_TOKEN;
        assert_eq!(code(base("", good)), "missing_subject_token");
        assert_eq!(
            code(base("t", "access_token")),
            "invalid_subject_token_type"
        );
        assert_eq!(
            code(base("t", good).actor_parts(Some("a"), None)),
            "missing_actor_token_type"
        );
        assert_eq!(
            code(base("t", good).actor_parts(None, Some(good))),
            "missing_actor_token"
        );
        assert_eq!(code(base("t", good).actor("", good)), "missing_actor_token");
        assert_eq!(
            code(base("t", good).actor("a", "jwt")),
            "invalid_actor_token_type"
        );
        assert_eq!(
            code(base("t", good).requested_token_type("urn:x:y")),
            "invalid_requested_token_type"
        );
        assert_eq!(
            code(base("t", good).param("subject_token", "other")),
            "reserved_parameter"
        );
    }

    #[test]
    fn debug_redacts_tokens() {
        let auth = auth();
        let request = TokenExchangeRequest::new(
            ENDPOINT,
            "c",
            &auth,
            "subject-secret-value",
            token_types::ACCESS_TOKEN,
        )
        .actor("actor-secret-value", token_types::JWT)
        .param("custom", "custom-secret-value");
        let printed = alloc::format!("{request:?}");
        assert!(!printed.contains("subject-secret-value"), "{printed}");
        assert!(!printed.contains("actor-secret-value"));
        assert!(!printed.contains("custom-secret-value"));
        assert!(printed.contains("custom"));
    }

    #[test]
    fn responses() {
        let limits = Limits::default();
        let ok = HttpResponse::new(
            200,
            r#"{"access_token":"at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":60}"#,
        );
        let parsed = parse_response(&ok, &limits).unwrap();
        assert_eq!(
            parsed.issued_token_type.as_deref(),
            Some(token_types::ACCESS_TOKEN)
        );
        assert_eq!(parsed.expires_in, Some(60));

        // N_A token type for a non-access token (RFC 8693 §2.2.1).
        let na = HttpResponse::new(
            200,
            r#"{"access_token":"id.token.jwt","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"N_A"}"#,
        );
        assert_eq!(
            parse_response(&na, &limits).unwrap().token_type.as_str(),
            "N_A"
        );

        let plain = HttpResponse::new(200, r#"{"access_token":"at","token_type":"Bearer"}"#);
        assert_eq!(
            parse_response(&plain, &limits).unwrap_err().code(),
            "missing_issued_token_type"
        );
        assert!(parse_response_lenient(&plain, &limits).is_ok());

        let refused = HttpResponse::new(
            400,
            r#"{"error":"invalid_request","error_description":"bad subject_token"}"#,
        );
        let e = parse_response(&refused, &limits).unwrap_err();
        assert_eq!(e.code(), "exchange_failed");
        let TokenExchangeError::Failed(cause) = e else {
            panic!()
        };
        assert_eq!(cause.code(), "invalid_request");
        assert_eq!(
            parse_response(&HttpResponse::new(502, "<html>"), &limits)
                .unwrap_err()
                .code(),
            "exchange_failed"
        );
    }
}
