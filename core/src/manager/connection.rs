//! Token Vault: the Auth0 Next.js SDK's `getAccessTokenForConnection`. The
//! session's refresh token is exchanged (Auth0's federated connection
//! token exchange, RFC 8693 shaped) for the access token of a federated
//! connection (`google-oauth2`, `github`, …), cached per connection and
//! login hint in the session's `connectionTokenSets`, exactly as the SDK
//! stores it.
//!
//! # Call order
//!
//! ```text
//! get_connection_token(request, now) ─► Action::Ready(token)          cached, no I/O
//!                                    ├─► Action::Send / Action::Sign   send it, then
//!                                    │      handle_response(id, response, now)
//!                                    │        ├─► Completion::Ready(token)   stored, SessionChanged
//!                                    │        └─► Completion::Failed(failed_to_exchange_refresh_token)
//!                                    ├─► Action::Wait(id)             this connection's exchange (or
//!                                    │      the session's refresh) is in flight: when it ends,
//!                                    │      get_connection_token_after_wait(request, id, now)
//!                                    ├─► Action::Reload { until }     (shared stores) another process
//!                                    │      refreshes the session: reload it, ask again
//!                                    └─► Action::LoginRequired(missing_session / missing_refresh_token / …)
//! ```
//!
//! The request is the SDK's: `grant_type`
//! `urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token`,
//! `connection`, `subject_token_type`
//! `urn:ietf:params:oauth:token-type:refresh_token`, `subject_token` (the
//! refresh token), `requested_token_type`
//! `http://auth0.com/oauth/token-type/federated-connection-access-token`,
//! `login_hint` when given, and the client's authentication.
//!
//! # One entry's states
//!
//! ```text
//!            exchange ok                   expiry − buffer passed, or force
//!   (none) ─────────────► cached ───────────────────────────────────────────► exchanging
//!     ▲                     ▲ (Ready: no I/O)                                     │
//!     │                     └──────────────────── exchange ok ◄──────────────────┤
//!     └──────────── exchange failed: the stale entry is dropped (as the SDK) ◄───┘
//! ```
//!
//! Freshness is the decision table of every other token (expiry within the
//! refresh buffer, `force_refresh`); single flight is per connection and
//! login hint. The exchange does not spend the refresh token (Auth0 does not
//! rotate it here), but it waits for a refresh of the session in flight: a
//! refresh token that rotates meanwhile would be sent after its
//! replacement, which a server detecting reuse treats as theft.
//!
//! ```
//! use tokenkeeper::{Action, ConnectionRequest, TokenManager, UnixTime};
//!
//! fn ask(manager: &mut TokenManager, now: UnixTime) {
//!     let request = ConnectionRequest::new("google-oauth2").login_hint("ada@example.com");
//!     match manager.get_connection_token(&request, now) {
//!         Action::Ready(token) => { let _ = token.token.secret(); }
//!         Action::Send(out) => { /* send out.request, then manager.handle_response(out.id, …) */ }
//!         _ => {}
//!     }
//! }
//! ```

use alloc::boxed::Box;
use alloc::string::String;

use super::lookup::TokenAt;
use super::{AccessTokenRef, Action, ChangeReason, Dispatch, TokenManager};
use crate::error::{Error, ResponseError};
use crate::flight::{ConnectionFlight, Flight, FlightKind, RequestId};
use crate::form::FormBody;
use crate::http::HttpRequest;
use crate::session::ConnectionTokenSet;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use crate::token::{Decision, Freshness, TokenType};
use crate::trace::decision;

/// The grant type the SDK sends for a connection's access token.
pub const GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// The subject token type: the session's refresh token.
pub const SUBJECT_TYPE_REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// The requested token type: a federated connection's access token.
pub const REQUESTED_TOKEN_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

static BEARER: TokenType = TokenType::Bearer;

/// What a caller asks for: the SDK's `AccessTokenForConnectionOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRequest<'a> {
    /// The connection's name (`google-oauth2`, `github`, …).
    pub connection: &'a str,
    /// The account to use on the connection (`login_hint`); part of the
    /// cache key.
    pub login_hint: Option<&'a str>,
    /// Exchange again even when the cached token is fresh.
    pub force_refresh: bool,
}

