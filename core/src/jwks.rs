//! JSON Web Key Sets (RFC 7517) for signature verification, and a sans-IO
//! cache that fetches them from the `jwks_uri` of discovery.
//!
//! # Call order
//!
//! ```text
//! JwksCache::from_metadata(&metadata)  or  JwksCache::new(jwks_uri)
//!   [.with_ttl(d)] [.with_refetch_interval(d)]
//!
//! for each token to verify:
//!   lookup(token, now) ─► KeyLookup::Ready(&jwks)   verify with it:
//!   │                       IdTokenValidator::new(..).jwks(jwks), LogoutTokenValidator::new(.., jwks)
//!   ├────────────────────► KeyLookup::Fetch         fetch first, then look up again:
//!   │     poll_request(now) ─► Some(HttpRequest)      the host sends it
//!   │                        None                     another fetch is in flight: wait for it
//!   │     handle_response(&response, sent_at, limits) ─► Ok(&Jwks) / Err(JwksError)
//!   │       or handle_transport_error()
//!   └────────────────────► KeyLookup::Refused(e)    refused without a fetch
//!
//! poll_timeout() ─► handle_timeout(now)              the TTL ran out: the next lookup fetches
//! ```
//!
//! A token whose `kid` is not in the cached set causes **one** refetch (key
//! rotation at the server), and only if the last fetch started at least the
//! refetch interval ago (default 60 s): a flood of made-up `kid`s cannot
//! make the host hammer the server. When the `kid` is still unknown after
//! that refetch, or the refetch is rate-limited, the lookup is refused with
//! `jwk_not_found`.
//!
//! Keys are never taken from a token (`jku`, `jwk`, `x5u` headers are
//! ignored), and only keys that can verify `RS256` or `ES256` are kept:
//! `kty` `RSA` of 2048 to 8192 bits with a public exponent of at most
//! 2^33 − 1, or `kty` `EC` on `P-256`; `use`, when present, must be `sig`,
//! `key_ops`, when present, must contain `verify`, and `alg`, when present,
//! must be `RS256` or `ES256` (and fit the key type). Other keys are
//! skipped; a skipped key that has a `kid` is remembered as unusable, so a
//! token naming it is refused with `jwk_unusable` rather than causing a
//! refetch.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcSignature, VerifyingKey as EcKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::discovery::AuthorizationServerMetadata;
use crate::http::{Headers, HttpRequest, HttpResponse, Method};
use crate::jws::{self, Algorithm, JwsError};
use crate::limits::{Limits, json_depth_exceeds};
use crate::time::UnixTime;

/// How long a fetched JWKS is used before it is fetched again: 10 minutes.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(600);

/// The least time between two fetches caused by an unknown `kid`: 60 s.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The largest RSA modulus accepted, in bits (bounds the work of one
/// verification).
pub const MAX_RSA_BITS: usize = 8192;

/// The most keys a JWKS may hold (bounds the work of parsing one).
pub const MAX_JWKS_KEYS: usize = 100;

/// The longest `kid` kept (longer ones make the key unusable).
const MAX_KID_BYTES: usize = 256;

/// Why a JWKS, or a JWKS cache, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The document is not a JSON object with a `keys` array, or holds more
    /// than [`MAX_JWKS_KEYS`] keys, or exceeds the limits. Code
    /// `invalid_jwks`.
    #[error("invalid JWKS: {0}")]
    Invalid(&'static str),
    /// The `jwks_uri` answered with a status other than 2xx. Code
    /// `jwks_http_error`.
    #[error("the jwks_uri answered HTTP {status}")]
    HttpStatus {
        /// The HTTP status.
        status: u16,
    },
    /// The discovery metadata has no `jwks_uri`. Code `missing_jwks_uri`.
    #[error("the authorization server metadata has no jwks_uri")]
    MissingJwksUri,
    /// The `jwks_uri` is not an absolute `http(s)` URL. Code
    /// `invalid_jwks_uri`.
    #[error("the jwks_uri is not an absolute http(s) URL")]
    InvalidJwksUri,
}

impl JwksError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            JwksError::Invalid(_) => "invalid_jwks",
            JwksError::HttpStatus { .. } => "jwks_http_error",
            JwksError::MissingJwksUri => "missing_jwks_uri",
            JwksError::InvalidJwksUri => "invalid_jwks_uri",
        }
    }
}

/// The verifying key of one JWK.
#[derive(Clone, PartialEq, Eq)]
enum KeyMaterial {
    Ec(EcKey),
    Rsa(Box<rsa::PublicKey>),
}

