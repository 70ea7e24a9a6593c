//! A [`SessionStore`] on the Web Storage API (`localStorage`,
//! `sessionStorage`), behind the `web-storage` feature.
//!
//! The session is kept as its JSON (the Auth0 Next.js SDK shape) under one
//! key. A save compares the stored generation with the expected one first;
//! the read and the write are one synchronous step of the page's event
//! loop, so saves from one page never interleave. Tabs of one origin share
//! `localStorage`; browsers do not lock it across tabs, so two tabs saving
//! in the very same instant can still race — with
//! [`ConfigBuilder::shared_store`](tokenkeeper::ConfigBuilder::shared_store)
//! the core's refresh claim narrows that to the claim's save.
//!
//! **Mind what this stores**: the refresh token, readable by any script of
//! the origin (an XSS reads it). Prefer keeping the session in memory (the
//! default: no store at all, or a `MemoryStore`) unless
//! the session must survive a reload, and keep the refresh token's lifetime
//! short (rotation with reuse detection, as the harness's provider does).

use tokenkeeper::Limits;
use tokenkeeper::{Session, SessionStore, StoreError};
use wasm_bindgen::{JsCast as _, JsValue};

use crate::Error;
use crate::js::message;

/// The session in `localStorage` or `sessionStorage`, under one key.
#[derive(Debug, Clone)]
pub struct WebStorageStore {
    storage: web_sys::Storage,
    key: String,
    limits: Limits,
}

impl WebStorageStore {
    /// The session under `key` in `globalThis.localStorage` (shared by the
    /// origin's tabs, kept across restarts).
    ///
    /// # Errors
    /// [`Error::Store`] when the global scope has no `localStorage` (Node,
    /// a worker, storage disabled).
    pub fn local(key: impl Into<String>) -> Result<Self, Error> {
        Ok(Self::new(global_storage("localStorage")?, key))
    }

    /// The session under `key` in `globalThis.sessionStorage` (this tab
    /// only, gone when it closes).
    ///
    /// # Errors
    /// [`Error::Store`] when the global scope has no `sessionStorage`.
    pub fn session(key: impl Into<String>) -> Result<Self, Error> {
        Ok(Self::new(global_storage("sessionStorage")?, key))
    }

    /// The session under `key` in `storage`.
    #[must_use]
    pub fn new(storage: web_sys::Storage, key: impl Into<String>) -> Self {
        WebStorageStore {
            storage,
            key: key.into(),
            limits: Limits::default(),
        }
    }

    /// Sizes a stored session must stay within to be read back (default:
    /// the core's defaults).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The key the session is stored under.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

fn global_storage(name: &str) -> Result<web_sys::Storage, Error> {
    // Reading `localStorage` throws when storage is disabled.
    let value = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .map_err(|e| backend(&e))?;
    if value.is_object() {
        Ok(value.unchecked_into())
    } else {
        Err(Error::Store(StoreError::backend(format!(
            "no {name} in the global scope"
        ))))
    }
}

fn backend(error: &JsValue) -> StoreError {
    StoreError::backend(message(error))
}

impl SessionStore for WebStorageStore {
    fn load(&mut self, _key: &str) -> Result<Option<Session>, StoreError> {
        let Some(json) = self.storage.get_item(&self.key).map_err(|e| backend(&e))? else {
            return Ok(None);
        };
        Session::from_json(json.as_bytes(), &self.limits)
            .map(Some)
            .map_err(|e| StoreError::backend(format!("the stored session is unreadable: {e}")))
    }

    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        let found = match self.load(key) {
            Ok(stored) => stored.as_ref().map(Session::generation),
            // An unreadable value is replaced only by a writer that expects
            // nothing there (a new login).
            Err(_) if expected.is_none() => None,
            Err(error) => return Err(error),
        };
        if found != expected {
            return Err(StoreError::Conflict { found });
        }
        // Throws QuotaExceededError when full.
        self.storage
            .set_item(&self.key, &session.to_json())
            .map_err(|e| backend(&e))
    }

    fn clear(&mut self, _key: &str) -> Result<(), StoreError> {
        self.storage.remove_item(&self.key).map_err(|e| backend(&e))
    }
}
