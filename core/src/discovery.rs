//! Authorization server metadata: OpenID Connect Discovery 1.0 and RFC 8414.
//!
//! # Call order
//!
//! ```text
//! DiscoveryCache::new(issuer, kind)
//!   poll_request(now) ─► Some(HttpRequest)       nothing fresh and nothing in flight
//!   …the host sends it…
//!   handle_response(&response, sent_at, limits) ─► Ok(&AuthorizationServerMetadata)
//!     or handle_transport_error()                 the fetch may be retried
//!   fresh_metadata(now) / metadata()             read it
//!   poll_timeout() ─► handle_timeout(now)         the TTL ran out: fetch again
//! ```
//!
//! Or without a cache: [`discovery_request`], then
//! [`AuthorizationServerMetadata::parse`]. Servers with fixed, well-known
//! endpoints (Auth0) need no discovery at all: [`Endpoints::auth0`].
//!
//! Validation is strict where it protects the client: the document's
//! `issuer` must equal the configured issuer byte for byte (OIDC Discovery
//! §4.3, RFC 8414 §3.3, the defence against mix-up attacks), endpoints must
//! be absolute `http(s)` URLs — and `https` for an `https` issuer unless the
//! host is loopback (`127.0.0.0/8`, `[::1]`, `localhost`) — and each known
//! member must have its registered type. URLs are kept exactly as received, never normalised.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use serde_json::{Map, Value};

use crate::error::ResponseError;
use crate::http::{Headers, HttpRequest, HttpResponse, Method};
use crate::limits::{Limits, json_depth_exceeds};
use crate::time::UnixTime;

/// Which well-known document to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DiscoveryKind {
    /// `/.well-known/openid-configuration`, appended to the issuer's path
    /// (OpenID Connect Discovery 1.0 §4). The default, as the SDK.
    #[default]
    OpenIdConnect,
    /// `/.well-known/oauth-authorization-server`, inserted between the host
    /// and the issuer's path (RFC 8414 §3.1).
    OAuth2,
}

impl DiscoveryKind {
    /// The well-known suffix, without slashes.
    #[must_use]
    pub fn well_known(self) -> &'static str {
        match self {
            DiscoveryKind::OpenIdConnect => "openid-configuration",
            DiscoveryKind::OAuth2 => "oauth-authorization-server",
        }
    }
}

pub use crate::error::DiscoveryError;

/// Whether `value` is an absolute `http`/`https` URL with a host, written
/// without surrounding whitespace or control characters (so that what is
/// sent is exactly what was given).
pub(crate) fn is_http_url(value: &str) -> bool {
    if value.is_empty()
        || value
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return false;
    }
    match url::Url::parse(value) {
        Ok(url) => {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|h| !h.is_empty())
                // `url` accepts `https:host` and `https:/host`; require `//`.
                && value
                    .get(url.scheme().len()..)
                    .is_some_and(|rest| rest.starts_with("://") && !rest.starts_with(":///"))
        }
        Err(_) => false,
    }
}

