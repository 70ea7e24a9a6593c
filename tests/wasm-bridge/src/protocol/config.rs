//! The configuration on the wire: the builder calls that made it, and
//! the client authentication.

use core::time::Duration;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokenkeeper::dpop::{DpopKey, P256Signer};
use tokenkeeper::grant::{ClientAssertionKey, ClientAuth, TargetParameter};
use tokenkeeper::{ClientSecret, Config, ConfigBuilder};

use super::results::metadata_from_json;

/// How a [`Config`] was made: `Config::builder(token_endpoint, client_id)`
/// then `calls` in order. [`ConfigDescription::build`] replays them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigDescription {
    pub token_endpoint: String,
    pub client_id: String,
    pub calls: Vec<ConfigCall>,
}

/// One `ConfigBuilder` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigCall {
    ClientAuth(WireClientAuth),
    Audience(String),
    Scope(String),
    ScopePerAudience(BTreeMap<String, String>),
    MergeScopes(bool),
    RefreshBuffer(Duration),
    RefreshBufferSecs(f64),
    DefaultLifetime(Duration),
    TargetParameter(WireTarget),
    StrictScopes(bool),
    MaxCacheEntries(usize),
    Lease(Duration),
    Issuer(String),
    RevocationEndpoint(String),
    SharedStore(bool),
    DpopNonceCapacity(usize),
    DpopClockSkew(i64),
    ClockTolerance(Duration),
    JwksUri(String),
    VerifyIdTokenSignatures(bool),
    JwksTtl(Duration),
    JwksRefetchInterval(Duration),
    /// `metadata(&m)`: the document and the issuer it was validated for.
    Metadata {
        json: String,
        issuer: String,
    },
}

impl ConfigCall {
    /// Applies this call to `builder`.
    ///
    /// # Errors
    /// A client authentication or metadata that cannot be rebuilt.
    pub fn apply(&self, builder: ConfigBuilder) -> Result<ConfigBuilder, String> {
        Ok(match self {
            ConfigCall::ClientAuth(auth) => builder.client_auth(auth.get()?),
            ConfigCall::Audience(v) => builder.audience(v.clone()),
            ConfigCall::Scope(v) => builder.scope(v.clone()),
            ConfigCall::ScopePerAudience(v) => builder.scope_per_audience(v.clone()),
            ConfigCall::MergeScopes(v) => builder.merge_scopes(*v),
            ConfigCall::RefreshBuffer(v) => builder.refresh_buffer(*v),
            ConfigCall::RefreshBufferSecs(v) => builder.refresh_buffer_secs(*v),
            ConfigCall::DefaultLifetime(v) => builder.default_lifetime(*v),
            ConfigCall::TargetParameter(v) => builder.target_parameter(v.get()),
            ConfigCall::StrictScopes(v) => builder.strict_scopes(*v),
            ConfigCall::MaxCacheEntries(v) => builder.max_cache_entries(*v),
            ConfigCall::Lease(v) => builder.lease(*v),
            ConfigCall::Issuer(v) => builder.issuer(v.clone()),
            ConfigCall::RevocationEndpoint(v) => builder.revocation_endpoint(v.clone()),
            ConfigCall::SharedStore(v) => builder.shared_store(*v),
            ConfigCall::DpopNonceCapacity(v) => builder.dpop_nonce_capacity(*v),
            ConfigCall::DpopClockSkew(v) => builder.dpop_clock_skew(*v),
            ConfigCall::ClockTolerance(v) => builder.clock_tolerance(*v),
            ConfigCall::JwksUri(v) => builder.jwks_uri(v.clone()),
            ConfigCall::VerifyIdTokenSignatures(v) => builder.verify_id_token_signatures(*v),
            ConfigCall::JwksTtl(v) => builder.jwks_ttl(*v),
            ConfigCall::JwksRefetchInterval(v) => builder.jwks_refetch_interval(*v),
            ConfigCall::Metadata { json, issuer } => {
                builder.metadata(&metadata_from_json(json, issuer)?)
            }
        })
    }
}

