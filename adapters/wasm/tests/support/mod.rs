//! Test helpers: the harness's URLs from Node's `process.env`, its control
//! API over `fetch`, a real login turned into a session, and the
//! configuration of the harness's public (PKCE) client.

#![allow(dead_code, missing_docs)]

use std::time::Duration;

use serde_json::{Value, json};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::grant::TargetParameter;
use tokenkeeper::login::{LoginRequest, LoginTransaction};
use tokenkeeper::{Config, Headers, HttpRequest, Method, Session};
use tokenkeeper_wasm::{TokenKeeper, WebCryptoEntropy};
use wasm_bindgen::JsValue;

pub const API1: &str = "https://api1.example.com";
pub const API2: &str = "https://api2.example.com";
/// The harness's public client: a browser app, no secret, PKCE.
pub const CLIENT_ID: &str = "public-pkce";
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
pub const LOGIN_SCOPE: &str = "openid profile email offline_access read:data write:data";

const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

/// One running harness, as `scripts/wasm-tests.sh run` describes it.
#[derive(Debug, Clone)]
pub struct Harness {
    pub issuer: String,
    pub token_endpoint: String,
    pub resource_server: String,
    pub control: String,
}

/// `process.env[name]` in Node.
pub fn env(name: &str) -> Option<String> {
    let get = |target: &JsValue, key: &str| js_sys::Reflect::get(target, &JsValue::from_str(key));
    let process = get(&js_sys::global(), "process").ok()?;
    let vars = get(&process, "env").ok()?;
    get(&vars, name).ok()?.as_string()
}

impl Harness {
    /// The harness named by `HARNESS_*` variables (`prefix` `WASM_HARNESS` for
    /// the default server, `WASM_HARNESS_DPOP` for the nonce-requiring one).
    pub fn from_env_prefix(prefix: &str) -> Self {
        let var = |name: &str| {
            let key = format!("{prefix}_{name}");
            env(&key).unwrap_or_else(|| {
                panic!("{key} is not set: run the wasm tests with scripts/wasm-tests.sh run")
            })
        };
        Harness {
            issuer: var("ISSUER"),
            token_endpoint: var("TOKEN_ENDPOINT"),
            resource_server: var("RESOURCE_SERVER"),
            control: var("CONTROL"),
        }
    }

    /// The default harness (`WASM_HARNESS_*`).
    pub fn from_env() -> Self {
        Self::from_env_prefix("WASM_HARNESS")
    }

    /// A JSON request to the control API.
    pub fn control_request(&self, path: &str, body: &Value) -> HttpRequest {
        let mut headers = Headers::new();
        headers.append("content-type", "application/json");
        HttpRequest {
            method: Method::POST,
            url: format!("{}{path}", self.control),
            headers,
            body: body.to_string().into_bytes(),
        }
    }

    async fn control(&self, method: Method, path: &str, body: &Value) -> (u16, Value) {
        let mut request = self.control_request(path, body);
        if method == Method::GET {
            request.method = method;
            request.body.clear();
            request.headers = Headers::new();
        }
        let response = tokenkeeper_wasm::fetch(&request, CONTROL_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let json = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&response.body)));
        (response.status, json)
    }

    /// The counters (`GET /__harness/stats`).
    pub async fn stats(&self) -> Value {
        self.control(Method::GET, "/__harness/stats", &json!({}))
            .await
            .1
    }

    /// Zeroes the counters.
    pub async fn reset_stats(&self) {
        let (status, _) = self
            .control(Method::POST, "/__harness/stats/reset", &json!({}))
            .await;
        assert_eq!(status, 200);
    }

    /// The next token requests get this canned response.
    pub async fn fail_next(&self, canned: Value) {
        let (status, body) = self
            .control(Method::POST, "/__harness/fail_next", &canned)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The next token request waits `ms` before the server handles it.
    pub async fn delay_next(&self, ms: u64) {
        let (status, body) = self
            .control(Method::POST, "/__harness/delay_next", &json!({ "ms": ms }))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Plays the browser through the provider's login and consent pages for
    /// `authorization_url` as `alice`; the callback URL it was sent to.
    pub async fn login(&self, authorization_url: &str) -> String {
        let (status, body) = self
            .control(
                Method::POST,
                "/__harness/login",
                &json!({ "authorization_url": authorization_url, "login": "alice" }),
            )
            .await;
        assert_eq!(status, 200, "login failed: {body}");
        body["callback_url"].as_str().unwrap().to_owned()
    }

    /// A real login through the core and the adapter: the session.
    pub async fn logged_in_session(&self) -> Session {
        let keeper = TokenKeeper::builder(config(self)).build().unwrap();
        let (url, transaction) = authorization(self);
        let callback = self.login(&url).await;
        keeper.login(&transaction, &callback).await.unwrap();
        keeper.session().unwrap()
    }

    /// `resource_server + path`.
    pub fn resource_url(&self, path: &str) -> String {
        format!("{}{path}", self.resource_server)
    }
}

/// The authorization URL of a login for both APIs (built by the core, with
/// Web Crypto entropy) and its transaction.
pub fn authorization(h: &Harness) -> (String, LoginTransaction) {
    login_request(h).start(&mut WebCryptoEntropy).unwrap()
}

/// The login request of [`authorization`], to add parameters to.
pub fn login_request(h: &Harness) -> LoginRequest<'static> {
    let endpoint: &'static str = Box::leak(format!("{}/auth", h.issuer).into_boxed_str());
    LoginRequest::new(endpoint, CLIENT_ID, REDIRECT_URI)
        .scope(LOGIN_SCOPE)
        .resource(API1)
        .resource(API2)
        .param("prompt", "consent")
}