impl<'a> ConnectionRequest<'a> {
    /// For `connection`, no login hint.
    #[must_use]
    pub const fn new(connection: &'a str) -> Self {
        ConnectionRequest {
            connection,
            login_hint: None,
            force_refresh: false,
        }
    }

    /// With `login_hint`.
    #[must_use]
    pub const fn login_hint(mut self, login_hint: &'a str) -> Self {
        self.login_hint = Some(login_hint);
        self
    }

    /// The request as it goes on the wire: an empty login hint is not sent,
    /// so it is no hint for the cache and the flights either (it once made
    /// a second exchange and a second entry for the same request).
    fn as_sent(self) -> Self {
        ConnectionRequest {
            login_hint: self.login_hint.filter(|hint| !hint.is_empty()),
            ..self
        }
    }

    /// Forcing a new exchange.
    #[must_use]
    pub const fn force_refresh(mut self) -> Self {
        self.force_refresh = true;
        self
    }
}

/// What to do for a connection token, decided on a shared borrow.
enum Decided {
    Ready(usize),
    Fail(Error),
    Wait(RequestId),
    Reload(UnixTime),
    Exchange(crate::secret::RefreshToken),
}

impl TokenManager {
    /// The access token of a federated connection for the session's user
    /// (the SDK's `getAccessTokenForConnection`): cached in the session's
    /// `connectionTokenSets`, else exchanged for with the refresh token.
    ///
    /// The answer: [`Action::Ready`] (cached, no I/O); `Send` or `Sign`
    /// (then [`TokenManager::handle_response`] gives `Completion::Ready`,
    /// or `Completion::Failed` with
    /// [`Error::FailedToExchangeRefreshToken`]); `Wait` (this connection's
    /// exchange or the session's refresh is in flight: then
    /// [`TokenManager::get_connection_token_after_wait`]); `Reload`
    /// (shared stores: another process refreshes); `LoginRequired`
    /// (`missing_session`, `missing_refresh_token`, …). Hosts with a
    /// [`Driver`](crate::Driver) use
    /// [`Ask::Connection`](crate::driver::Ask::Connection) instead.
    ///
    /// ```
    /// use tokenkeeper::{Action, ConnectionRequest, TokenManager, UnixTime};
    ///
    /// fn ask(manager: &mut TokenManager, now: UnixTime) {
    ///     let request = ConnectionRequest::new("google-oauth2").login_hint("ada@example.com");
    ///     match manager.get_connection_token(&request, now) {
    ///         Action::Ready(token) => println!("expires at {}", token.expires_at.as_secs()),
    ///         Action::Send(out) => { /* send out.request, then manager.handle_response(out.id, …) */ }
    ///         _ => {}
    ///     }
    /// }
    /// ```
    pub fn get_connection_token(
        &mut self,
        request: &ConnectionRequest<'_>,
        now: UnixTime,
    ) -> Action<'_> {
        let request = &request.as_sent();
        match self.decide_connection(request, now) {
            Decided::Ready(at) => match self.token_at(TokenAt::Connection(at)) {
                Some(token) => Action::Ready(token),
                // Unreachable: it was just found there.
                None => Action::LoginRequired(Error::MissingSession),
            },
            Decided::Fail(error) => Action::LoginRequired(error),
            Decided::Wait(id) => Action::Wait(id),
            Decided::Reload(until) => Action::Reload { until },
            Decided::Exchange(subject) => {
                decision!(
                    info,
                    event = "connection_exchange_started",
                    connection = request.connection,
                    forced = request.force_refresh,
                );
                let http = self.connection_request(request, subject.secret());
                let kind = FlightKind::Connection(Box::new(ConnectionFlight {
                    subject,
                    connection: String::from(request.connection),
                    login_hint: request.login_hint.map(String::from),
                }));
                match self.launch(kind, None, String::new(), http, now) {
                    Ok(Dispatch::Send(out)) => Action::Send(out),
                    Ok(Dispatch::Sign(sign)) => Action::Sign(sign),
                    Err(error) => Action::Failed(error),
                }
            }
        }
    }

    /// Asks again after waiting on flight `waited`: its error when it was
    /// this connection's exchange and failed; a forced exchange counts as
    /// done when it succeeded; otherwise as usual.
    pub fn get_connection_token_after_wait(
        &mut self,
        request: &ConnectionRequest<'_>,
        waited: RequestId,
        now: UnixTime,
    ) -> Action<'_> {
        if self.state.flights.is_active(waited) {
            return Action::Wait(waited);
        }
        let mut request = request.as_sent();
        match self
            .state
            .flights
            .connection_outcome(waited, request.connection, request.login_hint)
        {
            Some(Err(error)) => return Action::Failed(error.clone()),
            Some(Ok(())) => request.force_refresh = false,
            None => {}
        }
        self.get_connection_token(&request, now)
    }

    fn decide_connection(&self, request: &ConnectionRequest<'_>, now: UnixTime) -> Decided {
        let Some(session) = self.state.session.as_ref() else {
            return Decided::Fail(Error::MissingSession);
        };
        if session.is_logged_out() {
            return Decided::Fail(Error::LoggedOut);
        }
        if session.session_expires_at().is_some_and(|at| at <= now) {
            return Decided::Fail(Error::SessionExpired);
        }
        let found = session
            .connection_token_sets()
            .iter()
            .position(|e| e.matches(request.connection, request.login_hint));
        let entry = found
            .and_then(|at| session.connection_token_sets().get(at))
            .filter(|e| !e.access_token.secret().is_empty());
        let reauth = session.is_reauthentication_required();
        let refresh_token = session.token_set.refresh_token.as_ref().filter(|_| !reauth);
        let freshness = Freshness {
            has_access_token: entry.is_some(),
            expires_at: entry.and_then(|e| e.expires_at),
            has_refresh_token: refresh_token.is_some(),
            lifetime: None,
        };
        match (
            freshness.decide(now, self.config.refresh_buffer, request.force_refresh),
            found,
        ) {
            (Decision::Ready, Some(at)) => Decided::Ready(at),
            (Decision::Refresh, _) => {
                let flights = &self.state.flights;
                let in_flight = flights
                    .connection_in_flight(request.connection, request.login_hint)
                    .or_else(|| flights.refresh_in_flight());
                // (Shared stores.) Another process is refreshing: its
                // rotation may spend the token this would send.
                let claim = self.foreign_claim(now);
                match (in_flight, refresh_token, claim) {
                    (Some(id), _, _) => Decided::Wait(id),
                    (None, Some(_), Some(until)) => Decided::Reload(until),
                    (None, Some(token), None) => Decided::Exchange(token.clone()),
                    // Unreachable: a refresh is decided with a refresh token.
                    (None, None, _) => Decided::Fail(Error::MissingSession),
                }
            }
            _ if reauth => Decided::Fail(Error::ReauthenticationRequired),
            (
                Decision::MissingRefreshToken {
                    access_token_expired,
                },
                _,
            ) => Decided::Fail(Error::MissingRefreshToken {
                access_token_expired,
            }),
            // Ready without an entry cannot be decided.
            (Decision::Ready, None) => Decided::Fail(Error::MissingRefreshToken {
                access_token_expired: false,
            }),
        }
    }

    /// The SDK's request, parameter for parameter.
    fn connection_request(&self, request: &ConnectionRequest<'_>, subject: &str) -> HttpRequest {
        let mut form = FormBody::new();
        let mut headers = crate::grant::request_headers();
        form.append("grant_type", GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN);
        form.append("connection", request.connection);
        form.append("subject_token_type", SUBJECT_TYPE_REFRESH_TOKEN);
        form.append("subject_token", subject);
        form.append(
            "requested_token_type",
            REQUESTED_TOKEN_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN,
        );
        if let Some(hint) = request.login_hint.filter(|h| !h.is_empty()) {
            form.append("login_hint", hint);
        }
        self.config
            .client_auth
            .apply(&self.config.client_id, &mut form, &mut headers);
        crate::grant::form_post(&self.config.token_endpoint, form, headers)
    }

    /// Stores a connection's token (replacing the entry for the same
    /// connection and hint), or, when the exchange failed, drops that
    /// entry as the SDK does (it is dead upstream). Either way the session
    /// changed and is persisted.
    // Kept out of `handle_response`, whose refresh path stays compact.
    #[inline(never)]
    pub(super) fn apply_connection_token(
        &mut self,
        flight: &Flight,
        answer: &mut ParsedResponse<'_>,
        now: UnixTime,
    ) -> Result<TokenAt, Error> {
        let FlightKind::Connection(asked) = &flight.kind else {
            return Err(Error::UnknownRequest);
        };
        let default_lifetime = self.config.default_lifetime;
        let Some(session) = self.state.session.as_mut() else {
            return Err(Error::RequestAbandoned);
        };
        // A new login or a logout meanwhile: this token was for a refresh
        // token the session no longer holds.
        if session.token_set.refresh_token.as_ref() != Some(&asked.subject)
            || session.is_logged_out()
        {
            return Err(Error::RequestAbandoned);
        }
        let found = session
            .connection_token_sets()
            .iter()
            .position(|e| e.matches(&asked.connection, asked.login_hint.as_deref()));
        let status = answer.status();
        let parsed = answer.take_token_response().and_then(|parsed| {
            let expires_at = parsed.expires_at(flight.sent_at, default_lifetime);
            if expires_at <= now {
                return Err(ResponseError::Malformed {
                    status,
                    reason: "the access token expired before the response arrived",
                });
            }
            Ok((parsed, expires_at))
        });
        let (parsed, expires_at) = match parsed {
            Ok(ok) => ok,
            Err(error) => {
                decision!(
                    info,
                    event = "connection_exchange_failed",
                    connection = asked.connection.as_str(),
                    code = error.code(),
                );
                if let Some(at) = found {
                    session.connections_mut().remove(at);
                    self.session_changed(&[ChangeReason::Evicted]);
                }
                return Err(Error::FailedToExchangeRefreshToken(error));
            }
        };
        let entry = ConnectionTokenSet {
            access_token: parsed.access_token,
            expires_at: Some(expires_at),
            scope: parsed.scope,
            connection: asked.connection.clone(),
            login_hint: asked.login_hint.clone(),
            extra: serde_json::Map::new(),
        };
        let connections = session.connections_mut();
        let mut evicted = false;
        let at = match found.filter(|&at| at < connections.len()) {
            Some(at) => {
                connections[at] = entry;
                at
            }
            None => {
                connections.push(entry);
                let mut at = connections.len() - 1;
                // Capped as the access-token cache is: a session that meets
                // many connections and login hints would otherwise grow
                // until it is too large to be stored and read back. The
                // entry that expires first goes (unknown counts as expired),
                // as many as the cap asks (a session read over a lowered
                // cap comes back under it).
                while connections.len() > self.config.max_cache_entries
                    && let Some(victim) = connections[..at]
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| e.expires_at.unwrap_or(UnixTime::EPOCH))
                        .map(|(i, _)| i)
                {
                    connections.remove(victim);
                    at -= 1;
                    evicted = true;
                }
                at
            }
        };
        let updated = ChangeReason::TokensUpdated {
            refresh_token_rotated: false,
        };
        if evicted {
            self.session_changed(&[updated, ChangeReason::Evicted]);
        } else {
            self.session_changed(&[updated]);
        }
        Ok(TokenAt::Connection(at))
    }
}

