//! The test app (the routes on a loopback port, against the harness's
//! authorization server) and a minimal browser: a cookie jar and no
//! automatic redirects, so every hop is checked.
#![allow(dead_code)]

pub mod sdk;

use axum::Router;
use axum::routing::get;
use tokenkeeper_axum::{Auth, AuthBuilder};
use tokenkeeper_integration::{Harness, HarnessOptions};

pub const SECRET: &[u8] = b"axum-test-secret-at-least-32-bytes-long!";
pub const CLIENT_ID: &str = "axum-web";
pub const CLIENT_SECRET: &str = "axum-web-secret-1";
pub const API1: &str = tokenkeeper_integration::API1;
pub const API2: &str = tokenkeeper_integration::API2;
pub const LOGIN_SCOPE: &str = "openid profile email offline_access read:data write:data";

pub struct App {
    pub base: String,
    pub auth: Auth,
    pub harness: Harness,
}

/// The harness, and the app on a free port configured by `configure`.
pub async fn start(configure: impl FnOnce(AuthBuilder) -> AuthBuilder) -> App {
    start_with(
        Harness::start(HarnessOptions::default()),
        configure,
        |r, _| r,
    )
    .await
}

pub async fn start_with(
    harness: Harness,
    configure: impl FnOnce(AuthBuilder) -> AuthBuilder,
    routes: impl FnOnce(Router, &Auth) -> Router,
) -> App {
    start_app(harness, configure, |auth| {
        routes(pages(), auth).merge(auth.router())
    })
    .await
}

/// The two plain pages every test app has.
pub fn pages() -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route("/after", get(|| async { "after login" }))
}

/// The harness and the app `app` builds (routes included) on a free port.
pub async fn start_app(
    harness: Harness,
    configure: impl FnOnce(AuthBuilder) -> AuthBuilder,
    app: impl FnOnce(&Auth) -> Router,
) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let builder = Auth::builder(harness.issuer(), CLIENT_ID, &base, SECRET)
        .client_secret(CLIENT_SECRET)
        .audience(API1)
        .scope(LOGIN_SCOPE)
        // The harness is a strict RFC 8707 server (it does not announce it).
        .target_parameter(tokenkeeper::grant::TargetParameter::Resource)
        .login_resource(API2)
        // node-oidc-provider grants offline_access only with consent.
        .authorization_param("prompt", "consent");
    let auth = configure(builder).build().await.unwrap();
    let router = app(&auth);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    App {
        base,
        auth,
        harness,
    }
}

pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl Response {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no location: {} {}", self.status, self.body))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
pub struct Browser {
    client: reqwest::Client,
    pub jar: Vec<(String, String)>,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Vec::new(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.retain(|(n, _)| n != name);
        self.jar.push((name.to_owned(), value.to_owned()));
    }

    pub fn names(&self) -> Vec<&str> {
        self.jar.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub async fn get(&mut self, url: &str) -> Response {
        let mut request = self.client.get(url);
        if !self.jar.is_empty() {
            let cookie: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            request = request.header("cookie", cookie.join("; "));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in &set_cookies {
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.jar.retain(|(n, _)| n != name);
            if !set.contains("Max-Age=0") {
                self.jar.push((name.to_owned(), value.to_owned()));
            }
        }
        let body = response.text().await.unwrap();
        Response {
            status,
            headers,
            body,
            set_cookies,
        }
    }

    /// `/auth/login?{query}` up to the server's redirect back (not followed).
    pub async fn start_login(&mut self, app: &App, query: &str) -> String {
        let login = self.get(&format!("{}/auth/login{query}", app.base)).await;
        assert_eq!(login.status, 302, "{}", login.body);
        let authorize = login.location().to_owned();
        tokio::task::block_in_place(|| app.harness.login(&authorize))
    }

    /// A whole login; the callback's response.
    pub async fn login(&mut self, app: &App, query: &str) -> Response {
        let callback = self.start_login(app, query).await;
        self.get(&callback).await
    }
}

/// The session cookie in `browser`'s jar (chunks joined), decrypted with
/// the test secret: its claims and `exp`.
pub fn session_claims(browser: &Browser) -> Option<serde_json::Map<String, serde_json::Value>> {
    let value = match browser.cookie("__session") {
        Some(v) => v.to_owned(),
        None => {
            let mut joined = String::new();
            let mut i = 0;
            while let Some(chunk) = browser.cookie(&format!("__session__{i}")) {
                joined.push_str(chunk);
                i += 1;
            }
            if joined.is_empty() {
                return None;
            }
            joined
        }
    };
    let plaintext = tokenkeeper_axum::jwe::CookieKey::from_secret(SECRET)
        .decrypt_bytes(&value)
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

/// The refresh token of `browser`'s session cookie.
pub fn refresh_token(browser: &Browser) -> String {
    session_claims(browser).expect("a session")["tokenSet"]["refreshToken"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}
