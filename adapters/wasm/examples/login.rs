//! A user login in a browser app: authorization code + PKCE with a
//! redirect back to the page (a public client: no secret in a browser).
//!
//! ```sh
//! cargo build --example login --target wasm32-unknown-unknown --release
//! wasm-bindgen --target web --out-dir pkg \
//!     target/wasm32-unknown-unknown/release/examples/login.wasm
//! ```
//!
//! The page keeps the login's transaction (state, nonce, PKCE verifier)
//! in `sessionStorage` across the round trip to the server:
//!
//! ```js
//! import init, { beginLogin, finishLogin } from "./pkg/login.js";
//! await init();
//! const issuer = "https://tenant.example.com/", clientId = "my-spa";
//! const here = location.origin + location.pathname;
//! if (new URLSearchParams(location.search).has("state")) {
//!   // Back from the server: check the callback, exchange the code.
//!   const transaction = sessionStorage.getItem("login");
//!   sessionStorage.removeItem("login");
//!   const result = await finishLogin(issuer, clientId, transaction, location.href);
//!   history.replaceState(null, "", here);          // the code is spent
//!   localStorage.setItem("session", result.session);
//!   console.log(`logged in as ${result.user}: ${result.tokenType} token`);
//! } else {
//!   const [url, transaction] = await beginLogin(issuer, clientId, here, "openid offline_access");
//!   sessionStorage.setItem("login", transaction);
//!   location.assign(url);
//! }
//! ```
//!
//! Register the page's URL as the client's redirect URI. The stored
//! session then goes to `minimal`'s `App` (refresh) or `custom_store`.
//! Needs the `login` and `discovery` features (on by default); on other
//! targets this example is empty.

#[cfg(target_arch = "wasm32")]
mod app {
    use tokenkeeper::Config;
    use tokenkeeper::login::{LoginRequest, LoginTransaction};
    use tokenkeeper_wasm::{DEFAULT_TIMEOUT, TokenKeeper, WebCryptoEntropy, discover};
    use wasm_bindgen::prelude::*;

    fn js_error(error: impl std::fmt::Display) -> JsValue {
        JsError::new(&error.to_string()).into()
    }

    /// Starts a login: `[authorizationUrl, transactionJson]`. Keep the
    /// transaction (it holds the PKCE verifier) until the browser is back.
    #[wasm_bindgen(js_name = beginLogin)]
    pub async fn begin_login(
        issuer: String,
        client_id: String,
        redirect_uri: String,
        scope: String,
    ) -> Result<js_sys::Array, JsValue> {
        let metadata = discover(&issuer, DEFAULT_TIMEOUT).await.map_err(js_error)?;
        let endpoint = metadata
            .authorization_endpoint
            .as_deref()
            .ok_or_else(|| js_error("the server announces no authorization_endpoint"))?;
        let mut request = LoginRequest::new(endpoint, &client_id, &redirect_uri).scope(&scope);
        // Many servers (node-oidc-provider, Auth0) issue a refresh token
        // only after an explicit consent.
        if scope.split(' ').any(|s| s == "offline_access") {
            request = request.param("prompt", "consent");
        }
        let (url, transaction) = request.start(&mut WebCryptoEntropy).map_err(js_error)?;
        let transaction = serde_json::to_string(&transaction).map_err(js_error)?;
        Ok(js_sys::Array::of2(
            &JsValue::from_str(&url),
            &JsValue::from_str(&transaction),
        ))
    }

    /// Finishes the login the page came back from: checks `callback_url`
    /// against the transaction (state, `iss`), exchanges the code, checks
    /// the ID token. Returns `{ session, user, tokenType, expiresAt }`.
    #[wasm_bindgen(js_name = finishLogin)]
    pub async fn finish_login(
        issuer: String,
        client_id: String,
        transaction_json: String,
        callback_url: String,
    ) -> Result<js_sys::Object, JsValue> {
        let transaction: LoginTransaction =
            serde_json::from_str(&transaction_json).map_err(js_error)?;
        let metadata = discover(&issuer, DEFAULT_TIMEOUT).await.map_err(js_error)?;
        // The metadata names the issuer the ID token and the callback's
        // `iss` are checked against.
        let config = Config::builder(&metadata.token_endpoint, &client_id)
            .metadata(&metadata)
            .build()
            .map_err(js_error)?;
        let keeper = TokenKeeper::builder(config).build().map_err(js_error)?;
        let token = keeper
            .login(&transaction, &callback_url)
            .await
            .map_err(js_error)?;
        let session = keeper
            .session()
            .ok_or_else(|| js_error("no session after the login"))?;
        let user = session
            .user()
            .and_then(|claims| claims.get("sub")?.as_str().map(String::from))
            .unwrap_or_default();
        let result = js_sys::Object::new();
        let set = |name: &str, value: JsValue| js_sys::Reflect::set(&result, &name.into(), &value);
        set("session", session.to_json().into())?;
        set("user", user.into())?;
        set("tokenType", token.token_type.as_str().into())?;
        set("expiresAt", (token.expires_at.as_secs() as f64).into())?;
        Ok(result)
    }
}
