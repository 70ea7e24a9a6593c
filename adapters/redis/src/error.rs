//! The store's own errors: the [`source`](std::error::Error::source) of
//! [`StoreError::Backend`](tokenkeeper::StoreError::Backend).

/// Why a Redis store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// Redis could not be reached, refused the command, or timed out.
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    /// The key holds something this store did not write (another type, or
    /// a hash without a generation): it is left as it is.
    #[error("{key} holds a value that is not a tokenkeeper session ({found})")]
    Foreign {
        /// The Redis key.
        key: String,
        /// What was found there.
        found: String,
    },
    /// The key holds this store's hash, but its session does not parse:
    /// it is left as it is.
    #[error("the session stored at {key} does not parse")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// The core's verdict on it.
        #[source]
        source: tokenkeeper::Error,
    },
    /// A generation or floor that is not a number.
    #[error("{key} holds a generation that is not a number")]
    BadGeneration {
        /// The Redis key.
        key: String,
    },
}

/// The prefix of the Lua scripts' refusal of a key they did not write.
pub(crate) const FOREIGN_CODE: &str = "TKFOREIGN";

impl RedisStoreError {
    /// A Redis error, or a script's refusal of a foreign value.
    pub(crate) fn from_redis(key: &str, error: redis::RedisError) -> Self {
        if error.code() == Some(FOREIGN_CODE) {
            return RedisStoreError::Foreign {
                key: key.to_owned(),
                found: error.detail().unwrap_or("unknown").to_owned(),
            };
        }
        RedisStoreError::Redis(error)
    }
}

impl From<RedisStoreError> for tokenkeeper::StoreError {
    fn from(error: RedisStoreError) -> Self {
        tokenkeeper::StoreError::backend(error)
    }
}