/// One usable key of a JWKS.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    kid: Option<String>,
    /// The JWK's `alg`, when it had one (already checked to fit the key).
    alg: Option<Algorithm>,
    key: KeyMaterial,
}

impl Jwk {
    fn algorithm(&self) -> Algorithm {
        match self.key {
            KeyMaterial::Ec(_) => Algorithm::Es256,
            KeyMaterial::Rsa(_) => Algorithm::Rs256,
        }
    }

    /// Whether `signature` is this key's signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            KeyMaterial::Ec(key) => EcSignature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
            KeyMaterial::Rsa(key) => key
                .verify(
                    rsa::pkcs1v15::Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                )
                .is_ok(),
        }
    }
}

/// A key that was skipped, remembered by `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unusable {
    kid: String,
    reason: &'static str,
}

/// The keys of a JSON Web Key Set that can verify `RS256` or `ES256`
/// signatures. Only such keys are kept: `kty` `RSA` of 2048 to 8192 bits or
/// `EC` on `P-256`, whose `use`, `key_ops` and `alg`, when present, allow
/// an `RS256` or `ES256` signature check. Other keys are skipped; one with
/// a `kid` is remembered as unusable (`jwk_unusable`, not a refetch).
///
/// ```
/// use tokenkeeper::id_token::Jwks;
/// use tokenkeeper::Limits;
///
/// let doc = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
///   "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///   "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
/// let jwks = Jwks::from_json(doc, &Limits::default())?;
/// assert_eq!(jwks.len(), 1);
/// assert!(jwks.contains_kid("k1"));
/// # Ok::<(), tokenkeeper::id_token::JwksError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
    unusable: Vec<Unusable>,
}

impl Jwks {
    /// Parses the response of the `jwks_uri`.
    ///
    /// # Errors
    /// [`JwksError::HttpStatus`] for a non-2xx status,
    /// [`JwksError::Invalid`] otherwise.
    pub fn parse(response: &HttpResponse, limits: &Limits) -> Result<Self, JwksError> {
        if limits.check_response(response).is_err() {
            return Err(JwksError::Invalid("the response exceeds the limits"));
        }
        if !response.is_success() {
            return Err(JwksError::HttpStatus {
                status: response.status,
            });
        }
        Self::from_json(&response.body, limits)
    }

    /// Parses a JWKS document. Keys that cannot verify `RS256` or `ES256`
    /// are skipped, not fatal.
    ///
    /// # Errors
    /// [`JwksError::Invalid`].
    pub fn from_json(json: &[u8], limits: &Limits) -> Result<Self, JwksError> {
        if json.len() > limits.max_body_bytes || json_depth_exceeds(json, limits.max_json_depth) {
            return Err(JwksError::Invalid("the document exceeds the limits"));
        }
        let Ok(Value::Object(document)) = crate::limits::from_json_slice::<Value>(json) else {
            return Err(JwksError::Invalid("not a JSON object"));
        };
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(JwksError::Invalid("keys is missing or not an array"));
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::Invalid("more keys than the limit"));
        }
        let mut jwks = Jwks::default();
        for entry in entries {
            let Some(jwk) = entry.as_object() else {
                continue;
            };
            match parse_jwk(jwk) {
                Ok(key) => jwks.keys.push(key),
                Err(reason) => {
                    if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                        && kid.len() <= MAX_KID_BYTES
                    {
                        jwks.unusable.push(Unusable {
                            kid: String::from(kid),
                            reason,
                        });
                    }
                }
            }
        }
        Ok(jwks)
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the set has a key with this `kid`, usable or not (a token
    /// naming it needs no refetch).
    #[must_use]
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
            || self.unusable.iter().any(|u| u.kid == kid)
    }

    /// The `kid`s of the usable keys, in document order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// The key to verify a signature of `alg`, named by `kid` or, without
    /// one, the single key of the algorithm's type.
    pub(crate) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&Jwk, JwsError> {
        let fits = |key: &&Jwk| key.algorithm() == alg && key.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(self
                        .unusable
                        .iter()
                        .find(|u| u.kid == kid)
                        .map_or(JwsError::KeyNotFound, |u| JwsError::KeyUnusable(u.reason)));
                }
                named.find(fits).ok_or(JwsError::KeyAlgorithmMismatch)
            }
            None => {
                let mut candidates = self.keys.iter().filter(fits);
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(JwsError::KeyNotFound),
                }
            }
        }
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Key<'a>(&'a Jwk);
        impl fmt::Debug for Key<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.algorithm().name())?;
                if let Some(kid) = &self.0.kid {
                    write!(f, " {kid:?}")?;
                }
                Ok(())
            }
        }
        f.debug_struct("Jwks")
            .field(
                "keys",
                &self.keys.iter().map(Key).collect::<Vec<_>>().as_slice(),
            )
            .field("unusable", &self.unusable)
            .finish()
    }
}