/// Whether `value` (an [`is_http_url`] URL) is `https`, or plain `http` on
/// a loopback host: `127.0.0.0/8`, `[::1]` or `localhost` (RFC 8252 §8.3,
/// RFC 6761 §6.3). Anything else over `http` sends its secrets in clear.
pub(crate) fn is_secure_or_loopback(value: &str) -> bool {
    let Ok(url) = url::Url::parse(value) else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.octets()[0] == 127,
            Some(url::Host::Ipv6(ip)) => ip == core::net::Ipv6Addr::LOCALHOST,
            // `url` lower-cases domains.
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// Checks an issuer identifier: an absolute `http(s)` URL without query or
/// fragment (RFC 8414 §2; OIDC Core §2 requires `https`, `http` is allowed
/// here for local test servers).
///
/// # Errors
/// [`DiscoveryError::InvalidIssuer`].
pub fn validate_issuer(issuer: &str) -> Result<(), DiscoveryError> {
    if !is_http_url(issuer) {
        return Err(DiscoveryError::InvalidIssuer(
            "it must be an absolute http(s) URL",
        ));
    }
    if issuer.contains('?') || issuer.contains('#') {
        return Err(DiscoveryError::InvalidIssuer(
            "it must not have a query or a fragment",
        ));
    }
    Ok(())
}

/// The URL of the discovery document for `issuer`, built on the issuer's
/// string so nothing is normalised.
///
/// - OIDC: appended to the path; a trailing slash is not doubled
///   (`https://as.example/tenant1` and `https://as.example/tenant1/` →
///   `https://as.example/tenant1/.well-known/openid-configuration`).
/// - RFC 8414: inserted between host and path, the path's terminating
///   slash removed (§3.1) (`https://as.example/tenant1` and
///   `https://as.example/tenant1/` →
///   `https://as.example/.well-known/oauth-authorization-server/tenant1`).
///
/// # Errors
/// [`DiscoveryError::InvalidIssuer`].
pub fn discovery_url(issuer: &str, kind: DiscoveryKind) -> Result<String, DiscoveryError> {
    validate_issuer(issuer)?;
    let well_known = kind.well_known();
    Ok(match kind {
        DiscoveryKind::OpenIdConnect => {
            let base = issuer.strip_suffix('/').unwrap_or(issuer);
            alloc::format!("{base}/.well-known/{well_known}")
        }
        DiscoveryKind::OAuth2 => {
            // `is_http_url` guarantees "scheme://"; the path starts at the
            // first '/' after it.
            let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
            let path_start = issuer[after_scheme..]
                .find('/')
                .map_or(issuer.len(), |i| after_scheme + i);
            let (origin, path) = issuer.split_at(path_start);
            // RFC 8414 §3.1: "any terminating '/' MUST be removed".
            let path = path.strip_suffix('/').unwrap_or(path);
            if path.is_empty() {
                alloc::format!("{origin}/.well-known/{well_known}")
            } else {
                alloc::format!("{origin}/.well-known/{well_known}{path}")
            }
        }
    })
}

/// The `GET` request for `issuer`'s discovery document.
///
/// # Errors
/// [`DiscoveryError::InvalidIssuer`].
pub fn discovery_request(issuer: &str, kind: DiscoveryKind) -> Result<HttpRequest, DiscoveryError> {
    let url = discovery_url(issuer, kind)?;
    let mut headers = Headers::new();
    headers.append("Accept", "application/json");
    Ok(HttpRequest {
        method: Method::GET,
        url,
        headers,
        body: Vec::new(),
    })
}

/// Authorization server metadata, validated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// `issuer`: equal to the configured issuer.
    pub issuer: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<String>,
    /// `end_session_endpoint` (RP-initiated logout).
    pub end_session_endpoint: Option<String>,
    /// `token_endpoint_auth_methods_supported` (`None`: not advertised).
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// `dpop_signing_alg_values_supported` (RFC 9449).
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// `code_challenge_methods_supported` (RFC 7636).
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// `grant_types_supported`.
    pub grant_types_supported: Option<Vec<String>>,
    /// `scopes_supported`.
    pub scopes_supported: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207; absent
    /// reads as `false`).
    pub authorization_response_iss_parameter_supported: bool,
    /// Every other member, as sent.
    pub extra: Map<String, Value>,
}

const ENDPOINT_MEMBERS: [&str; 5] = [
    "authorization_endpoint",
    "revocation_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
];

const LIST_MEMBERS: [&str; 5] = [
    "token_endpoint_auth_methods_supported",
    "dpop_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "grant_types_supported",
    "scopes_supported",
];

impl AuthorizationServerMetadata {
    /// Parses and validates a discovery response. `expected_issuer` is the
    /// issuer the request was built from; the document's `issuer` must equal
    /// it byte for byte.
    ///
    /// # Errors
    /// A [`DiscoveryError`] naming what is wrong.
    pub fn parse(
        response: &HttpResponse,
        expected_issuer: &str,
        limits: &Limits,
    ) -> Result<Self, DiscoveryError> {
        limits
            .check_response(response)
            .map_err(DiscoveryError::Limit)?;
        if !response.is_success() {
            return Err(DiscoveryError::HttpStatus {
                status: response.status,
            });
        }
        Self::from_json(&response.body, expected_issuer, limits)
    }

    /// Parses and validates a metadata document (the body alone, e.g. kept
    /// from an earlier fetch).
    ///
    /// # Errors
    /// As [`AuthorizationServerMetadata::parse`].
    pub fn from_json(
        json: &[u8],
        expected_issuer: &str,
        limits: &Limits,
    ) -> Result<Self, DiscoveryError> {
        if json.len() > limits.max_body_bytes {
            return Err(DiscoveryError::Limit(ResponseError::TooLarge {
                limit: limits.max_body_bytes,
            }));
        }
        if json_depth_exceeds(json, limits.max_json_depth) {
            return Err(DiscoveryError::Limit(ResponseError::Malformed {
                status: 200,
                reason: "JSON nesting is deeper than the limit",
            }));
        }
        let mut object = match crate::limits::from_json_slice::<Value>(json) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(DiscoveryError::NotAnObject),
            Err(_) => return Err(DiscoveryError::NotJson),
        };

