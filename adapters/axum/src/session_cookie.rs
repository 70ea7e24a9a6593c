//! The session cookie: `__session` (chunked as `__session__N`), a JWE of
//! the session's JSON (stateless) or of `{"id": …}` (stateful), with `exp`
//! = the session's expiry, exactly as the Next.js SDK v4's
//! `StatelessSessionStore` / `StatefulSessionStore` write it.
//!
//! ```text
//! SessionCookie::new(secret, name, attributes, durations, max_bytes)
//!   .read_claims(&request_cookies, now) ─► Ok(claims) | Err(why there is no session)
//!   .write(claims, created_at, now, &request_cookies, &mut set_cookies) ─► Ok | Err(TooLarge)
//!   .clear(&request_cookies, &mut set_cookies)
//! ```
//!
//! A stateless session's Token Vault tokens (`connectionTokenSets`) go in
//! cookies of their own, one JWE per entry, `__FC_0`, `__FC_1`, … (the
//! SDK's layout): read back into the session, rewritten with it, and those
//! beyond the current count deleted.
//!
//! Expiry ([`SessionDurations`], the SDK's `calculateMaxAge`): rolling
//! sessions live `min(now + inactivity, createdAt + absolute)`; without
//! rolling, `absolute` from the write.

use serde_json::{Map, Value};
use tokenkeeper::Session;

use crate::cookies::{self, CookieAttributes, RequestCookies};
use crate::jwe::{CookieKey, JweError};

/// The SDK's session cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "__session";

/// The prefix of the SDK's connection token cookies (`__FC_<index>`).
pub const CONNECTION_COOKIE_PREFIX: &str = "__FC_";

