//! Interactive login: the authorization code flow with PKCE (RFC 6749 §4.1,
//! RFC 7636), `state` against CSRF, `nonce` for the ID token, and RFC 9207
//! `iss` checking on the way back.
//!
//! # Call order
//!
//! ```text
//! LoginRequest::new(authorization_endpoint, client_id, redirect_uri)
//!     .scope(..).audience(..).resource(..).dpop_jkt(..).param(..)
//!     .start(&mut entropy) ─► (authorization URL, LoginTransaction)
//!   redirect the browser to the URL; keep the transaction (serde: a cookie,
//!   encrypted and signed by the host, or server-side storage)
//! …the browser comes back to redirect_uri…
//! transaction.validate_callback(callback, Some(issuer), iss_required)
//!     ─► AuthorizationCode
//! transaction.code_exchange(&code, token_endpoint, client_id, &client_auth)
//!     .build() ─► HttpRequest (grant_type=authorization_code, code_verifier)
//! TokenResponse::parse(response), then
//! IdTokenValidator::validate_login(id_token, transaction.nonce(), now)
//! ```
//!
//! Entropy is drawn in a fixed order — 32 bytes each for `state`, `nonce`
//! and the PKCE `code_verifier` — so a seeded source gives a reproducible
//! URL. Nothing here reads a clock.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::discovery::is_http_url;
use crate::entropy::Entropy;
use crate::form;
use crate::grant::ClientAuth;
use crate::grant::code::CodeExchangeRequest;
use crate::scope::DEFAULT_SCOPE;

crate::secret::secret_string!(
    /// A PKCE `code_verifier` (RFC 7636 §4.1).
    CodeVerifier
);
crate::secret::secret_string!(
    /// The `state` value binding a callback to the browser that started
    /// the login.
    State
);
crate::secret::secret_string!(
    /// The `nonce` the ID token must carry back.
    Nonce
);
crate::secret::secret_string!(
    /// An authorization `code` from a validated callback: a one-time
    /// credential, exchanged at the token endpoint.
    AuthorizationCode
);

/// How many random bytes back `state`, `nonce` and the verifier.
pub const RANDOM_BYTES: usize = 32;

/// `base64url(n random bytes)`, the random bytes wiped afterwards.
fn random_string(entropy: &mut dyn Entropy) -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    entropy.fill(&mut bytes);
    let encoded = URL_SAFE_NO_PAD.encode(bytes);
    bytes.zeroize();
    encoded
}

impl CodeVerifier {
    /// A fresh verifier: 32 random bytes, base64url without padding, so 43
    /// characters of the unreserved set (RFC 7636 §4.1).
    #[must_use]
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        CodeVerifier(random_string(entropy))
    }

    /// The `S256` challenge: `base64url(SHA-256(verifier))` (RFC 7636 §4.2).
    #[must_use]
    pub fn challenge_s256(&self) -> String {
        code_challenge_s256(&self.0)
    }
}

/// `base64url(SHA-256(verifier))`, the PKCE `S256` code challenge.
#[must_use]
pub fn code_challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares two strings in time that depends only on their lengths, for
/// values an attacker must not be able to guess byte by byte.
#[must_use]
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub use crate::error::LoginError;

/// Parameters the flow sets itself; extras may not override them.
const RESERVED: [&str; 11] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "audience",
    "resource",
    "dpop_jkt",
];

/// The parameters of an authorization request. Values are sent byte for
/// byte as given (form-encoded, never normalised).
#[derive(Debug, Clone)]
#[must_use]
pub struct LoginRequest<'a> {
    authorization_endpoint: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: Option<&'a str>,
    audience: Option<&'a str>,
    resources: Vec<&'a str>,
    dpop_jkt: Option<&'a str>,
    extra: Vec<(&'a str, &'a str)>,
}

