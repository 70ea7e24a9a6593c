//! Configuration, validated once when built.

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::time::Duration;

use crate::error::Error;
use crate::grant::ClientAuth;
use crate::grant::refresh::TargetParameter;
use crate::limits::Limits;
use crate::scope::DEFAULT_SCOPE;

/// The default scope: one string for every audience, or one per audience
/// (the SDK's `authorizationParameters.scope` as a string or a map).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefaultScope {
    /// One scope for every audience.
    Single(String),
    /// A scope per audience. The default audience gets
    /// [`DEFAULT_SCOPE`] when the map has no entry for it; other audiences
    /// without an entry get no default scope.
    PerAudience(BTreeMap<String, String>),
}

/// A validated configuration. Build it with [`Config::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) token_endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_auth: ClientAuth,
    pub(crate) default_audience: Option<String>,
    pub(crate) default_scope: DefaultScope,
    /// Whether the single default scope is already in merged form (its
    /// tokens once each, single-space separated): a request that adds no
    /// scope then wants it as it is, with no merge (set by `build`).
    pub(crate) default_scope_normalized: bool,
    pub(crate) merge_scopes: bool,
    pub(crate) refresh_buffer: Duration,
    pub(crate) default_lifetime: Duration,
    pub(crate) target_parameter: TargetParameter,
    pub(crate) strict_scopes: bool,
    pub(crate) max_cache_entries: usize,
    pub(crate) lease: Duration,
    pub(crate) session_ceiling_leeway: Duration,
    pub(crate) limits: Limits,
    pub(crate) issuer: Option<String>,
    pub(crate) revocation_endpoint: Option<String>,
    pub(crate) clock_tolerance: Duration,
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) require_iss: bool,
    pub(crate) supported_auth_methods: Option<alloc::vec::Vec<String>>,
    pub(crate) shared_store: bool,
    pub(crate) nonce_capacity: usize,
    pub(crate) dpop_clock_skew: i64,
    /// The issuer's JWKS (from discovery, or configured): ID tokens from
    /// the token endpoint have their signatures checked against it.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) jwks_uri: Option<String>,
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) verify_id_token_signatures: bool,
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) jwks_ttl: Duration,
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) jwks_refetch_interval: Duration,
}

impl Config {
    /// Starts a configuration for a client at a token endpoint.
    pub fn builder(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
    ) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                token_endpoint: token_endpoint.into(),
                client_id: client_id.into(),
                client_auth: ClientAuth::None,
                default_audience: None,
                default_scope: DefaultScope::Single(String::from(DEFAULT_SCOPE)),
                default_scope_normalized: false,
                merge_scopes: true,
                refresh_buffer: Duration::ZERO,
                default_lifetime: Duration::from_secs(3600),
                target_parameter: TargetParameter::Audience,
                strict_scopes: false,
                max_cache_entries: 50,
                lease: Duration::from_secs(60),
                session_ceiling_leeway: Duration::from_secs(30),
                limits: Limits::default(),
                issuer: None,
                revocation_endpoint: None,
                clock_tolerance: Duration::from_secs(60),
                require_iss: false,
                supported_auth_methods: None,
                shared_store: false,
                nonce_capacity: crate::dpop::DEFAULT_NONCE_CAPACITY,
                dpop_clock_skew: 0,
                jwks_uri: None,
                verify_id_token_signatures: true,
                jwks_ttl: Duration::from_secs(600),
                jwks_refetch_interval: Duration::from_secs(60),
            },
            problem: None,
        }
    }

    /// The token endpoint URL.
    #[must_use]
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The default audience.
    #[must_use]
    pub fn default_audience(&self) -> Option<&str> {
        self.default_audience.as_deref()
    }

    /// The limits on external input.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How long a request in flight holds its slot
    /// ([`ConfigBuilder::lease`]). Adapters keep their transport timeout
    /// shorter, so no answer arrives after its lease ran out.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The issuer's `jwks_uri`, when known (from discovery or
    /// [`ConfigBuilder::jwks_uri`]).
    #[must_use]
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// Whether the signatures of ID tokens from the token endpoint are
    /// checked against the issuer's JWKS: with the `login` feature, when a
    /// `jwks_uri` is known and [`ConfigBuilder::verify_id_token_signatures`]
    /// was not turned off.
    #[must_use]
    pub fn verifies_id_token_signatures(&self) -> bool {
        cfg!(feature = "login") && self.verify_id_token_signatures && self.jwks_uri.is_some()
    }

    /// The issuer, when configured (ID tokens are validated against it).
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The client authentication method.
    #[must_use]
    pub fn client_auth(&self) -> &ClientAuth {
        &self.client_auth
    }

    /// The default scope for `audience` (`None`: the default audience).
    #[must_use]
    pub fn scope_for(&self, audience: Option<&str>) -> &str {
        match &self.default_scope {
            DefaultScope::Single(scope) => scope,
            DefaultScope::PerAudience(map) => {
                let audience = audience.or(self.default_audience.as_deref());
                match audience.and_then(|a| map.get(a)) {
                    Some(scope) => scope,
                    None if audience == self.default_audience.as_deref() => DEFAULT_SCOPE,
                    None => "",
                }
            }
        }
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    problem: Option<&'static str>,
}

