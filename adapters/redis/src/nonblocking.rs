//! [`RedisStore`]: the async store, on the `redis` crate's
//! [`ConnectionManager`] (one multiplexed connection that reconnects by
//! itself, shared by every task; clones are cheap).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ProtocolVersion, TlsCertificates};
use tokenkeeper::store::{AsyncSessionStore, Changed, SessionKey};
use tokenkeeper::{Session, StoreError};

use crate::counters::{Counters, Tally};
use crate::error::RedisStoreError;
use crate::keys::KeyScheme;
use crate::ops;
use crate::options::RedisStoreOptions;
use crate::wake::{WakeSender, Wakes};

/// A shared session store on Redis, awaited (see the [crate docs](crate)).
/// Cloning it shares its connection.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    connection: ConnectionManager,
    keys: KeyScheme,
    options: RedisStoreOptions,
    wakes: Arc<Wakes>,
    tally: Tally,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.shared.options.prefix)
            .finish_non_exhaustive()
    }
}

/// A URL's client speaking `protocol` (RESP3: pub/sub pushes share the
/// connection), trusting `roots` (PEM) for `rediss://` when given.
pub(crate) fn client(
    url: &str,
    protocol: ProtocolVersion,
    roots: Option<&[u8]>,
) -> Result<Client, RedisStoreError> {
    // redis' rustls has no provider of its own: ring, the workspace's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::open(url)?;
    let info = client.get_connection_info().clone();
    let settings = info.redis_settings().clone().set_protocol(protocol);
    let info = info.set_redis_settings(settings);
    Ok(match roots {
        Some(pem) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        )?,
        None => Client::open(info)?,
    })
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, `redis+unix://…`), with the default
    /// [options](RedisStoreOptions), and subscribes to change messages.
    ///
    /// # Errors
    /// [`RedisStoreError::Redis`]: a bad URL, Redis unreachable, AUTH refused.
    pub async fn connect(url: &str) -> Result<Self, RedisStoreError> {
        Self::connect_with(url, RedisStoreOptions::default()).await
    }

    /// [`connect`](RedisStore::connect) with `options`.
    ///
    /// # Errors
    /// As [`connect`](RedisStore::connect).
    pub async fn connect_with(
        url: &str,
        options: RedisStoreOptions,
    ) -> Result<Self, RedisStoreError> {
        let client = client(
            url,
            ProtocolVersion::RESP3,
            options.root_certificates.as_deref(),
        )?;
        let wakes = Arc::new(Wakes::default());
        let config = ConnectionManagerConfig::new()
            .set_push_sender(WakeSender(wakes.clone()))
            .set_automatic_resubscription()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            // Reconnecting in the background: a few quick tries, then the
            // next command tries again (errors meanwhile are typed).
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut connection = ConnectionManager::new_with_config(client, config).await?;
        let keys = KeyScheme::new(&options.prefix);
        connection.subscribe(keys.channel()).await?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                connection,
                keys,
                options,
                wakes,
                tally: Tally::default(),
            }),
        })
    }

    /// What this store did so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.tally.read(self.shared.wakes.messages())
    }

    fn connection(&self) -> ConnectionManager {
        self.shared.connection.clone()
    }

    /// The session under `key` and whether a live claim was read back.
    async fn load_inner(&self, key: &str) -> Result<Option<Session>, RedisStoreError> {
        let shared = &*self.shared;
        shared.wakes.loading(key);
        let redis_key = shared.keys.session(key);
        let mut connection = self.connection();
        let quick: ops::QuickReply = ops::quick_load(&redis_key)
            .query_async(&mut connection)
            .await
            .map_err(|e| RedisStoreError::from_redis(&redis_key, e))?;
        let loaded = match ops::quick_loaded(quick) {
            Some(loaded) => loaded,
            None => {
                let reply: ops::LoadReply = ops::load(&shared.keys, key)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| RedisStoreError::from_redis(&redis_key, e))?;
                ops::loaded_of(&redis_key, reply)?
            }
        };
        let (session, claimed) =
            ops::session_of(&redis_key, loaded, &shared.options.limits, ops::now_ms())?;
        if claimed {
            Tally::bump(&shared.tally.claims_read);
        }
        Ok(session)
    }
}

impl AsyncSessionStore for RedisStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
        Ok(self.load_inner(key).await?)
    }

    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let shared = &*self.shared;
        let (invocation, claims) = ops::save(&shared.keys, key, session, expected, ops::now_ms());
        async move {
            let reply: ops::SaveReply = invocation
                .invoke_async(&mut self.connection())
                .await
                .map_err(|e| RedisStoreError::from_redis(&shared.keys.session(key), e))?;
            let saved = ops::saved(key, reply);
            match &saved {
                Ok(()) if claims => Tally::bump(&shared.tally.claims_written),
                Err(StoreError::Conflict { .. }) => Tally::bump(&shared.tally.conflicts),
                _ => {}
            }
            saved
        }
    }

    async fn generation(&self, key: &SessionKey) -> Result<Option<u64>, StoreError> {
        let reply: Option<String> = ops::generation(&self.shared.keys, key)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| RedisStoreError::from_redis(&self.shared.keys.session(key), e))?;
        ops::generation_of(key, reply)
    }

    async fn clear(&self, key: &SessionKey) -> Result<(), StoreError> {
        let _: i64 = ops::clear(&self.shared.keys, key)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| RedisStoreError::from_redis(&self.shared.keys.session(key), e))?;
        Ok(())
    }

    async fn floor(&self, key: &SessionKey) -> Result<u64, StoreError> {
        let reply = ops::floor(&self.shared.keys, key)
            .invoke_async(&mut self.connection())
            .await
            .map_err(|e| RedisStoreError::from_redis(&self.shared.keys.session(key), e))?;
        ops::floor_of(key, reply)
    }

    fn changed(&self, key: &SessionKey, within: Duration) -> impl Future<Output = Changed> + Send {
        self.shared.wakes.changed(key, within)
    }
}
