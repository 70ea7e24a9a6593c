//! The scenarios' [`Config`]: the core's configuration together with the
//! builder calls that made it, so that the Wasm driver can make the same
//! one inside the wasm module (the core's `Config` has no serde, and not a
//! getter for everything).
//!
//! [`Config::builder`] and every [`ConfigBuilder`] method mirror the
//! core's: each call goes to the core's builder and is recorded as a
//! [`ConfigCall`]; the bridge replays the calls on a core builder there.

use std::collections::BTreeMap;
use std::time::Duration;

use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::grant::{ClientAssertionKey, ClientAuth, TargetParameter};
use tokenkeeper_integration::{PKJWT_KID, PKJWT_PRIVATE_PEM_PATH};
use tokenkeeper_wasm_bridge::protocol::{
    ConfigCall, ConfigDescription, WireClientAuth, WireTarget, metadata_to_json,
};

/// A core configuration and how it was made.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the native adapters get.
    pub core: tokenkeeper::Config,
    /// What the wasm adapter gets (replayed in the module).
    pub description: ConfigDescription,
}

impl Config {
    /// `tokenkeeper::Config::builder`, recorded.
    pub fn builder(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
    ) -> ConfigBuilder {
        let (token_endpoint, client_id) = (token_endpoint.into(), client_id.into());
        ConfigBuilder {
            core: tokenkeeper::Config::builder(token_endpoint.clone(), client_id.clone()),
            description: ConfigDescription {
                token_endpoint,
                client_id,
                calls: Vec::new(),
            },
        }
    }
}

/// `tokenkeeper::ConfigBuilder`, each call recorded.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    core: tokenkeeper::ConfigBuilder,
    description: ConfigDescription,
}

macro_rules! recorded {
    ($($name:ident($value:ty) => $call:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, recorded.")]
            pub fn $name(mut self, value: $value) -> Self {
                self.description.calls.push(ConfigCall::$call(value.clone()));
                self.core = self.core.$name(value);
                self
            }
        )*
    };
}

macro_rules! recorded_text {
    ($($name:ident => $call:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`, recorded.")]
            pub fn $name(mut self, value: impl Into<String>) -> Self {
                let value = value.into();
                self.description.calls.push(ConfigCall::$call(value.clone()));
                self.core = self.core.$name(value);
                self
            }
        )*
    };
}

impl ConfigBuilder {
    recorded_text! {
        audience => Audience;
        scope => Scope;
        issuer => Issuer;
        revocation_endpoint => RevocationEndpoint;
        jwks_uri => JwksUri;
    }

    recorded! {
        scope_per_audience(BTreeMap<String, String>) => ScopePerAudience;
        merge_scopes(bool) => MergeScopes;
        refresh_buffer(Duration) => RefreshBuffer;
        refresh_buffer_secs(f64) => RefreshBufferSecs;
        default_lifetime(Duration) => DefaultLifetime;
        strict_scopes(bool) => StrictScopes;
        max_cache_entries(usize) => MaxCacheEntries;
        lease(Duration) => Lease;
        shared_store(bool) => SharedStore;
        dpop_nonce_capacity(usize) => DpopNonceCapacity;
        dpop_clock_skew(i64) => DpopClockSkew;
        clock_tolerance(Duration) => ClockTolerance;
        verify_id_token_signatures(bool) => VerifyIdTokenSignatures;
        jwks_ttl(Duration) => JwksTtl;
        jwks_refetch_interval(Duration) => JwksRefetchInterval;
    }

    /// `client_auth`; a `private_key_jwt` key crosses to the wasm adapter
    /// only when it is the harness's `pkjwt` key (see [`wire_client_auth`]).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        let wire = wire_client_auth(&auth);
        self.description.calls.push(ConfigCall::ClientAuth(wire));
        self.core = self.core.client_auth(auth);
        self
    }

    /// `target_parameter`.
    pub fn target_parameter(mut self, parameter: TargetParameter) -> Self {
        let wire = WireTarget::new(parameter).expect("a target parameter the wire knows");
        self.description
            .calls
            .push(ConfigCall::TargetParameter(wire));
        self.core = self.core.target_parameter(parameter);
        self
    }

    /// `metadata` (the document crosses and is validated again there).
    pub fn metadata(mut self, metadata: &AuthorizationServerMetadata) -> Self {
        self.description.calls.push(ConfigCall::Metadata {
            json: metadata_to_json(metadata),
            issuer: metadata.issuer.clone(),
        });
        self.core = self.core.metadata(metadata);
        self
    }

    /// `build`.
    ///
    /// # Errors
    /// The core builder's refusal.
    pub fn build(self) -> Result<Config, tokenkeeper::Error> {
        Ok(Config {
            core: self.core.build()?,
            description: self.description,
        })
    }
}

/// `auth` on the wire. A `ClientAssertionKey` does not give its private
/// key back, so a `private_key_jwt` key crosses only when it is the
/// harness's `pkjwt` key (compared by public key and `kid`), as the PEM it
/// was read from; any other crosses as `Unavailable` and the wasm driver's
/// build fails saying so.
pub fn wire_client_auth(auth: &ClientAuth) -> WireClientAuth {
    WireClientAuth::new(auth, |key: &ClientAssertionKey| {
        (*key == super::pkjwt_key()).then(|| {
            let pem = std::fs::read_to_string(PKJWT_PRIVATE_PEM_PATH).expect("pkjwt key file");
            (pem, Some(PKJWT_KID.to_owned()))
        })
    })
}