impl ConfigBuilder {
    /// How the client authenticates (default: a public client).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.config.client_auth = auth;
        self
    }

    /// The default audience (the API the login token is for).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.config.default_audience = Some(audience.into());
        self
    }

    /// The default scope for every audience (default
    /// `openid profile email offline_access`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.config.default_scope = DefaultScope::Single(scope.into());
        self
    }

    /// A default scope per audience. Needs a default audience.
    pub fn scope_per_audience(mut self, scopes: BTreeMap<String, String>) -> Self {
        self.config.default_scope = DefaultScope::PerAudience(scopes);
        self
    }

    /// Whether requested scopes are merged with the default scope (default
    /// `true`); `false` sends only the scopes asked for.
    pub fn merge_scopes(mut self, merge: bool) -> Self {
        self.config.merge_scopes = merge;
        self
    }

    /// Refresh this long before expiry when a refresh token exists (the SDK's
    /// `tokenRefreshBuffer`; default zero).
    ///
    /// The buffer applied to a token is capped at **half the lifetime the
    /// server granted it** (`expires_in`, kept in the session as
    /// `expiresIn`): with 60 s tokens and a 120 s buffer, a token just
    /// obtained is served for 30 s instead of every call refreshing (the
    /// seed SDK refreshes on every call then). Sessions written without
    /// `expiresIn` (by another SDK) use the buffer as configured.
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.config.refresh_buffer = buffer;
        self
    }

    /// The refresh buffer from a number of seconds as read from a
    /// configuration file; negative, NaN or infinite values are rejected by
    /// [`ConfigBuilder::build`].
    pub fn refresh_buffer_secs(mut self, secs: f64) -> Self {
        if secs.is_finite() && secs >= 0.0 && secs <= u32::MAX as f64 {
            self.config.refresh_buffer = Duration::from_secs_f64(secs);
        } else {
            self.problem = Some("tokenRefreshBuffer must be a non-negative number of seconds.");
        }
        self
    }

    /// The lifetime assumed when a token response has no `expires_in`
    /// (default one hour; must be positive).
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.default_lifetime = lifetime;
        self
    }

    /// How the target API is named in token requests: `audience` (Auth0
    /// and the SDK; the default), `resource` (RFC 8707 resource
    /// indicators: node-oidc-provider, and servers whose metadata says
    /// `resource_indicators_supported`, which [`ConfigBuilder::metadata`]
    /// picks up — call this after it to override), or both.
    ///
    /// A server that does not understand the parameter sent ignores it and
    /// answers with a token for its default API. When that token is a JWT
    /// access token (RFC 9068) whose `aud` does not name the audience asked
    /// for, the request fails with `access_token_audience_mismatch` instead
    /// of caching it under the wrong API.
    pub fn target_parameter(mut self, parameter: TargetParameter) -> Self {
        self.config.target_parameter = parameter;
        self
    }

    /// Strict scopes: fewer scopes granted than asked is a `missing_scopes`
    /// error, on the refresh that got the token and on every later call
    /// that would be answered with it from the cache (the token is stored
    /// all the same, so those calls do not refresh again; a forced refresh
    /// asks the server anew). Default off.
    pub fn strict_scopes(mut self, strict: bool) -> Self {
        self.config.strict_scopes = strict;
        self
    }

    /// The most per-audience cache entries kept (default 50; at least 1).
    /// The least recently used entry goes first. The Token Vault's
    /// connection tokens (`connectionTokenSets`) are capped at the same
    /// number; there the one that expires first goes.
    pub fn max_cache_entries(mut self, max: usize) -> Self {
        self.config.max_cache_entries = max;
        self
    }

    /// How long a request in flight holds its slot before
    /// [`handle_timeout`](crate::TokenManager::handle_timeout) releases it
    /// (default 60 s; keep it longer than the transport timeout).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// Limits on external input.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The issuer (needed to validate ID tokens at login and refresh, and
    /// as the audience of `private_key_jwt` assertions).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.config.issuer = Some(issuer.into());
        self
    }

    /// The revocation endpoint (RFC 7009), for logout.
    pub fn revocation_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.revocation_endpoint = Some(endpoint.into());
        self
    }

    /// The session lives in a store shared by several processes (or several
    /// managers): before a refresh is sent, the manager claims the refresh
    /// token in the session (an event asks the host to save it with
    /// compare-and-swap first); a manager that finds another's live claim
    /// answers [`Action::Reload`](crate::Action::Reload) instead of spending
    /// the same token. Default off.
    pub fn shared_store(mut self, shared: bool) -> Self {
        self.config.shared_store = shared;
        self
    }

    /// How many origins' DPoP nonces are remembered (default 100; the least
    /// recently used goes first).
    pub fn dpop_nonce_capacity(mut self, capacity: usize) -> Self {
        self.config.nonce_capacity = capacity;
        self
    }

    /// Seconds added to `now` for DPoP proofs' `iat` (may be negative), for
    /// hosts whose clock is known to be off.
    pub fn dpop_clock_skew(mut self, seconds: i64) -> Self {
        self.config.dpop_clock_skew = seconds;
        self
    }

    /// Clock tolerance for ID token `exp`/`iat` checks (default 60 s).
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.config.clock_tolerance = tolerance;
        self
    }

    /// The issuer's JWKS URL. With it (and the `login` feature) every ID
    /// token from the token endpoint, at login and on refresh, has its
    /// `RS256`/`ES256` signature checked against the issuer's keys, which
    /// the manager asks the host to fetch (see
    /// [`Completion::Resend`](crate::Completion::Resend)) and caches.
    /// [`ConfigBuilder::metadata`] sets it from discovery's `jwks_uri`.
    pub fn jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.config.jwks_uri = Some(jwks_uri.into());
        self
    }

    /// Whether ID token signatures are checked when a `jwks_uri` is known
    /// (default `true`). OIDC Core §3.1.3.7 allows skipping the check for
    /// an ID token received straight from the token endpoint over TLS;
    /// checking anyway is the secure default (a token endpoint behind a
    /// TLS-terminating proxy, a mis-routed request, or a compromised
    /// internal hop cannot forge an identity), at the cost of one JWKS
    /// fetch per TTL.
    pub fn verify_id_token_signatures(mut self, verify: bool) -> Self {
        self.config.verify_id_token_signatures = verify;
        self
    }

    /// How long fetched keys are used (default 10 minutes).
    pub fn jwks_ttl(mut self, ttl: Duration) -> Self {
        self.config.jwks_ttl = ttl;
        self
    }

    /// The least time between two JWKS fetches caused by an unknown `kid`
    /// (default 60 s): a key rotation is picked up at once, a flood of
    /// made-up `kid`s causes at most one fetch per interval.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.config.jwks_refetch_interval = interval;
        self
    }

    /// Takes the endpoints, issuer and `jwks_uri` (ID token signatures are
    /// then checked, see [`ConfigBuilder::jwks_uri`]) from discovered
    /// metadata, requires
    /// the `iss` callback parameter when the server announces it (RFC 9207),
    /// and remembers the advertised client authentication methods so
    /// [`ConfigBuilder::build`] can refuse an unsupported one.
    #[cfg(feature = "discovery")]
    #[cfg_attr(docsrs, doc(cfg(feature = "discovery")))]
    pub fn metadata(mut self, metadata: &crate::discovery::AuthorizationServerMetadata) -> Self {
        self.config.token_endpoint = metadata.token_endpoint.clone();
        self.config.issuer = Some(metadata.issuer.clone());
        if let Some(jwks_uri) = &metadata.jwks_uri {
            self.config.jwks_uri = Some(jwks_uri.clone());
        }
        if let Some(revocation) = &metadata.revocation_endpoint {
            self.config.revocation_endpoint = Some(revocation.clone());
        }
        self.config.require_iss = metadata.authorization_response_iss_parameter_supported;
        // RFC 8707 has no registered metadata member; servers that announce
        // resource indicators do so with `resource_indicators_supported`.
        // Such a server gets `resource` (an `audience` it would ignore).
        if metadata
            .extra
            .get("resource_indicators_supported")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            self.config.target_parameter = crate::grant::refresh::TargetParameter::Resource;
        }
        self.config.supported_auth_methods = metadata.token_endpoint_auth_methods_supported.clone();
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] naming the problem.
    pub fn build(self) -> Result<Config, Error> {
        let invalid = |why: &str| Err(Error::InvalidConfiguration(String::from(why)));
        if let Some(problem) = self.problem {
            return invalid(problem);
        }
        let c = &self.config;
        if !is_http_url(&c.token_endpoint) {
            return invalid("the token endpoint must be an absolute http(s) URL");
        }
        if c.client_id.is_empty() {
            return invalid("the client id is empty");
        }
        if c.default_lifetime.as_secs() == 0 {
            return invalid("the default token lifetime must be at least one second");
        }
        if c.max_cache_entries == 0 {
            return invalid("the cache must hold at least one entry");
        }
        if c.lease.as_secs() == 0 {
            return invalid("the lease must be at least one second");
        }
        if matches!(c.client_auth, ClientAuth::PrivateKeyJwt(_)) && c.issuer.is_none() {
            return invalid("private_key_jwt needs the issuer (the assertions' audience)");
        }
        if let Some(jwks_uri) = &c.jwks_uri
            && !is_http_url(jwks_uri)
        {
            return invalid("the jwks_uri must be an absolute http(s) URL");
        }
        if let Some(endpoint) = &c.revocation_endpoint
            && !is_http_url(endpoint)
        {
            return invalid("the revocation endpoint must be an absolute http(s) URL");
        }
        if let Some(methods) = &c.supported_auth_methods
            && !methods.iter().any(|m| m == c.client_auth.method_name())
        {
            return Err(Error::InvalidConfiguration(alloc::format!(
                "the authorization server does not support the client authentication method {}",
                c.client_auth.method_name()
            )));
        }
        if matches!(c.default_scope, DefaultScope::PerAudience(_)) && c.default_audience.is_none() {
            return invalid("When defining scope as a Map, an audience is required.");
        }
        let mut config = self.config;
        config.default_scope_normalized = match &config.default_scope {
            DefaultScope::Single(scope) => crate::scope::normalize(scope) == *scope,
            DefaultScope::PerAudience(_) => false,
        };
        Ok(config)
    }
}