impl<'a> LoginRequest<'a> {
    /// A login at `authorization_endpoint` for `client_id`, coming back to
    /// `redirect_uri`.
    pub fn new(authorization_endpoint: &'a str, client_id: &'a str, redirect_uri: &'a str) -> Self {
        LoginRequest {
            authorization_endpoint,
            client_id,
            redirect_uri,
            scope: None,
            audience: None,
            resources: Vec::new(),
            dpop_jkt: None,
            extra: Vec::new(),
        }
    }

    /// The scope (default `openid profile email offline_access`, as the SDK).
    pub fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// The `audience` (Auth0 style).
    pub fn audience(mut self, audience: &'a str) -> Self {
        self.audience = Some(audience);
        self
    }

    /// A `resource` (RFC 8707); call again for several.
    pub fn resource(mut self, resource: &'a str) -> Self {
        self.resources.push(resource);
        self
    }

    /// `dpop_jkt`: the JWK SHA-256 thumbprint of the DPoP key the code will
    /// be bound to (RFC 9449 §10).
    pub fn dpop_jkt(mut self, thumbprint: &'a str) -> Self {
        self.dpop_jkt = Some(thumbprint);
        self
    }

    /// Any other parameter (`prompt`, `login_hint`, `organization`, …),
    /// appended after the flow's own, in the order given.
    pub fn param(mut self, name: &'a str, value: &'a str) -> Self {
        self.extra.push((name, value));
        self
    }

    /// Draws `state`, `nonce` and the PKCE verifier from `entropy` (in that
    /// order) and builds the authorization URL.
    ///
    /// The query is `response_type=code`, `client_id`, `redirect_uri`,
    /// `scope`, `state`, `nonce`, `code_challenge`,
    /// `code_challenge_method=S256`, `audience`, each `resource`, `dpop_jkt`,
    /// then the extras; joined to the endpoint with `?`, or with `&` when
    /// the endpoint already has a query.
    ///
    /// # Errors
    /// [`LoginError::InvalidAuthorizationEndpoint`],
    /// [`LoginError::InvalidRequest`] or [`LoginError::ReservedParameter`];
    /// no entropy is drawn then.
    pub fn start(
        &self,
        entropy: &mut dyn Entropy,
    ) -> Result<(String, LoginTransaction), LoginError> {
        self.check()?;
        let state = State(random_string(entropy));
        let nonce = Nonce(random_string(entropy));
        let code_verifier = CodeVerifier::generate(entropy);
        let scope = self.scope.unwrap_or(DEFAULT_SCOPE);

        let mut query = form::FormBody::new();
        query
            .append("response_type", "code")
            .append("client_id", self.client_id)
            .append("redirect_uri", self.redirect_uri)
            .append("scope", scope)
            .append("state", state.secret())
            .append("nonce", nonce.secret())
            .append("code_challenge", &code_verifier.challenge_s256())
            .append("code_challenge_method", "S256");
        if let Some(audience) = self.audience {
            query.append("audience", audience);
        }
        for resource in &self.resources {
            query.append("resource", resource);
        }
        if let Some(jkt) = self.dpop_jkt {
            query.append("dpop_jkt", jkt);
        }
        for (name, value) in &self.extra {
            query.append(name, value);
        }
        let query = query.finish();
        let endpoint = self.authorization_endpoint;
        let separator = match endpoint.find('?') {
            None => "?",
            Some(_) if endpoint.ends_with(['?', '&']) => "",
            Some(_) => "&",
        };
        let url = alloc::format!("{endpoint}{separator}{query}");

        let transaction = LoginTransaction {
            state,
            nonce,
            code_verifier,
            redirect_uri: String::from(self.redirect_uri),
            scope: String::from(scope),
            audience: self.audience.map(String::from),
            resources: self.resources.iter().map(|r| String::from(*r)).collect(),
        };
        Ok((url, transaction))
    }

