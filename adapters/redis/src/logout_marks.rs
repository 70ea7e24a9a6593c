//! Back-channel logout marks in Redis, shared by a fleet
//! ([`tokenkeeper::store::logout_marks`]): one key per `sid` or `sub`
//! mark, one per seen logout token `jti`, each expiring on its own.
//!
//! ```text
//! <prefix>:bcl:sid:<sid>     "logged out at" (unix seconds), EXAT = the mark's retention
//! <prefix>:bcl:sub:<sub>     idem, for every session of the user
//! <prefix>:bcl:jti:<key>     "1", SET NX EXAT = the token's remember_until (replay check)
//! ```
//!
//! `mark` keeps the later of two marks (a Lua script, atomic);
//! `record_once` is `SET NX`, atomic across the fleet: a logout token
//! replayed to another instance is refused there too.

use redis::{Client, Connection, ProtocolVersion, Script};
use tokenkeeper::store::LogoutMarks;
use tokenkeeper::{StoreError, UnixTime};

use crate::error::RedisStoreError;
use crate::nonblocking::client;

/// Keeps the later mark: `KEYS[1]`, `ARGV[1]` = at, `ARGV[2]` = until.
const MARK: &str = r"
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = tonumber(ARGV[1])
if at < old then at = old end
redis.call('SET', KEYS[1], at, 'EXAT', ARGV[2])
return at
";

/// Back-channel logout marks and seen `jti`s in Redis (blocking; the
/// axum integration calls it under its lock, one short command at a
/// time). Every instance of the app connects one to the same Redis with
/// the same prefix.
pub struct RedisLogoutMarks {
    client: Client,
    connection: Option<Connection>,
    prefix: String,
    mark: Script,
}

impl std::fmt::Debug for RedisLogoutMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLogoutMarks")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLogoutMarks {
    /// Marks on `url` (as [`RedisStore::connect`](crate::RedisStore::connect)
    /// takes it) under `prefix` (the session store's prefix is a good
    /// choice), connected at once.
    ///
    /// # Errors
    /// [`RedisStoreError::Redis`]: a bad URL, Redis unreachable, AUTH refused.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, RedisStoreError> {
        let mut marks = RedisLogoutMarks {
            client: client(url, ProtocolVersion::RESP2, None)?,
            connection: None,
            prefix: prefix.to_owned(),
            mark: Script::new(MARK),
        };
        marks.connection()?;
        Ok(marks)
    }

    fn connection(&mut self) -> Result<&mut Connection, RedisStoreError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.client.get_connection()?,
        };
        Ok(self.connection.insert(connection))
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// Runs `command`, dropping the connection after an error (the next
    /// call reconnects).
    fn run<T>(
        &mut self,
        key: &str,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let result = command(self.connection().map_err(StoreError::from)?);
        if result.is_err() {
            self.connection = None;
        }
        result.map_err(|e| StoreError::from(RedisStoreError::from_redis(key, e)))
    }
}

impl LogoutMarks for RedisLogoutMarks {
    fn mark(&mut self, key: &str, at: UnixTime, until: UnixTime) -> Result<(), StoreError> {
        let key = self.key(key);
        let script = self.mark.clone();
        self.run(&key, |c| {
            script
                .key(&key)
                .arg(at.as_secs())
                .arg(until.as_secs().max(1))
                .invoke::<u64>(c)
        })
        .map(|_| ())
    }

    fn marked_at(&mut self, key: &str, _now: UnixTime) -> Result<Option<UnixTime>, StoreError> {
        let key = self.key(key);
        // Redis expires the mark at its retention: present means kept.
        let at: Option<u64> = self.run(&key, |c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(at.map(UnixTime::from_secs))
    }

    fn latest_mark(
        &mut self,
        keys: &[&str],
        _now: UnixTime,
    ) -> Result<Option<UnixTime>, StoreError> {
        let keys: Vec<String> = keys.iter().map(|key| self.key(key)).collect();
        let Some(first) = keys.first().cloned() else {
            return Ok(None);
        };
        // One MGET for all: a session's sid and sub on every request.
        let marks: Vec<Option<u64>> =
            self.run(&first, |c| redis::cmd("MGET").arg(&keys).query(c))?;
        Ok(marks.into_iter().flatten().max().map(UnixTime::from_secs))
    }

    fn record_once(
        &mut self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let key = self.key(&format!("bcl:jti:{key}"));
        // At least a second ahead: EXAT in the past is refused.
        let until = until.as_secs().max(now.as_secs() + 1);
        let set: Option<String> = self.run(&key, |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EXAT")
                .arg(until)
                .query(c)
        })?;
        Ok(set.is_some())
    }
}
