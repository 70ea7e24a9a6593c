//! DPoP in a browser app with a non-extractable WebCrypto key kept in
//! IndexedDB: the page stores the `CryptoKey` objects themselves (a
//! structured clone keeps them non-extractable: the private key's bytes
//! never reach JavaScript), so tokens bound to the key stay usable after
//! a reload.
//!
//! ```sh
//! cargo build --example dpop --target wasm32-unknown-unknown --release
//! wasm-bindgen --target web --out-dir pkg \
//!     target/wasm32-unknown-unknown/release/examples/dpop.wasm
//! ```
//!
//! ```js
//! import init, { newKey, DpopApp } from "./pkg/dpop.js";
//! await init();
//! // The key pair in IndexedDB (one record), created on the first visit.
//! const db = await new Promise((ok, fail) => {
//!   const open = indexedDB.open("tokenkeeper", 1);
//!   open.onupgradeneeded = () => open.result.createObjectStore("keys");
//!   open.onsuccess = () => ok(open.result);
//!   open.onerror = () => fail(open.error);
//! });
//! const tx = (mode) => db.transaction("keys", mode).objectStore("keys");
//! let pair = await new Promise((ok) => { const r = tx("readonly").get("dpop"); r.onsuccess = () => ok(r.result); });
//! if (!pair) {
//!   pair = await newKey();                       // { privateKey, publicKey }, not extractable
//!   tx("readwrite").put(pair, "dpop");
//! }
//! const app = await DpopApp.create("https://tenant.example.com/oauth/token", "my-spa",
//!                                  localStorage.getItem("session"), pair.privateKey, pair.publicKey);
//! console.log(app.thumbprint, await app.tokenType());   // "…", "DPoP"
//! localStorage.setItem("session", app.session());
//! ```
//!
//! The refresh token of a public client is bound to the key at login
//! (send `dpop_jkt` = the thumbprint with the login, see `login`): keep
//! the key as long as the session. On other targets this example is empty.

#[cfg(target_arch = "wasm32")]
mod app {
    use tokenkeeper::{Config, Session, TokenRequest};
    use tokenkeeper_wasm::{TokenKeeper, WebCryptoKey};
    use wasm_bindgen::prelude::*;
    use web_sys::CryptoKey;

    fn js_error(error: impl std::fmt::Display) -> JsValue {
        JsError::new(&error.to_string()).into()
    }

    /// A new ECDSA P-256 key pair whose private key cannot be exported:
    /// `{ privateKey, publicKey }`, for the page to keep in IndexedDB.
    #[wasm_bindgen(js_name = newKey)]
    pub async fn new_key() -> Result<js_sys::Object, JsValue> {
        let key = WebCryptoKey::generate().await.map_err(js_error)?;
        debug_assert!(!key.is_extractable());
        let pair = js_sys::Object::new();
        js_sys::Reflect::set(&pair, &"privateKey".into(), key.private_key())?;
        js_sys::Reflect::set(&pair, &"publicKey".into(), key.public_key())?;
        Ok(pair)
    }

    /// The application's token handle with DPoP on.
    #[wasm_bindgen]
    pub struct DpopApp {
        keeper: TokenKeeper,
        thumbprint: String,
    }

    #[wasm_bindgen]
    impl DpopApp {
        /// A public client at `token_endpoint` with a stored session,
        /// signing with the key pair the page read back from IndexedDB.
        pub async fn create(
            token_endpoint: String,
            client_id: String,
            session_json: String,
            private_key: CryptoKey,
            public_key: CryptoKey,
        ) -> Result<DpopApp, JsValue> {
            let key = WebCryptoKey::from_keys(private_key, public_key)
                .await
                .map_err(js_error)?;
            let thumbprint = key.thumbprint().to_owned();
            let config = Config::builder(&token_endpoint, &client_id)
                .build()
                .map_err(js_error)?;
            let session =
                Session::from_json(session_json.as_bytes(), config.limits()).map_err(js_error)?;
            let keeper = TokenKeeper::builder(config)
                .session(session)
                .dpop(key)
                .build()
                .map_err(js_error)?;
            Ok(DpopApp { keeper, thumbprint })
        }

        /// The key's JWK thumbprint (the `cnf.jkt` of bound tokens).
        #[wasm_bindgen(getter)]
        pub fn thumbprint(&self) -> String {
            self.thumbprint.clone()
        }

        /// Gets a token (refreshing with a proof when due): a promise of
        /// its type, `DPoP` for a bound token.
        #[wasm_bindgen(js_name = tokenType)]
        pub fn token_type(&self) -> js_sys::Promise {
            let keeper = self.keeper.clone();
            wasm_bindgen_futures::future_to_promise(async move {
                let token = keeper
                    .get_access_token(&TokenRequest::new())
                    .await
                    .map_err(js_error)?;
                Ok(JsValue::from_str(token.token_type.as_str()))
            })
        }

        /// The session as JSON, to store.
        pub fn session(&self) -> Option<String> {
            self.keeper.session().map(|s| s.to_json())
        }
    }
}