    fn check(&self) -> Result<(), LoginError> {
        if !is_http_url(self.authorization_endpoint) || self.authorization_endpoint.contains('#') {
            return Err(LoginError::InvalidAuthorizationEndpoint);
        }
        if self.client_id.is_empty() {
            return Err(LoginError::InvalidRequest("the client id is empty"));
        }
        if self.redirect_uri.is_empty() || self.redirect_uri.contains('#') {
            return Err(LoginError::InvalidRequest(
                "the redirect URI must be non-empty and have no fragment",
            ));
        }
        if self
            .resources
            .iter()
            .any(|r| r.is_empty() || r.contains('#'))
        {
            return Err(LoginError::InvalidRequest(
                "a resource must be non-empty and have no fragment",
            ));
        }
        if let Some((name, _)) = self.extra.iter().find(|(n, _)| RESERVED.contains(n)) {
            return Err(LoginError::ReservedParameter(String::from(*name)));
        }
        Ok(())
    }
}

/// What a login must remember until its callback: keep it where the
/// callback can find it (serde; the `state`, `nonce` and verifier are
/// secrets, so encrypt and sign it when it goes into a cookie). `Debug`
/// redacts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginTransaction {
    state: State,
    nonce: Nonce,
    code_verifier: CodeVerifier,
    redirect_uri: String,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    resources: Vec<String>,
}

impl LoginTransaction {
    /// The `state` sent.
    #[must_use]
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The `nonce` sent; the ID token must carry it.
    #[must_use]
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// The PKCE verifier, sent with the code exchange.
    #[must_use]
    pub fn code_verifier(&self) -> &CodeVerifier {
        &self.code_verifier
    }

    /// The `redirect_uri` sent (the code exchange repeats it).
    #[must_use]
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The scope requested (the session's `requestedScope`).
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The audience requested.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resources requested.
    #[must_use]
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// Checks the callback and returns its code.
    ///
    /// `callback` is the URL the browser came back to, or its query (with
    /// or without `?`), or a `form_post` body. Checks, in order: no
    /// response parameter repeated; `iss` equal to `expected_issuer` when
    /// both are present, and present at all when `iss_required` (the
    /// server's `authorization_response_iss_parameter_supported`, RFC 9207);
    /// `state` present and equal to this transaction's (compared in
    /// constant time); no `error`; a non-empty `code`.
    ///
    /// # Errors
    /// The [`LoginError`] of the first failed check.
    pub fn validate_callback(
        &self,
        callback: &str,
        expected_issuer: Option<&str>,
        iss_required: bool,
    ) -> Result<AuthorizationCode, LoginError> {
        let mut pairs = form::parse(callback_parameters(callback));
        for name in [
            "code",
            "state",
            "iss",
            "error",
            "error_description",
            "error_uri",
        ] {
            if pairs.iter().filter(|(n, _)| n == name).count() > 1 {
                wipe(&mut pairs);
                return Err(LoginError::DuplicateParameter(name));
            }
        }
        let result = self.check_pairs(&pairs, expected_issuer, iss_required);
        wipe(&mut pairs);
        result
    }

    fn check_pairs(
        &self,
        pairs: &[(String, String)],
        expected_issuer: Option<&str>,
        iss_required: bool,
    ) -> Result<AuthorizationCode, LoginError> {
        let get = |name: &str| form::find(pairs, name);
        match (get("iss"), expected_issuer) {
            (Some(iss), Some(expected)) if iss != expected => {
                return Err(LoginError::IssuerMismatch {
                    expected: String::from(expected),
                    received: iss.into_owned(),
                });
            }
            (None, _) if iss_required => return Err(LoginError::MissingIssuer),
            _ => {}
        }
        let state = get("state").ok_or(LoginError::MissingState)?;
        if !constant_time_eq(&state, self.state.secret()) {
            return Err(LoginError::StateMismatch);
        }
        if let Some(error) = get("error") {
            return Err(LoginError::Authorization {
                error: error.into_owned(),
                error_description: get("error_description").map(|d| d.into_owned()),
                error_uri: get("error_uri").map(|u| u.into_owned()),
            });
        }
        match get("code") {
            Some(code) if !code.is_empty() => Ok(AuthorizationCode::new(code.into_owned())),
            _ => Err(LoginError::MissingCode),
        }
    }

    /// The token request exchanging `code`, with this transaction's
    /// `redirect_uri` and `code_verifier`.
    #[must_use]
    pub fn code_exchange<'a>(
        &'a self,
        code: &'a AuthorizationCode,
        token_endpoint: &'a str,
        client_id: &'a str,
        client_auth: &'a ClientAuth,
    ) -> CodeExchangeRequest<'a> {
        CodeExchangeRequest::new(
            token_endpoint,
            client_id,
            client_auth,
            code,
            &self.redirect_uri,
            &self.code_verifier,
        )
    }
}

