//! [`Auth`]: the app-wide object — configuration, driver, cookie codec —
//! and the session's round trip in a request: load it from the cookie (or
//! the store), and write it back when it changed.
//!
//! ```text
//! request ─► Auth::load(headers, now) ─► Loaded { session?, id? }
//!   … a route or extractor runs the driver with Loaded::source() …
//! changed session ─► Auth::persist(..) ─► Set-Cookie values
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::{Map, Value};
use tokenkeeper::Session;
use tokenkeeper::discovery::AuthorizationServerMetadata;
use tokenkeeper::grant::TargetParameter;
use url::Url;

use crate::config::{AuthBuilder, MIN_SECRET_BYTES, MissingSession, Routes};
use crate::cookies::{CookieAttributes, RequestCookies};
use crate::driver::{Driver, SessionSource};
use crate::error::Error;
use crate::session_cookie::{NoSession, SessionCookie, created_at};
use crate::stateful::{SessionBackend, on_blocking_pool};

/// The integration, shared by every request (cheap to clone).
#[derive(Clone, Debug)]
pub struct Auth {
    pub(crate) inner: Arc<AuthInner>,
}

pub(crate) struct AuthInner {
    pub(crate) base_url: Url,
    pub(crate) origin: String,
    pub(crate) routes: Routes,
    pub(crate) cookie: SessionCookie,
    pub(crate) driver: Driver,
    pub(crate) metadata: AuthorizationServerMetadata,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) target: TargetParameter,
    pub(crate) missing_session: MissingSession,
    pub(crate) backend: Option<Arc<dyn SessionBackend>>,
    pub(crate) authorization_params: Vec<(String, String)>,
    pub(crate) post_logout_path: String,
    pub(crate) login_resources: Vec<String>,
    /// The issuer's keys for back-channel logout tokens.
    pub(crate) backchannel: crate::routes::backchannel_logout::Backchannel,
}

impl std::fmt::Debug for AuthInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("base_url", &self.base_url.as_str())
            .field("issuer", &self.metadata.issuer)
            .field("client_id", &self.client_id)
            .field("stateful", &self.backend.is_some())
            .finish_non_exhaustive()
    }
}

/// A request's session, as loaded.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) session: Option<Session>,
    /// The stateful session's id.
    pub(crate) id: Option<String>,
}