        let issuer = match object.remove("issuer") {
            None | Some(Value::Null) => return Err(DiscoveryError::MissingIssuer),
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(DiscoveryError::InvalidMember {
                    member: "issuer",
                    expected: "a string",
                });
            }
        };
        if issuer != expected_issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: String::from(expected_issuer),
                received: issuer,
            });
        }
        let token_endpoint = take_endpoint(&mut object, "token_endpoint")?
            .ok_or(DiscoveryError::MissingTokenEndpoint)?;
        let [
            authorization_endpoint,
            revocation_endpoint,
            jwks_uri,
            userinfo_endpoint,
            end_session_endpoint,
        ] = {
            let mut found: [Option<String>; 5] = Default::default();
            for (slot, member) in found.iter_mut().zip(ENDPOINT_MEMBERS) {
                *slot = take_endpoint(&mut object, member)?;
            }
            found
        };
        let [
            token_endpoint_auth_methods_supported,
            dpop_signing_alg_values_supported,
            code_challenge_methods_supported,
            grant_types_supported,
            scopes_supported,
        ] = {
            let mut found: [Option<Vec<String>>; 5] = Default::default();
            for (slot, member) in found.iter_mut().zip(LIST_MEMBERS) {
                *slot = take_string_list(&mut object, member)?;
            }
            found
        };
        let authorization_response_iss_parameter_supported =
            match object.remove("authorization_response_iss_parameter_supported") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => b,
                Some(_) => {
                    return Err(DiscoveryError::InvalidMember {
                        member: "authorization_response_iss_parameter_supported",
                        expected: "a boolean",
                    });
                }
            };
        let metadata = AuthorizationServerMetadata {
            issuer,
            token_endpoint,
            authorization_endpoint,
            revocation_endpoint,
            jwks_uri,
            userinfo_endpoint,
            end_session_endpoint,
            token_endpoint_auth_methods_supported,
            dpop_signing_alg_values_supported,
            code_challenge_methods_supported,
            grant_types_supported,
            scopes_supported,
            authorization_response_iss_parameter_supported,
            extra: object,
        };
        metadata.check_endpoints_secure()?;
        Ok(metadata)
    }

    /// Refuses a plain `http` endpoint (one not on a loopback host) in the
    /// metadata of an `https` issuer: the token endpoint receives refresh
    /// tokens, codes and client secrets, and a downgraded document must not
    /// send them in clear. An issuer configured as `http` (a local test
    /// server) is itself in clear, and its endpoints are taken as they are.
    ///
    /// # Errors
    /// [`DiscoveryError::InsecureEndpoint`] naming the first such member.
    pub fn check_endpoints_secure(&self) -> Result<(), DiscoveryError> {
        if url::Url::parse(&self.issuer).is_ok_and(|issuer| issuer.scheme() == "http") {
            return Ok(());
        }
        let endpoints = [
            ("token_endpoint", Some(&self.token_endpoint)),
            (
                "authorization_endpoint",
                self.authorization_endpoint.as_ref(),
            ),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
            ("jwks_uri", self.jwks_uri.as_ref()),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
            ("end_session_endpoint", self.end_session_endpoint.as_ref()),
        ];
        match endpoints
            .into_iter()
            .find(|(_, url)| url.is_some_and(|url| !is_secure_or_loopback(url)))
        {
            Some((member, _)) => Err(DiscoveryError::InsecureEndpoint { member }),
            None => Ok(()),
        }
    }

    /// The endpoints named by this document.
    #[must_use]
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            issuer: self.issuer.clone(),
            token_endpoint: self.token_endpoint.clone(),
            authorization_endpoint: self.authorization_endpoint.clone(),
            revocation_endpoint: self.revocation_endpoint.clone(),
            userinfo_endpoint: self.userinfo_endpoint.clone(),
            jwks_uri: self.jwks_uri.clone(),
            end_session_endpoint: self.end_session_endpoint.clone(),
        }
    }

    /// Whether the server advertises PKCE `S256`. `None` when it does not
    /// list `code_challenge_methods_supported` at all (many servers support
    /// PKCE without saying so).
    #[must_use]
    pub fn supports_s256(&self) -> Option<bool> {
        self.code_challenge_methods_supported
            .as_ref()
            .map(|methods| methods.iter().any(|m| m == "S256"))
    }
}

fn take_endpoint(
    object: &mut Map<String, Value>,
    member: &'static str,
) -> Result<Option<String>, DiscoveryError> {
    match object.remove(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_http_url(&s) => Ok(Some(s)),
        Some(Value::String(_)) => Err(DiscoveryError::InvalidEndpoint { member }),
        Some(_) => Err(DiscoveryError::InvalidMember {
            member,
            expected: "a string",
        }),
    }
}

fn take_string_list(
    object: &mut Map<String, Value>,
    member: &'static str,
) -> Result<Option<Vec<String>>, DiscoveryError> {
    let invalid = DiscoveryError::InvalidMember {
        member,
        expected: "an array of strings",
    };
    match object.remove(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(invalid.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid),
    }
}

