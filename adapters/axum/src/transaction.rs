//! The login transaction cookie: one per login, `__txn_{state}`, so logins
//! started in several tabs each find their own (the SDK's parallel
//! transactions). It holds the core's [`LoginTransaction`] (PKCE verifier,
//! `state`, `nonce`, scope, API) and the `returnTo`, encrypted with the
//! session key, for one hour.
//!
//! ```text
//! /auth/login:    TransactionCookie { transaction, return_to }.write(..) ─► Set-Cookie __txn_{state}
//! /auth/callback: read(cookies, state, now) ─► Some(..) | None; delete(state) always
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokenkeeper::login::LoginTransaction;

use crate::cookies::{CookieAttributes, RequestCookies};
use crate::jwe::CookieKey;

/// The SDK's transaction cookie prefix.
pub const PREFIX: &str = "__txn_";
/// How long a login may take (seconds), as the SDK.
pub const MAX_AGE: u64 = 3600;

/// What a login keeps until its callback.
#[derive(Debug, Serialize, Deserialize)]
pub struct TransactionCookie {
    /// The core's transaction.
    pub transaction: LoginTransaction,
    /// Where the callback sends the browser (already checked same-origin).
    #[serde(rename = "returnTo")]
    pub return_to: String,
}

impl TransactionCookie {
    /// The `Set-Cookie` value, for state `state`.
    #[must_use]
    pub fn write(
        &self,
        key: &CookieKey,
        attributes: &CookieAttributes,
        now: u64,
    ) -> Option<String> {
        let Ok(Value::Object(claims)) = serde_json::to_value(self) else {
            return None;
        };
        let jwe = key.encrypt(claims, now + MAX_AGE).ok()?;
        let name = format!("{PREFIX}{}", self.transaction.state().secret());
        Some(attributes.set_cookie(&name, &jwe, Some(MAX_AGE)))
    }

    /// The transaction of `state`, when its cookie is present, intact and
    /// not expired.
    #[must_use]
    pub fn read(
        key: &CookieKey,
        cookies: &RequestCookies<'_>,
        state: &str,
        now: u64,
    ) -> Option<Self> {
        let value = cookies.get(&format!("{PREFIX}{state}"))?;
        let claims: Map<String, Value> = key.decrypt(value, now).ok()?;
        serde_json::from_value(Value::Object(claims)).ok()
    }

    /// Deletes the cookie of `state`.
    #[must_use]
    pub fn delete(attributes: &CookieAttributes, state: &str) -> String {
        attributes.delete_cookie(&format!("{PREFIX}{state}"))
    }
}