fn parse_jwk(jwk: &Map<String, Value>) -> Result<Jwk, &'static str> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.len() <= MAX_KID_BYTES => Some(String::from(kid)),
        Some(_) => return Err("kid is not a string, or too long"),
    };
    if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return Err("use is not sig");
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verify {
            return Err("key_ops does not allow verify");
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) if alg == "RS256" => Some(Algorithm::Rs256),
        Some(Value::String(alg)) if alg == "ES256" => Some(Algorithm::Es256),
        Some(_) => return Err("alg is not RS256 or ES256"),
    };
    let key = match text("kty") {
        Some("RSA") => KeyMaterial::Rsa(Box::new(rsa_key(&text)?)),
        Some("EC") => KeyMaterial::Ec(ec_key(&text)?),
        _ => return Err("kty is not RSA or EC"),
    };
    let jwk = Jwk { kid, alg, key };
    if jwk.alg.is_some_and(|alg| alg != jwk.algorithm()) {
        return Err("alg does not fit the key type");
    }
    Ok(jwk)
}

/// Decodes a base64url member of at most `max` bytes.
fn member<'a>(
    text: &impl Fn(&str) -> Option<&'a str>,
    name: &str,
    max: usize,
) -> Result<Vec<u8>, &'static str> {
    let encoded = text(name).ok_or("a key member is missing or not a string")?;
    // 4 characters per 3 bytes: refuse before decoding anything larger.
    if encoded.len() > max.div_ceil(3) * 4 {
        return Err("a key member is too large");
    }
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| "a key member is not base64url")
}

fn rsa_key<'a>(text: &impl Fn(&str) -> Option<&'a str>) -> Result<rsa::PublicKey, &'static str> {
    let n = member(text, "n", MAX_RSA_BITS / 8 + 1)?;
    let e = member(text, "e", 8)?;
    let n = rsa::BoxedUint::from_be_slice_vartime(&n);
    let e = rsa::BoxedUint::from_be_slice_vartime(&e);
    rsa::PublicKey::new_with_size_limits(n, e, MIN_RSA_BITS..=MAX_RSA_BITS).map_err(|error| {
        match error {
            rsa::Error::ModulusTooSmall => "the RSA key is smaller than 2048 bits",
            rsa::Error::ModulusTooLarge => "the RSA key is larger than 8192 bits",
            _ => "the RSA key is invalid",
        }
    })
}

fn ec_key<'a>(text: &impl Fn(&str) -> Option<&'a str>) -> Result<EcKey, &'static str> {
    if text("crv") != Some("P-256") {
        return Err("crv is not P-256");
    }
    let (x, y) = (member(text, "x", 32)?, member(text, "y", 32)?);
    if x.len() != 32 || y.len() != 32 {
        return Err("a P-256 coordinate is not 32 bytes");
    }
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(&x);
    point[33..].copy_from_slice(&y);
    EcKey::from_sec1_bytes(&point).map_err(|_| "the point is not on P-256")
}

/// What [`JwksCache::lookup`] found for a token.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum KeyLookup<'a> {
    /// The cached keys hold the token's key: verify with them.
    Ready(&'a Jwks),
    /// Fetch the JWKS first ([`JwksCache::poll_request`]; `None` there
    /// means another fetch is in flight: wait for it), hand the answer to
    /// [`JwksCache::handle_response`], then look up again.
    Fetch,
    /// Refused without a fetch: the header's algorithm is refused, or the
    /// `kid` is unknown and a refetch is not allowed (rate-limited, or
    /// just done).
    Refused(JwsError),
}

#[derive(Clone)]
struct Entry {
    jwks: Jwks,
    fetched_at: UnixTime,
    expired: bool,
}

