//! The callers' requests on the wire: token, connection and exchange
//! requests, owned.

use serde::{Deserialize, Serialize};
// The form members the exchange sets itself (or the client authentication
// adds): any other is one of its extra parameters.
use tokenkeeper::__private::grant::TOKEN_EXCHANGE_RESERVED as EXCHANGE_OWN;
use tokenkeeper::grant::{ClientAuth, TokenExchangeError, TokenExchangeRequest};
use tokenkeeper::{ConnectionRequest, TokenRequest};

use super::config::{WireClientAuth, WireTarget};

/// A [`TokenRequest`], owned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WireTokenRequest {
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub force_refresh: bool,
    pub merge_scopes: Option<bool>,
}

impl WireTokenRequest {
    #[must_use]
    pub fn new(request: &TokenRequest<'_>) -> Self {
        WireTokenRequest {
            audience: request.audience.map(String::from),
            scope: request.scope.map(String::from),
            force_refresh: request.force_refresh,
            merge_scopes: request.merge_scopes,
        }
    }

    /// The request, borrowing from `self`.
    #[must_use]
    pub fn get(&self) -> TokenRequest<'_> {
        TokenRequest {
            audience: self.audience.as_deref(),
            scope: self.scope.as_deref(),
            force_refresh: self.force_refresh,
            merge_scopes: self.merge_scopes,
        }
    }
}

/// A [`ConnectionRequest`], owned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireConnectionRequest {
    pub connection: String,
    pub login_hint: Option<String>,
    pub force_refresh: bool,
}

impl WireConnectionRequest {
    #[must_use]
    pub fn new(request: &ConnectionRequest<'_>) -> Self {
        WireConnectionRequest {
            connection: request.connection.to_owned(),
            login_hint: request.login_hint.map(String::from),
            force_refresh: request.force_refresh,
        }
    }

    /// The request, borrowing from `self`.
    #[must_use]
    pub fn get(&self) -> ConnectionRequest<'_> {
        ConnectionRequest {
            connection: &self.connection,
            login_hint: self.login_hint.as_deref(),
            force_refresh: self.force_refresh,
        }
    }
}

/// A [`TokenExchangeRequest`], owned. Its fields are private, so it crosses
/// as what it builds: the token endpoint and the form it posts (read back
/// into the builder's calls), plus its client and authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireExchangeRequest {
    pub token_endpoint: String,
    pub client_id: String,
    pub client_auth: WireClientAuth,
    pub subject_token: String,
    pub subject_token_type: String,
    pub actor: Option<(String, String)>,
    pub requested_token_type: Option<String>,
    pub scope: Option<String>,
    pub target: Option<(String, WireTarget)>,
    pub extra: Vec<(String, String)>,
}

impl WireExchangeRequest {
    /// `request`, read back from the request it builds; `client_auth` is
    /// its client authentication, put on the wire.
    ///
    /// # Errors
    /// The request's own refusal to build (an invalid request).
    pub fn new(
        request: &TokenExchangeRequest<'_>,
        client_auth: WireClientAuth,
    ) -> Result<Self, TokenExchangeError> {
        let built = request.build()?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&built.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let one = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let target = match (one("audience"), one("resource")) {
            (Some(a), Some(r)) if a == r => Some((a, WireTarget::Both)),
            (Some(a), None) => Some((a, WireTarget::Audience)),
            (None, Some(r)) => Some((r, WireTarget::Resource)),
            (None, None) => None,
            // `target` names one value; two different ones cannot come
            // from it (only from extras, which the builder refuses).
            (Some(a), Some(_)) => Some((a, WireTarget::Both)),
        };
        Ok(WireExchangeRequest {
            token_endpoint: built.url.clone(),
            client_id: request.client_id().to_owned(),
            client_auth,
            subject_token: one("subject_token").unwrap_or_default(),
            subject_token_type: one("subject_token_type").unwrap_or_default(),
            actor: one("actor_token").zip(one("actor_token_type")),
            requested_token_type: one("requested_token_type"),
            scope: one("scope"),
            target,
            extra: form
                .iter()
                .filter(|(k, _)| !EXCHANGE_OWN.contains(&k.as_str()))
                .cloned()
                .collect(),
        })
    }

    /// The request again, with `auth` (this request's client
    /// authentication, rebuilt) borrowed.
    pub fn get<'a>(&'a self, auth: &'a ClientAuth) -> TokenExchangeRequest<'a> {
        let mut request = TokenExchangeRequest::new(
            &self.token_endpoint,
            &self.client_id,
            auth,
            &self.subject_token,
            &self.subject_token_type,
        );
        if let Some((token, token_type)) = &self.actor {
            request = request.actor(token, token_type);
        }
        if let Some(requested) = &self.requested_token_type {
            request = request.requested_token_type(requested);
        }
        if let Some(scope) = &self.scope {
            request = request.scope(scope);
        }
        if let Some((target, parameter)) = &self.target {
            request = request.target(target, parameter.get());
        }
        for (name, value) in &self.extra {
            request = request.param(name, value);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenkeeper::ClientSecret;
    use tokenkeeper::grant::TargetParameter;

    #[test]
    fn an_exchange_request_crosses_unchanged() {
        let auth = ClientAuth::SecretBasic(ClientSecret::new("s3cret"));
        let request = TokenExchangeRequest::new(
            "http://127.0.0.1:1/token",
            "client",
            &auth,
            "subject",
            "urn:ietf:params:oauth:token-type:access_token",
        )
        .actor("actor", "urn:ietf:params:oauth:token-type:jwt")
        .requested_token_type("urn:ietf:params:oauth:token-type:access_token")
        .scope("read write")
        .target("https://api.example.com", TargetParameter::Resource)
        .param("organization", "org_1");
        let wire =
            WireExchangeRequest::new(&request, WireClientAuth::new(&auth, |_| None)).unwrap();
        let json = serde_json::to_string(&wire).unwrap();
        let wire: WireExchangeRequest = serde_json::from_str(&json).unwrap();
        let auth_again = wire.client_auth.get().unwrap();
        assert_eq!(auth_again, auth);
        let again = wire.get(&auth_again);
        assert_eq!(again.build().unwrap(), request.build().unwrap());
    }
}
