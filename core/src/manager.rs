//! The token manager: the state machine that answers "give me an access
//! token" and tells the host which requests to send.
//!
//! # Call order
//!
//! ```text
//! get_access_token(request, now) ──► Action::Ready(token)         no I/O
//!                                 ├─► Action::Send(request)       send it, then
//!                                 │      handle_response(id, response, now)
//!                                 │        ├─► Completion::Ready(token)
//!                                 │        ├─► Completion::Resend(request)   send again, same id
//!                                 │        └─► Completion::Failed(error)
//!                                 │      or handle_transport_error(id, now) / cancel(id)
//!                                 ├─► Action::Wait(id)            another caller's refresh is in
//!                                 │      flight: when it ends, call
//!                                 │      get_access_token_after_wait(request, id, now)
//!                                 ├─► Action::LoginRequired(error)
//!                                 └─► Action::Failed(error)       the flight waited on failed
//!
//! after every call:  while let Some(event) = poll_event() { persist the session … }
//! timers:            poll_timeout() ─► handle_timeout(now) when it is reached
//! ```
//!
//! # Session states
//!
//! ```text
//!            set_session()                      invalid_grant
//!   (none) ───────────────► Active ────────────────────────────► ReauthenticationRequired
//!      ▲                     │  ▲ │ refresh ok (tokens, rotation)          │
//!      │                     │  └─┘                                         │
//!      └──── clear_session() ┴──────────────────── clear_session() / set_session()
//! ```
//!
//! Invariants kept here: an access token expired at `now` is never returned
//! as ready; at most one refresh is in flight (one session has one refresh
//! token, shared by every audience); a rotated refresh token replaces the
//! old one at once and raises an event, and nothing but a successful
//! response changes the stored tokens.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::cell::RefCell;
use core::fmt;

use crate::cache::WantedScope;
use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{Error, ResponseError};
use crate::flight::{Destination, Flight, Flights, RequestId};
use crate::grant::RefreshRequest;
use crate::http::{Headers, HttpRequest, HttpResponse, Method};
use crate::jwt;
use crate::scope;
use crate::secret::AccessToken;
use crate::session::Session;
use crate::time::UnixTime;
use crate::token::response::parse_mfa_required;
use crate::token::{AccessTokenSet, Decision, Freshness, TokenResponse, TokenType};

/// What a caller asks for: the SDK's `getAccessToken` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRequest<'a> {
    /// The API (`None`: the default audience).
    pub audience: Option<&'a str>,
    /// Extra scopes wanted (merged with the default scope unless
    /// `merge_scopes` is off).
    pub scope: Option<&'a str>,
    /// Refresh even when the cached token is fresh.
    pub force_refresh: bool,
    /// Overrides the configured `merge_scopes` for this request.
    pub merge_scopes: Option<bool>,
}

impl<'a> TokenRequest<'a> {
    /// The default audience and scope.
    #[must_use]
    pub const fn new() -> Self {
        TokenRequest {
            audience: None,
            scope: None,
            force_refresh: false,
            merge_scopes: None,
        }
    }

    /// For `audience`.
    #[must_use]
    pub const fn audience(mut self, audience: &'a str) -> Self {
        self.audience = Some(audience);
        self
    }

    /// With `scope`.
    #[must_use]
    pub const fn scope(mut self, scope: &'a str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Forcing a refresh.
    #[must_use]
    pub const fn force_refresh(mut self) -> Self {
        self.force_refresh = true;
        self
    }
}

static BEARER: TokenType = TokenType::Bearer;

/// A ready access token, borrowed from the manager: what the SDK's
/// `getAccessToken` returns.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenRef<'a> {
    /// The access token.
    pub token: &'a AccessToken,
    /// When it expires (always later than the `now` it was returned at).
    pub expires_at: UnixTime,
    /// The granted scope, when known.
    pub scope: Option<&'a str>,
    /// The audience, when known.
    pub audience: Option<&'a str>,
    /// `Bearer` or `DPoP` (`Bearer` when the store had none).
    pub token_type: &'a TokenType,
}

