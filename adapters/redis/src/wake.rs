//! Wake-ups: the save and clear scripts `PUBLISH` the session's key on
//! `<prefix>:changed`; the async store's connection is subscribed to it
//! (RESP3 pushes on the same multiplexed connection, resubscribed by the
//! connection manager after a reconnect), and each message raises a
//! counter for the key's bucket and wakes every waiter.
//!
//! ```text
//! load(key)          remember the bucket's count      (before the command leaves)
//! changed(key, t)    count moved since? ─yes─► Woken
//!                     │ no
//!                     ▼
//!                    wait for a message or a disconnection ─► check again
//!                     └─ t passed ─► TimedOut         (the host reloads anyway)
//! ```
//!
//! A message that arrives between the load and the wait still moved the
//! count, so no wake-up is lost; keys share 64 buckets, so a wake-up may be
//! another key's (one extra load). A disconnection wakes everyone: their
//! messages may be lost with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use event_listener::Event;
use redis::aio::{AsyncPushSender, SendError};
use redis::{PushInfo, PushKind, Value};
use tokenkeeper::store::Changed;

const BUCKETS: usize = 64;

/// The wake-up state of one store (shared with its push sender).
#[derive(Debug)]
pub(crate) struct Wakes {
    /// Messages heard, per bucket.
    heard: [AtomicU64; BUCKETS],
    /// `heard` when the bucket's last load started.
    loaded: [AtomicU64; BUCKETS],
    /// Fired on every message and disconnection.
    event: Event,
    /// Messages heard in all.
    messages: AtomicU64,
}

impl Default for Wakes {
    fn default() -> Self {
        Wakes {
            heard: std::array::from_fn(|_| AtomicU64::new(0)),
            loaded: std::array::from_fn(|_| AtomicU64::new(0)),
            event: Event::new(),
            messages: AtomicU64::new(0),
        }
    }
}

/// FNV-1a: stable and cheap; the bucket only spreads keys.
fn bucket(key: &str) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % BUCKETS as u64) as usize
}

impl Wakes {
    /// A load of `key` starts.
    pub(crate) fn loading(&self, key: &str) {
        let b = bucket(key);
        let heard = self.heard[b].load(Ordering::SeqCst);
        self.loaded[b].store(heard, Ordering::SeqCst);
    }

    /// A message about `key`.
    fn heard(&self, key: &str) {
        self.heard[bucket(key)].fetch_add(1, Ordering::SeqCst);
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.event.notify(usize::MAX);
    }

    /// The connection dropped: any message may be lost.
    fn disconnected(&self) {
        for heard in &self.heard {
            heard.fetch_add(1, Ordering::SeqCst);
        }
        self.event.notify(usize::MAX);
    }

    /// Messages heard so far.
    pub(crate) fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// See [`AsyncSessionStore::changed`](tokenkeeper::AsyncSessionStore::changed).
    pub(crate) async fn changed(&self, key: &str, within: Duration) -> Changed {
        let b = bucket(key);
        let since = self.loaded[b].load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let listener = self.event.listen();
            if self.heard[b].load(Ordering::SeqCst) != since {
                return Changed::Woken;
            }
            if tokio::time::timeout_at(deadline, listener).await.is_err() {
                return Changed::TimedOut;
            }
        }
    }
}

/// Hands the connection's pushes to [`Wakes`] (without blocking).
pub(crate) struct WakeSender(pub(crate) std::sync::Arc<Wakes>);

impl AsyncPushSender for WakeSender {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match info.kind {
            PushKind::Message => {
                if let Some(Value::BulkString(key)) = info.data.get(1) {
                    self.0.heard(&String::from_utf8_lossy(key));
                }
            }
            PushKind::Disconnection => self.0.disconnected(),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_after_the_load_is_not_lost() {
        let wakes = Wakes::default();
        wakes.loading("s1");
        wakes.heard("s1");
        // Heard before the wait began: answered at once.
        assert_eq!(
            wakes.changed("s1", Duration::from_secs(5)).await,
            Changed::Woken
        );
        wakes.loading("s1");
        assert_eq!(
            wakes.changed("s1", Duration::from_millis(20)).await,
            Changed::TimedOut
        );
    }
}