/// A sans-IO cache of one issuer's JWKS: it says when to fetch, the host
/// fetches, and it keeps the keys for a TTL and refetches once for an
/// unknown `kid`, rate-limited: [`JwksCache::lookup`] answers with the
/// keys, or asks the host to fetch (see [`KeyLookup`]).
///
/// ```
/// use tokenkeeper::id_token::{JwksCache, KeyLookup};
/// use tokenkeeper::Limits;
/// use tokenkeeper::{HttpResponse, UnixTime};
///
/// let mut cache = JwksCache::new("https://as.example/jwks")?;
/// let now = UnixTime::from_secs(1_000);
/// // {"alg":"ES256","kid":"k1"}.{}.
/// let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.";
/// assert!(matches!(cache.lookup(token, now), KeyLookup::Fetch));
/// let request = cache.poll_request(now).expect("nothing cached yet");
/// assert_eq!(request.url, "https://as.example/jwks");
/// // …the host sends it; an empty set comes back…
/// cache.handle_response(&HttpResponse::new(200, r#"{"keys":[]}"#), now, &Limits::default())?;
/// // The kid is unknown and the set was just fetched: refused, no refetch.
/// match cache.lookup(token, now) {
///     KeyLookup::Refused(e) => assert_eq!(e.code(), "jwk_not_found"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), tokenkeeper::id_token::JwksError>(())
/// ```
#[derive(Clone)]
pub struct JwksCache {
    jwks_uri: String,
    ttl: Duration,
    refetch_interval: Duration,
    entry: Option<Entry>,
    in_flight: bool,
    /// An unknown `kid` asked for a refetch of fresh keys.
    refetch: bool,
    /// When the last fetch was handed out (for the rate limit).
    last_fetch: Option<UnixTime>,
}

impl JwksCache {
    /// A cache for the JWKS at `jwks_uri`, with the default TTL and
    /// refetch interval.
    ///
    /// # Errors
    /// [`JwksError::InvalidJwksUri`].
    pub fn new(jwks_uri: &str) -> Result<Self, JwksError> {
        if !crate::discovery::is_http_url(jwks_uri) {
            return Err(JwksError::InvalidJwksUri);
        }
        Ok(JwksCache {
            jwks_uri: String::from(jwks_uri),
            ttl: DEFAULT_JWKS_TTL,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            entry: None,
            in_flight: false,
            refetch: false,
            last_fetch: None,
        })
    }

    /// A cache for the `jwks_uri` of discovered metadata.
    ///
    /// # Errors
    /// [`JwksError::MissingJwksUri`] or [`JwksError::InvalidJwksUri`].
    pub fn from_metadata(metadata: &AuthorizationServerMetadata) -> Result<Self, JwksError> {
        Self::new(
            metadata
                .jwks_uri
                .as_deref()
                .ok_or(JwksError::MissingJwksUri)?,
        )
    }

    /// With another TTL (default [`DEFAULT_JWKS_TTL`]).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// With another least time between two fetches caused by an unknown
    /// `kid` (default [`DEFAULT_REFETCH_INTERVAL`]).
    #[must_use]
    pub fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The `jwks_uri`.
    #[must_use]
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The TTL.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The refetch interval.
    #[must_use]
    pub fn refetch_interval(&self) -> Duration {
        self.refetch_interval
    }

    /// The `GET` request for the JWKS (whatever the cache state; does not
    /// mark a fetch in flight).
    #[must_use]
    pub fn request(&self) -> HttpRequest {
        let mut headers = Headers::new();
        headers.append("Accept", "application/jwk-set+json, application/json");
        HttpRequest {
            method: Method::GET,
            url: self.jwks_uri.clone(),
            headers,
            body: Vec::new(),
        }
    }

