//! A session store of the page's own: a `SessionStore` whose `load`,
//! `save` and `clear` call JavaScript functions the page passes in (here
//! backed by `localStorage`; the same shape fits an in-memory object, a
//! `BroadcastChannel`-synced cache, …). The handle saves every rotated
//! refresh token through it before a call returns, with compare-and-swap
//! on the session's generation.
//!
//! ```sh
//! cargo build --example custom_store --target wasm32-unknown-unknown --release
//! wasm-bindgen --target web --out-dir pkg \
//!     target/wasm32-unknown-unknown/release/examples/custom_store.wasm
//! ```
//!
//! ```js
//! import init, { StoredApp } from "./pkg/custom_store.js";
//! await init();
//! const store = {
//!   load: (key) => localStorage.getItem(key),            // JSON or null
//!   save: (key, json) => localStorage.setItem(key, json),
//!   clear: (key) => localStorage.removeItem(key),
//! };
//! // The first time: the session from a login (see `login`).
//! const app = new StoredApp("https://tenant.example.com/oauth/token", "my-spa",
//!                           store, localStorage.getItem("session") ? null : firstSessionJson);
//! const token = await app.accessToken();                 // refreshed and saved when due
//! ```
//!
//! `localStorage` alone is also `tokenkeeper_wasm::WebStorageStore` (the
//! `web-storage` feature). On other targets this example is empty.

#[cfg(target_arch = "wasm32")]
mod app {
    use tokenkeeper::store::{SessionKey, SessionStore, StoreError};
    use tokenkeeper::{Config, Session, TokenRequest};
    use tokenkeeper_wasm::TokenKeeper;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::future_to_promise;

    fn js_error(error: impl std::fmt::Display) -> JsValue {
        JsError::new(&error.to_string()).into()
    }

    /// A thrown JavaScript error as the store's backend error.
    fn backend(error: JsValue) -> StoreError {
        StoreError::backend(format!("the page's store threw {error:?}"))
    }

    /// The page's store: three functions of an object.
    struct PageStore {
        store: JsValue,
    }

    impl PageStore {
        fn call(&self, name: &str, args: &[JsValue]) -> Result<JsValue, StoreError> {
            let function: js_sys::Function = js_sys::Reflect::get(&self.store, &name.into())
                .map_err(backend)?
                .dyn_into()
                .map_err(|_| StoreError::backend(format!("the page's store has no {name}()")))?;
            let args: js_sys::Array = args.iter().collect();
            function.apply(&self.store, &args).map_err(backend)
        }
    }

    impl SessionStore for PageStore {
        fn load(&mut self, key: &SessionKey) -> Result<Option<Session>, StoreError> {
            let json = self.call("load", &[key.into()])?;
            match json.as_string() {
                None => Ok(None),
                Some(json) => Session::from_json(json.as_bytes(), &Default::default())
                    .map(Some)
                    .map_err(|e| StoreError::backend(format!("the stored session: {e}"))),
            }
        }

        fn save(
            &mut self,
            key: &SessionKey,
            session: &Session,
            expected: Option<u64>,
        ) -> Result<(), StoreError> {
            // Compare, then swap: JavaScript runs one task at a time, so
            // nothing in this page runs between the two (another tab
            // could: a store shared across tabs compares in one step).
            let found = self.load(key)?.map(|s| s.generation());
            if found != expected {
                return Err(StoreError::Conflict { found });
            }
            self.call("save", &[key.into(), session.to_json().into()])
                .map(drop)
        }

        fn clear(&mut self, key: &SessionKey) -> Result<(), StoreError> {
            self.call("clear", &[key.into()]).map(drop)
        }
    }

    /// The application's token handle on the page's store.
    #[wasm_bindgen]
    pub struct StoredApp {
        keeper: TokenKeeper,
    }

    #[wasm_bindgen]
    impl StoredApp {
        /// A public client at `token_endpoint` whose session lives in
        /// `store` (`{ load, save, clear }`); `first_session_json` starts
        /// it when the store holds none yet.
        #[wasm_bindgen(constructor)]
        pub fn new(
            token_endpoint: &str,
            client_id: &str,
            store: JsValue,
            first_session_json: Option<String>,
        ) -> Result<StoredApp, JsValue> {
            let config = Config::builder(token_endpoint, client_id)
                .build()
                .map_err(js_error)?;
            let mut builder = TokenKeeper::builder(config).store(PageStore { store });
            if let Some(json) = first_session_json {
                let session =
                    Session::from_json(json.as_bytes(), &Default::default()).map_err(js_error)?;
                builder = builder.session(session);
            }
            Ok(StoredApp {
                keeper: builder.build().map_err(js_error)?,
            })
        }

        /// A fresh access token; a refresh is saved to the page's store
        /// before the promise resolves.
        #[wasm_bindgen(js_name = accessToken)]
        pub fn access_token(&self) -> js_sys::Promise {
            let keeper = self.keeper.clone();
            future_to_promise(async move {
                let token = keeper
                    .get_access_token(&TokenRequest::new())
                    .await
                    .map_err(js_error)?;
                Ok(JsValue::from_str(token.token.secret()))
            })
        }
    }
}