/// Wipes parsed callback parameters (they hold the code and state).
fn wipe(pairs: &mut Vec<(String, String)>) {
    for (name, value) in pairs.iter_mut() {
        name.zeroize();
        value.zeroize();
    }
    pairs.clear();
}

/// The parameter part of a callback given as a URL, a query or a body.
fn callback_parameters(callback: &str) -> &str {
    let without_fragment = callback.split('#').next().unwrap_or("");
    if let Some((_, query)) = without_fragment.split_once('?') {
        return query;
    }
    // A URL without a query ("scheme://" before any '=' or '&') has no
    // parameters; anything else is a query or a form body already.
    let first_param = without_fragment
        .find(['=', '&'])
        .unwrap_or(without_fragment.len());
    match without_fragment.find("://") {
        Some(at) if at < first_param => "",
        _ => without_fragment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use alloc::format;
    use alloc::string::ToString;

    const AUTHORIZE: &str = "https://as.example/authorize";
    const REDIRECT: &str = "https://app.example/callback";

    fn start() -> (String, LoginTransaction) {
        LoginRequest::new(AUTHORIZE, "client-1", REDIRECT)
            .start(&mut SeededEntropy::new(42))
            .unwrap()
    }

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = CodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            verifier.challenge_s256(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // Appendix B's octets give that verifier.
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let mut source = |dest: &mut [u8]| dest.copy_from_slice(&octets);
        assert_eq!(
            CodeVerifier::generate(&mut source).secret(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn verifier_shape() {
        let v = CodeVerifier::generate(&mut SeededEntropy::new(1));
        assert_eq!(v.secret().len(), 43);
        assert!(
            v.secret()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn authorization_url_golden() {
        let (url, tx) = LoginRequest::new(AUTHORIZE, "client-1", REDIRECT)
            .scope("openid profile offline_access")
            .audience("https://api.example.com")
            .start(&mut SeededEntropy::new(42))
            .unwrap();
        assert_eq!(
            url,
            "https://as.example/authorize?response_type=code&client_id=client-1\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid+profile+offline_access\
             &state=lW7rLyYy170D8WayM-PvKFKfDxNXZ1JHlONKDv_hHFg\
             &nonce=8iNIJFpYvAkG24A8-jFE3l1tN0UcZ-k3pC-enu419sw\
             &code_challenge=gkY5-fqcE5fITCNbq8Am0BFRzTPQa50KN1ZRj6I1KzA\
             &code_challenge_method=S256&audience=https%3A%2F%2Fapi.example.com"
        );
        assert_eq!(
            tx.state().secret(),
            "lW7rLyYy170D8WayM-PvKFKfDxNXZ1JHlONKDv_hHFg"
        );
        assert_eq!(
            tx.nonce().secret(),
            "8iNIJFpYvAkG24A8-jFE3l1tN0UcZ-k3pC-enu419sw"
        );
        assert_eq!(
            tx.code_verifier().secret(),
            "1X09C3e4BVeud38pONdUnr8ZW3dKcnQ0vlAWRQ6KNH4"
        );
        assert_eq!(
            tx.code_verifier().challenge_s256(),
            "gkY5-fqcE5fITCNbq8Am0BFRzTPQa50KN1ZRj6I1KzA"
        );
        assert_eq!(tx.scope(), "openid profile offline_access");
        assert_eq!(tx.audience(), Some("https://api.example.com"));
        assert_eq!(tx.redirect_uri(), REDIRECT);
    }

    #[test]
    fn all_parameters_in_order() {
        let (url, tx) = LoginRequest::new("https://as.example/authorize?tenant=t1", "c", "app:/cb")
            .resource("https://a.example")
            .resource("https://a.example/")
            .dpop_jkt("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
            .param("prompt", "login")
            .param("ui_locales", "fr en")
            .start(&mut SeededEntropy::new(1))
            .unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://as.example/authorize");
        let pairs = form::parse(query);
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "tenant",
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
                "resource",
                "resource",
                "dpop_jkt",
                "prompt",
                "ui_locales"
            ]
        );
        assert!(
            url.contains("&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fa.example%2F&")
        );
        assert!(url.contains("scope=openid+profile+email+offline_access"));
        assert!(url.ends_with("&prompt=login&ui_locales=fr+en"));
        assert_eq!(tx.resources(), ["https://a.example", "https://a.example/"]);
        assert_eq!(tx.audience(), None);

        // An endpoint ending in '?' gets no extra separator.
        let (url, _) = LoginRequest::new("https://as.example/authorize?", "c", REDIRECT)
            .start(&mut SeededEntropy::new(1))
            .unwrap();
        assert!(url.starts_with("https://as.example/authorize?response_type=code&"));
    }

    #[test]
    fn bad_login_requests() {
        let code = |r: LoginRequest<'_>| r.start(&mut SeededEntropy::new(1)).unwrap_err().code();
        assert_eq!(
            code(LoginRequest::new("/authorize", "c", REDIRECT)),
            "invalid_authorization_endpoint"
        );
        assert_eq!(
            code(LoginRequest::new("https://as.example/a#x", "c", REDIRECT)),
            "invalid_authorization_endpoint"
        );
        assert_eq!(
            code(LoginRequest::new(AUTHORIZE, "", REDIRECT)),
            "invalid_login_request"
        );
        assert_eq!(
            code(LoginRequest::new(AUTHORIZE, "c", "")),
            "invalid_login_request"
        );
        assert_eq!(
            code(LoginRequest::new(AUTHORIZE, "c", "https://app/cb#x")),
            "invalid_login_request"
        );
        assert_eq!(
            code(LoginRequest::new(AUTHORIZE, "c", REDIRECT).resource("https://r#f")),
            "invalid_login_request"
        );
        assert_eq!(
            code(LoginRequest::new(AUTHORIZE, "c", REDIRECT).param("state", "mine")),
            "reserved_parameter"
        );
        assert_eq!(
            code(
                LoginRequest::new(AUTHORIZE, "c", REDIRECT).param("code_challenge_method", "plain")
            ),
            "reserved_parameter"
        );
    }

    #[test]
    fn transaction_serde_round_trip_and_redaction() {
        let (_, tx) = start();
        let json = serde_json::to_string(&tx).unwrap();
        assert!(json.contains("\"codeVerifier\""));
        assert!(json.contains("\"redirectUri\":\"https://app.example/callback\""));
        assert!(!json.contains("audience"));
        let back: LoginTransaction = serde_json::from_str(&json).unwrap();
        assert_eq!(back, tx);

        let printed = format!("{tx:?}");
        for secret in [
            tx.state().secret(),
            tx.nonce().secret(),
            tx.code_verifier().secret(),
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("CodeVerifier(<redacted 43 bytes>)"));
        let code = AuthorizationCode::new("the-code");
        assert!(!format!("{code:?}").contains("the-code"));
    }

    fn callback(tx: &LoginTransaction, extra: &str) -> String {
        format!("{REDIRECT}?code=abc&state={}{extra}", tx.state().secret())
    }

    #[test]
    fn good_callbacks() {
        let (_, tx) = start();
        let state = tx.state().secret();
        let code = tx
            .validate_callback(&callback(&tx, ""), None, false)
            .unwrap();
        assert_eq!(code.secret(), "abc");
        // Query alone, with or without '?', and a form_post body; a fragment is ignored.
        for input in [
            format!("?code=abc&state={state}"),
            format!("code=abc&state={state}"),
            format!("state={state}&code=abc#frag"),
        ] {
            assert_eq!(
                tx.validate_callback(&input, None, false).unwrap().secret(),
                "abc"
            );
        }
        // iss checked when present, required when promised.
        let with_iss = callback(&tx, "&iss=https%3A%2F%2Fas.example%2F");
        assert!(
            tx.validate_callback(&with_iss, Some("https://as.example/"), true)
                .is_ok()
        );
        assert!(tx.validate_callback(&with_iss, None, false).is_ok());
        // An unencoded iss in a bare query.
        let raw = format!("iss=https://as.example/&code=abc&state={state}");
        assert!(
            tx.validate_callback(&raw, Some("https://as.example/"), true)
                .is_ok()
        );
        // A percent-encoded code is decoded.
        let encoded = format!("code=a%2Fb%2Bc&state={state}");
        assert_eq!(
            tx.validate_callback(&encoded, None, false)
                .unwrap()
                .secret(),
            "a/b+c"
        );
    }

    #[test]
    fn bad_callbacks() {
        let (_, tx) = start();
        let state = tx.state().secret();
        let err = |input: &str, iss: Option<&str>, required| {
            tx.validate_callback(input, iss, required).unwrap_err()
        };
        assert_eq!(
            err(&format!("{REDIRECT}?code=abc&state=WRONG"), None, false).code(),
            "state_mismatch"
        );
        // Same length, one byte differs.
        let mut forged = String::from(state);
        forged.replace_range(0..1, if state.starts_with('A') { "B" } else { "A" });
        assert_eq!(
            err(&format!("code=abc&state={forged}"), None, false).code(),
            "state_mismatch"
        );
        assert_eq!(
            err(&format!("{REDIRECT}?code=abc"), None, false).code(),
            "missing_state"
        );
        assert_eq!(err(REDIRECT, None, false).code(), "missing_state");
        assert_eq!(err("", None, false).code(), "missing_state");
        assert_eq!(
            err(&format!("state={state}"), None, false).code(),
            "missing_code"
        );
        assert_eq!(
            err(&format!("state={state}&code="), None, false).code(),
            "missing_code"
        );

        let e = err(
            &format!("error=access_denied&error_description=User+cancelled&state={state}"),
            None,
            false,
        );
        assert_eq!(e.code(), "authorization_error");
        assert_eq!(e.server_error(), Some("access_denied"));
        assert_eq!(
            e.to_string(),
            "the authorization server returned an error: access_denied: User cancelled"
        );
        // An error with a wrong state is a state problem first.
        assert_eq!(
            err("error=access_denied&state=x", None, false).code(),
            "state_mismatch"
        );

        let e = err(
            &callback(&tx, "&iss=https%3A%2F%2Fevil.example%2F"),
            Some("https://as.example/"),
            false,
        );
        assert_eq!(e.code(), "issuer_mismatch");
        assert!(e.to_string().contains("evil.example"));
        assert_eq!(
            err(&callback(&tx, ""), Some("https://as.example/"), true).code(),
            "missing_issuer"
        );
        assert_eq!(
            err(&format!("code=a&code=b&state={state}"), None, false).code(),
            "duplicate_parameter"
        );
        assert_eq!(
            err(&format!("code=a&state={state}&state={state}"), None, false).code(),
            "duplicate_parameter"
        );
        // Nothing secret in the messages.
        for e in [
            err(&format!("code=a&state={forged}"), None, false),
            err(&format!("code=a&code=b&state={state}"), None, false),
        ] {
            assert!(!format!("{e} {e:?}").contains(state));
        }
    }

    #[test]
    fn parameter_extraction() {
        assert_eq!(callback_parameters("https://app/cb?a=1#b=2"), "a=1");
        assert_eq!(callback_parameters("https://app/cb"), "");
        assert_eq!(callback_parameters("a=https://x&b=2"), "a=https://x&b=2");
        assert_eq!(callback_parameters("?"), "");
        assert_eq!(callback_parameters("#?x"), "");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(constant_time_eq("", ""));
    }
}