/// The index of a connection token cookie (`__FC_<digits>`), as the SDK
/// matches them (any other `__FC…` cookie is not one).
fn connection_cookie_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(CONNECTION_COOKIE_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How long a session lives (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionDurations {
    /// Each write extends the session by `inactivity`, up to `absolute`
    /// after its creation (default `true`).
    pub rolling: bool,
    /// The longest a session lives after login (default 3 days).
    pub absolute: u64,
    /// How long an unused rolling session lives (default 1 day).
    pub inactivity: u64,
}

impl Default for SessionDurations {
    fn default() -> Self {
        SessionDurations {
            rolling: true,
            absolute: 3 * 24 * 3600,
            inactivity: 24 * 3600,
        }
    }
}

impl SessionDurations {
    /// Seconds from `now` the cookie written at `now` lives, for a session
    /// created at `created_at` (0 when it is over).
    #[must_use]
    pub fn max_age(&self, created_at: u64, now: u64) -> u64 {
        if !self.rolling {
            return self.absolute;
        }
        let expires_at = now
            .saturating_add(self.inactivity)
            .min(created_at.saturating_add(self.absolute));
        expires_at.saturating_sub(now)
    }
}

/// Why a session could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionCookieError {
    /// The cookies would exceed the configured total: browsers and proxies
    /// drop such headers silently, so the write is refused instead. Trim
    /// the session (fewer claims) or use a stateful store.
    #[error("the session cookie would be {bytes} bytes, above the limit of {limit}")]
    TooLarge {
        /// The encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The JWE could not be made (no random IV).
    #[error("the session could not be encrypted")]
    Encrypt(#[source] JweError),
}

/// Why a request has no session (never an error response: each means
/// "logged out").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoSession {
    /// No session cookie, or an incomplete set of chunks.
    #[error("no session cookie")]
    Absent,
    /// More cookie bytes than the limit.
    #[error("the session cookie is larger than the limit")]
    TooLarge,
    /// The JWE is invalid, tampered, truncated, expired or for another key.
    #[error("the session cookie is not valid")]
    Invalid(#[source] JweError),
    /// The JWE holds something that is not a session.
    #[error("the session cookie does not hold a session")]
    NotASession,
}

/// The session cookie's codec.
#[derive(Debug)]
pub struct SessionCookie {
    key: CookieKey,
    name: String,
    attributes: CookieAttributes,
    durations: SessionDurations,
    max_bytes: usize,
}

impl SessionCookie {
    /// A codec for the secret `secret` (the SDK's `AUTH0_SECRET`).
    /// `max_bytes` bounds the cookie's total encoded size (all chunks).
    #[must_use]
    pub fn new(
        secret: &[u8],
        name: impl Into<String>,
        attributes: CookieAttributes,
        durations: SessionDurations,
        max_bytes: usize,
    ) -> Self {
        SessionCookie {
            key: CookieKey::from_secret(secret),
            name: name.into(),
            attributes,
            durations,
            max_bytes,
        }
    }

    /// The key (the transaction cookies use the same one, as the SDK).
    #[must_use]
    pub fn key(&self) -> &CookieKey {
        &self.key
    }

    /// The cookie attributes.
    #[must_use]
    pub fn attributes(&self) -> &CookieAttributes {
        &self.attributes
    }

    /// The durations.
    #[must_use]
    pub fn durations(&self) -> &SessionDurations {
        &self.durations
    }

    /// The decrypted claims of the request's session cookie at `now`.
    ///
    /// # Errors
    /// [`NoSession`]: why there is none.
    pub fn read_claims(
        &self,
        cookies: &RequestCookies<'_>,
        now: u64,
    ) -> Result<Map<String, Value>, NoSession> {
        let value = cookies::get_chunked(cookies, &self.name).ok_or(NoSession::Absent)?;
        if value.len() > self.max_bytes {
            return Err(NoSession::TooLarge);
        }
        self.key.decrypt(&value, now).map_err(NoSession::Invalid)
    }

    /// The request's stateless session at `now`.
    ///
    /// # Errors
    /// [`NoSession`]: why there is none (a logged-out session is none).
    pub fn read_session(
        &self,
        cookies: &RequestCookies<'_>,
        now: u64,
    ) -> Result<Session, NoSession> {
        let mut claims = self.read_claims(cookies, now)?;
        let connections = self.read_connection_cookies(cookies, now);
        if !connections.is_empty() {
            claims.insert("connectionTokenSets".into(), Value::Array(connections));
        }
        let session: Session =
            serde_json::from_value(Value::Object(claims)).map_err(|_| NoSession::NotASession)?;
        if session.is_logged_out() {
            return Err(NoSession::Absent);
        }
        Ok(session)
    }

    /// The entries of the request's `__FC_<i>` cookies in index order;
    /// one that does not decrypt is skipped (as the SDK does).
    fn read_connection_cookies(&self, cookies: &RequestCookies<'_>, now: u64) -> Vec<Value> {
        let mut found: Vec<(usize, &str)> = cookies
            .iter()
            .filter_map(|(name, value)| Some((connection_cookie_index(name)?, value)))
            .collect();
        found.sort_by_key(|(index, _)| *index);
        found
            .into_iter()
            .filter(|(_, value)| value.len() <= self.max_bytes)
            .filter_map(|(_, value)| self.key.decrypt(value, now).ok())
            .map(|mut entry| {
                // The cookie's own expiry, not the entry's.
                entry.remove("exp");
                Value::Object(entry)
            })
            .collect()
    }

    /// Writes `claims` as the session cookie at `now` for a session
    /// created at `created_at`, appending the `Set-Cookie` values to `out`.
    ///
    /// # Errors
    /// [`SessionCookieError::TooLarge`] (nothing appended) or
    /// [`SessionCookieError::Encrypt`].
    pub fn write(
        &self,
        claims: Map<String, Value>,
        created_at: u64,
        now: u64,
        cookies: &RequestCookies<'_>,
        out: &mut Vec<String>,
    ) -> Result<(), SessionCookieError> {
        let max_age = self.durations.max_age(created_at, now);
        let jwe = self
            .key
            .encrypt(claims, now.saturating_add(max_age))
            .map_err(SessionCookieError::Encrypt)?;
        // Each chunk costs its name besides its value.
        let chunks = jwe.len().div_ceil(cookies::MAX_CHUNK_SIZE).max(1);
        let bytes = jwe.len() + chunks * (self.name.len() + 4);
        if bytes > self.max_bytes {
            return Err(SessionCookieError::TooLarge {
                bytes,
                limit: self.max_bytes,
            });
        }
        cookies::set_chunked(
            &self.name,
            &jwe,
            &self.attributes,
            Some(max_age),
            cookies,
            out,
        );
        Ok(())
    }

    /// Writes a stateless `session` (its JSON) at `now`.
    ///
    /// # Errors
    /// As [`SessionCookie::write`].
    pub fn write_session(
        &self,
        session: &Session,
        now: u64,
        cookies: &RequestCookies<'_>,
        out: &mut Vec<String>,
    ) -> Result<(), SessionCookieError> {
        let Ok(Value::Object(mut claims)) = serde_json::to_value(session) else {
            return Err(SessionCookieError::Encrypt(JweError::Payload));
        };
        let connections = match claims.remove("connectionTokenSets") {
            Some(Value::Array(entries)) => entries,
            // Not the SDK's shape: kept in the session cookie as it was.
            Some(other) => {
                claims.insert("connectionTokenSets".into(), other);
                Vec::new()
            }
            None => Vec::new(),
        };
        let created_at = created_at(session, now);
        self.write(claims, created_at, now, cookies, out)?;
        let max_age = self.durations.max_age(created_at, now);
        let mut written = 0;
        for (index, entry) in connections.into_iter().enumerate() {
            let Value::Object(entry) = entry else {
                return Err(SessionCookieError::Encrypt(JweError::Payload));
            };
            let jwe = self
                .key
                .encrypt(entry, now.saturating_add(max_age))
                .map_err(SessionCookieError::Encrypt)?;
            let name = format!("{CONNECTION_COOKIE_PREFIX}{index}");
            out.push(self.attributes.set_cookie(&name, &jwe, Some(max_age)));
            written = index + 1;
        }
        // Entries the session no longer has would be read back next time.
        for (name, _) in cookies.iter() {
            if connection_cookie_index(name).is_some_and(|index| index >= written) {
                out.push(self.attributes.delete_cookie(name));
            }
        }
        Ok(())
    }

    /// Deletes the session cookie, its chunks and its connection token
    /// cookies.
    pub fn clear(&self, cookies: &RequestCookies<'_>, out: &mut Vec<String>) {
        cookies::delete_chunked(&self.name, &self.attributes, cookies, out);
        for (name, _) in cookies.iter() {
            if connection_cookie_index(name).is_some() {
                out.push(self.attributes.delete_cookie(name));
            }
        }
    }
}

/// `internal.createdAt` of `session` ([`Session::created_at`]: an integer,
/// a float or a numeric string, as the SDK and the logout marks read it),
/// or `now` when it has none.
#[must_use]
pub fn created_at(session: &Session, now: u64) -> u64 {
    session
        .created_at()
        .map_or(now, |created| created.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The absolute lifetime counts from `createdAt` however it is
    /// written; read as an integer only, a float or a string restarted it
    /// at every write.
    #[test]
    fn created_at_reads_floats_and_strings() {
        for created in ["1700000000", "1700000000.0", "\"1700000000\""] {
            let json = format!(
                r#"{{"tokenSet":{{"accessToken":"a"}},"internal":{{"createdAt":{created}}}}}"#
            );
            let session = Session::from_json(json.as_bytes(), &Default::default()).unwrap();
            assert_eq!(created_at(&session, 5), 1_700_000_000, "{created}");
        }
        let none = Session::from_json(br#"{"tokenSet":{"accessToken":"a"}}"#, &Default::default())
            .unwrap();
        assert_eq!(created_at(&none, 5), 5);
    }

    #[test]
    fn durations_follow_the_sdk() {
        let d = SessionDurations::default();
        assert_eq!(d.max_age(1_000, 1_000), 24 * 3600, "inactivity first");
        let late = 1_000 + 3 * 24 * 3600 - 60;
        assert_eq!(d.max_age(1_000, late), 60, "absolute caps it");
        assert_eq!(d.max_age(1_000, late + 120), 0);
        let fixed = SessionDurations {
            rolling: false,
            ..d
        };
        assert_eq!(fixed.max_age(1_000, 50_000), 3 * 24 * 3600);
    }
}
