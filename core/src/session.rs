//! The persisted session, readable and writable in the JSON shape of the
//! Auth0 Next.js SDK: `tokenSet`, `accessTokens[]`, and whatever else the
//! session holds (`user`, `internal`, …), kept untouched.
//!
//! `connectionTokenSets[]` holds the Token Vault's federated connection
//! tokens ([`ConnectionTokenSet`], the SDK's `ConnectionTokenSet`: one per
//! connection and login hint).
//!
//! tokenkeeper adds one member, `tokenkeeper`, with the session's
//! `generation` (a counter raised by every change, for compare-and-swap in
//! shared stores) and the flags that must survive a restart
//! (re-authentication required, logged out). The SDK ignores it.

use alloc::string::String;
use alloc::vec::Vec;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::cache::TokenCache;
use crate::error::Error;
use crate::limits::{Limits, json_depth_exceeds};
#[cfg(feature = "exchange")]
use crate::secret::AccessToken;
use crate::time::UnixTime;
use crate::token::set::seconds_from_json;
use crate::token::wire::{Key, KeySeed, fill, keep_other};
use crate::token::{AccessTokenSet, TokenSet};

/// tokenkeeper's own persisted state inside the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct KeeperState {
    #[serde(default)]
    generation: u64,
    #[serde(
        rename = "reauthenticationRequired",
        default,
        skip_serializing_if = "core::ops::Not::not"
    )]
    reauthentication_required: bool,
    #[serde(
        rename = "loggedOut",
        default,
        skip_serializing_if = "core::ops::Not::not"
    )]
    logged_out: bool,
    #[serde(
        rename = "refreshClaim",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    refresh_claim: Option<RefreshClaim>,
    /// The session's identity: drawn from the host's entropy when the
    /// session starts (a login, or installed from what a user has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

/// A manager's claim on the session's refresh token while its refresh is in
/// flight (shared stores only): other managers reload instead of spending
/// the same token. It runs out at `until`, so a crashed owner cannot block
/// the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaim {
    /// The manager instance that holds it.
    pub owner: String,
    /// When it runs out.
    pub until: UnixTime,
}

/// A federated connection's access token, as the Auth0 Next.js SDK stores
/// it in `connectionTokenSets[]` (see
/// [`TokenManager::get_connection_token`](crate::TokenManager::get_connection_token)).
/// An entry is keyed by `connection` and `loginHint`: an entry without a
/// hint answers only calls without one, as in the SDK. (Feature
/// `exchange`; without it the member is kept unread, as any other.)
#[cfg(feature = "exchange")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTokenSet {
    /// The connection's access token (`accessToken`).
    #[serde(
        rename = "accessToken",
        default = "empty_access_token",
        skip_serializing_if = "is_empty_access_token"
    )]
    pub access_token: AccessToken,
    /// When it expires (`expiresAt`, epoch seconds; unknown counts as
    /// expired).
    #[serde(
        rename = "expiresAt",
        default,
        deserialize_with = "lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<UnixTime>,
    /// The granted scope, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The connection's name (`google-oauth2`, `github`, …).
    #[serde(default)]
    pub connection: String,
    /// The login hint the token was asked with (`loginHint`).
    #[serde(rename = "loginHint", default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// Members this crate does not know, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(feature = "exchange")]
impl ConnectionTokenSet {
    /// Whether this entry answers a call for `connection` with
    /// `login_hint`: the SDK treats "no hint" as its own key, not a
    /// wildcard.
    #[must_use]
    pub fn matches(&self, connection: &str, login_hint: Option<&str>) -> bool {
        self.connection == connection && self.login_hint.as_deref() == login_hint
    }
}

#[cfg(feature = "exchange")]
fn empty_access_token() -> AccessToken {
    AccessToken::new("")
}

// An entry read without a token is written back without one (the round
// trip keeps what was there), and is never served.
#[cfg(feature = "exchange")]
fn is_empty_access_token(token: &AccessToken) -> bool {
    token.secret().is_empty()
}

/// Reads `expiresAt` leniently (anything unusable is unknown).
#[cfg(feature = "exchange")]
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<UnixTime>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(seconds_from_json(&value).map(UnixTime::from_secs))
}