impl AccessTokenRef<'_> {
    /// An owned copy.
    #[must_use]
    pub fn to_owned(&self) -> AccessTokenInfo {
        AccessTokenInfo {
            token: self.token.clone(),
            expires_at: self.expires_at,
            scope: self.scope.map(String::from),
            audience: self.audience.map(String::from),
            token_type: self.token_type.clone(),
        }
    }
}

/// An owned ready access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// The access token.
    pub token: AccessToken,
    /// When it expires.
    pub expires_at: UnixTime,
    /// The granted scope, when known.
    pub scope: Option<String>,
    /// The audience, when known.
    pub audience: Option<String>,
    /// `Bearer` or `DPoP`.
    pub token_type: TokenType,
}

/// A request the host must send, with the id its response comes back with.
#[derive(Debug)]
#[must_use = "the request must be sent and its response handed back"]
pub struct OutgoingRequest {
    /// The id to pass to [`TokenManager::handle_response`].
    pub id: RequestId,
    /// What to send.
    pub request: HttpRequest,
}

/// The answer to [`TokenManager::get_access_token`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Action<'a> {
    /// The token is ready; no I/O needed.
    Ready(AccessTokenRef<'a>),
    /// Send this request and hand the response to
    /// [`TokenManager::handle_response`].
    Send(OutgoingRequest),
    /// A refresh is already in flight. When it ends (its owner handles the
    /// response, or the lease runs out), call
    /// [`TokenManager::get_access_token_after_wait`].
    Wait(RequestId),
    /// Only an interactive login can help (`missing_refresh_token`,
    /// `session_expired`, `reauthentication_required`, …).
    LoginRequired(Error),
    /// The refresh this caller waited on failed with this error.
    Failed(Error),
}

/// The answer to [`TokenManager::handle_response`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Completion<'a> {
    /// The exchange finished; here is the token.
    Ready(AccessTokenRef<'a>),
    /// Send this request again (same id): a retry the protocol asks for,
    /// at most once.
    Resend(OutgoingRequest),
    /// The exchange failed. What is stored did not change, except as the
    /// error says (`invalid_grant` marks the session for re-authentication;
    /// `missing_scopes` stored the token anyway).
    Failed(Error),
}

/// Why the session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeReason {
    /// New tokens were stored.
    TokensUpdated {
        /// The refresh token was rotated: the old one is spent, so the new
        /// one must be stored before anything else.
        refresh_token_rotated: bool,
    },
    /// The refresh token was rejected; the user must log in again.
    ReauthenticationRequired,
    /// Cache entries were evicted.
    Evicted,
    /// The session was logged out.
    LoggedOut,
    /// A resource server rejected an access token (`invalid_token`); it is
    /// marked expired so the next request refreshes it.
    TokenRejected,
}

/// What a resource server's response means for the token that was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ResourceVerdict {
    /// Nothing about the token: use the response as it is.
    Accepted,
    /// The server asked for a DPoP nonce and sent one: authorize again (a
    /// new proof carries it) and resend, once.
    RetryWithNonce,
    /// The server rejected the token (`invalid_token`). It is marked
    /// unusable: get a token again (it will be refreshed) and resend, once.
    TokenRejected,
}

/// Something the host must act on. Drain with [`TokenManager::poll_event`]
/// after every call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The session changed: persist [`TokenManager::session`]. A rotated
    /// refresh token is only safe once stored.
    SessionChanged {
        /// The session's generation after the change.
        generation: u64,
        /// What changed.
        reason: ChangeReason,
    },
}

/// Where a request's token lives.
#[derive(Debug, Clone, Copy)]
enum Location<'r, 's> {
    /// The main token set; `covers` tells whether its requested scope covers
    /// the wanted scope.
    Main { covers: bool },
    /// A per-audience entry (found or not).
    Entry {
        audience: &'r str,
        entry: Option<&'s AccessTokenSet>,
    },
}