/// Refuses a client authentication method the server does not list in
/// `token_endpoint_auth_methods_supported`. When the server does not
/// advertise the list, anything is accepted (RFC 8414 §2 then implies only
/// `client_secret_basic`, but real servers routinely omit the member).
///
/// `method_name` is the registered name, e.g.
/// [`ClientAuth::method_name`](crate::grant::ClientAuth::method_name).
///
/// # Errors
/// [`DiscoveryError::UnsupportedAuthMethod`].
pub fn check_auth_method(
    metadata: &AuthorizationServerMetadata,
    method_name: &str,
) -> Result<(), DiscoveryError> {
    match &metadata.token_endpoint_auth_methods_supported {
        Some(supported) if !supported.iter().any(|m| m == method_name) => {
            Err(DiscoveryError::UnsupportedAuthMethod {
                method: String::from(method_name),
                supported: supported.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// The endpoints a client talks to, from discovery or fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// The issuer identifier (ID tokens' `iss`).
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// The revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// The userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// The JWKS URI.
    pub jwks_uri: Option<String>,
    /// The RP-initiated logout endpoint.
    pub end_session_endpoint: Option<String>,
}

impl Endpoints {
    /// Auth0's fixed endpoints for a tenant or custom domain, usable without
    /// discovery: issuer `https://{domain}/`, `https://{domain}/oauth/token`,
    /// `/oauth/revoke`, `/authorize`, `/userinfo`, `/.well-known/jwks.json`.
    /// `end_session_endpoint` is left unset: Auth0 only serves
    /// `/oidc/logout` when RP-initiated logout is enabled, so take it from
    /// discovery.
    ///
    /// `domain` is a host name with an optional port (`tenant.auth0.com`,
    /// `login.example.com:8443`); an `https://` prefix and a trailing `/`
    /// are accepted and dropped.
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidDomain`].
    pub fn auth0(domain: &str) -> Result<Self, DiscoveryError> {
        let host = domain.strip_prefix("https://").unwrap_or(domain);
        let host = host.strip_suffix('/').unwrap_or(host);
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'))
            && !host.starts_with(['.', ':', '-'])
            && is_http_url(&alloc::format!("https://{host}/"));
        if !valid {
            return Err(DiscoveryError::InvalidDomain);
        }
        let at = |path: &str| alloc::format!("https://{host}{path}");
        Ok(Endpoints {
            issuer: at("/"),
            token_endpoint: at("/oauth/token"),
            authorization_endpoint: Some(at("/authorize")),
            revocation_endpoint: Some(at("/oauth/revoke")),
            userinfo_endpoint: Some(at("/userinfo")),
            jwks_uri: Some(at("/.well-known/jwks.json")),
            end_session_endpoint: None,
        })
    }
}

/// The default time metadata stays fresh: 600 s, as the SDK's discovery cache.
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(600);

/// A sans-IO cache of one issuer's metadata: it says when to fetch, builds
/// the request, and keeps the answer for a TTL. Never more than one fetch is
/// in flight. A failed fetch keeps the previous metadata (stale metadata
/// stays readable through [`DiscoveryCache::metadata`]).
#[derive(Clone)]
pub struct DiscoveryCache {
    issuer: String,
    kind: DiscoveryKind,
    ttl: Duration,
    entry: Option<CacheEntry>,
    in_flight: bool,
}

#[derive(Clone)]
struct CacheEntry {
    metadata: AuthorizationServerMetadata,
    fetched_at: UnixTime,
    expired: bool,
}

impl DiscoveryCache {
    /// An empty cache for `issuer`.
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidIssuer`].
    pub fn new(issuer: &str, kind: DiscoveryKind) -> Result<Self, DiscoveryError> {
        validate_issuer(issuer)?;
        Ok(DiscoveryCache {
            issuer: String::from(issuer),
            kind,
            ttl: DEFAULT_DISCOVERY_TTL,
            entry: None,
            in_flight: false,
        })
    }

    /// With another TTL (default [`DEFAULT_DISCOVERY_TTL`]).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The TTL.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The discovery request (whatever the cache state; does not mark a
    /// fetch in flight).
    #[must_use]
    pub fn request(&self) -> HttpRequest {
        // The issuer was validated in `new`, so this cannot fail; fall back
        // to a request for the issuer itself rather than panic.
        discovery_request(&self.issuer, self.kind).unwrap_or_else(|_| HttpRequest {
            method: Method::GET,
            url: self.issuer.clone(),
            headers: Headers::new(),
            body: Vec::new(),
        })
    }

    /// The request to send when the metadata is missing or stale and no
    /// fetch is in flight; marks a fetch in flight. `None` otherwise.
    #[must_use]
    pub fn poll_request(&mut self, now: UnixTime) -> Option<HttpRequest> {
        if self.in_flight || self.is_fresh(now) {
            return None;
        }
        self.in_flight = true;
        Some(self.request())
    }

    /// Whether a fetch is in flight.
    #[must_use]
    pub fn is_fetching(&self) -> bool {
        self.in_flight
    }

    /// Takes the discovery response. `fetched_at` should be the time the
    /// request was sent (the TTL counts from it). On success the metadata
    /// replaces what was cached; on failure the old metadata is kept.
    ///
    /// # Errors
    /// As [`AuthorizationServerMetadata::parse`].
    pub fn handle_response(
        &mut self,
        response: &HttpResponse,
        fetched_at: UnixTime,
        limits: &Limits,
    ) -> Result<&AuthorizationServerMetadata, DiscoveryError> {
        self.in_flight = false;
        let metadata = AuthorizationServerMetadata::parse(response, &self.issuer, limits)?;
        Ok(self.insert(metadata, fetched_at))
    }

    /// The fetch could not be completed; a later [`poll_request`] asks again.
    ///
    /// [`poll_request`]: DiscoveryCache::poll_request
    pub fn handle_transport_error(&mut self) {
        self.in_flight = false;
    }

    /// Stores metadata obtained elsewhere (persisted, or configured).
    ///
    /// # Errors
    /// [`DiscoveryError::IssuerMismatch`] when it names another issuer,
    /// [`DiscoveryError::InsecureEndpoint`] as for a fetched document.
    pub fn set(
        &mut self,
        metadata: AuthorizationServerMetadata,
        fetched_at: UnixTime,
    ) -> Result<&AuthorizationServerMetadata, DiscoveryError> {
        if metadata.issuer != self.issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: self.issuer.clone(),
                received: metadata.issuer,
            });
        }
        metadata.check_endpoints_secure()?;
        Ok(self.insert(metadata, fetched_at))
    }

    fn insert(
        &mut self,
        metadata: AuthorizationServerMetadata,
        fetched_at: UnixTime,
    ) -> &AuthorizationServerMetadata {
        &self
            .entry
            .insert(CacheEntry {
                metadata,
                fetched_at,
                expired: false,
            })
            .metadata
    }

    /// Forgets the metadata (e.g. after the server rejected an endpoint).
    pub fn invalidate(&mut self) {
        self.entry = None;
    }

    /// The cached metadata, fresh or stale.
    #[must_use]
    pub fn metadata(&self) -> Option<&AuthorizationServerMetadata> {
        self.entry.as_ref().map(|e| &e.metadata)
    }

    /// The cached metadata if it is fresh at `now`.
    #[must_use]
    pub fn fresh_metadata(&self, now: UnixTime) -> Option<&AuthorizationServerMetadata> {
        if self.is_fresh(now) {
            self.metadata()
        } else {
            None
        }
    }

    /// When the cached metadata was fetched.
    #[must_use]
    pub fn fetched_at(&self) -> Option<UnixTime> {
        self.entry.as_ref().map(|e| e.fetched_at)
    }

    /// Whether metadata is cached and younger than the TTL at `now`.
    #[must_use]
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        self.entry
            .as_ref()
            .is_some_and(|e| !e.expired && now < e.fetched_at.saturating_add(self.ttl))
    }

    /// When the cached metadata must be refreshed; `None` when nothing is
    /// cached or it already expired (then [`poll_request`] asks for a
    /// fetch).
    ///
    /// [`poll_request`]: DiscoveryCache::poll_request
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.entry
            .as_ref()
            .filter(|e| !e.expired)
            .map(|e| e.fetched_at.saturating_add(self.ttl))
    }

    /// Marks the metadata stale once the TTL has run out at `now`.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        let ttl = self.ttl;
        if let Some(entry) = &mut self.entry
            && now >= entry.fetched_at.saturating_add(ttl)
        {
            entry.expired = true;
        }
    }
}

