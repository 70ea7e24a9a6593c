//! A scripted in-memory authorization server for scenario tests: it speaks
//! the refresh grant like node-oidc-provider (rotation on every use, reuse of
//! a rotated refresh token revokes the whole grant).
#![allow(dead_code)]

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenkeeper::__private::form;
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    Action, ClientSecret, Completion, Config, ConfigBuilder, HttpRequest, HttpResponse,
    SeededEntropy, Session, TokenManager, TokenRequest, UnixTime,
};

/// A fake authorization server.
pub struct FakeServer {
    /// The refresh token that is valid now.
    pub current_refresh_token: Option<String>,
    /// Every refresh token ever issued and since rotated away.
    pub spent: BTreeSet<String>,
    /// The grant was revoked (reuse detected).
    pub revoked: bool,
    /// Refresh requests seen.
    pub refreshes: u32,
    /// Requests that carried a spent refresh token.
    pub replays: u32,
    /// Rotate on every use.
    pub rotate: bool,
    /// Lifetime of issued access tokens.
    pub expires_in: u64,
    /// Scopes granted at most (None: everything asked).
    pub grantable: Option<String>,
    /// The audiences the grant may ask for (None: any).
    pub audiences: Option<Vec<String>>,
    /// The subject of ID tokens.
    pub sub: String,
    /// Issue an ID token with each refresh.
    pub issue_id_token: bool,
    /// Tokens issued so far.
    pub counter: u32,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer {
            current_refresh_token: Some("rt-0".into()),
            spent: BTreeSet::new(),
            revoked: false,
            refreshes: 0,
            replays: 0,
            rotate: true,
            expires_in: 3600,
            grantable: None,
            audiences: None,
            sub: "user-1".into(),
            issue_id_token: false,
            counter: 0,
        }
    }
}

/// A compact JWT (unsigned, as a test fixture) with `claims`.
pub fn fake_jwt(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    format!("{header}.{payload}.sig")
}

/// The form fields of a request body.
pub fn fields(request: &HttpRequest) -> Vec<(String, String)> {
    form::parse(std::str::from_utf8(&request.body).expect("form bodies are UTF-8"))
}