/// A user's session: the main token set, the per-audience cache, and the
/// rest of the SDK session kept as it was.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) token_set: TokenSet,
    pub(crate) cache: TokenCache,
    /// The Token Vault's connection tokens (`connectionTokenSets`). A
    /// member not shaped like the SDK's is kept as it was in `extra`
    /// instead (read as none), until a connection token is stored.
    #[cfg(feature = "exchange")]
    connections: Vec<ConnectionTokenSet>,
    state: KeeperState,
    pub(crate) session_expires_at: Option<UnixTime>,
    extra: Map<String, Value>,
}

impl Session {
    /// A new session from a login's token set.
    #[must_use]
    pub fn new(token_set: TokenSet) -> Self {
        Session {
            token_set,
            cache: TokenCache::new(),
            #[cfg(feature = "exchange")]
            connections: Vec::new(),
            state: KeeperState::default(),
            session_expires_at: None,
            extra: Map::new(),
        }
    }

    /// A session that holds only a refresh token (what a user who already
    /// has one starts from): the first token request refreshes it.
    ///
    /// The session is complete for the Auth0 Next.js SDK too: `internal`
    /// carries a `sid` (drawn from `entropy`) and `createdAt` (`now`), and
    /// the access token is marked expired, so either library refreshes
    /// first (the SDK, given a session without `internal`, spends the
    /// refresh token and then fails before saving, losing the rotated one).
    ///
    /// ```
    /// use tokenkeeper::{RefreshToken, SeededEntropy, Session, UnixTime};
    ///
    /// let session = Session::from_refresh_token(
    ///     RefreshToken::new("my-refresh-token"),
    ///     UnixTime::from_secs(1_700_000_000),
    ///     &mut SeededEntropy::new(1), // the host's randomness in real use
    /// );
    /// assert_eq!(session.token_set().refresh_token.as_ref().unwrap().secret(), "my-refresh-token");
    /// let json: serde_json::Value = serde_json::from_str(&session.to_json()).unwrap();
    /// assert_eq!(json["internal"]["createdAt"], 1_700_000_000);
    /// assert!(json["internal"]["sid"].is_string());
    /// ```
    #[must_use]
    pub fn from_refresh_token(
        refresh_token: crate::secret::RefreshToken,
        now: UnixTime,
        entropy: &mut dyn crate::entropy::Entropy,
    ) -> Self {
        let mut session = Session::new(TokenSet {
            access_token: crate::secret::AccessToken::new(""),
            id_token: None,
            scope: None,
            requested_scope: None,
            refresh_token: Some(refresh_token),
            // Expired: both libraries refresh before serving anything.
            expires_at: Some(UnixTime::EPOCH),
            expires_in: None,
            audience: None,
            token_type: None,
            extra: Map::new(),
        });
        session.complete_for_sdk(None, now, entropy);
        session.ensure_id(entropy);
        session
    }

    /// A session from a token endpoint response (a grant the host ran
    /// itself): the tokens, `expiresAt` counted from `sent_at` (when the
    /// request left; `expires_in` missing counts as expired), the scope
    /// asked for (`requested_scope`, the cache key) and the audience.
    /// The user is the ID token's claims when it carries one (read, not
    /// verified: validate ID tokens from elsewhere first); `internal` is
    /// filled in as in [`Session::from_refresh_token`].
    ///
    /// ```
    /// use tokenkeeper::TokenResponse;
    /// use tokenkeeper::{HttpResponse, SeededEntropy, Session, UnixTime};
    ///
    /// let body = r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}"#;
    /// let response = TokenResponse::parse(&HttpResponse::new(200, body), &Default::default())?;
    /// let session = Session::from_token_response(
    ///     response,
    ///     UnixTime::from_secs(1_000),
    ///     Some("openid offline_access"),
    ///     Some("https://api.example.com"),
    ///     &mut SeededEntropy::new(1),
    /// );
    /// assert_eq!(session.token_set().expires_at, Some(UnixTime::from_secs(4_600)));
    /// # Ok::<(), tokenkeeper::ResponseError>(())
    /// ```
    #[must_use]
    pub fn from_token_response(
        response: crate::token::TokenResponse,
        sent_at: UnixTime,
        requested_scope: Option<&str>,
        audience: Option<&str>,
        entropy: &mut dyn crate::entropy::Entropy,
    ) -> Self {
        let expires_at = response.expires_at(sent_at, core::time::Duration::ZERO);
        let user = response
            .id_token
            .as_ref()
            .and_then(|id| crate::jwt::decode_claims(id.secret()).ok());
        let mut session = Session::new(TokenSet {
            access_token: response.access_token,
            id_token: response.id_token,
            scope: response.scope.or_else(|| requested_scope.map(String::from)),
            requested_scope: requested_scope.map(String::from),
            refresh_token: response.refresh_token,
            expires_at: Some(expires_at),
            expires_in: response.expires_in,
            audience: audience.map(String::from),
            token_type: Some(response.token_type),
            extra: Map::new(),
        });
        let sid = user
            .as_ref()
            .and_then(|claims| claims.get("sid"))
            .and_then(Value::as_str)
            .map(String::from);
        if let Some(claims) = user {
            session.set_user(Value::Object(claims));
        }
        session.complete_for_sdk(sid, sent_at, entropy);
        session.ensure_id(entropy);
        session
    }