impl ConfigDescription {
    /// The configuration: the builder, every call replayed.
    ///
    /// # Errors
    /// A call that cannot be rebuilt, or the builder's refusal.
    pub fn build(&self) -> Result<Config, String> {
        let mut builder = Config::builder(self.token_endpoint.clone(), self.client_id.clone());
        for call in &self.calls {
            builder = call.apply(builder)?;
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// [`TargetParameter`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireTarget {
    Audience,
    Resource,
    Both,
}

impl WireTarget {
    /// `parameter` on the wire (`None` for a kind this protocol does not
    /// know).
    #[must_use]
    pub fn new(parameter: TargetParameter) -> Option<Self> {
        match parameter {
            TargetParameter::Audience => Some(WireTarget::Audience),
            TargetParameter::Resource => Some(WireTarget::Resource),
            TargetParameter::Both => Some(WireTarget::Both),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    #[must_use]
    pub fn get(self) -> TargetParameter {
        match self {
            WireTarget::Audience => TargetParameter::Audience,
            WireTarget::Resource => TargetParameter::Resource,
            WireTarget::Both => TargetParameter::Both,
        }
    }
}

/// [`ClientAuth`] on the wire: secrets as strings, a `private_key_jwt`
/// key as its PKCS#8 PEM. A key whose private half the caller cannot name
/// crosses as `Unavailable`, which the bridge refuses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireClientAuth {
    None,
    SecretBasic(String),
    SecretPost(String),
    PrivateKeyJwt {
        pkcs8_pem: String,
        kid: Option<String>,
    },
    /// Why it cannot cross.
    Unavailable(String),
}

impl WireClientAuth {
    /// `auth` on the wire; `key_pem` names the PKCS#8 PEM and `kid` of a
    /// `private_key_jwt` key (the key itself keeps its private half).
    pub fn new(
        auth: &ClientAuth,
        key_pem: impl FnOnce(&ClientAssertionKey) -> Option<(String, Option<String>)>,
    ) -> Self {
        match auth {
            ClientAuth::None => WireClientAuth::None,
            ClientAuth::SecretBasic(s) => WireClientAuth::SecretBasic(s.secret().to_owned()),
            ClientAuth::SecretPost(s) => WireClientAuth::SecretPost(s.secret().to_owned()),
            ClientAuth::PrivateKeyJwt(key) => match key_pem(key) {
                Some((pkcs8_pem, kid)) => WireClientAuth::PrivateKeyJwt { pkcs8_pem, kid },
                None => WireClientAuth::Unavailable(String::from(
                    "a private_key_jwt key whose PKCS#8 the driver does not know",
                )),
            },
            other => WireClientAuth::Unavailable(format!(
                "client authentication {} is not on the wire",
                other.method_name()
            )),
        }
    }

    /// The client authentication again.
    ///
    /// # Errors
    /// `Unavailable`, or a PEM that is not a P-256 key.
    pub fn get(&self) -> Result<ClientAuth, String> {
        Ok(match self {
            WireClientAuth::None => ClientAuth::None,
            WireClientAuth::SecretBasic(s) => ClientAuth::SecretBasic(ClientSecret::new(s.clone())),
            WireClientAuth::SecretPost(s) => ClientAuth::SecretPost(ClientSecret::new(s.clone())),
            WireClientAuth::PrivateKeyJwt { pkcs8_pem, kid } => {
                let key = DpopKey::from_pkcs8_pem(pkcs8_pem)
                    .map_err(|e| format!("the private_key_jwt key: {e}"))?;
                let mut key = ClientAssertionKey::new(P256Signer::new(key));
                if let Some(kid) = kid {
                    key = key.with_kid(kid.clone());
                }
                ClientAuth::PrivateKeyJwt(key)
            }
            WireClientAuth::Unavailable(why) => return Err(why.clone()),
        })
    }
}
