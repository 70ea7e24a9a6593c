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
        self.name(":session:", key)
    }

    pub(crate) fn floor(&self, key: &str) -> String {
        self.name(":floor:", key)
    }

    pub(crate) fn claim(&self, key: &str) -> String {
        self.name(":claim:", key)
    }

    /// `<prefix><kind><key>`, copied into one allocation of its size (a
    /// `format!` costs every load about 1k instructions more).
    fn name(&self, kind: &str, key: &str) -> String {
        let mut name = String::with_capacity(self.prefix.len() + kind.len() + key.len());
        name.push_str(&self.prefix);
        name.push_str(kind);
        name.push_str(key);
        name
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