    /// Fills in what the Auth0 Next.js SDK needs of every session:
    /// `internal.sid` (`sid`, else drawn from `entropy`) and
    /// `internal.createdAt`, keeping what is already there.
    pub(crate) fn complete_for_sdk(
        &mut self,
        sid: Option<String>,
        now: UnixTime,
        entropy: &mut dyn crate::entropy::Entropy,
    ) {
        let mut internal = match self.extra.remove("internal") {
            Some(Value::Object(internal)) => internal,
            _ => Map::new(),
        };
        if !internal.get("sid").is_some_and(Value::is_string) {
            let sid = sid.unwrap_or_else(|| {
                let mut bytes = [0u8; 16];
                entropy.fill(&mut bytes);
                bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
            });
            internal.insert("sid".into(), Value::from(sid));
        }
        if !internal.get("createdAt").is_some_and(Value::is_number) {
            internal.insert("createdAt".into(), Value::from(now.as_secs()));
        }
        self.extra
            .insert("internal".into(), Value::Object(internal));
    }

    /// Reads a session from its JSON form, within `limits` (body size and
    /// nesting depth). This is the Auth0 Next.js SDK's session shape
    /// (`tokenSet` with `accessToken`, `refreshToken`, `expiresAt` in epoch
    /// seconds, `idToken`, `scope`, `requestedScope`, `audience`,
    /// `token_type`; `accessTokens[]`; `user`; `internal`): a session the
    /// SDK wrote is read as it is, and unknown members survive.
    ///
    /// ```
    /// use tokenkeeper::Session;
    ///
    /// let json = br#"{"user":{"sub":"auth0|1"},"tokenSet":{"accessToken":"at","refreshToken":"rt","expiresAt":1700000000},"internal":{"sid":"s1","createdAt":1699990000}}"#;
    /// let session = Session::from_json(json, &Default::default())?;
    /// assert_eq!(session.user().unwrap()["sub"], "auth0|1");
    /// # Ok::<(), tokenkeeper::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidSession`] when the input is too large, too deep, not
    /// JSON, or not shaped like a session.
    pub fn from_json(json: &[u8], limits: &Limits) -> Result<Self, Error> {
        if json.len() > limits.max_session_bytes {
            return Err(Error::InvalidSession(String::from(
                "the session is larger than the session limit",
            )));
        }
        if json_depth_exceeds(json, limits.max_json_depth) {
            return Err(Error::InvalidSession(String::from(
                "the session JSON is nested deeper than the limit",
            )));
        }
        // serde_json's message quotes the offending value, which may be a
        // token: only where and what kind of error is kept.
        // One UTF-8 check of the whole input: serde_json then skips checking
        // each string (see `limits::from_json_slice`).
        let text = core::str::from_utf8(json).map_err(|e| {
            Error::InvalidSession(alloc::format!(
                "the session JSON is not UTF-8 (at byte {})",
                e.valid_up_to()
            ))
        })?;
        serde_json::from_str(text).map_err(|e| {
            Error::InvalidSession(alloc::format!(
                "the session JSON is not shaped like a session ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }

    /// The session as JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising plain data into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The main token set.
    #[must_use]
    pub fn token_set(&self) -> &TokenSet {
        &self.token_set
    }

    /// The per-audience entries, in their stored order.
    #[must_use]
    pub fn access_tokens(&self) -> Vec<&AccessTokenSet> {
        self.cache.entries()
    }

    /// The Token Vault's connection tokens (`connectionTokenSets`), in
    /// their stored order.
    #[cfg(feature = "exchange")]
    #[must_use]
    pub fn connection_token_sets(&self) -> &[ConnectionTokenSet] {
        &self.connections
    }

    /// The connection tokens to change: an unreadable stored member gives
    /// way to them.
    #[cfg(feature = "exchange")]
    pub(crate) fn connections_mut(&mut self) -> &mut Vec<ConnectionTokenSet> {
        self.extra.remove("connectionTokenSets");
        &mut self.connections
    }

    /// The per-audience cache.
    #[must_use]
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The change counter: raised by one with every change to store.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    /// Whether the refresh token was rejected (`invalid_grant`) and only a
    /// new login helps.
    #[must_use]
    pub fn is_reauthentication_required(&self) -> bool {
        self.state.reauthentication_required
    }

    /// Whether the session was logged out.
    #[must_use]
    pub fn is_logged_out(&self) -> bool {
        self.state.logged_out
    }

    /// The session ceiling (`internal.sessionExpiresAt`), if any.
    #[must_use]
    pub fn session_expires_at(&self) -> Option<UnixTime> {
        self.session_expires_at
    }

    /// Sets the session ceiling (stored as `internal.sessionExpiresAt`).
    pub fn set_session_expires_at(&mut self, at: Option<UnixTime>) {
        self.session_expires_at = at;
        let internal = self
            .extra
            .entry("internal")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(internal) = internal {
            match at {
                Some(at) => {
                    internal.insert("sessionExpiresAt".into(), Value::from(at.as_secs()));
                }
                None => {
                    internal.remove("sessionExpiresAt");
                }
            }
        }
    }

    /// The `user` member (the ID token's claims, as the SDK stores them).
    #[must_use]
    pub fn user(&self) -> Option<&Value> {
        self.extra.get("user")
    }

    /// The user's `sub` (`user.sub`), if a string.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.user()?.get("sub")?.as_str()
    }

    /// The SDK's session id (`internal.sid`), if a string.
    pub(crate) fn sid(&self) -> Option<&str> {
        self.extra.get("internal")?.get("sid")?.as_str()
    }

    /// When the session was created (`internal.createdAt`: any number or
    /// numeric string of seconds, as the SDK accepts), if it says. The
    /// back-channel logout marks and the cookie's absolute lifetime both
    /// count from it.
    #[must_use]
    pub fn created_at(&self) -> Option<UnixTime> {
        let created = self.extra.get("internal")?.get("createdAt")?;
        crate::token::set::seconds_from_json(created).map(UnixTime::from_secs)
    }

    /// Sets the `user` member.
    pub fn set_user(&mut self, user: Value) {
        self.extra.insert("user".into(), user);
    }

    /// Members this crate does not interpret (`user`, `internal`, …).
    #[must_use]
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Sets the `internal` member (the SDK's `sid`, `createdAt`, …). Its
    /// `sessionExpiresAt`, or its absence, is the session's ceiling from
    /// now on, as when the session is loaded.
    pub fn set_internal(&mut self, internal: Map<String, Value>) {
        self.session_expires_at = internal.get("sessionExpiresAt").and_then(ceiling_from_json);
        self.extra
            .insert("internal".into(), Value::Object(internal));
    }

    /// The session's id: drawn from the host's entropy when the session
    /// started (a login, [`Session::from_refresh_token`], or a keeper's
    /// install); `None` for a session read from storage that never had one.
    /// Stores key on it and compare-and-swap compares it: a save of one
    /// session never overwrites another (a newer login).
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.state.id.as_deref()
    }

    /// Gives the session an id drawn from `entropy` if it has none.
    pub fn ensure_id(&mut self, entropy: &mut dyn crate::entropy::Entropy) {
        if self.state.id.is_none() {
            let mut bytes = [0u8; 16];
            entropy.fill(&mut bytes);
            self.state.id = Some(bytes.iter().map(|b| alloc::format!("{b:02x}")).collect());
        }
    }

    /// Whether `other` is this session: the same id (two sessions from
    /// before ids existed, both without one, count as the same).
    #[must_use]
    pub fn is_same_session(&self, other: &Session) -> bool {
        self.id() == other.id()
    }

    /// The refresh claim, if a manager holds one.
    #[must_use]
    pub fn refresh_claim(&self) -> Option<&RefreshClaim> {
        self.state.refresh_claim.as_ref()
    }

    /// This session with `claim` as its refresh claim: for a store that
    /// keeps the claim apart from the session (a key with its own lease, a
    /// column) and hands back the claim as it read it. The claim is what
    /// the store says; the rest of the session is unchanged.
    ///
    /// ```
    /// use tokenkeeper::{RefreshClaim, Session, UnixTime};
    ///
    /// let json = br#"{"tokenSet":{"accessToken":"a","refreshToken":"r","expiresAt":1}}"#;
    /// let session = Session::from_json(json, &Default::default()).unwrap();
    /// let claim = RefreshClaim { owner: "instance-a".into(), until: UnixTime::from_secs(60) };
    /// let claimed = session.with_refresh_claim(Some(claim));
    /// assert_eq!(claimed.refresh_claim().unwrap().owner, "instance-a");
    /// assert!(claimed.with_refresh_claim(None).refresh_claim().is_none());
    /// ```
    #[must_use]
    pub fn with_refresh_claim(mut self, claim: Option<RefreshClaim>) -> Self {
        self.state.refresh_claim = claim;
        self
    }

    pub(crate) fn set_refresh_claim(&mut self, claim: Option<RefreshClaim>) {
        self.state.refresh_claim = claim;
    }

    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.state.generation = generation;
    }

    pub(crate) fn bump_generation(&mut self) -> u64 {
        self.state.generation = self.state.generation.wrapping_add(1);
        self.state.generation
    }

    pub(crate) fn set_reauthentication_required(&mut self) {
        self.state.reauthentication_required = true;
    }

    pub(crate) fn set_logged_out(&mut self) {
        self.state.logged_out = true;
    }
}

/// The session's own members; any other is kept in `extra` (`user`,
/// `internal`, …). Read and written by hand, as the token sets are (see
/// `token::wire`): no `#[serde(flatten)]` buffering.
#[cfg(feature = "exchange")]
const SESSION: &[&str] = &[
    "tokenSet",
    "accessTokens",
    "tokenkeeper",
    "connectionTokenSets",
];
#[cfg(not(feature = "exchange"))]
const SESSION: &[&str] = &["tokenSet", "accessTokens", "tokenkeeper"];

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("tokenSet", &self.token_set)?;
        if !self.cache.is_empty() {
            map.serialize_entry("accessTokens", &self.cache.entries())?;
        }
        #[cfg(feature = "exchange")]
        if !self.connections.is_empty() {
            map.serialize_entry("connectionTokenSets", &self.connections)?;
        }
        map.serialize_entry("tokenkeeper", &self.state)?;
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SessionVisitor;
        impl<'de> Visitor<'de> for SessionVisitor {
            type Value = Session;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a session")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Session, A::Error> {
                let mut token_set: Option<TokenSet> = None;
                let mut access_tokens: Option<Vec<AccessTokenSet>> = None;
                let mut state: Option<KeeperState> = None;
                #[cfg(feature = "exchange")]
                let mut connections_raw: Option<Value> = None;
                let mut extra = Map::new();
                while let Some(key) = map.next_key_seed(KeySeed(SESSION))? {
                    match key {
                        Key::Known(0) => fill(&mut map, &mut token_set, "tokenSet")?,
                        Key::Known(1) => fill(&mut map, &mut access_tokens, "accessTokens")?,
                        #[cfg(feature = "exchange")]
                        Key::Known(3) => {
                            fill(&mut map, &mut connections_raw, "connectionTokenSets")?;
                        }
                        Key::Known(_) => fill(&mut map, &mut state, "tokenkeeper")?,
                        Key::Other(name) => keep_other(&mut map, &mut extra, name)?,
                    }
                }
                let token_set = token_set.ok_or_else(|| de::Error::missing_field("tokenSet"))?;
                let session_expires_at = extra
                    .get("internal")
                    .and_then(|i| i.get("sessionExpiresAt"))
                    .and_then(ceiling_from_json);
                // A malformed member must not make the whole session
                // unreadable (the user would be logged out): it is kept as
                // it was, unread.
                #[cfg(feature = "exchange")]
                let connections = match connections_raw {
                    None => Vec::new(),
                    Some(raw) => match Vec::<ConnectionTokenSet>::deserialize(&raw) {
                        Ok(connections) => connections,
                        Err(_) => {
                            extra.insert("connectionTokenSets".into(), raw);
                            Vec::new()
                        }
                    },
                };
                Ok(Session {
                    token_set,
                    cache: TokenCache::from_entries(access_tokens.unwrap_or_default()),
                    #[cfg(feature = "exchange")]
                    connections,
                    state: state.unwrap_or_default(),
                    session_expires_at,
                    extra,
                })
            }
        }
        deserializer.deserialize_map(SessionVisitor)
    }
}