/// The token lifecycle state machine. See the [module docs](self) for the
/// call order.
pub struct TokenManager {
    config: Config,
    session: Option<Session>,
    /// A `RefCell` so the cached path can run on a shared borrow while the
    /// refresh path registers a flight (the borrow checker cannot otherwise
    /// see that the two never overlap).
    flights: RefCell<Flights>,
    events: alloc::collections::VecDeque<Event>,
    #[allow(dead_code)] // drawn from by DPoP proofs and PKCE.
    entropy: Box<dyn Entropy + Send>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("config", &self.config)
            .field("session", &self.session)
            .field("flights", &self.flights)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A manager without a session. `entropy` supplies randomness (DPoP
    /// `jti`s, PKCE); the core draws none by itself.
    pub fn new(config: Config, entropy: impl Entropy + Send + 'static) -> Self {
        TokenManager {
            config,
            session: None,
            flights: RefCell::new(Flights::default()),
            events: alloc::collections::VecDeque::new(),
            entropy: Box::new(entropy),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current session, if any. Persist it when an
    /// [`Event::SessionChanged`] arrives.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Installs a session (after a login, or reloaded from a store). Flights
    /// in progress keep running; their results apply to this session.
    pub fn set_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// Removes the session and returns it.
    pub fn clear_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// Asks for an access token. See [`Action`].
    pub fn get_access_token(&mut self, request: &TokenRequest<'_>, now: UnixTime) -> Action<'_> {
        if self.prune_unrefreshable(now) {
            // Entries that expired and cannot be refreshed are dead weight
            // in the stored session.
            let session = self.session.as_mut().expect("pruned a session");
            let generation = session.bump_generation();
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::Evicted,
            });
        }
        // The rest runs on a shared borrow, so a ready token can be returned
        // straight from the one cache lookup.
        let this: &Self = self;
        let config = &this.config;
        let Some(session) = this.session.as_ref() else {
            return Action::LoginRequired(Error::MissingSession);
        };
        if session.is_logged_out() {
            return Action::LoginRequired(Error::LoggedOut);
        }
        if let Some(ceiling) = session.session_expires_at
            && now >= ceiling.saturating_sub(config.session_ceiling_leeway)
        {
            return Action::LoginRequired(Error::SessionExpired);
        }
        let (audience, wanted) = resolve(config, request);
        let location = locate(config, session, audience, &wanted);
        let reauth = session.is_reauthentication_required();
        let (has_access_token, expires_at) = match location {
            Location::Main { covers } => (covers, session.token_set.expires_at),
            Location::Entry { entry, .. } => match entry {
                Some(entry) => (true, entry.expires_at),
                None => (false, None),
            },
        };
        let freshness = Freshness {
            has_access_token,
            expires_at,
            has_refresh_token: session.token_set.refresh_token.is_some() && !reauth,
        };
        match freshness.decide(now, config.refresh_buffer, request.force_refresh) {
            Decision::Ready => Action::Ready(token_ref(session, location)),
            Decision::MissingRefreshToken {
                access_token_expired,
            } => Action::LoginRequired(if reauth {
                Error::ReauthenticationRequired
            } else {
                Error::MissingRefreshToken {
                    access_token_expired,
                }
            }),
            Decision::Refresh => {
                if let Some(id) = this.flights.borrow().refresh_in_flight() {
                    return Action::Wait(id);
                }
                let destination = match location {
                    Location::Main { .. } => Destination::Main,
                    Location::Entry { audience, .. } => Destination::Entry(String::from(audience)),
                };
                let target = match &destination {
                    Destination::Entry(audience) => Some(audience.clone()),
                    Destination::Main => request.audience.map(String::from),
                };
                Action::Send(this.start_refresh(
                    session,
                    destination,
                    audience.map(String::from),
                    target,
                    wanted.merged(),
                    request.scope.is_some(),
                    now,
                ))
            }
        }
    }

    /// Drops cache entries that expired at `now` when the session cannot
    /// refresh them. Returns whether any went.
    fn prune_unrefreshable(&mut self, now: UnixTime) -> bool {
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        let can_refresh =
            session.token_set.refresh_token.is_some() && !session.is_reauthentication_required();
        !can_refresh && session.cache.has_expired(now) && session.cache.remove_expired(now) > 0
    }

    /// Asks again after waiting on flight `waited`: gives the waiter the
    /// flight's error when it was for the same audience and failed, treats a
    /// forced refresh as done when that flight succeeded for the same
    /// audience, and otherwise asks as usual (a caller for another audience
    /// then gets its own turn, with the newest refresh token).
    pub fn get_access_token_after_wait(
        &mut self,
        request: &TokenRequest<'_>,
        waited: RequestId,
        now: UnixTime,
    ) -> Action<'_> {
        if self.flights.get_mut().is_active(waited) {
            return Action::Wait(waited);
        }
        let (audience, _) = resolve(&self.config, request);
        let mut request = *request;
        if let Some((flight_audience, result)) = self.flights.get_mut().outcome(waited)
            && flight_audience == audience
        {
            match result {
                Err(error) => return Action::Failed(error.clone()),
                Ok(()) => request.force_refresh = false,
            }
        }
        self.get_access_token(&request, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_refresh(
        &self,
        session: &Session,
        destination: Destination,
        audience: Option<String>,
        target: Option<String>,
        requested_scope: String,
        send_scope: bool,
        now: UnixTime,
    ) -> OutgoingRequest {
        let refresh_token = session
            .token_set
            .refresh_token
            .clone()
            .expect("refresh needs a refresh token");
        let request = RefreshRequest {
            token_endpoint: &self.config.token_endpoint,
            client_id: &self.config.client_id,
            client_auth: &self.config.client_auth,
            refresh_token: &refresh_token,
            scope: send_scope.then_some(requested_scope.as_str()),
            target: target.as_deref(),
            target_parameter: self.config.target_parameter,
        }
        .build();
        let mut flights = self.flights.borrow_mut();
        let id = flights.next_id();
        flights.start(Flight {
            id,
            destination,
            audience,
            requested_scope,
            refresh_token,
            sent_at: now,
            deadline: now.saturating_add(self.config.lease),
            attempt: 0,
            dpop: false,
        });
        OutgoingRequest { id, request }
    }

    /// Feeds the response to request `id`, whatever its status.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: HttpResponse,
        now: UnixTime,
    ) -> Completion<'_> {
        let Some((flight, abandoned)) = self.flights.get_mut().take(id) else {
            return Completion::Failed(Error::UnknownRequest);
        };
        let current_refresh_token = self
            .session
            .as_ref()
            .and_then(|s| s.token_set.refresh_token.as_ref());
        if abandoned && current_refresh_token != Some(&flight.refresh_token) {
            // The lease ran out and the session moved on: applying this
            // response could overwrite newer tokens.
            return Completion::Failed(Error::RequestAbandoned);
        }
        match self.apply_refresh(&flight, &response, now) {
            Ok(()) => {
                self.flights.get_mut().finish(&flight, Ok(()));
                let session = self.session.as_ref().expect("applied to a session");
                Completion::Ready(flight_token_ref(session, &flight))
            }
            Err(error) => {
                self.flights.get_mut().finish(&flight, Err(error.clone()));
                Completion::Failed(error)
            }
        }
    }

    /// Applies a refresh response to the session. On error nothing stored
    /// changes, except: `invalid_grant` marks the session for
    /// re-authentication, and a rotated refresh token is kept even when the
    /// access token cannot be used.
    fn apply_refresh(
        &mut self,
        flight: &Flight,
        response: &HttpResponse,
        now: UnixTime,
    ) -> Result<(), Error> {
        let limits = self.config.limits;
        let parsed = match TokenResponse::parse(response, &limits) {
            Ok(parsed) => parsed,
            // `invalid_grant`: the refresh token is dead. `invalid_target`:
            // servers such as node-oidc-provider consume the refresh token
            // before checking the resource, so sending it again would be a
            // replay that revokes the whole grant.
            Err(ResponseError::Server(server))
                if server.error == "invalid_grant" || server.error == "invalid_target" =>
            {
                let session = self.session.as_mut().ok_or(Error::MissingSession)?;
                if session.token_set.refresh_token.as_ref() == Some(&flight.refresh_token) {
                    session.set_reauthentication_required();
                    let generation = session.bump_generation();
                    self.events.push_back(Event::SessionChanged {
                        generation,
                        reason: ChangeReason::ReauthenticationRequired,
                    });
                }
                return Err(Error::FailedToRefreshToken(ResponseError::Server(server)));
            }
            Err(ResponseError::Server(server)) if server.error == "mfa_required" => {
                return Err(match parse_mfa_required(response, &limits) {
                    Some(mfa) => Error::MfaRequired(mfa),
                    None => Error::FailedToRefreshToken(ResponseError::Server(server)),
                });
            }
            Err(other) => return Err(Error::FailedToRefreshToken(other)),
        };
        let session = self.session.as_mut().ok_or(Error::MissingSession)?;

        // `sub` continuity: a refreshed ID token must name the same user.
        if let Some(new_id_token) = &parsed.id_token {
            let new_sub = jwt::decode_claims(new_id_token.secret())
                .ok()
                .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from));
            let Some(new_sub) = new_sub else {
                return Err(Error::FailedToRefreshToken(ResponseError::Malformed {
                    status: response.status,
                    reason: "the id_token is not a JWT with a sub claim",
                }));
            };
            let old_sub = session
                .token_set
                .id_token
                .as_ref()
                .and_then(|t| jwt::decode_claims(t.secret()).ok())
                .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from));
            if old_sub.is_some_and(|old| old != new_sub) {
                return Err(Error::SubjectMismatch);
            }
        }

        // The rotated refresh token is stored first: the old one is spent
        // whatever happens to the access token.
        let rotated = match parsed.refresh_token.clone() {
            Some(new) if session.token_set.refresh_token.as_ref() != Some(&new) => {
                session.token_set.refresh_token = Some(new);
                true
            }
            _ => false,
        };

        let token_type_error = if flight.dpop && parsed.token_type != TokenType::DPoP {
            Some(Error::TokenTypeMismatch {
                received: String::from(parsed.token_type.as_str()),
            })
        } else {
            None
        };
        let expires_at = parsed.expires_at(flight.sent_at, self.config.default_lifetime);
        let unusable = if let Some(error) = token_type_error {
            Some(error)
        } else if expires_at <= now {
            Some(Error::FailedToRefreshToken(ResponseError::Malformed {
                status: response.status,
                reason: "the access token expired before the response arrived",
            }))
        } else {
            None
        };
        if let Some(error) = unusable {
            if rotated {
                let generation = session.bump_generation();
                self.events.push_back(Event::SessionChanged {
                    generation,
                    reason: ChangeReason::TokensUpdated {
                        refresh_token_rotated: true,
                    },
                });
            }
            return Err(error);
        }

        // RFC 6749 §5.1: no `scope` means "as requested".
        let granted = parsed
            .scope
            .clone()
            .unwrap_or_else(|| flight.requested_scope.clone());
        let requested =
            (!flight.requested_scope.is_empty()).then(|| flight.requested_scope.clone());
        let mut evicted = 0;
        match &flight.destination {
            Destination::Main => {
                let set = &mut session.token_set;
                set.access_token = parsed.access_token.clone();
                set.expires_at = Some(expires_at);
                set.scope = Some(granted.clone());
                if requested.is_some() {
                    set.requested_scope = requested;
                }
                if set.audience.is_none() {
                    set.audience = flight.audience.clone();
                }
                set.token_type = Some(parsed.token_type.clone());
                if let Some(id_token) = &parsed.id_token {
                    set.id_token = Some(id_token.clone());
                }
            }
            Destination::Entry(audience) => {
                if let Some(id_token) = &parsed.id_token {
                    session.token_set.id_token = Some(id_token.clone());
                }
                session.cache.upsert(AccessTokenSet {
                    access_token: parsed.access_token.clone(),
                    scope: Some(granted.clone()),
                    requested_scope: Some(flight.requested_scope.clone()),
                    audience: audience.clone(),
                    expires_at: Some(expires_at),
                    token_type: Some(parsed.token_type.clone()),
                    extra: serde_json::Map::new(),
                });
                evicted = session.cache.evict_over(
                    self.config.max_cache_entries,
                    Some((audience, &flight.requested_scope)),
                );
            }
        }
        let generation = session.bump_generation();
        self.events.push_back(Event::SessionChanged {
            generation,
            reason: ChangeReason::TokensUpdated {
                refresh_token_rotated: rotated,
            },
        });
        if evicted > 0 {
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::Evicted,
            });
        }
        if self.config.strict_scopes {
            let missing = scope::missing(&flight.requested_scope, &granted);
            if !missing.is_empty() {
                return Err(Error::MissingScopes { missing });
            }
        }
        Ok(())
    }

    /// The headers that authorize a request to a resource server with
    /// `token`: `Authorization: Bearer …` for a Bearer token. A DPoP-bound
    /// token is never sent as Bearer.
    ///
    /// # Errors
    /// [`Error::Dpop`] when the token is DPoP-bound and no DPoP key is
    /// configured, or for a token type this crate cannot present.
    pub fn authorize(
        &mut self,
        method: &Method,
        url: &str,
        token: &AccessTokenInfo,
        now: UnixTime,
    ) -> Result<Headers, Error> {
        let _ = (method, url, now);
        let mut headers = Headers::new();
        match &token.token_type {
            TokenType::Bearer => {
                headers.append("Authorization", format!("Bearer {}", token.token.secret()));
                Ok(headers)
            }
            TokenType::DPoP => Err(Error::Dpop(String::from(
                "the token is DPoP-bound and no DPoP key is configured",
            ))),
            TokenType::Other(other) => Err(Error::Dpop(format!(
                "cannot present a token of type {other}"
            ))),
        }
    }

    /// Learns from a resource server's response to a request authorized
    /// with `token`. See [`ResourceVerdict`].
    pub fn handle_resource_response(
        &mut self,
        url: &str,
        token: &AccessTokenInfo,
        response: &HttpResponse,
        now: UnixTime,
    ) -> ResourceVerdict {
        let _ = (url, now);
        if response.status != 401 {
            return ResourceVerdict::Accepted;
        }
        let invalid_token = response
            .headers
            .get_all("www-authenticate")
            .any(|v| v.contains("invalid_token"));
        if !invalid_token {
            return ResourceVerdict::Accepted;
        }
        self.invalidate(token.token.secret());
        ResourceVerdict::TokenRejected
    }

    /// Marks every stored copy of `access_token` expired.
    fn invalidate(&mut self, access_token: &str) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut found = session.cache.invalidate(access_token);
        if session.token_set.access_token.secret() == access_token {
            session.token_set.expires_at = Some(UnixTime::EPOCH);
            found = true;
        }
        if found {
            let generation = session.bump_generation();
            self.events.push_back(Event::SessionChanged {
                generation,
                reason: ChangeReason::TokenRejected,
            });
        }
    }

    /// The host could not send request `id` or got no response. The flight
    /// is released and nothing stored changes; callers waiting for the same
    /// audience get [`Error::Transport`].
    pub fn handle_transport_error(&mut self, id: RequestId, _now: UnixTime) -> Error {
        match self.flights.get_mut().take(id) {
            Some((flight, _)) => {
                self.flights
                    .get_mut()
                    .finish(&flight, Err(Error::Transport));
                Error::Transport
            }
            None => Error::UnknownRequest,
        }
    }

    /// Gives up on request `id` (its caller went away). The flight is
    /// released without an outcome, so its waiters take their own turn.
    /// Returns whether such a request was in flight.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        self.flights.get_mut().release(id).is_some()
    }

    /// The next time [`TokenManager::handle_timeout`] must be called: the
    /// earliest lease deadline of a request in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.flights.borrow().next_deadline()
    }

    /// Releases flights whose lease ran out at `now`, so a caller that
    /// vanished cannot block the others. A response that still arrives for
    /// such a flight is applied only if the session has not moved on.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.flights.get_mut().expire(now);
    }

    /// The next event for the host. Drain after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether request `id` is in flight (its lease has not run out).
    #[must_use]
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.flights.borrow().is_active(id)
    }

    /// The number of requests in flight (at most one refresh).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.flights.borrow().active_count()
    }

    /// The refresh tokens spent by the requests in flight (for tests and
    /// fuzzing of the single-flight invariant).
    #[must_use]
    pub fn in_flight_refresh_tokens(&self) -> alloc::vec::Vec<crate::secret::RefreshToken> {
        self.flights
            .borrow()
            .active()
            .map(|f| f.refresh_token.clone())
            .collect()
    }
}

