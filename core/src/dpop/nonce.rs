//! [`NonceCache`]: the latest `DPoP-Nonce` (RFC 9449 §8, §9) of each
//! origin.
//!
//! Servers may demand that proofs carry a nonce they chose. They send it in
//! the `DPoP-Nonce` header of any response, success or error, and a client
//! puts the latest one into its next proof for that server. Nonces are
//! kept per origin (`scheme://host[:port]`), so an authorization server's
//! and a resource server's never mix. The cache is bounded: past its
//! capacity the least recently used origin goes.
//!
//! [`NonceCache::learn`] reports whether a *new* nonce arrived (one that
//! differs from the cached one): a token request answered
//! `use_dpop_nonce` is retried only then, so a server that keeps rejecting
//! the same nonce cannot cause a retry loop.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::htu::origin;
use crate::http::{Headers, HttpResponse};

/// The name of the response header carrying a server nonce.
pub const DPOP_NONCE_HEADER: &str = "DPoP-Nonce";

/// Default number of origins a [`NonceCache`] holds.
pub const DEFAULT_NONCE_CAPACITY: usize = 100;

/// Longest nonce accepted, in bytes; longer values are ignored.
pub const MAX_NONCE_BYTES: usize = 1024;

/// Whether `nonce` is a valid `DPoP-Nonce` value: RFC 9449 §8.1
/// `nonce = 1*NQCHAR` (`%x21 / %x23-5B / %x5D-7E`: printable ASCII except
/// space, `"` and `\`), at most [`MAX_NONCE_BYTES`] long.
#[must_use]
pub fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_BYTES
        && nonce
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// The nonce `headers` offer: the first `DPoP-Nonce` field, surrounding
/// whitespace ignored, if it is valid ([`is_valid_nonce`]). What the cache
/// learns and what a `use_dpop_nonce` retry is decided on.
#[must_use]
pub fn offered_nonce(headers: &Headers) -> Option<&str> {
    let nonce = headers.get(DPOP_NONCE_HEADER)?.trim_matches([' ', '\t']);
    is_valid_nonce(nonce).then_some(nonce)
}

struct Entry {
    origin: String,
    nonce: String,
    /// The tick of the last use: the smallest goes first.
    used: u64,
}

/// The latest server nonce per origin, least recently used evicted first.
///
/// The entries are a plain list searched front to back: an app talks to a
/// handful of origins (the capacity bounds it at 100 by default), where a
/// scan of short strings is as fast as a tree, and a list adds no code of
/// its own to a wasm app (each `BTreeMap` key/value pair is its own copy of
/// the tree code).
pub struct NonceCache {
    entries: Vec<Entry>,
    capacity: usize,
    tick: u64,
}

