//! Where a session's parts live in Redis.
//!
//! ```text
//! <prefix>:session:<key>   hash: session (JSON), generation, claim_owner
//!                          TTL: the session's ceiling (none without one)
//! <prefix>:floor:<key>     string: the highest generation ever stored,
//!                          kept across clear (TTL: the ceiling + a day)
//! <prefix>:claim:<key>     string: the refresh claim as JSON
//!                          {"owner","until","generation"}, TTL: the lease (PX)
//! <prefix>:changed         pub/sub channel: the key of every saved or
//!                          cleared session
//! ```

/// The prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "tokenkeeper";

/// The key names of one store (one prefix).
#[derive(Debug, Clone)]
pub(crate) struct KeyScheme {
    prefix: String,
}

impl KeyScheme {
    pub(crate) fn new(prefix: &str) -> Self {
        KeyScheme {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn session(&self, key: &str) -> String {
        format!("{}:session:{key}", self.prefix)
    }

    pub(crate) fn floor(&self, key: &str) -> String {
        format!("{}:floor:{key}", self.prefix)
    }

    pub(crate) fn claim(&self, key: &str) -> String {
        format!("{}:claim:{key}", self.prefix)
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}:changed", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let keys = KeyScheme::new("app");
        assert_eq!(keys.session("s1"), "app:session:s1");
        assert_eq!(keys.floor("s1"), "app:floor:s1");
        assert_eq!(keys.claim("s1"), "app:claim:s1");
        assert_eq!(keys.channel(), "app:changed");
    }
}