/// Resolves the audience and the wanted scope of a request (the SDK's
/// scope resolution with `mergeScopes`).
fn resolve<'r>(
    config: &'r Config,
    request: &TokenRequest<'r>,
) -> (Option<&'r str>, WantedScope<'r>) {
    let audience = request.audience.or(config.default_audience.as_deref());
    let asked = request.scope.unwrap_or("");
    let wanted = if request.merge_scopes.unwrap_or(config.merge_scopes) {
        WantedScope::new(config.scope_for(audience), asked)
    } else {
        WantedScope::new(asked, "")
    };
    (audience, wanted)
}

/// Finds where the token for `audience` + `wanted` lives (the SDK's
/// `#getTokenSetFromSession`).
fn locate<'a, 's>(
    config: &Config,
    session: &'s Session,
    audience: Option<&'a str>,
    wanted: &WantedScope<'_>,
) -> Location<'a, 's> {
    let main = &session.token_set;
    let main_audience = main
        .audience
        .as_deref()
        .or(config.default_audience.as_deref());
    let main_requested = main
        .requested_scope
        .as_deref()
        .unwrap_or_else(|| config.scope_for(main_audience));
    let covers = || wanted.is_empty() || wanted.covered_by(main_requested);
    match audience {
        // Without any audience there is nowhere else to keep a token.
        None => Location::Main { covers: covers() },
        Some(aud) if Some(aud) == main_audience && covers() => Location::Main { covers: true },
        Some(aud) => Location::Entry {
            audience: aud,
            entry: session.cache.find(aud, wanted),
        },
    }
}