impl NonceCache {
    /// An empty cache for [`DEFAULT_NONCE_CAPACITY`] origins.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_NONCE_CAPACITY)
    }

    /// An empty cache for `capacity` origins (0 keeps nothing).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        NonceCache {
            entries: Vec::new(),
            capacity,
            tick: 0,
        }
    }

    /// The number of origins it holds at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of origins with a nonce.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no nonce is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn next_tick(&mut self) -> u64 {
        // 2^64 uses will not happen; saturating keeps this panic-free anyway.
        self.tick = self.tick.saturating_add(1);
        self.tick
    }

    fn position(&self, origin: &str) -> Option<usize> {
        self.entries.iter().position(|entry| entry.origin == origin)
    }

    /// Learns the `DPoP-Nonce` in `headers` of a response to a request to
    /// `url`, whatever the response's status. Returns `true` when a new
    /// nonce was stored (none was cached for the origin, or another one).
    ///
    /// A missing header, an invalid nonce (see [`is_valid_nonce`]) or an
    /// unusable `url` changes nothing and returns `false`. Only the first
    /// `DPoP-Nonce` field is read; surrounding whitespace is ignored.
    pub fn learn(&mut self, url: &str, headers: &Headers) -> bool {
        let Some(nonce) = offered_nonce(headers) else {
            return false;
        };
        if self.capacity == 0 {
            return false;
        }
        let Ok(origin) = origin(url) else {
            return false;
        };
        let used = self.next_tick();
        if let Some(i) = self.position(&origin)
            && let Some(entry) = self.entries.get_mut(i)
        {
            let new = entry.nonce != nonce;
            if new {
                entry.nonce.clear();
                entry.nonce.push_str(nonce);
            }
            entry.used = used;
            return new;
        }
        while self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, entry)| entry.used);
            let Some((oldest, _)) = oldest else {
                break;
            };
            self.entries.swap_remove(oldest);
        }
        self.entries.push(Entry {
            origin,
            nonce: String::from(nonce),
            used,
        });
        true
    }

    /// [`learn`](Self::learn) from a whole response.
    pub fn learn_from_response(&mut self, url: &str, response: &HttpResponse) -> bool {
        self.learn(url, &response.headers)
    }

    /// The nonce to put into the next proof for a request to `url`, if its
    /// origin sent one. Counts as a use for the eviction order.
    #[must_use]
    pub fn get(&mut self, url: &str) -> Option<&str> {
        let origin = origin(url).ok()?;
        let i = self.position(&origin)?;
        let used = self.next_tick();
        let entry = self.entries.get_mut(i)?;
        entry.used = used;
        Some(entry.nonce.as_str())
    }

    /// The nonce for `url` without counting it as a use.
    #[must_use]
    pub fn peek(&self, url: &str) -> Option<&str> {
        let origin = origin(url).ok()?;
        let i = self.position(&origin)?;
        self.entries.get(i).map(|entry| entry.nonce.as_str())
    }

    /// Forgets the nonce of `url`'s origin.
    pub fn remove(&mut self, url: &str) {
        if let Ok(origin) = origin(url)
            && let Some(i) = self.position(&origin)
        {
            self.entries.swap_remove(i);
        }
    }

    /// Forgets every nonce.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NonceCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceCache")
            .field(
                "origins",
                &self
                    .entries
                    .iter()
                    .map(|entry| entry.origin.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn with_nonce(nonce: &str) -> Headers {
        let mut headers = Headers::new();
        headers.append("dpop-nonce", nonce);
        headers
    }

    // Normalises URLs through the WHATWG parser.
    #[cfg(feature = "url")]
    #[test]
    fn learns_from_any_status_and_reports_new_nonces() {
        let mut cache = NonceCache::new();
        let error = HttpResponse::new(400, r#"{"error":"use_dpop_nonce"}"#)
            .with_header("DPoP-Nonce", "n-1");
        assert!(cache.learn_from_response("https://as.example/token", &error));
        assert_eq!(cache.get("https://as.example/other?x"), Some("n-1"));
        // The same nonce again is not new: no retry.
        assert!(!cache.learn_from_response("https://as.example/token", &error));
        let ok = HttpResponse::new(200, "{}").with_header("DPoP-Nonce", " n-2\t");
        assert!(cache.learn_from_response("https://AS.example:443/token", &ok));
        assert_eq!(cache.peek("https://as.example/"), Some("n-2"));
        // No header: nothing changes.
        assert!(!cache.learn_from_response("https://as.example/", &HttpResponse::new(200, "")));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn origins_never_mix() {
        let mut cache = NonceCache::new();
        assert!(cache.learn("https://as.example/token", &with_nonce("as")));
        assert!(cache.learn("https://rs.example/api", &with_nonce("rs")));
        assert!(cache.learn("https://as.example:8443/token", &with_nonce("port")));
        assert!(cache.learn("http://as.example/token", &with_nonce("http")));
        assert_eq!(cache.get("https://as.example/x"), Some("as"));
        assert_eq!(cache.get("https://rs.example/x"), Some("rs"));
        assert_eq!(cache.get("https://as.example:8443/"), Some("port"));
        assert_eq!(cache.get("http://as.example/"), Some("http"));
        assert_eq!(cache.get("https://other.example/"), None);
        cache.remove("https://rs.example/");
        assert_eq!(cache.get("https://rs.example/x"), None);
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn invalid_nonces_are_ignored() {
        let mut cache = NonceCache::new();
        assert!(cache.learn("https://as.example/", &with_nonce("good")));
        let too_long = "a".repeat(MAX_NONCE_BYTES + 1);
        for bad in [
            "", " ", "a b", "a\"b", "a\\b", "nönce", "a\u{7f}", "a\u{1}", &too_long,
        ] {
            assert!(
                !cache.learn("https://as.example/", &with_nonce(bad)),
                "{bad:?}"
            );
            assert_eq!(cache.peek("https://as.example/"), Some("good"));
        }
        let longest = "a".repeat(MAX_NONCE_BYTES);
        assert!(cache.learn("https://as.example/", &with_nonce(&longest)));
        assert!(is_valid_nonce("!#[]~eyJ7S_zG.9-0"));
        // Unusable URLs learn nothing and find nothing.
        assert!(!cache.learn("not a url", &with_nonce("n")));
        assert!(!cache.learn("ftp://as.example/", &with_nonce("n")));
        assert_eq!(cache.get("not a url"), None);
    }

    #[test]
    fn lru_at_and_past_capacity() {
        let url = |i: usize| format!("https://rs{i}.example/api");
        let mut cache = NonceCache::new();
        assert_eq!(cache.capacity(), 100);
        for i in 0..100 {
            assert!(cache.learn(&url(i), &with_nonce(&format!("n{i}"))));
        }
        // At capacity: all 100 kept.
        assert_eq!(cache.len(), 100);
        assert!((0..100).all(|i| cache.peek(&url(i)).is_some()));

        // Using origin 0 makes origin 1 the least recently used.
        assert_eq!(cache.get(&url(0)), Some("n0"));
        assert!(cache.learn(&url(100), &with_nonce("n100")));
        assert_eq!(cache.len(), 100);
        assert_eq!(cache.peek(&url(1)), None, "least recently used goes");
        assert_eq!(cache.peek(&url(0)), Some("n0"));
        assert_eq!(cache.peek(&url(100)), Some("n100"));

        // Re-learning counts as a use too: refresh 2, then add 101 → 3 goes.
        assert!(!cache.learn(&url(2), &with_nonce("n2")));
        assert!(cache.learn(&url(101), &with_nonce("n101")));
        assert_eq!(cache.peek(&url(3)), None);
        assert_eq!(cache.peek(&url(2)), Some("n2"));
        assert_eq!(cache.len(), 100);
    }

    #[test]
    fn small_and_zero_capacity() {
        let mut one = NonceCache::with_capacity(1);
        assert!(one.learn("https://a.example/", &with_nonce("a")));
        assert!(one.learn("https://b.example/", &with_nonce("b")));
        assert_eq!(one.len(), 1);
        assert_eq!(one.peek("https://a.example/"), None);
        let mut zero = NonceCache::with_capacity(0);
        assert!(!zero.learn("https://a.example/", &with_nonce("a")));
        assert!(zero.is_empty());
    }

    #[test]
    fn debug_lists_origins() {
        let mut cache = NonceCache::new();
        cache.learn("https://as.example/t", &with_nonce("secretish"));
        let printed = format!("{cache:?}");
        assert!(printed.contains("https://as.example"));
        assert!(!printed.contains("secretish"));
    }
}
