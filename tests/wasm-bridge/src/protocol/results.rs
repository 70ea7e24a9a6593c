//! What comes back: tokens, token responses, discovery metadata and
//! sessions on the wire, and their parse by the core again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::{
    AccessToken, AccessTokenInfo, HttpResponse, Limits, ResponseError, Session, TokenResponse,
    TokenType, UnixTime,
};

/// An [`AccessTokenInfo`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireToken {
    pub token: String,
    pub expires_at: u64,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub token_type: String,
}

impl WireToken {
    #[must_use]
    pub fn new(token: &AccessTokenInfo) -> Self {
        WireToken {
            token: token.token.secret().to_owned(),
            expires_at: token.expires_at.as_secs(),
            scope: token.scope.clone(),
            audience: token.audience.clone(),
            token_type: token.token_type.as_str().to_owned(),
        }
    }

    #[must_use]
    pub fn get(&self) -> AccessTokenInfo {
        AccessTokenInfo {
            token: AccessToken::new(self.token.clone()),
            expires_at: UnixTime::from_secs(self.expires_at),
            scope: self.scope.clone(),
            audience: self.audience.clone(),
            token_type: TokenType::parse(&self.token_type),
        }
    }
}

/// `response` in the token endpoint's wire shape (its unknown members
/// kept), for [`token_response_from_json`].
#[must_use]
pub fn token_response_to_json(response: &TokenResponse) -> String {
    let mut json = response.extra.clone();
    json.insert("access_token".into(), response.access_token.secret().into());
    json.insert("token_type".into(), response.token_type.as_str().into());
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            json.insert(name.into(), value);
        }
    };
    put("expires_in", response.expires_in.map(Value::from));
    put(
        "refresh_token",
        response.refresh_token.as_ref().map(|t| t.secret().into()),
    );
    put(
        "id_token",
        response.id_token.as_ref().map(|t| t.secret().into()),
    );
    put("scope", response.scope.clone().map(Value::from));
    put(
        "issued_token_type",
        response.issued_token_type.clone().map(Value::from),
    );
    Value::Object(json).to_string()
}

/// The core's parse of a token response written by
/// [`token_response_to_json`].
///
/// # Errors
/// The core's refusal.
pub fn token_response_from_json(json: &str) -> Result<TokenResponse, ResponseError> {
    let response = HttpResponse::new(200, json.as_bytes().to_vec())
        .with_header("content-type", "application/json");
    TokenResponse::parse(&response, &Limits::default())
}

/// `metadata` as a discovery document (its unknown members kept), for
/// [`metadata_from_json`].
#[must_use]
pub fn metadata_to_json(metadata: &AuthorizationServerMetadata) -> String {
    let mut json: Map<String, Value> = metadata.extra.clone();
    json.insert("issuer".into(), metadata.issuer.clone().into());
    json.insert(
        "token_endpoint".into(),
        metadata.token_endpoint.clone().into(),
    );
    let strings = [
        ("authorization_endpoint", &metadata.authorization_endpoint),
        ("revocation_endpoint", &metadata.revocation_endpoint),
        ("jwks_uri", &metadata.jwks_uri),
        ("userinfo_endpoint", &metadata.userinfo_endpoint),
        ("end_session_endpoint", &metadata.end_session_endpoint),
    ];
    for (name, value) in strings {
        if let Some(value) = value {
            json.insert(name.into(), value.clone().into());
        }
    }
    let lists = [
        (
            "token_endpoint_auth_methods_supported",
            &metadata.token_endpoint_auth_methods_supported,
        ),
        (
            "dpop_signing_alg_values_supported",
            &metadata.dpop_signing_alg_values_supported,
        ),
        (
            "code_challenge_methods_supported",
            &metadata.code_challenge_methods_supported,
        ),
        ("grant_types_supported", &metadata.grant_types_supported),
        ("scopes_supported", &metadata.scopes_supported),
    ];
    for (name, value) in lists {
        if let Some(value) = value {
            json.insert(name.into(), value.clone().into());
        }
    }
    json.insert(
        "authorization_response_iss_parameter_supported".into(),
        metadata
            .authorization_response_iss_parameter_supported
            .into(),
    );
    Value::Object(json).to_string()
}

/// The core's validation of a document written by [`metadata_to_json`].
///
/// # Errors
/// The core's refusal, as text.
pub fn metadata_from_json(json: &str, issuer: &str) -> Result<AuthorizationServerMetadata, String> {
    AuthorizationServerMetadata::from_json(json.as_bytes(), issuer, &Limits::default())
        .map_err(|e| format!("discovery metadata: {e}"))
}

/// The session stored as `json`.
///
/// # Errors
/// The core's refusal, as text.
pub fn session_from_json(json: &str) -> Result<Session, String> {
    Session::from_json(json.as_bytes(), &Limits::default()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_crosses_unchanged() {
        let json = r#"{"access_token":"at","token_type":"Bearer","expires_in":60,
            "refresh_token":"rt","scope":"a b","issued_token_type":"urn:x:y:z","custom":[1]}"#;
        let response = token_response_from_json(json).unwrap();
        let again = token_response_from_json(&token_response_to_json(&response)).unwrap();
        assert_eq!(again, response);
    }
}