/// The public client at the harness: default audience API1, RFC 8707
/// `resource` parameters, ID tokens checked against the issuer.
pub fn config(h: &Harness) -> Config {
    builder(h, &h.token_endpoint).build().unwrap()
}

/// [`config`] with another token endpoint.
pub fn config_at(h: &Harness, token_endpoint: &str) -> Config {
    builder(h, token_endpoint).build().unwrap()
}

pub fn builder(h: &Harness, token_endpoint: &str) -> tokenkeeper::ConfigBuilder {
    Config::builder(token_endpoint, CLIENT_ID)
        .client_auth(ClientAuth::None)
        .issuer(&h.issuer)
        .audience(API1)
        .scope(LOGIN_SCOPE)
        .target_parameter(TargetParameter::Resource)
}

/// `session` with its access token expired ten seconds ago.
pub fn expire(session: &Session) -> Session {
    let mut json: Value = serde_json::from_str(&session.to_json()).unwrap();
    json["tokenSet"]["expiresAt"] = json!(tokenkeeper_wasm::now().as_secs() - 10);
    Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap()
}

/// A GET of the resource server's `path`.
pub fn get(h: &Harness, path: &str) -> HttpRequest {
    HttpRequest {
        method: Method::GET,
        url: h.resource_url(path),
        headers: Headers::new(),
        body: Vec::new(),
    }
}

pub fn refresh_token(session: &Session) -> String {
    session
        .token_set()
        .refresh_token
        .as_ref()
        .unwrap()
        .secret()
        .to_owned()
}

pub fn access_token(session: &Session) -> String {
    session.token_set().access_token.secret().to_owned()
}

/// A server on 127.0.0.1, started inside the Node process running the
/// tests, that answers every request with `200` and a body that never ends
/// (chunked, no `Content-Length`), counting what it managed to send.
pub struct EndlessServer {
    pub url: String,
    key: String,
}

impl EndlessServer {
    pub async fn start() -> Self {
        let key = format!("__tokenkeeperEndless{}", js_sys::Date::now() as u64);
        let start = js_sys::Function::new_with_args(
            "key",
            "const http = process.getBuiltinModule('node:http');
             const state = { sent: 0, closed: 0, requests: 0, server: null };
             globalThis[key] = state;
             return new Promise((resolve, reject) => {
               const server = http.createServer((req, res) => {
                 state.requests += 1;
                 req.resume();
                 res.writeHead(200, { 'content-type': 'application/json' });
                 let open = true;
                 res.on('close', () => { open = false; state.closed += 1; });
                 const chunk = Buffer.alloc(16384, 0x61);
                 res.write('{\"access_token\":\"');
                 const pump = () => {
                   while (open) {
                     state.sent += chunk.length;
                     if (!res.write(chunk)) { res.once('drain', pump); return; }
                   }
                 };
                 pump();
               });
               state.server = server;
               server.on('error', reject);
               server.listen(0, '127.0.0.1', () => {
                 server.unref();
                 resolve(`http://127.0.0.1:${server.address().port}`);
               });
             });",
        );
        let promise: js_sys::Promise = start
            .call1(&JsValue::NULL, &JsValue::from_str(&key))
            .unwrap()
            .into();
        let url = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .unwrap()
            .as_string()
            .unwrap();
        EndlessServer { url, key }
    }

    fn state(&self, field: &str) -> f64 {
        let state = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(&self.key)).unwrap();
        js_sys::Reflect::get(&state, &JsValue::from_str(field))
            .unwrap()
            .as_f64()
            .unwrap()
    }

    /// Body bytes written so far, over every request.
    pub fn sent(&self) -> f64 {
        self.state("sent")
    }

    /// Responses whose connection closed (the client stopped reading).
    pub fn closed(&self) -> f64 {
        self.state("closed")
    }

    /// Requests received.
    pub fn requests(&self) -> f64 {
        self.state("requests")
    }
}

impl Drop for EndlessServer {
    fn drop(&mut self) {
        let stop = js_sys::Function::new_with_args(
            "key",
            "const state = globalThis[key];
             if (state && state.server) {
               state.server.close();
               state.server.closeAllConnections();
             }
             delete globalThis[key];",
        );
        let _ = stop.call1(&JsValue::NULL, &JsValue::from_str(&self.key));
    }
}