/// A session ceiling as the SDK reads one (an ID token's
/// `session_expiry`, a stored `sessionExpiresAt`): seconds as an integer,
/// a float or a numeric string, valid only when 0 < value < 1e10. The
/// login and the load read it here, so both see the same ceiling.
pub(crate) fn ceiling_from_json(value: &Value) -> Option<UnixTime> {
    seconds_from_json(value)
        .filter(|&s| s > 0 && s < 10_000_000_000)
        .map(UnixTime::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The largest session the default caps let grow (its three tokens,
    /// 50 cached access tokens and 50 connection tokens, each of the
    /// largest size a response may carry) is read back with the default
    /// limits. (It was refused past 1 MiB, the response body limit: a
    /// session that grew past it was saved and then could not be loaded.)
    #[test]
    fn the_largest_session_the_default_caps_allow_is_read_back() {
        let limits = Limits::default();
        let config = crate::Config::builder("https://as.example/token", "c")
            .build()
            .unwrap();
        let entries = config.max_cache_entries;
        let token = "t".repeat(limits.max_token_bytes);
        let access_tokens: alloc::vec::Vec<serde_json::Value> = (0..entries)
            .map(|i| {
                json!({"accessToken": token, "audience": alloc::format!("https://api{i}.example"),
                    "requestedScope": "openid profile email offline_access read:data write:data",
                    "scope": "openid profile email offline_access read:data write:data",
                    "expiresAt": 1_900_000_000, "expiresIn": 3600, "token_type": "DPoP"})
            })
            .collect();
        let connections: alloc::vec::Vec<serde_json::Value> = (0..entries)
            .map(|i| {
                json!({"accessToken": token, "expiresAt": 1_900_000_000, "scope": "repo user",
                    "connection": alloc::format!("connection-{i}"),
                    "loginHint": alloc::format!("user-{i}@example.com")})
            })
            .collect();
        let input = json!({
            "user": {"sub": "auth0|1", "name": "Ada"},
            "tokenSet": {"accessToken": token, "refreshToken": token, "idToken": token,
                "expiresAt": 1_900_000_000, "scope": "openid", "audience": "https://api.example"},
            "accessTokens": access_tokens,
            "connectionTokenSets": connections,
            "internal": {"sid": "s1", "createdAt": 5},
        });
        let input = serde_json::to_string(&input).unwrap();
        assert!(input.len() > limits.max_body_bytes, "{}", input.len());
        let session = Session::from_json(input.as_bytes(), &limits).unwrap();
        assert_eq!(session.access_tokens().len(), entries);
        #[cfg(feature = "exchange")]
        assert_eq!(session.connection_token_sets().len(), entries);
        let saved = session.to_json();
        let back = Session::from_json(saved.as_bytes(), &limits).unwrap();
        assert_eq!(back.to_json(), saved);
        // Headroom for what the SDK and users keep beside it.
        assert!(
            saved.len() < limits.max_session_bytes * 7 / 8,
            "{} of {}",
            saved.len(),
            limits.max_session_bytes
        );
    }

    #[test]
    fn round_trip_keeps_foreign_members() {
        let input = json!({
            "user": {"sub": "auth0|1", "name": "Ada"},
            "tokenSet": {"accessToken": "at", "refreshToken": "rt", "expiresAt": 100},
            "accessTokens": [
                {"accessToken": "a1", "audience": "https://api1", "requestedScope": "read", "scope": "read", "expiresAt": 100, "token_type": "Bearer"}
            ],
            "internal": {"sid": "s1", "createdAt": 5, "sessionExpiresAt": 900},
            "connectionTokenSets": [{"connection": "github"}]
        });
        let session: Session = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(session.session_expires_at(), Some(UnixTime::from_secs(900)));
        assert_eq!(session.access_tokens().len(), 1);
        let back = serde_json::to_value(&session).unwrap();
        let mut expected = input;
        expected["tokenkeeper"] = json!({"generation": 0});
        assert_eq!(back, expected);
    }

    #[test]
    #[cfg(feature = "exchange")]
    fn a_malformed_connection_member_is_kept_not_fatal() {
        for raw in [
            json!(null),
            json!(7),
            json!([1, 2]),
            json!([{"connection": 5}]),
        ] {
            let input = json!({"tokenSet": {"accessToken": "a"}, "connectionTokenSets": raw});
            let session: Session = serde_json::from_value(input.clone()).unwrap();
            assert!(session.connection_token_sets().is_empty(), "{raw}");
            let back = serde_json::to_value(&session).unwrap();
            assert_eq!(back["connectionTokenSets"], raw);
        }
        // Storing a connection token replaces it.
        let mut session: Session = serde_json::from_value(
            json!({"tokenSet": {"accessToken": "a"}, "connectionTokenSets": 7}),
        )
        .unwrap();
        session.connections_mut().push(ConnectionTokenSet {
            access_token: AccessToken::new("gh"),
            expires_at: Some(UnixTime::from_secs(9)),
            scope: None,
            connection: "github".into(),
            login_hint: None,
            extra: Map::new(),
        });
        let back = serde_json::to_value(&session).unwrap();
        assert_eq!(
            back["connectionTokenSets"],
            json!([{"accessToken": "gh", "expiresAt": 9, "connection": "github"}])
        );
    }

    /// The ceiling the session enforces is the one its JSON carries: set
    /// through `internal`, it holds in memory and after a store round
    /// trip alike (it was enforced in memory only until a reload).
    #[test]
    fn set_internal_sets_the_ceiling_it_carries() {
        let limits = Limits::default();
        let mut session = Session::from_json(
            br#"{"tokenSet":{"accessToken":"a"},"internal":{"sessionExpiresAt":900}}"#,
            &limits,
        )
        .unwrap();
        assert_eq!(session.session_expires_at(), Some(UnixTime::from_secs(900)));
        session.set_internal(Map::new());
        assert_eq!(session.session_expires_at(), None);
        let mut internal = Map::new();
        internal.insert("sessionExpiresAt".into(), Value::from(1200.0));
        session.set_internal(internal);
        assert_eq!(
            session.session_expires_at(),
            Some(UnixTime::from_secs(1200))
        );
        let reloaded = Session::from_json(session.to_json().as_bytes(), &limits).unwrap();
        assert_eq!(reloaded.session_expires_at(), session.session_expires_at());
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let limits = Limits::default();
        for bad in [&b"{"[..], b"[]", b"{}", b"{\"tokenSet\":1}", b"\xff"] {
            let err = Session::from_json(bad, &limits).unwrap_err();
            assert_eq!(err.code(), "invalid_session");
        }
        let deep = alloc::format!("{{\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            Session::from_json(deep.as_bytes(), &limits)
                .unwrap_err()
                .code(),
            "invalid_session"
        );
        // Not UTF-8 inside a string: where, and no byte of the value.
        let err = Session::from_json(b"{\"tokenSet\":{\"accessToken\":\"a\xffb\"}}", &limits)
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSession(m) if m == "the session JSON is not UTF-8 (at byte 29)"),
            "{err:?}"
        );
    }

    #[test]
    fn ceiling_is_validated_like_the_sdk() {
        for (raw, expected) in [
            (json!(0), None),
            (json!(1e11), None),
            (json!("50"), Some(50)),
        ] {
            let session: Session = serde_json::from_value(json!({
                "tokenSet": {"accessToken": "a"},
                "internal": {"sessionExpiresAt": raw}
            }))
            .unwrap();
            assert_eq!(
                session.session_expires_at(),
                expected.map(UnixTime::from_secs)
            );
        }
    }
}