/// The current time in seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Auth {
    /// A builder: the server's issuer (discovered), the client, the app's
    /// base URL (`https://app.example.com`, its origin and path prefix)
    /// and the secret the cookies are encrypted with (at least 32 bytes;
    /// the SDK's `AUTH0_SECRET`, so a Next.js app with the same secret
    /// reads the same sessions).
    pub fn builder(issuer: &str, client_id: &str, base_url: &str, secret: &[u8]) -> AuthBuilder {
        AuthBuilder::new(issuer, client_id, base_url, secret)
    }

    pub(crate) async fn build(builder: AuthBuilder) -> Result<Auth, Error> {
        if builder.secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "the secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let base_url = Url::parse(&builder.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::Config("the base URL must be an absolute http(s) URL".into()))?;
        let origin = base_url.origin().ascii_serialization();
        // `Secure` everywhere but plain-http loopback (browsers drop Secure
        // cookies set over http, and a developer's machine is http).
        let loopback = match base_url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        let secure = !(base_url.scheme() == "http" && loopback);
        let client = match builder.client {
            Some(client) => client,
            None => crate::driver::client(builder.timeout)
                .map_err(|e| Error::Driver(tokenkeeper_reqwest::Error::Transport(e)))?,
        };
        let metadata = crate::driver::discover(&client, &builder.issuer).await?;
        if metadata.authorization_endpoint.is_none() {
            return Err(Error::Config(
                "the server announces no authorization endpoint".into(),
            ));
        }
        let announces_resources = metadata
            .extra
            .get("resource_indicators_supported")
            .and_then(Value::as_bool)
            == Some(true);
        let target = builder.target.unwrap_or(if announces_resources {
            TargetParameter::Resource
        } else {
            TargetParameter::Audience
        });
        let mut config =
            tokenkeeper::Config::builder(metadata.token_endpoint.clone(), &builder.client_id)
                .metadata(&metadata)
                .client_auth(builder.client_auth)
                .scope(builder.scope.clone())
                .target_parameter(target);
        if let Some(audience) = &builder.audience {
            config = config.audience(audience.clone());
        }
        if builder.backend.is_some() {
            config = config.shared_store(true);
        }
        let config = config
            .build()
            .map_err(|e| Error::Driver(tokenkeeper_reqwest::Error::Core(e)))?;
        let cookie = SessionCookie::new(
            &builder.secret,
            builder.cookie_name,
            CookieAttributes::new(secure),
            builder.durations,
            builder.max_cookie_bytes,
        );
        let backchannel =
            crate::routes::backchannel_logout::Backchannel::new(metadata.jwks_uri.as_deref());
        Ok(Auth {
            inner: Arc::new(AuthInner {
                base_url,
                origin,
                routes: builder.routes,
                cookie,
                driver: Driver::new(config, client, builder.dpop, builder.backend.clone())?,
                metadata,
                client_id: builder.client_id,
                scope: builder.scope,
                audience: builder.audience,
                target,
                missing_session: builder.missing_session,
                backend: builder.backend,
                authorization_params: builder.authorization_params,
                post_logout_path: builder.post_logout_path,
                login_resources: builder.login_resources,
                backchannel,
            }),
        })
    }

    /// The routes' paths.
    #[must_use]
    pub fn routes(&self) -> &Routes {
        &self.inner.routes
    }

    /// The discovered server metadata.
    #[must_use]
    pub fn metadata(&self) -> &AuthorizationServerMetadata {
        &self.inner.metadata
    }

    /// The session of a request with `headers`, if it has a valid one.
    ///
    /// Synchronous: a stateful backend is called on the calling thread,
    /// even one that may block ([`SessionBackend::blocks`]). In an async
    /// handler, prefer the extractors (or `spawn_blocking`), which keep
    /// such calls off the runtime's workers.
    #[must_use]
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        self.load(&RequestCookies::from_headers(headers), now_secs())
            .session
    }

    /// The request's session: from its cookie, or from the backend under
    /// the cookie's id, calling the backend in place (see
    /// [`Auth::load_async`] for request handlers).
    pub(crate) fn load(&self, cookies: &RequestCookies<'_>, now: u64) -> Loaded {
        let inner = &self.inner;
        let Some(backend) = &inner.backend else {
            return Loaded {
                session: inner.cookie.read_session(cookies, now).ok(),
                id: None,
            };
        };
        let Some(id) = self.stateful_id(cookies, now) else {
            return Loaded::default();
        };
        Loaded {
            session: stored_session(&**backend, &id, now),
            id: Some(id),
        }
    }

    /// [`Auth::load`] for request handlers: a backend that may block
    /// ([`SessionBackend::blocks`]) is called on tokio's blocking pool, not
    /// on the runtime's worker.
    pub(crate) async fn load_async(&self, cookies: &RequestCookies<'_>, now: u64) -> Loaded {
        let backend = match &self.inner.backend {
            Some(backend) if backend.blocks() => Arc::clone(backend),
            _ => return self.load(cookies, now),
        };
        let Some(id) = self.stateful_id(cookies, now) else {
            return Loaded::default();
        };
        let key = id.clone();
        let session = on_blocking_pool(move || stored_session(&*backend, &key, now))
            .await
            // `None`: the runtime is shutting down (no session: failing closed).
            .flatten();
        Loaded {
            session,
            id: Some(id),
        }
    }

    /// The session id a stateful session cookie holds.
    fn stateful_id(&self, cookies: &RequestCookies<'_>, now: u64) -> Option<String> {
        match self.inner.cookie.read_claims(cookies, now) {
            Ok(claims) => claims.get("id").and_then(Value::as_str).map(String::from),
            Err(
                NoSession::Absent
                | NoSession::Invalid(_)
                | NoSession::TooLarge
                | NoSession::NotASession,
            ) => None,
        }
    }

    /// Where the driver finds `loaded`'s session.
    pub(crate) fn source(&self, loaded: &Loaded) -> SessionSource {
        match (&self.inner.backend, &loaded.id) {
            (Some(_), Some(id)) => SessionSource::Store {
                id: id.clone(),
                generation: loaded.session.as_ref().map(Session::generation),
            },
            _ => SessionSource::Cookie(loaded.session.clone()),
        }
    }

    /// [`Auth::source`] for a caller that has no further use for
    /// `loaded`'s session: a cookie session is moved out, not copied (a
    /// session is a few kilobytes of strings and maps, and each copy is
    /// zeroized again when dropped). `loaded.id` stays.
    pub(crate) fn take_source(&self, loaded: &mut Loaded) -> SessionSource {
        match (&self.inner.backend, &loaded.id) {
            (Some(_), Some(_)) => self.source(loaded),
            _ => SessionSource::Cookie(loaded.session.take()),
        }
    }

    /// Whether new sessions are stateful (kept in the backend).
    pub(crate) fn is_stateful(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// Writes `session` back: the whole session (stateless) or its id
    /// (stateful; the store already holds the session).
    pub(crate) fn persist(
        &self,
        session: &Session,
        id: Option<&str>,
        cookies: &RequestCookies<'_>,
        now: u64,
        out: &mut Vec<String>,
    ) -> Result<(), Error> {
        let cookie = &self.inner.cookie;
        match id {
            Some(id) if self.inner.backend.is_some() => {
                let mut claims = Map::new();
                claims.insert("id".into(), Value::from(id));
                cookie.write(claims, created_at(session, now), now, cookies, out)?;
            }
            _ => cookie.write_session(session, now, cookies, out)?,
        }
        Ok(())
    }

    /// Clears the session cookie (and forgets a stateful session, on the
    /// blocking pool when the backend may block).
    pub(crate) async fn clear(
        &self,
        loaded: &Loaded,
        cookies: &RequestCookies<'_>,
        out: &mut Vec<String>,
    ) {
        if let (Some(backend), Some(id)) = (&self.inner.backend, &loaded.id) {
            if backend.blocks() {
                let (backend, id) = (Arc::clone(backend), id.clone());
                let _ = on_blocking_pool(move || backend.delete(&id)).await;
            } else {
                let _ = backend.delete(id);
            }
        }
        self.inner.cookie.clear(cookies, out);
    }

    /// `return_to` when it stays on this app (a relative path, or an
    /// absolute URL of the app's own origin), as a path-and-query; else
    /// `None`. Anything else would be an open redirect.
    #[must_use]
    pub fn safe_return_to(&self, return_to: &str) -> Option<String> {
        safe_return_to(&self.inner.base_url, &self.inner.origin, return_to)
    }

    /// The absolute URL of `path` on the app.
    pub(crate) fn absolute(&self, path: &str) -> String {
        let base = self.inner.base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }
}