fn flight_token_ref<'s>(session: &'s Session, flight: &Flight) -> AccessTokenRef<'s> {
    match &flight.destination {
        Destination::Main => token_ref(session, Location::Main { covers: true }),
        Destination::Entry(audience) => {
            let wanted = WantedScope::new(&flight.requested_scope, "");
            let entry = session.cache.find(audience, &wanted);
            token_ref(
                session,
                Location::Entry {
                    audience: "",
                    entry,
                },
            )
        }
    }
}

fn token_ref<'s>(session: &'s Session, location: Location<'_, 's>) -> AccessTokenRef<'s> {
    match location {
        Location::Entry {
            entry: Some(entry), ..
        } => entry_ref(entry),
        // A ready token is either the main set or a found entry; an entry
        // that vanished (it cannot: it was just stored) falls back to the
        // main set rather than panicking.
        _ => {
            let set = &session.token_set;
            AccessTokenRef {
                token: &set.access_token,
                expires_at: set.expires_at.unwrap_or(UnixTime::EPOCH),
                scope: set.scope.as_deref(),
                audience: set.audience.as_deref(),
                token_type: set.token_type.as_ref().unwrap_or(&BEARER),
            }
        }
    }
}

fn entry_ref(entry: &AccessTokenSet) -> AccessTokenRef<'_> {
    AccessTokenRef {
        token: &entry.access_token,
        expires_at: entry.expires_at.unwrap_or(UnixTime::EPOCH),
        scope: entry.scope.as_deref(),
        audience: Some(&entry.audience),
        token_type: entry.token_type.as_ref().unwrap_or(&BEARER),
    }
}
