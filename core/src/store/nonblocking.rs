//! [`AsyncSessionStore`]: the store interface of async hosts.

use core::future::Future;
use core::time::Duration;

#[cfg(doc)]
use super::SessionStore;
use super::{SessionKey, StoreError};
use crate::session::Session;

/// Persistence for sessions, keyed by [`SessionKey`], awaited: the store
/// of async hosts (a Redis or PostgreSQL client, an HTTP key-value
/// service). The [driver](crate::driver) describes each operation; the
/// adapter awaits it holding no lock, so a slow store never blocks another
/// session's cached token. Operations take `&self`: one store serves every
/// session and task at once (the driver runs one operation at a time per
/// session).
///
/// The semantics are those of [`SessionStore`]: `save` compares the stored
/// generation with `expected` and answers [`StoreError::Conflict`] with the
/// found one when they differ; `floor` is the highest generation ever
/// stored under the key, kept across `clear`. A backend's own error goes
/// into [`StoreError::Backend`], as its source.
///
/// A store on a remote database, sketched on a client with `get`, `del`
/// and a compare-and-swap script (in Redis: `EVAL` of a Lua script that
/// reads the stored generation, compares, and `SET`s):
///
/// ```
/// use std::future::Future;
/// use tokenkeeper::store::{AsyncSessionStore, SessionKey, StoreError};
/// use tokenkeeper::Session;
///
/// /// What a Redis client offers (here in memory, to run the example).
/// #[derive(Default)]
/// struct Client(std::sync::Mutex<std::collections::HashMap<String, (String, u64)>>);
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("redis: connection refused")]
/// struct RedisError;
///
/// impl Client {
///     async fn get(&self, key: &str) -> Result<Option<(String, u64)>, RedisError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     /// Sets `key` when its generation is `expected`; else answers the found one.
///     async fn compare_and_set(&self, key: &str, json: String, generation: u64, expected: Option<u64>)
///         -> Result<Result<(), Option<u64>>, RedisError> {
///         let mut map = self.0.lock().unwrap();
///         let found = map.get(key).map(|(_, g)| *g);
///         if found != expected { return Ok(Err(found)); }
///         map.insert(key.to_owned(), (json, generation));
///         Ok(Ok(()))
///     }
///     async fn del(&self, key: &str) -> Result<(), RedisError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// struct RedisStore { client: Client }
///
/// impl AsyncSessionStore for RedisStore {
///     fn load(&self, key: &SessionKey) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
///         async move {
///             let Some((json, _)) = self.client.get(key).await.map_err(StoreError::backend)? else {
///                 return Ok(None);
///             };
///             Session::from_json(json.as_bytes(), &Default::default())
///                 .map(Some)
///                 .map_err(StoreError::backend)
///         }
///     }
///     fn save(&self, key: &SessionKey, session: &Session, expected: Option<u64>)
///         -> impl Future<Output = Result<(), StoreError>> + Send {
///         let (json, generation) = (session.to_json(), session.generation());
///         async move {
///             match self.client.compare_and_set(key, json, generation, expected).await {
///                 Ok(Ok(())) => Ok(()),
///                 Ok(Err(found)) => Err(StoreError::Conflict { found }),
///                 Err(e) => Err(StoreError::backend(e)),
///             }
///         }
///     }
///     fn clear(&self, key: &SessionKey) -> impl Future<Output = Result<(), StoreError>> + Send {
///         async move { self.client.del(key).await.map_err(StoreError::backend) }
///     }
/// }
/// # let store = RedisStore { client: Client::default() };
/// # let session = Session::from_json(br#"{"tokenSet":{"accessToken":"a"}}"#, &Default::default()).unwrap();
/// # let poll = |f: std::pin::Pin<&mut dyn Future<Output = Result<(), StoreError>>>| {
/// #     let waker = std::task::Waker::noop();
/// #     f.poll(&mut std::task::Context::from_waker(&waker))
/// # };
/// # assert!(poll(std::pin::pin!(store.save("k", &session, None))).is_ready());
/// # assert!(matches!(
/// #     poll(std::pin::pin!(store.save("k", &session, None))),
/// #     std::task::Poll::Ready(Err(StoreError::Conflict { found: Some(0) }))
/// # ));
/// ```
///
/// (`generation` and `floor` have defaults on `load`; a real store answers
/// them from a column or a second key without reading the session.)
pub trait AsyncSessionStore: Send + Sync {
    /// The session stored under `key`, if any. See [`SessionStore::load`].
    fn load(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Stores `session` under `key` with compare-and-swap on `expected`.
    /// See [`SessionStore::save`].
    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The generation stored under `key`. See [`SessionStore::generation`].
    fn generation(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        async move { Ok(self.load(key).await?.as_ref().map(Session::generation)) }
    }

    /// Removes the session stored under `key`. See [`SessionStore::clear`].
    fn clear(&self, key: &SessionKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The highest generation ever stored under `key`. See
    /// [`SessionStore::floor`].
    fn floor(&self, key: &SessionKey) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move { Ok(self.generation(key).await?.unwrap_or(0)) }
    }

    /// Waits, at most `within`, until the session stored under `key` may
    /// have changed since this store last [loaded](AsyncSessionStore::load)
    /// it: how a host waiting on another process's refresh
    /// ([`WaitReason::OtherProcess`](crate::driver::WaitReason::OtherProcess))
    /// learns that the new tokens are stored, without reading the store
    /// in a loop. A store that is told about changes (Redis pub/sub, a
    /// database's notifications) answers [`Changed::Woken`] as soon as one
    /// arrives (a spurious wake-up costs one load), or
    /// [`Changed::TimedOut`]; the host reloads either way.
    ///
    /// The default answers [`Changed::Unsupported`] at once, without
    /// waiting: the host then falls back to polling the store.
    fn changed(&self, key: &SessionKey, within: Duration) -> impl Future<Output = Changed> + Send {
        let _ = (key, within);
        core::future::ready(Changed::Unsupported)
    }
}

/// How [`AsyncSessionStore::changed`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Changed {
    /// The stored session may have changed: load it again.
    Woken,
    /// Nothing was heard within the time given.
    TimedOut,
    /// This store cannot tell: poll it.
    Unsupported,
}

/// A shared store: the same as the store itself.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl<S: AsyncSessionStore + ?Sized> AsyncSessionStore for std::sync::Arc<S> {
    fn load(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        (**self).load(key)
    }

    fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save(key, session, expected)
    }

    fn generation(
        &self,
        key: &SessionKey,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        (**self).generation(key)
    }

    fn clear(&self, key: &SessionKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).clear(key)
    }

    fn floor(&self, key: &SessionKey) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).floor(key)
    }

    fn changed(&self, key: &SessionKey, within: Duration) -> impl Future<Output = Changed> + Send {
        (**self).changed(key, within)
    }
}
