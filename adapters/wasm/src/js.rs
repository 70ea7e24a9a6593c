//! What the adapter takes from JavaScript's global scope: the clock,
//! `crypto.getRandomValues`, `setTimeout` and `fetch`. Everything is looked
//! up on the global object (`globalThis`), never on `window`, so the same
//! build runs in a browser page, a worker and Node 20+.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use futures_channel::oneshot;
use js_sys::{Function, Promise};
use tokenkeeper::{Entropy, UnixTime};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;

use crate::Error;

#[wasm_bindgen]
extern "C" {
    /// `globalThis.setTimeout(handler, ms)`; a number in browsers, a
    /// `Timeout` object in Node.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;

    /// `globalThis.clearTimeout(handle)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);

    /// `globalThis.fetch(request)`.
    #[wasm_bindgen(catch, js_name = fetch)]
    pub(crate) fn fetch_request(request: &web_sys::Request) -> Result<Promise, JsValue>;
}

/// The wall clock, from `Date.now()`, in whole seconds.
#[must_use]
pub fn now() -> UnixTime {
    UnixTime::from_secs(now_millis() / 1000)
}

/// `Date.now()` as whole milliseconds (0 before the epoch).
pub(crate) fn now_millis() -> u64 {
    let ms = js_sys::Date::now();
    if ms.is_finite() && ms > 0.0 {
        // f64 milliseconds since the epoch are exact integers far beyond
        // any date this code meets.
        ms as u64
    } else {
        0
    }
}

/// The time from now until `deadline`, in milliseconds (0 when it passed).
pub(crate) fn millis_until(deadline: UnixTime) -> u64 {
    deadline
        .as_secs()
        .saturating_mul(1000)
        .saturating_sub(now_millis())
}

/// The global `crypto` object (Web Crypto).
///
/// # Errors
/// [`Error::Crypto`] when the global scope has none.
pub(crate) fn crypto() -> Result<web_sys::Crypto, Error> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|e| Error::Crypto(message(&e)))?;
    if crypto.is_object() {
        // Not `dyn_into`: the instanceof check needs a global `Crypto`
        // class, which not every runtime exposes.
        Ok(crypto.unchecked_into())
    } else {
        Err(Error::Crypto(String::from(
            "no crypto object in the global scope",
        )))
    }
}

/// Randomness from Web Crypto's `crypto.getRandomValues` on the global
/// scope (browsers, workers, Node 20+). The default entropy of
/// [`TokenKeeper`](crate::TokenKeeper); it needs no `getrandom` backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCryptoEntropy;

/// `getRandomValues` fills at most this many bytes per call.
const MAX_RANDOM_BYTES: usize = 65_536;

impl Entropy for WebCryptoEntropy {
    /// # Panics
    /// If the global scope has no `crypto.getRandomValues` (then nothing
    /// secure can be done: no PKCE verifier, no DPoP `jti`).
    fn fill(&mut self, dest: &mut [u8]) {
        let crypto = crypto().expect("Web Crypto (globalThis.crypto) is required");
        for chunk in dest.chunks_mut(MAX_RANDOM_BYTES) {
            crypto
                .get_random_values_with_u8_array(chunk)
                .expect("crypto.getRandomValues failed");
        }
    }
}

/// A `setTimeout` that resolves once; cleared when dropped.
pub(crate) struct Delay {
    fired: oneshot::Receiver<()>,
    handle: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Delay {
    /// Resolves after `ms` milliseconds (clamped to what `setTimeout`
    /// takes, about 24.8 days).
    pub(crate) fn new(ms: u64) -> Self {
        let (tx, fired) = oneshot::channel();
        let mut tx = Some(tx);
        let callback = Closure::<dyn FnMut()>::new(move || {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        });
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let handle = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Delay {
            fired,
            handle,
            _callback: callback,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A cancelled sender cannot happen while `self` holds the closure.
        Pin::new(&mut self.fired).poll(cx).map(|_| ())
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        // Before the closure goes: JavaScript must never call a dropped one.
        clear_timeout(&self.handle);
    }
}

/// Sleeps for `duration` on `setTimeout`.
pub async fn sleep(duration: Duration) {
    Delay::new(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)).await;
}

/// Aborts an `AbortController` after a timeout, or when dropped (the
/// request's owner went away). Clears its timer when dropped.
pub(crate) struct AbortTimer {
    controller: web_sys::AbortController,
    handle: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl AbortTimer {
    /// A controller that aborts after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Result<Self, Error> {
        let controller =
            web_sys::AbortController::new().map_err(|e| Error::Transport(message(&e)))?;
        let to_abort = controller.clone();
        let callback = Closure::<dyn FnMut()>::new(move || to_abort.abort());
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let handle = set_timeout(callback.as_ref().unchecked_ref(), ms);
        Ok(AbortTimer {
            controller,
            handle,
            _callback: callback,
        })
    }

    /// The signal to pass to `fetch`.
    pub(crate) fn signal(&self) -> web_sys::AbortSignal {
        self.controller.signal()
    }

    /// Whether the timer fired (or the request was aborted otherwise).
    pub(crate) fn aborted(&self) -> bool {
        self.controller.signal().aborted()
    }
}

impl Drop for AbortTimer {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
        // No-op once the response body was read; otherwise stops the
        // request of a future that was dropped.
        self.controller.abort();
    }
}

/// A JavaScript exception's text: `Error.message` (with its `cause`, which
/// Node's fetch uses for the network error), or the value as a string.
pub(crate) fn message(value: &JsValue) -> String {
    let Some(error) = value.dyn_ref::<js_sys::Error>() else {
        return value.as_string().unwrap_or_else(|| format!("{value:?}"));
    };
    let mut text = String::from(error.message());
    let cause = error.cause();
    if !cause.is_undefined() && !cause.is_null() {
        let code = js_sys::Reflect::get(&cause, &JsValue::from_str("code"))
            .ok()
            .and_then(|c| c.as_string());
        let detail = match cause.dyn_ref::<js_sys::Error>() {
            Some(cause) => String::from(cause.message()),
            None => cause.as_string().unwrap_or_default(),
        };
        match code {
            Some(code) if !detail.contains(&code) => text.push_str(&format!(" ({code}: {detail})")),
            _ if !detail.is_empty() => text.push_str(&format!(" ({detail})")),
            _ => {}
        }
    }
    text
}