/// See [`Auth::safe_return_to`].
pub(crate) fn safe_return_to(base: &Url, origin: &str, return_to: &str) -> Option<String> {
    // Control characters and backslashes: browsers "fix" `/\evil.com` and
    // `/\t/evil.com` into another host.
    if return_to.is_empty() || return_to.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let url = base.join(return_to).ok()?;
    if url.origin().ascii_serialization() != origin {
        return None;
    }
    let mut out = url.path().to_owned();
    if let Some(query) = url.query() {
        out.push('?');
        out.push_str(query);
    }
    Some(out)
}

/// The live session stored under `id`: not logged out, and not ended by a
/// back-channel logout any instance received.
fn stored_session(backend: &dyn SessionBackend, id: &str, now: u64) -> Option<Session> {
    backend
        .store(id)
        .load(id)
        .ok()
        .flatten()
        .filter(|s| !s.is_logged_out())
        .filter(|s| !backend.is_ended(s, tokenkeeper::UnixTime::from_secs(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_return_to() {
        let base = Url::parse("http://127.0.0.1:3000").unwrap();
        let origin = base.origin().ascii_serialization();
        let ok = |r: &str| safe_return_to(&base, &origin, r);
        assert_eq!(ok("/dashboard?x=1").as_deref(), Some("/dashboard?x=1"));
        assert_eq!(ok("dashboard").as_deref(), Some("/dashboard"));
        assert_eq!(ok("http://127.0.0.1:3000/a").as_deref(), Some("/a"));
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "http://127.0.0.1:3001/",
            "/\\evil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "",
            "https:evil.example",
        ] {
            assert_eq!(ok(bad), None, "{bad}");
        }
    }
}