/// Whether `url` parses as an absolute `http` or `https` URL with a host.
#[cfg(feature = "url")]
pub(crate) fn is_http_url(url: &str) -> bool {
    url::Url::parse(url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .unwrap_or(false)
}

/// Whether `url` is an `http` or `https` URL in the canonical form that
/// needs no parser (the feature `url` is off; see [`crate::dpop::htu`]).
#[cfg(not(feature = "url"))]
pub(crate) fn is_http_url(url: &str) -> bool {
    crate::dpop::htu(url).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ConfigBuilder {
        Config::builder("https://as.example/oauth/token", "client")
    }

    #[test]
    fn refresh_buffer_validation() {
        assert!(builder().refresh_buffer_secs(0.0).build().is_ok());
        assert_eq!(
            builder()
                .refresh_buffer_secs(60.0)
                .build()
                .unwrap()
                .refresh_buffer,
            Duration::from_secs(60)
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = builder().refresh_buffer_secs(bad).build().unwrap_err();
            assert_eq!(err.code(), "invalid_configuration");
            assert!(
                alloc::string::ToString::to_string(&err).contains("non-negative"),
                "{err}"
            );
        }
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::builder("not a url", "c").build().is_err());
        assert!(Config::builder("ftp://x/token", "c").build().is_err());
        assert!(Config::builder("https://x/token", "").build().is_err());
        assert!(builder().default_lifetime(Duration::ZERO).build().is_err());
        assert!(builder().max_cache_entries(0).build().is_err());
        assert!(builder().lease(Duration::ZERO).build().is_err());
        assert!(
            builder()
                .scope_per_audience(BTreeMap::new())
                .build()
                .is_err()
        );
    }

    #[test]
    fn scope_resolution() {
        let c = builder().build().unwrap();
        assert_eq!(c.scope_for(None), DEFAULT_SCOPE);
        assert_eq!(c.scope_for(Some("https://other")), DEFAULT_SCOPE);

        let mut map = BTreeMap::new();
        map.insert(
            String::from("https://api1"),
            String::from("openid read:data"),
        );
        map.insert(String::from("https://api2"), String::from("write:data"));
        let c = builder()
            .audience("https://api1")
            .scope_per_audience(map.clone())
            .build()
            .unwrap();
        assert_eq!(c.scope_for(None), "openid read:data");
        assert_eq!(c.scope_for(Some("https://api2")), "write:data");
        assert_eq!(c.scope_for(Some("https://api3")), "");
        map.remove("https://api1");
        let c = builder()
            .audience("https://api1")
            .scope_per_audience(map)
            .build()
            .unwrap();
        assert_eq!(c.scope_for(None), DEFAULT_SCOPE);
    }
}