/// One field's value.
pub fn field(request: &HttpRequest, name: &str) -> Option<String> {
    fields(request)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn json_error(status: u16, error: &str) -> HttpResponse {
    HttpResponse::new(
        status,
        format!(r#"{{"error":"{error}","error_description":"grant request is invalid"}}"#),
    )
    .with_header("Content-Type", "application/json")
}

impl FakeServer {
    /// Answers one token endpoint request.
    pub fn handle(&mut self, request: &HttpRequest) -> HttpResponse {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(
            field(request, "grant_type").as_deref(),
            Some("refresh_token")
        );
        self.refreshes += 1;
        let presented = field(request, "refresh_token").expect("refresh_token sent");
        if self.spent.contains(&presented) {
            // Reuse detection: the whole grant dies, the newest token too.
            self.replays += 1;
            self.revoked = true;
            self.current_refresh_token = None;
            return json_error(400, "invalid_grant");
        }
        if self.revoked || self.current_refresh_token.as_deref() != Some(presented.as_str()) {
            return json_error(400, "invalid_grant");
        }
        let audience = field(request, "audience").or_else(|| field(request, "resource"));
        if let (Some(allowed), Some(aud)) = (&self.audiences, &audience)
            && !allowed.contains(aud)
        {
            // Like oidc-provider: the refresh token is consumed first.
            self.rotate_token(&presented);
            return json_error(400, "invalid_target");
        }
        self.counter += 1;
        let asked = field(request, "scope");
        let granted = match (&asked, &self.grantable) {
            (Some(asked), Some(grantable)) => asked
                .split(' ')
                .filter(|s| grantable.split(' ').any(|g| g == *s))
                .collect::<Vec<_>>()
                .join(" "),
            (Some(asked), None) => asked.clone(),
            (None, _) => "openid profile email offline_access".into(),
        };
        let mut body = serde_json::json!({
            "access_token": format!("at-{}-{}", self.counter, audience.clone().unwrap_or_default()),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": granted,
        });
        if self.rotate {
            body["refresh_token"] = self.rotate_token(&presented).into();
        }
        if self.issue_id_token {
            body["id_token"] =
                fake_jwt(&serde_json::json!({"sub": self.sub, "n": self.counter})).into();
        }
        HttpResponse::new(200, body.to_string()).with_header("Content-Type", "application/json")
    }

    fn rotate_token(&mut self, presented: &str) -> String {
        self.spent.insert(presented.to_string());
        let next = format!("rt-{}", self.spent.len());
        self.current_refresh_token = Some(next.clone());
        next
    }
}

/// A session with an expired access token and refresh token `rt-0`.
pub fn expired_session(expires_at: u64) -> Session {
    let json = format!(
        r#"{{"user":{{"sub":"user-1"}},"tokenSet":{{"accessToken":"at-login","refreshToken":"rt-0","expiresAt":{expires_at},"scope":"openid profile email offline_access","requestedScope":"openid profile email offline_access"}},"internal":{{"sid":"s","createdAt":1}}}}"#
    );
    Session::from_json(json.as_bytes(), &Default::default()).expect("valid session")
}

/// `UnixTime` shorthand.
pub fn t(secs: u64) -> UnixTime {
    UnixTime::from_secs(secs)
}

/// The scenario tests' client: `client_secret_post` at the scripted server.
pub fn builder() -> ConfigBuilder {
    Config::builder("https://as.example/oauth/token", "client-1")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret-1")))
}

/// A manager for `builder` holding `session`.
pub fn manager(builder: ConfigBuilder, session: Session) -> TokenManager {
    let mut m = TokenManager::new(builder.build().unwrap(), SeededEntropy::new(7));
    m.set_session(session);
    m
}

/// The stored refresh token ("" when there is none).
pub fn rt(m: &TokenManager) -> String {
    m.session()
        .and_then(|s| s.token_set().refresh_token.as_ref())
        .map(|r| r.secret().to_string())
        .unwrap_or_default()
}

/// Drives one `get_access_token` to completion against `server`; returns
/// the token string or the error code.
pub fn get(
    m: &mut TokenManager,
    server: &mut FakeServer,
    request: &TokenRequest<'_>,
    now: u64,
) -> Result<String, String> {
    match m.get_access_token(request, t(now)) {
        Action::Ready(token) => Ok(token.token.secret().to_string()),
        Action::Send(out) => {
            let response = server.handle(&out.request);
            match m.handle_response(out.id, response, t(now)) {
                Completion::Ready(token) => Ok(token.token.secret().to_string()),
                Completion::Failed(e) => Err(e.code().to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        Action::LoginRequired(e) | Action::Failed(e) => Err(e.code().to_string()),
        other => panic!("unexpected {other:?}"),
    }
}

/// A store several keepers share (as processes would), whose saves can be
/// made to fail (`*down.lock() = true`).
#[derive(Clone, Default)]
pub struct Shared {
    /// What is stored.
    pub inner: std::sync::Arc<std::sync::Mutex<tokenkeeper::MemoryStore>>,
    /// Saves fail while this is set.
    pub down: std::sync::Arc<std::sync::Mutex<bool>>,
}

impl tokenkeeper::SessionStore for Shared {
    fn load(&mut self, key: &str) -> Result<Option<Session>, tokenkeeper::StoreError> {
        self.inner.lock().unwrap().load(key)
    }
    fn save(
        &mut self,
        key: &str,
        session: &Session,
        expected: Option<u64>,
    ) -> Result<(), tokenkeeper::StoreError> {
        if *self.down.lock().unwrap() {
            return Err(tokenkeeper::StoreError::backend("down"));
        }
        self.inner.lock().unwrap().save(key, session, expected)
    }
    fn clear(&mut self, key: &str) -> Result<(), tokenkeeper::StoreError> {
        self.inner.lock().unwrap().clear(key)
    }
    fn floor(&mut self, key: &str) -> Result<u64, tokenkeeper::StoreError> {
        self.inner.lock().unwrap().floor(key)
    }
}
