//! Runs a [`Handle`](crate::Handle)'s future to its end on the calling
//! thread, for blocking adapters.
//!
//! A blocking adapter's [`Transport`](crate::Transport) and store answer
//! on their first poll, so in practice every future finishes in one poll;
//! should one still pend (a user's async store behind a blocking adapter),
//! the thread parks until it is woken.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// One waker per thread, made on first use: a call allocates nothing
    /// here.
    static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

/// Polls `future` on this thread until it is ready, parking in between.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            // A spurious unpark only costs one more poll.
            thread::park();
        }
    })
}
