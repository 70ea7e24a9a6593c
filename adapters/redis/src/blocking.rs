//! [`BlockingRedisStore`]: the blocking store, for threads and the command
//! line (the ureq adapter, [`Keeper`](tokenkeeper::Keeper)). One
//! connection, made again after a failure. No wake-ups: blocking hosts
//! poll.

use redis::{Client, Connection, ProtocolVersion, RedisError};
use tokenkeeper::store::{SessionKey, SessionStore};
use tokenkeeper::{Session, StoreError};

use crate::counters::{Counters, Tally};
use crate::error::RedisStoreError;
use crate::keys::KeyScheme;
use crate::nonblocking::client;
use crate::ops;
use crate::options::RedisStoreOptions;

/// A shared session store on Redis, blocking (see the [crate docs](crate)).
pub struct BlockingRedisStore {
    client: Client,
    connection: Option<Connection>,
    keys: KeyScheme,
    options: RedisStoreOptions,
    tally: Tally,
}

impl std::fmt::Debug for BlockingRedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingRedisStore")
            .field("prefix", &self.options.prefix)
            .finish_non_exhaustive()
    }
}

impl BlockingRedisStore {
    /// A store on `url` (as [`RedisStore::connect`](crate::RedisStore::connect)
    /// takes it), connected at once.
    ///
    /// # Errors
    /// [`RedisStoreError::Redis`]: a bad URL, Redis unreachable, AUTH refused.
    pub fn connect(url: &str) -> Result<Self, RedisStoreError> {
        Self::connect_with(url, RedisStoreOptions::default())
    }

    /// [`connect`](BlockingRedisStore::connect) with `options`.
    ///
    /// # Errors
    /// As [`connect`](BlockingRedisStore::connect).
    pub fn connect_with(url: &str, options: RedisStoreOptions) -> Result<Self, RedisStoreError> {
        let mut store = BlockingRedisStore {
            client: client(
                url,
                ProtocolVersion::RESP2,
                options.root_certificates.as_deref(),
            )?,
            connection: None,
            keys: KeyScheme::new(&options.prefix),
            options,
            tally: Tally::default(),
        };
        store.connection()?;
        Ok(store)
    }

    /// What this store did so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.tally.read(0)
    }

    fn connection(&mut self) -> Result<&mut Connection, RedisError> {
        if self.connection.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(self.options.connection_timeout)?;
            connection.set_read_timeout(Some(self.options.response_timeout))?;
            connection.set_write_timeout(Some(self.options.response_timeout))?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected just above"))
    }

    /// Runs `invocation`; a connection that failed is made again next time.
    fn run<T: redis::FromRedisValue>(
        &mut self,
        key: &str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisStoreError> {
        self.with_connection(key, |connection| invocation.invoke(connection))
    }

    /// Runs `command` on the connection; one that failed is made again
    /// next time.
    fn with_connection<T>(
        &mut self,
        key: &str,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, RedisStoreError> {
        let result = self.connection().and_then(command);
        if let Err(error) = &result
            && (error.is_io_error() || error.is_connection_dropped() || error.is_timeout())
        {
            self.connection = None;
        }
        result.map_err(|e| RedisStoreError::from_redis(&self.keys.session(key), e))
    }
}

impl SessionStore for BlockingRedisStore {
    fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        let redis_key = self.keys.session(key);
        let quick = ops::quick_load(&redis_key);
        let reply: ops::QuickReply =
            self.with_connection(key, |connection| quick.query(connection))?;
        let loaded = match ops::quick_loaded(reply) {
            Some(loaded) => loaded,
            None => {
                let pipeline = ops::load(&self.keys, key);
                let reply: ops::LoadReply =
                    self.with_connection(key, |connection| pipeline.query(connection))?;
                ops::loaded_of(&redis_key, reply)?
            }
        };
        let (session, claimed) =
            ops::session_of(&redis_key, loaded, &self.options.limits, ops::now_ms())?;
        if claimed {
            Tally::bump(&self.tally.claims_read);
        }
        Ok(session)
    }

    fn save(
        &mut self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let (invocation, claims) = ops::save(&self.keys, key, session, expected, ops::now_ms());
        let saved = ops::saved(key, self.run(key, &invocation)?);
        match &saved {
            Ok(()) if claims => Tally::bump(&self.tally.claims_written),
            Err(StoreError::Conflict { .. }) => Tally::bump(&self.tally.conflicts),
            _ => {}
        }
        saved
    }

    fn generation(&mut self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        let reply = self.run(key, &ops::generation(&self.keys, key))?;
        ops::generation_of(key, reply)
    }

    fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
        let _: i64 = self.run(key, &ops::clear(&self.keys, key))?;
        Ok(())
    }

    fn floor(&mut self, key: &SessionKey) -> Result<u64, StoreError> {
        let reply = self.run(key, &ops::floor(&self.keys, key))?;
        ops::floor_of(key, reply)
    }
}
