//! The store as the handle runs it: awaited, whatever its kind, with no
//! lock of the handle's held.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokenkeeper::driver::{StoreAnswer, StoreOp};
use tokenkeeper::store::Changed;
use tokenkeeper::{AsyncSessionStore, SessionStore};

use crate::drive::lock;

/// A store the handle awaits (object-safe: one boxed future per operation,
/// only on the paths that reach the store).
pub(crate) trait DynStore: Send + Sync {
    fn run(&self, op: StoreOp) -> Pin<Box<dyn Future<Output = StoreAnswer> + Send + '_>>;

    /// [`AsyncSessionStore::changed`]: until the store says the session
    /// under `key` changed, at most `within`.
    fn changed<'a>(
        &'a self,
        key: &'a str,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Changed> + Send + 'a>>;
}

impl<S: AsyncSessionStore> DynStore for S {
    fn run(&self, op: StoreOp) -> Pin<Box<dyn Future<Output = StoreAnswer> + Send + '_>> {
        Box::pin(op.run_async(self))
    }

    fn changed<'a>(
        &'a self,
        key: &'a str,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Changed> + Send + 'a>> {
        Box::pin(AsyncSessionStore::changed(self, key, within))
    }
}

/// A blocking store, run on the calling thread or task; its lock is held
/// for one operation, never across an `.await` or with the driver's.
pub(crate) struct Blocking(pub(crate) Mutex<Box<dyn SessionStore + Send>>);

impl DynStore for Blocking {
    fn run(&self, op: StoreOp) -> Pin<Box<dyn Future<Output = StoreAnswer> + Send + '_>> {
        let answer = op.run(&mut **lock(&self.0));
        Box::pin(std::future::ready(answer))
    }

    fn changed<'a>(
        &'a self,
        _key: &'a str,
        _within: Duration,
    ) -> Pin<Box<dyn Future<Output = Changed> + Send + 'a>> {
        // A blocking store cannot tell: the host polls it.
        Box::pin(std::future::ready(Changed::Unsupported))
    }
}

/// Where the handle's store comes from.
pub(crate) enum StoreSource {
    /// None plugged in: the sessions are kept in memory only, with no
    /// store operation and no copy
    /// ([`Driver::memory_only`](tokenkeeper::driver::Driver::memory_only),
    /// [`Sessions::memory_only`](tokenkeeper::driver::Sessions::memory_only):
    /// a session is never evicted, memory being its only copy).
    Memory,
    Blocking(Box<dyn SessionStore + Send>),
    Async(Box<dyn DynStore>),
}

impl StoreSource {
    /// The store a host runs [`StoreSource::Memory`] with: never asked (the
    /// driver answers every store operation itself), there because a host
    /// has one.
    pub(crate) fn never_asked() -> Box<dyn DynStore> {
        let unshared: Box<dyn SessionStore + Send> = Box::new(tokenkeeper::UnsharedStore::new());
        Box::new(Blocking(Mutex::new(unshared)))
    }
}