/// A connection entry as a ready token (`audience`: none; `Bearer`).
pub(super) fn connection_ref(entry: &ConnectionTokenSet) -> AccessTokenRef<'_> {
    AccessTokenRef {
        token: &entry.access_token,
        expires_at: entry.expires_at.unwrap_or(UnixTime::EPOCH),
        scope: entry.scope.as_deref(),
        audience: None,
        token_type: &BEARER,
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use core::time::Duration;

    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::grant::ClientAuth;
    use crate::http::HttpResponse;
    use crate::manager::{Completion, Event};
    use crate::secret::ClientSecret;
    use crate::session::Session;
    use crate::{Config, RefreshToken};

    const NOW: u64 = 1_700_000_000;

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }

    /// A session as the SDK writes it, with one cached google token (and
    /// one for google with a login hint), and the manager holding it.
    fn manager_with(buffer: u64, google_expires_at: u64) -> TokenManager {
        let json = serde_json::json!({
            "user": {"sub": "auth0|1"},
            "tokenSet": {"accessToken": "at", "refreshToken": "rt-1", "expiresAt": NOW + 3600},
            "internal": {"sid": "s1", "createdAt": NOW - 100},
            "connectionTokenSets": [
                {"accessToken": "google-cached", "expiresAt": google_expires_at,
                 "scope": "email", "connection": "google-oauth2"},
                {"accessToken": "google-ada", "expiresAt": NOW + 3600,
                 "connection": "google-oauth2", "loginHint": "ada@example.com"}
            ]
        });
        let session = Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap();
        let config = Config::builder("https://as.example/oauth/token", "client-1")
            .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret-1")))
            .refresh_buffer(Duration::from_secs(buffer))
            .build()
            .unwrap();
        let mut manager = TokenManager::new(config, SeededEntropy::new(3));
        manager.set_session(session);
        manager
    }

    fn ok_body(token: &str) -> HttpResponse {
        HttpResponse::new(
            200,
            alloc::format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600,"scope":"repo","issued_token_type":"{REQUESTED_TOKEN_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN}"}}"#
            ),
        )
    }

    fn ready(action: Action<'_>) -> String {
        match action {
            Action::Ready(token) => token.token.secret().to_string(),
            other => panic!("not ready: {other:?}"),
        }
    }

    fn sent(action: Action<'_>) -> (RequestId, String) {
        match action {
            Action::Send(out) => (
                out.id,
                String::from(core::str::from_utf8(&out.request.body).unwrap()),
            ),
            other => panic!("nothing sent: {other:?}"),
        }
    }

    fn completed(completion: Completion<'_>) -> Result<String, Error> {
        match completion {
            Completion::Ready(token) => Ok(token.token.secret().to_string()),
            Completion::Failed(error) => Err(error),
            other => panic!("{other:?}"),
        }
    }

    fn drain(manager: &mut TokenManager) -> Vec<Event> {
        core::iter::from_fn(|| manager.poll_event()).collect()
    }

    /// The connection tokens the session holds, in order.
    fn held(m: &TokenManager) -> Vec<&str> {
        m.session()
            .unwrap()
            .connection_token_sets()
            .iter()
            .map(|e| e.access_token.secret())
            .collect()
    }

    /// Connection tokens are capped as the access-token cache is (here at
    /// 3): a new connection past the cap evicts the entry that expires
    /// first, never the one just stored, and the session announces it.
    #[test]
    fn connection_tokens_are_capped_the_first_to_expire_goes() {
        let json = serde_json::json!({
            "user": {"sub": "auth0|1"},
            "tokenSet": {"accessToken": "at", "refreshToken": "rt-1", "expiresAt": NOW + 3600},
            "connectionTokenSets": [
                {"accessToken": "late", "expiresAt": NOW + 900, "connection": "a"},
                {"accessToken": "early", "expiresAt": NOW + 100, "connection": "b"},
                {"accessToken": "middle", "expiresAt": NOW + 500, "connection": "c"}
            ]
        });
        let session = Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap();
        let config = Config::builder("https://as.example/oauth/token", "client-1")
            .max_cache_entries(3)
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(3));
        m.set_session(session);
        drain(&mut m);
        for (connection, token, gone) in [("d", "new-d", "early"), ("e", "new-e", "middle")] {
            let (id, _) = sent(m.get_connection_token(&ConnectionRequest::new(connection), t(NOW)));
            assert_eq!(
                completed(m.handle_response(id, ok_body(token), t(NOW))).unwrap(),
                token
            );
            let held = held(&m);
            assert_eq!(held.len(), 3, "{held:?}");
            assert!(held.contains(&token), "{held:?}");
            assert!(!held.contains(&gone), "{gone} evicted: {held:?}");
            let events = drain(&mut m);
            assert!(
                events.iter().any(|e| matches!(
                    e,
                    Event::SessionChanged {
                        reason: ChangeReason::Evicted,
                        ..
                    }
                )),
                "{events:?}"
            );
            // The stored token is served from the session.
            assert_eq!(
                ready(m.get_connection_token(&ConnectionRequest::new(connection), t(NOW + 1))),
                token
            );
        }
        assert_eq!(
            ready(m.get_connection_token(&ConnectionRequest::new("a"), t(NOW + 1))),
            "late"
        );
        // Read over a lowered cap: the next new entry brings it under.
        let session = m.session().unwrap().clone();
        let config = Config::builder("https://as.example/oauth/token", "client-1")
            .max_cache_entries(1)
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(4));
        m.set_session(session);
        let (id, _) = sent(m.get_connection_token(&ConnectionRequest::new("f"), t(NOW)));
        assert_eq!(
            completed(m.handle_response(id, ok_body("new-f"), t(NOW))).unwrap(),
            "new-f"
        );
        assert_eq!(held(&m), ["new-f"]);
    }

    #[test]
    fn the_request_is_the_sdks() {
        let mut m = manager_with(0, NOW + 3600);
        let request = ConnectionRequest::new("github").login_hint("ada@example.com");
        let (_, body) = sent(m.get_connection_token(&request, t(NOW)));
        assert_eq!(
            body,
            "grant_type=urn%3Aauth0%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange%3Afederated-connection-access-token\
             &connection=github\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token\
             &subject_token=rt-1\
             &requested_token_type=http%3A%2F%2Fauth0.com%2Foauth%2Ftoken-type%2Ffederated-connection-access-token\
             &login_hint=ada%40example.com\
             &client_id=client-1&client_secret=secret-1"
        );
    }

    #[test]
    fn cached_per_connection_and_login_hint_like_the_sdk() {
        let mut m = manager_with(0, NOW + 3600);
        assert_eq!(
            ready(m.get_connection_token(&ConnectionRequest::new("google-oauth2"), t(NOW))),
            "google-cached"
        );
        let hinted = ConnectionRequest::new("google-oauth2").login_hint("ada@example.com");
        assert_eq!(ready(m.get_connection_token(&hinted, t(NOW))), "google-ada");
        // Another hint, or another connection, is not cached: "no hint" is
        // not a wildcard.
        let other = ConnectionRequest::new("google-oauth2").login_hint("bob@example.com");
        let (id, _) = sent(m.get_connection_token(&other, t(NOW)));
        assert_eq!(
            completed(m.handle_response(id, ok_body("google-bob"), t(NOW))).unwrap(),
            "google-bob"
        );
        let (id, _) = sent(m.get_connection_token(&ConnectionRequest::new("github"), t(NOW)));
        assert_eq!(
            completed(m.handle_response(id, ok_body("gh"), t(NOW))).unwrap(),
            "gh"
        );
        // Each cached under its own key; the first two untouched.
        assert_eq!(
            ready(m.get_connection_token(&other, t(NOW + 1))),
            "google-bob"
        );
        assert_eq!(
            ready(m.get_connection_token(&ConnectionRequest::new("github"), t(NOW + 1))),
            "gh"
        );
        assert_eq!(
            ready(m.get_connection_token(&ConnectionRequest::new("google-oauth2"), t(NOW + 1))),
            "google-cached"
        );
        assert_eq!(m.session().unwrap().connection_token_sets().len(), 4);
        // An empty hint is not sent: it is the hint-less request, cached.
        let empty = ConnectionRequest::new("github").login_hint("");
        assert_eq!(ready(m.get_connection_token(&empty, t(NOW + 1))), "gh");
        assert_eq!(m.session().unwrap().connection_token_sets().len(), 4);
    }

    #[test]
    fn expiry_buffer_and_force_decide_like_every_other_token() {
        // Expired.
        let mut m = manager_with(0, NOW);
        sent(m.get_connection_token(&ConnectionRequest::new("google-oauth2"), t(NOW)));
        // Fresh without a buffer, due within a 60 s buffer.
        let mut m = manager_with(0, NOW + 30);
        ready(m.get_connection_token(&ConnectionRequest::new("google-oauth2"), t(NOW)));
        let mut m = manager_with(60, NOW + 30);
        sent(m.get_connection_token(&ConnectionRequest::new("google-oauth2"), t(NOW)));
        // Forced.
        let mut m = manager_with(0, NOW + 3600);
        let forced = ConnectionRequest::new("google-oauth2").force_refresh();
        let (id, _) = sent(m.get_connection_token(&forced, t(NOW)));
        assert_eq!(
            completed(m.handle_response(id, ok_body("new"), t(NOW))).unwrap(),
            "new"
        );
        let entry = &m.session().unwrap().connection_token_sets()[0];
        assert_eq!(entry.access_token.secret(), "new");
        assert_eq!(entry.expires_at, Some(t(NOW + 3600)));
        assert_eq!(entry.scope.as_deref(), Some("repo"));
    }

    #[test]
    fn one_exchange_for_many_waiters() {
        let mut m = manager_with(0, NOW + 3600);
        let request = ConnectionRequest::new("github");
        let (id, _) = sent(m.get_connection_token(&request, t(NOW)));
        for _ in 0..15 {
            assert!(matches!(m.get_connection_token(&request, t(NOW)), Action::Wait(w) if w == id));
        }
        // Another connection does not wait on it.
        sent(m.get_connection_token(&ConnectionRequest::new("slack"), t(NOW)));
        assert_eq!(
            completed(m.handle_response(id, ok_body("gh"), t(NOW))).unwrap(),
            "gh"
        );
        for _ in 0..15 {
            assert_eq!(
                ready(m.get_connection_token_after_wait(&request, id, t(NOW))),
                "gh"
            );
        }
        // A forced waiter is served by the exchange it waited on.
        assert_eq!(
            ready(m.get_connection_token_after_wait(&request.force_refresh(), id, t(NOW))),
            "gh"
        );
    }

    #[test]
    fn waits_for_a_refresh_in_flight() {
        let mut m = manager_with(0, NOW + 3600);
        let Action::Send(out) =
            m.get_access_token(&crate::TokenRequest::new().force_refresh(), t(NOW))
        else {
            panic!("no refresh");
        };
        assert!(matches!(
            m.get_connection_token(&ConnectionRequest::new("github"), t(NOW)),
            Action::Wait(id) if id == out.id
        ));
    }

    #[test]
    fn waits_for_another_process_refreshing_with_a_shared_store() {
        let json = serde_json::json!({
            "tokenSet": {"accessToken": "at", "refreshToken": "rt-1", "expiresAt": NOW + 3600},
            "tokenkeeper": {"generation": 4, "refreshClaim": {"owner": "other", "until": NOW + 30}}
        });
        let session = Session::from_json(json.to_string().as_bytes(), &Default::default()).unwrap();
        let config = Config::builder("https://as.example/oauth/token", "client-1")
            .shared_store(true)
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(3));
        m.set_session(session);
        let request = ConnectionRequest::new("github");
        assert!(matches!(
            m.get_connection_token(&request, t(NOW)),
            Action::Reload { until } if until == t(NOW + 30)
        ));
        // Once the claim ran out, the exchange goes.
        sent(m.get_connection_token(&request, t(NOW + 30)));
    }

    #[test]
    fn a_failed_exchange_is_typed_reaches_the_waiters_and_drops_the_entry() {
        let mut m = manager_with(0, NOW);
        let request = ConnectionRequest::new("google-oauth2");
        let (id, _) = sent(m.get_connection_token(&request, t(NOW)));
        assert!(matches!(
            m.get_connection_token(&request, t(NOW)),
            Action::Wait(_)
        ));
        drain(&mut m);
        let refused = HttpResponse::new(
            400,
            r#"{"error":"invalid_grant","error_description":"invalid refresh token"}"#,
        );
        let error = completed(m.handle_response(id, refused, t(NOW))).unwrap_err();
        assert_eq!(error.code(), "failed_to_exchange_refresh_token");
        assert_eq!(error.server_error().unwrap().error, "invalid_grant");
        assert!(matches!(
            error,
            Error::FailedToExchangeRefreshToken(ResponseError::Server(_))
        ));
        assert!(matches!(
            m.get_connection_token_after_wait(&request, id, t(NOW)),
            Action::Failed(Error::FailedToExchangeRefreshToken(_))
        ));
        // The stale google entry went (saved); the hinted one stayed.
        let sets = m.session().unwrap().connection_token_sets();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].login_hint.as_deref(), Some("ada@example.com"));
        assert!(matches!(
            drain(&mut m).as_slice(),
            [Event::SessionChanged {
                reason: ChangeReason::Evicted,
                ..
            }]
        ));
        // A garbage answer is typed the same way.
        let (id, _) = sent(m.get_connection_token(&request, t(NOW)));
        let error =
            completed(m.handle_response(id, HttpResponse::new(200, "<html>"), t(NOW))).unwrap_err();
        assert_eq!(error.code(), "failed_to_exchange_refresh_token");
    }

    #[test]
    fn no_session_no_refresh_token_and_a_dead_one_are_login_errors() {
        let config = Config::builder("https://as.example/oauth/token", "c")
            .build()
            .unwrap();
        let mut m = TokenManager::new(config, SeededEntropy::new(1));
        let request = ConnectionRequest::new("github");
        assert!(matches!(
            m.get_connection_token(&request, t(NOW)),
            Action::LoginRequired(Error::MissingSession)
        ));
        // Without a refresh token: a fresh cached entry is still served
        // (as the SDK), a missing one is `missing_refresh_token`.
        let json = r#"{"tokenSet":{"accessToken":"at","expiresAt":1700003600},
            "connectionTokenSets":[{"accessToken":"gh","expiresAt":1700003600,"connection":"github"}]}"#;
        m.set_session(Session::from_json(json.as_bytes(), &Default::default()).unwrap());
        assert_eq!(ready(m.get_connection_token(&request, t(NOW))), "gh");
        let error = match m.get_connection_token(&ConnectionRequest::new("slack"), t(NOW)) {
            Action::LoginRequired(error) => error,
            other => panic!("{other:?}"),
        };
        assert_eq!(error.code(), "missing_refresh_token");
        assert!(error.requires_login());
    }

    #[test]
    fn an_answer_for_a_replaced_session_is_not_stored() {
        let mut m = manager_with(0, NOW + 3600);
        let (id, _) = sent(m.get_connection_token(&ConnectionRequest::new("github"), t(NOW)));
        // A new login meanwhile: another refresh token.
        let mut session = m.session().unwrap().clone();
        session.token_set.refresh_token = Some(RefreshToken::new("rt-2"));
        session.connections_mut().clear();
        m.set_session(session);
        let error = completed(m.handle_response(id, ok_body("gh"), t(NOW))).unwrap_err();
        assert_eq!(error, Error::RequestAbandoned);
        assert!(m.session().unwrap().connection_token_sets().is_empty());
    }

    #[test]
    fn the_session_round_trips_in_the_sdk_shape() {
        let mut m = manager_with(0, NOW + 3600);
        let (id, _) = sent(m.get_connection_token(&ConnectionRequest::new("github"), t(NOW)));
        completed(m.handle_response(id, ok_body("gh"), t(NOW))).unwrap();
        assert!(matches!(
            drain(&mut m).as_slice(),
            [Event::SessionChanged {
                reason: ChangeReason::TokensUpdated {
                    refresh_token_rotated: false
                },
                ..
            }]
        ));
        let json: serde_json::Value =
            serde_json::from_str(&m.session().unwrap().to_json()).unwrap();
        assert_eq!(
            json["connectionTokenSets"],
            serde_json::json!([
                {"accessToken": "google-cached", "expiresAt": NOW + 3600, "scope": "email", "connection": "google-oauth2"},
                {"accessToken": "google-ada", "expiresAt": NOW + 3600, "connection": "google-oauth2", "loginHint": "ada@example.com"},
                {"accessToken": "gh", "expiresAt": NOW + 3600, "scope": "repo", "connection": "github"}
            ])
        );
        // Read back, written again: the same JSON.
        let again = Session::from_json(
            m.session().unwrap().to_json().as_bytes(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(again.to_json(), m.session().unwrap().to_json());
        // A session without connection tokens writes no member.
        let bare = Session::from_json(br#"{"tokenSet":{"accessToken":"a"}}"#, &Default::default())
            .unwrap();
        assert!(!bare.to_json().contains("connectionTokenSets"));
    }
}