impl fmt::Debug for DiscoveryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryCache")
            .field("issuer", &self.issuer)
            .field("kind", &self.kind)
            .field("ttl", &self.ttl)
            .field("fetched_at", &self.fetched_at())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const ISSUER: &str = "https://as.example/tenant1";

    fn doc(extra: &str) -> String {
        alloc::format!(
            r#"{{"issuer":"{ISSUER}","token_endpoint":"https://as.example/tenant1/token"{extra}}}"#
        )
    }

    fn parse(status: u16, body: &str) -> Result<AuthorizationServerMetadata, DiscoveryError> {
        AuthorizationServerMetadata::parse(
            &HttpResponse::new(status, body),
            ISSUER,
            &Limits::default(),
        )
    }

    #[test]
    fn oidc_urls_append_to_the_path() {
        let url = |i| discovery_url(i, DiscoveryKind::OpenIdConnect).unwrap();
        assert_eq!(
            url("https://as.example/tenant1"),
            "https://as.example/tenant1/.well-known/openid-configuration"
        );
        assert_eq!(
            url("https://as.example/tenant1/"),
            "https://as.example/tenant1/.well-known/openid-configuration"
        );
        assert_eq!(
            url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            url("http://127.0.0.1:3000"),
            "http://127.0.0.1:3000/.well-known/openid-configuration"
        );
    }

    #[test]
    fn rfc8414_urls_insert_before_the_path() {
        let url = |i| discovery_url(i, DiscoveryKind::OAuth2).unwrap();
        assert_eq!(
            url("https://as.example/tenant1"),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            url("https://as.example/"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url("https://as.example"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url("https://as.example:8443/a/b"),
            "https://as.example:8443/.well-known/oauth-authorization-server/a/b"
        );
    }

    #[test]
    fn rfc8414_url_drops_the_issuers_trailing_slash() {
        // RFC 8414 §3.1: a terminating "/" of the issuer's path is removed
        // before the well-known suffix is inserted.
        let url = |i| discovery_url(i, DiscoveryKind::OAuth2).unwrap();
        assert_eq!(
            url("https://as.example/tenant1/"),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            url("https://as.example:8443/a/b/"),
            "https://as.example:8443/.well-known/oauth-authorization-server/a/b"
        );
        assert_eq!(
            DiscoveryCache::new("https://as.example/tenant1/", DiscoveryKind::OAuth2)
                .unwrap()
                .request()
                .url,
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
    }

    #[test]
    fn an_https_issuer_refuses_plain_http_endpoints() {
        let insecure = "http://as.example/tenant1/token";
        let body = doc("").replace("https://as.example/tenant1/token", insecure);
        let e = parse(200, &body).unwrap_err();
        assert_eq!(e.code(), "metadata_insecure_endpoint", "{e:?}");
        assert_eq!(
            e,
            DiscoveryError::InsecureEndpoint {
                member: "token_endpoint"
            }
        );
        assert!(!e.is_configuration_error());
        let err: crate::error::Error = e.into();
        assert_eq!(err.code(), "metadata_insecure_endpoint");
        for member in ENDPOINT_MEMBERS {
            for url in [
                "http://as.example/x",
                "http://10.0.0.1/x",
                "http://localhost.evil.example/x",
                "http://127.0.0.1.evil.example/x",
                "http://[::2]/x",
                "http://[::ffff:127.0.0.1]/x",
                "http://0.0.0.0/x",
            ] {
                let e = parse(200, &doc(&alloc::format!(r#","{member}":"{url}""#))).unwrap_err();
                assert_eq!(
                    e,
                    DiscoveryError::InsecureEndpoint { member },
                    "{member} {url}"
                );
            }
        }
    }

    #[test]
    fn loopback_endpoints_may_be_plain_http() {
        for url in [
            "http://127.0.0.1:8080/token",
            "http://127.3.4.5/token",
            "http://[::1]:3000/token",
            "http://localhost/token",
            "http://LOCALHOST:9/token",
        ] {
            let body = doc("").replace("https://as.example/tenant1/token", url);
            let m = parse(200, &body).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert_eq!(m.token_endpoint, url);
            let m = parse(200, &doc(&alloc::format!(r#","jwks_uri":"{url}""#))).unwrap();
            assert_eq!(m.jwks_uri.as_deref(), Some(url));
        }
        // An issuer configured as plain http (a local test server) already
        // sends everything in clear: its endpoints may be http too.
        let issuer = "http://as.internal:8080";
        let body = alloc::format!(
            r#"{{"issuer":"{issuer}","token_endpoint":"http://as.internal:8080/token"}}"#
        );
        let m = AuthorizationServerMetadata::parse(
            &HttpResponse::new(200, body),
            issuer,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.token_endpoint, "http://as.internal:8080/token");
    }

    #[test]
    fn a_cached_document_is_checked_like_a_fetched_one() {
        let mut cache = DiscoveryCache::new(ISSUER, DiscoveryKind::OpenIdConnect).unwrap();
        let mut m = parse(200, &doc("")).unwrap();
        m.revocation_endpoint = Some("http://as.example/revoke".into());
        assert_eq!(
            cache.set(m, UnixTime::from_secs(1)).unwrap_err(),
            DiscoveryError::InsecureEndpoint {
                member: "revocation_endpoint"
            }
        );
        assert!(cache.metadata().is_none());
    }

    #[test]
    fn request_is_a_get_for_json() {
        let request = discovery_request(ISSUER, DiscoveryKind::OpenIdConnect).unwrap();
        assert_eq!(request.method, Method::GET);
        assert_eq!(request.headers.get("accept"), Some("application/json"));
        assert!(request.body.is_empty());
    }

    #[test]
    fn bad_issuers() {
        for bad in [
            "",
            "as.example",
            "ftp://as.example",
            "https://as.example/?x=1",
            "https://as.example/#f",
            " https://as.example",
            "https:as.example",
            "https:///path",
        ] {
            let e = discovery_url(bad, DiscoveryKind::OpenIdConnect).unwrap_err();
            assert_eq!(e.code(), "invalid_issuer", "{bad:?}");
        }
    }

    #[test]
    fn parses_a_full_document() {
        let m = parse(
            200,
            &doc(
                r#","authorization_endpoint":"https://as.example/tenant1/authorize",
                 "revocation_endpoint":"https://as.example/tenant1/revoke",
                 "jwks_uri":"https://as.example/tenant1/jwks",
                 "userinfo_endpoint":"https://as.example/tenant1/me",
                 "end_session_endpoint":"https://as.example/tenant1/logout",
                 "token_endpoint_auth_methods_supported":["client_secret_basic","private_key_jwt"],
                 "dpop_signing_alg_values_supported":["ES256"],
                 "code_challenge_methods_supported":["S256"],
                 "grant_types_supported":["authorization_code","refresh_token"],
                 "scopes_supported":["openid","offline_access"],
                 "authorization_response_iss_parameter_supported":true,
                 "pushed_authorization_request_endpoint":"https://as.example/tenant1/par""#,
            ),
        )
        .unwrap();
        assert_eq!(m.issuer, ISSUER);
        assert_eq!(m.token_endpoint, "https://as.example/tenant1/token");
        assert_eq!(
            m.authorization_endpoint.as_deref(),
            Some("https://as.example/tenant1/authorize")
        );
        assert_eq!(
            m.end_session_endpoint.as_deref(),
            Some("https://as.example/tenant1/logout")
        );
        assert_eq!(
            m.dpop_signing_alg_values_supported,
            Some(vec!["ES256".to_string()])
        );
        assert!(m.authorization_response_iss_parameter_supported);
        assert_eq!(m.supports_s256(), Some(true));
        assert_eq!(
            m.extra["pushed_authorization_request_endpoint"],
            "https://as.example/tenant1/par"
        );
        assert_eq!(
            m.endpoints().jwks_uri.unwrap(),
            "https://as.example/tenant1/jwks"
        );

        let minimal = parse(200, &doc("")).unwrap();
        assert!(!minimal.authorization_response_iss_parameter_supported);
        assert_eq!(minimal.token_endpoint_auth_methods_supported, None);
        assert_eq!(minimal.supports_s256(), None);
    }

    #[test]
    fn issuer_must_match_exactly() {
        for other in [
            "https://as.example/tenant1/",
            "https://AS.example/tenant1",
            "https://as.example/tenant2",
        ] {
            let body = doc("").replace(ISSUER, other);
            let e = parse(200, &body).unwrap_err();
            assert_eq!(e.code(), "issuer_mismatch", "{other}");
        }
    }

    #[test]
    fn malformed_documents() {
        let code = |status, body: &str| parse(status, body).unwrap_err().code();
        assert_eq!(code(200, "<html>"), "metadata_not_json");
        assert_eq!(code(200, "[]"), "metadata_not_object");
        assert_eq!(code(404, "<html>"), "discovery_http_error");
        assert_eq!(
            code(200, r#"{"token_endpoint":"https://as.example/t"}"#),
            "metadata_missing_issuer"
        );
        assert_eq!(
            code(200, &alloc::format!(r#"{{"issuer":"{ISSUER}"}}"#)),
            "metadata_missing_token_endpoint"
        );
        assert_eq!(
            code(
                200,
                &doc("").replace("https://as.example/tenant1/token", "/token")
            ),
            "metadata_invalid_endpoint"
        );
        assert_eq!(
            code(
                200,
                &doc("").replace("https://as.example/tenant1/token", "not a url")
            ),
            "metadata_invalid_endpoint"
        );
        assert_eq!(
            code(200, &doc(r#","jwks_uri":"file:///etc/passwd""#)),
            "metadata_invalid_endpoint"
        );
        assert_eq!(code(200, r#"{"issuer":5}"#), "metadata_invalid_member");
        assert_eq!(
            code(200, &doc(r#","scopes_supported":"openid""#)),
            "metadata_invalid_member"
        );
        assert_eq!(
            code(200, &doc(r#","grant_types_supported":["a",1]"#)),
            "metadata_invalid_member"
        );
        assert_eq!(
            code(200, &doc(r#","revocation_endpoint":7"#)),
            "metadata_invalid_member"
        );
        assert_eq!(
            code(
                200,
                &doc(r#","authorization_response_iss_parameter_supported":"yes""#)
            ),
            "metadata_invalid_member"
        );
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert_eq!(
            code(200, &doc(&alloc::format!(r#","x":{deep}"#))),
            "metadata_limit_exceeded"
        );
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let e =
            AuthorizationServerMetadata::parse(&HttpResponse::new(200, doc("")), ISSUER, &limits)
                .unwrap_err();
        assert_eq!(e.code(), "metadata_limit_exceeded");
    }

    #[test]
    fn auth_method_check() {
        let m = parse(
            200,
            &doc(r#","token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_basic"]"#),
        )
        .unwrap();
        assert!(check_auth_method(&m, "client_secret_basic").is_ok());
        let e = check_auth_method(&m, "client_secret_post").unwrap_err();
        assert_eq!(e.code(), "unsupported_auth_method");
        assert!(e.to_string().contains("client_secret_post"));
        assert!(e.is_configuration_error());
        let err: crate::error::Error = e.into();
        assert_eq!(err.code(), "unsupported_auth_method");
        // Not advertised: anything goes.
        let m = parse(200, &doc("")).unwrap();
        assert!(check_auth_method(&m, "none").is_ok());
    }

    #[test]
    fn auth0_endpoints() {
        let e = Endpoints::auth0("tenant.eu.auth0.com").unwrap();
        assert_eq!(e.issuer, "https://tenant.eu.auth0.com/");
        assert_eq!(e.token_endpoint, "https://tenant.eu.auth0.com/oauth/token");
        assert_eq!(
            e.revocation_endpoint.as_deref(),
            Some("https://tenant.eu.auth0.com/oauth/revoke")
        );
        assert_eq!(
            e.authorization_endpoint.as_deref(),
            Some("https://tenant.eu.auth0.com/authorize")
        );
        assert_eq!(Endpoints::auth0("https://tenant.eu.auth0.com/").unwrap(), e);
        assert_eq!(
            Endpoints::auth0("login.example.com:8443")
                .unwrap()
                .token_endpoint,
            "https://login.example.com:8443/oauth/token"
        );
        for bad in [
            "",
            "https://",
            "tenant.auth0.com/path",
            "a b",
            "user@host",
            "host?x",
            ".host",
        ] {
            assert_eq!(
                Endpoints::auth0(bad).unwrap_err().code(),
                "invalid_domain",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cache_lifecycle() {
        let mut cache = DiscoveryCache::new(ISSUER, DiscoveryKind::OpenIdConnect)
            .unwrap()
            .with_ttl(Duration::from_secs(100));
        let t0 = UnixTime::from_secs(1000);
        assert!(!cache.is_fresh(t0));
        assert_eq!(cache.poll_timeout(), None);
        let request = cache.poll_request(t0).unwrap();
        assert_eq!(
            request.url,
            "https://as.example/tenant1/.well-known/openid-configuration"
        );
        // One fetch at a time.
        assert!(cache.poll_request(t0).is_none());
        assert!(cache.is_fetching());
        // A failure leaves the cache empty and allows a new fetch.
        let e = cache
            .handle_response(&HttpResponse::new(500, "oops"), t0, &Limits::default())
            .unwrap_err();
        assert_eq!(e.code(), "discovery_http_error");
        assert!(cache.metadata().is_none());
        assert!(cache.poll_request(t0).is_some());
        cache.handle_transport_error();
        assert!(cache.poll_request(t0).is_some());
        cache
            .handle_response(&HttpResponse::new(200, doc("")), t0, &Limits::default())
            .unwrap();
        assert!(cache.is_fresh(t0));
        assert!(cache.fresh_metadata(UnixTime::from_secs(1099)).is_some());
        assert!(cache.fresh_metadata(UnixTime::from_secs(1100)).is_none());
        assert_eq!(cache.poll_timeout(), Some(UnixTime::from_secs(1100)));
        assert!(cache.poll_request(UnixTime::from_secs(1050)).is_none());

        // Before the deadline the timeout changes nothing.
        cache.handle_timeout(UnixTime::from_secs(1099));
        assert_eq!(cache.poll_timeout(), Some(UnixTime::from_secs(1100)));
        cache.handle_timeout(UnixTime::from_secs(1100));
        assert_eq!(cache.poll_timeout(), None);
        assert!(!cache.is_fresh(UnixTime::from_secs(1050)));
        // Stale metadata stays readable while it is re-fetched.
        assert!(cache.metadata().is_some());
        let t1 = UnixTime::from_secs(1100);
        assert!(cache.poll_request(t1).is_some());
        // A bad answer keeps the old metadata.
        assert!(
            cache
                .handle_response(&HttpResponse::new(200, "{}"), t1, &Limits::default())
                .is_err()
        );
        assert!(cache.metadata().is_some());
        assert!(cache.poll_request(t1).is_some());
        cache
            .handle_response(&HttpResponse::new(200, doc("")), t1, &Limits::default())
            .unwrap();
        assert_eq!(cache.poll_timeout(), Some(UnixTime::from_secs(1200)));
        assert!(alloc::format!("{cache:?}").contains("tenant1"));

        cache.invalidate();
        assert!(cache.metadata().is_none());
    }

    #[test]
    fn cache_default_ttl_and_set() {
        let mut cache = DiscoveryCache::new(ISSUER, DiscoveryKind::OAuth2).unwrap();
        assert_eq!(cache.ttl(), Duration::from_secs(600));
        assert_eq!(
            cache.request().url,
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        let m = parse(200, &doc("")).unwrap();
        cache.set(m.clone(), UnixTime::from_secs(10)).unwrap();
        assert_eq!(cache.poll_timeout(), Some(UnixTime::from_secs(610)));
        let mut other = m;
        other.issuer = "https://evil.example".into();
        assert_eq!(
            cache
                .set(other, UnixTime::from_secs(10))
                .unwrap_err()
                .code(),
            "issuer_mismatch"
        );
        assert_eq!(
            DiscoveryCache::new("nope", DiscoveryKind::OAuth2)
                .unwrap_err()
                .code(),
            "invalid_issuer"
        );
    }
}
