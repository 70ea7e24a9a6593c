//! The store as the handle runs it: awaited, whatever its kind, with no
//! lock of the handle's held.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use tokenkeeper::driver::{StoreAnswer, StoreOp};
use tokenkeeper::{AsyncSessionStore, SessionStore};

use crate::handle::lock;

/// A store the handle awaits (object-safe: one boxed future per operation,
/// only on the paths that reach the store).
pub(crate) trait DynStore: Send + Sync {
    fn run(&self, op: StoreOp) -> Pin<Box<dyn Future<Output = StoreAnswer> + Send + '_>>;
}

impl<S: AsyncSessionStore> DynStore for S {
    fn run(&self, op: StoreOp) -> Pin<Box<dyn Future<Output = StoreAnswer> + Send + '_>> {
        Box::pin(op.run_async(self))
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
}

/// Where the handle's store comes from.
pub(crate) enum StoreSource {
    Blocking(Box<dyn SessionStore + Send>),
    Async(Box<dyn DynStore>),
}
