//! [`RedisStoreOptions`]: what a store is configured with besides its URL.

use std::time::Duration;

use tokenkeeper::Limits;

use crate::keys::DEFAULT_PREFIX;

/// A store's settings: the key prefix, time limits, and the limits sessions
/// read back are parsed with.
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    pub(crate) prefix: String,
    pub(crate) response_timeout: Duration,
    pub(crate) connection_timeout: Duration,
    pub(crate) limits: Limits,
    pub(crate) root_certificates: Option<Vec<u8>>,
}

impl Default for RedisStoreOptions {
    /// Prefix `tokenkeeper`, 2 s to answer, 2 s to connect, the core's
    /// default limits.
    fn default() -> Self {
        RedisStoreOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(2),
            limits: Limits::default(),
            root_certificates: None,
        }
    }
}

impl RedisStoreOptions {
    /// The prefix of every key (`<prefix>:session:<key>`, …): one per
    /// application sharing a Redis.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a command may take before it fails (a typed error; the
    /// session in memory stays intact).
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long connecting may take.
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The limits a stored session is parsed with (size, depth).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The CA certificates (PEM) a `rediss://` server's certificate must
    /// chain to, instead of the system's trust store: a private CA.
    #[must_use]
    pub fn root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }
}