    /// Finds the keys to verify `token` with at `now`: the cached set when
    /// it is fresh and knows the token's key; [`KeyLookup::Fetch`] when
    /// nothing fresh is cached, or the `kid` is unknown and a refetch is
    /// allowed (the last fetch started at least the refetch interval ago);
    /// [`KeyLookup::Refused`] when the header's algorithm is refused
    /// (`alg` `none`, HMAC, …) or the `kid` is unknown and no refetch is
    /// allowed. Signatures are not checked here.
    pub fn lookup(&mut self, token: &str, now: UnixTime) -> KeyLookup<'_> {
        let header = match jws::decode_header(token) {
            Ok(header) => header,
            Err(error) => return KeyLookup::Refused(error),
        };
        if !self.is_fresh(now) {
            return KeyLookup::Fetch;
        }
        // Decide, then act: the borrow of the entry ends before any change.
        let found = match self.entry.as_ref() {
            Some(entry) => match entry.jwks.select(header.alg, header.kid.as_deref()) {
                Err(JwsError::KeyNotFound) => false,
                // Found, or refused by the keys themselves: verifying tells.
                _ => true,
            },
            None => false,
        };
        if found {
            return match self.entry.as_ref() {
                Some(entry) => KeyLookup::Ready(&entry.jwks),
                None => KeyLookup::Fetch,
            };
        }
        if self.refetch_allowed(now) {
            self.refetch = true;
            KeyLookup::Fetch
        } else {
            KeyLookup::Refused(JwsError::KeyNotFound)
        }
    }

    fn refetch_allowed(&self, now: UnixTime) -> bool {
        self.refetch
            || self.in_flight
            || self
                .last_fetch
                .is_none_or(|last| now >= last.saturating_add(self.refetch_interval))
    }

    /// The request to send when nothing fresh is cached or a refetch was
    /// asked for, and no fetch is in flight; marks a fetch in flight.
    /// `None` otherwise.
    #[must_use]
    pub fn poll_request(&mut self, now: UnixTime) -> Option<HttpRequest> {
        if self.in_flight || (self.is_fresh(now) && !self.refetch) {
            return None;
        }
        self.in_flight = true;
        self.last_fetch = Some(now);
        Some(self.request())
    }

    /// Whether a fetch is in flight.
    #[must_use]
    pub fn is_fetching(&self) -> bool {
        self.in_flight
    }

    /// Takes the JWKS response. `fetched_at` should be the time the request
    /// was sent (the TTL counts from it). On success the keys replace what
    /// was cached; on failure the old keys are kept (stale keys are not
    /// used by [`lookup`](JwksCache::lookup)). Either way the refetch asked
    /// for by an unknown `kid` is done.
    ///
    /// # Errors
    /// As [`Jwks::parse`].
    pub fn handle_response(
        &mut self,
        response: &HttpResponse,
        fetched_at: UnixTime,
        limits: &Limits,
    ) -> Result<&Jwks, JwksError> {
        self.in_flight = false;
        self.refetch = false;
        let jwks = Jwks::parse(response, limits)?;
        Ok(self.set(jwks, fetched_at))
    }

    /// The fetch could not be completed; a later
    /// [`poll_request`](JwksCache::poll_request) asks again when nothing
    /// fresh is cached (a refetch for an unknown `kid` is not repeated).
    pub fn handle_transport_error(&mut self) {
        self.in_flight = false;
        self.refetch = false;
    }

    /// Stores keys obtained elsewhere (persisted, or configured), fetched
    /// at `fetched_at`.
    pub fn set(&mut self, jwks: Jwks, fetched_at: UnixTime) -> &Jwks {
        &self
            .entry
            .insert(Entry {
                jwks,
                fetched_at,
                expired: false,
            })
            .jwks
    }

    /// Forgets the keys.
    pub fn invalidate(&mut self) {
        self.entry = None;
    }

    /// The cached keys, fresh or stale.
    #[must_use]
    pub fn jwks(&self) -> Option<&Jwks> {
        self.entry.as_ref().map(|e| &e.jwks)
    }

    /// The cached keys if they are fresh at `now`.
    #[must_use]
    pub fn fresh_jwks(&self, now: UnixTime) -> Option<&Jwks> {
        self.entry
            .as_ref()
            .filter(|_| self.is_fresh(now))
            .map(|e| &e.jwks)
    }

    /// When the cached keys were fetched.
    #[must_use]
    pub fn fetched_at(&self) -> Option<UnixTime> {
        self.entry.as_ref().map(|e| e.fetched_at)
    }

    /// Whether keys are cached and younger than the TTL at `now`.
    #[must_use]
    pub fn is_fresh(&self, now: UnixTime) -> bool {
        self.entry
            .as_ref()
            .is_some_and(|e| !e.expired && now < e.fetched_at.saturating_add(self.ttl))
    }

    /// When the cached keys go stale; `None` when nothing is cached or it
    /// is already stale (then [`poll_request`](JwksCache::poll_request)
    /// asks for a fetch).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.entry
            .as_ref()
            .filter(|e| !e.expired)
            .map(|e| e.fetched_at.saturating_add(self.ttl))
    }

    /// Marks the keys stale once the TTL has run out at `now`.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        let ttl = self.ttl;
        if let Some(entry) = &mut self.entry
            && now >= entry.fetched_at.saturating_add(ttl)
        {
            entry.expired = true;
        }
    }
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("jwks_uri", &self.jwks_uri)
            .field("ttl", &self.ttl)
            .field("refetch_interval", &self.refetch_interval)
            .field("keys", &self.jwks())
            .field("fetched_at", &self.fetched_at())
            .field("in_flight", &self.in_flight)
            .field("refetch", &self.refetch)
            .field("last_fetch", &self.last_fetch)
            .finish()
    }
}
