//! A minimal app on the wasm adapter: a `#[wasm_bindgen]` class that a page
//! (or Node) constructs with a stored session and asks for access tokens and
//! API calls.
//!
//! ```sh
//! cargo build --example minimal --target wasm32-unknown-unknown --release
//! wasm-bindgen --target web --out-dir pkg \
//!     target/wasm32-unknown-unknown/release/examples/minimal.wasm
//! ```
//!
//! ```js
//! import init, { App } from "./pkg/minimal.js";
//! await init();
//! const app = new App("https://tenant.example.com/oauth/token", "my-spa",
//!                     "https://api.example.com", localStorage.getItem("session"));
//! const token = await app.accessToken();
//! const body = await app.get("https://api.example.com/me");
//! localStorage.setItem("session", app.session());
//! ```
//!
//! On other targets this example is empty.

#[cfg(target_arch = "wasm32")]
mod app {
    use tokenkeeper::{Config, Headers, HttpRequest, Method, Session, TokenRequest};
    use tokenkeeper_wasm::TokenKeeper;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_futures::future_to_promise;

    fn js_error(error: impl std::fmt::Display) -> JsValue {
        JsError::new(&error.to_string()).into()
    }

    /// The application's token handle.
    #[wasm_bindgen]
    pub struct App {
        keeper: TokenKeeper,
    }

    #[wasm_bindgen]
    impl App {
        /// A public client (no secret, as a browser app is) at
        /// `token_endpoint`, for `audience`, starting from a stored session
        /// (the Auth0 Next.js SDK's JSON).
        #[wasm_bindgen(constructor)]
        pub fn new(
            token_endpoint: &str,
            client_id: &str,
            audience: &str,
            session_json: &str,
        ) -> Result<App, JsValue> {
            let config = Config::builder(token_endpoint, client_id)
                .audience(audience)
                .build()
                .map_err(js_error)?;
            let session =
                Session::from_json(session_json.as_bytes(), config.limits()).map_err(js_error)?;
            let keeper = TokenKeeper::new(config, session).map_err(js_error)?;
            Ok(App { keeper })
        }

        /// A fresh access token (refreshed when needed; concurrent calls
        /// share one refresh).
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

        /// GETs `url` with the token; the response body as text.
        pub fn get(&self, url: String) -> js_sys::Promise {
            let keeper = self.keeper.clone();
            future_to_promise(async move {
                let request = HttpRequest {
                    method: Method::GET,
                    url,
                    headers: Headers::new(),
                    body: Vec::new(),
                };
                let response = keeper
                    .send_authorized(&TokenRequest::new(), request)
                    .await
                    .map_err(js_error)?;
                Ok(JsValue::from_str(&String::from_utf8_lossy(&response.body)))
            })
        }

        /// The session as JSON, to store.
        pub fn session(&self) -> Option<String> {
            self.keeper.session().map(|s| s.to_json())
        }
    }
}
