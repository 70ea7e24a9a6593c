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
//!                                 │        ├─► Completion::Resend(request)   DPoP nonce: send again, same id
//!                                 │        ├─► Completion::Sign(input)       deferred signer: sign first
//!                                 │        └─► Completion::Failed(error)
//!                                 │      or handle_transport_error(id, now) / cancel(id)
//!                                 ├─► Action::Sign(input)         deferred DPoP signer:
//!                                 │      handle_signature(id, signature, now) ─► the request to send
//!                                 ├─► Action::Wait(id)            another caller's refresh is in
//!                                 │      flight: when it ends, call
//!                                 │      get_access_token_after_wait(request, id, now)
//!                                 ├─► Action::Reload { until }    (shared stores) another process
//!                                 │      refreshes: reload the session from the store, ask again
//!                                 ├─► Action::LoginRequired(error)
//!                                 └─► Action::Failed(error)       the flight waited on failed, or
//!                                        (strict scopes) the cached token misses scopes
//!
//! exchange_code(transaction, callback, now) ─► Dispatch   login; its response starts a session
//! get_client_credentials_token(request, now) ─► Action    machine tokens, no session
//! exchange_token(request, now) ─► Dispatch                RFC 8693, the result not stored
//! get_connection_token(request, now) ─► Action            Token Vault: a connection's token,
//!                                                         cached in `connectionTokenSets`
//! logout(now) ─► Option<Dispatch>                         marks the session, revokes its refresh token
//! authorize(method, url, token, now) ─► Authorization     then handle_resource_response(…)
//!
//! after every call:  while let Some(event) = poll_event() { persist the session … }
//!                    while let Some(revocation) = poll_revocation(now) { send it … }
//! timers:            poll_timeout() ─► handle_timeout(now) when it is reached
//! ```
//!
//! # Session states
//!
//! ```text
//!   exchange_code ─► handle_response          invalid_grant / invalid_target
//!   (none) ───────────────────────► Active ─────────────────────────────► ReauthenticationRequired
//!      ▲     set_session()           │  ▲ │ refresh ok (tokens, rotation)           │
//!      │                             │  └─┘                                          │
//!      │                             └── logout() ──► LoggedOut ──────────────────────┤
//!      └──────────── clear_session() / set_session() / a new login ◄──────────────────┘
//! ```
//!
//! Invariants kept here: an access token expired at `now` is never returned
//! as ready; at most one refresh is in flight (one session has one refresh
//! token, shared by every audience); a rotated refresh token replaces the
//! old one at once and raises an event, and nothing but a successful
//! response changes the stored tokens.
//!
//! # Decide, then act
//!
//! Every entry point takes `&mut self`. It first decides on a shared
//! borrow, into an owned decision (where the ready token is, or a
//! `RefreshPlan` saying what to refresh and why),
//! then acts on it: a ready token is borrowed again from where the decision
//! found it (no second search), a refresh registers its flight and, with a
//! shared store, writes and announces its claim in the same call. No
//! interior mutability, and nothing is left for a later call to write.
//! Every session change goes through one helper (`Events::session_changed`:
//! the generation goes up, an event per reason is queued).
//!
//! # Files
//!
//! One flow per file, its start beside its apply: `refresh` (a due token;
//! `lookup` decides it), `login` (code exchange), `machine` (client
//! credentials), `exchange` (RFC 8693), `connection` (Token Vault), `revocation` (logout and proven
//! tokens), `resource` (API requests), `dpop` (proofs, deferred signatures,
//! the nonce retry), `claim` (shared-store claims). This file keeps the
//! types, the flights' launch, and the dispatch of responses by flight kind.

mod claim;
#[cfg(feature = "exchange")]
mod connection;
mod dpop;
#[cfg(feature = "exchange")]
mod exchange;
#[cfg(feature = "login")]
mod login;
pub(crate) mod lookup;
mod machine;
mod refresh;
mod resource;
mod revocation;
#[cfg(feature = "login")]
mod signature;
mod state;

#[cfg(feature = "exchange")]
pub use connection::{
    ConnectionRequest, GRANT_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN,
    REQUESTED_TOKEN_TYPE_FEDERATED_CONNECTION_ACCESS_TOKEN, SUBJECT_TYPE_REFRESH_TOKEN,
};
pub use dpop::SignatureRequest;
pub use resource::{Authorization, PendingAuthorization, ResourceRetries, ResourceVerdict};
pub(crate) use state::SessionState;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::cache::TokenCache;
use crate::config::Config;
use crate::entropy::Entropy;
use crate::error::{Error, ResponseError};
use crate::flight::{Flight, FlightKind, RequestId};
use crate::grant::ClientAuth;
use crate::grant::client_auth::ClientAssertionKey;
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::{AccessToken, RefreshToken};
use crate::session::Session;
use crate::time::UnixTime;
use crate::token::response::ParsedResponse;
use crate::token::{TokenResponse, TokenType};
use crate::trace::{decision, span};

use lookup::Next;

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

/// A request ready to send, or one waiting for a deferred signature.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Dispatch {
    /// Send this request.
    Send(OutgoingRequest),
    /// Sign this first ([`TokenManager::handle_signature`] then gives the
    /// request).
    Sign(SignatureRequest),
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
    /// (Deferred DPoP signers.) Sign this, then
    /// [`TokenManager::handle_signature`] gives the request to send.
    Sign(SignatureRequest),
    /// A refresh is already in flight. When it ends (its owner handles the
    /// response, or the lease runs out), call
    /// [`TokenManager::get_access_token_after_wait`].
    Wait(RequestId),
    /// Only an interactive login can help (`missing_refresh_token`,
    /// `session_expired`, `reauthentication_required`, …).
    LoginRequired(Error),
    /// The refresh this caller waited on failed with this error; or, with
    /// strict scopes, the cached token lacks some of the wanted scopes
    /// (`missing_scopes`).
    Failed(Error),
    /// (Shared stores.) Another manager is refreshing this session: reload
    /// the session from the store (it will carry the new tokens) and ask
    /// again, at the latest at `until`, when its claim runs out.
    Reload {
        /// When the other manager's claim runs out.
        until: UnixTime,
    },
}

/// The answer to [`TokenManager::handle_response`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Completion<'a> {
    /// The exchange finished; here is the token.
    Ready(AccessTokenRef<'a>),
    /// Send this request (same id) and hand its response back: a retry
    /// the protocol asks for (a DPoP nonce, at most once), or the issuer's
    /// JWKS, fetched to check the signature of the ID token in the answer
    /// just handed in (the answer waits on the flight meanwhile).
    Resend(OutgoingRequest),
    /// (Deferred DPoP signers.) The retry's proof needs a signature first.
    Sign(SignatureRequest),
    /// The exchange failed. What is stored did not change, except as the
    /// error says (`invalid_grant` marks the session for re-authentication;
    /// `missing_scopes` stored the token anyway).
    Failed(Error),
    /// A token exchange (RFC 8693) finished; its result is not stored.
    Exchanged(alloc::boxed::Box<TokenResponse>),
    /// The refresh token was revoked (logout finished).
    Revoked,
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
    /// A login finished: a new session.
    LoggedIn,
    /// (Shared stores.) This manager claimed the refresh token: save with
    /// compare-and-swap before sending the request.
    RefreshClaimed,
    /// (Shared stores.) The claim was released without new tokens.
    RefreshReleased,
    /// A resource server rejected an access token (`invalid_token`); it is
    /// marked expired so the next request refreshes it.
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

/// The event queue, and the one way a session change is raised.
#[derive(Debug, Default)]
struct Events(VecDeque<Event>);

impl Events {
    /// Raises one change of `session`: its generation goes up by one, and
    /// an [`Event::SessionChanged`] with the new generation is queued for
    /// each of `reasons` (a refresh that also evicted says both). Returns
    /// the new generation.
    fn session_changed(&mut self, session: &mut Session, reasons: &[ChangeReason]) -> u64 {
        let generation = session.bump_generation();
        for &reason in reasons {
            self.0
                .push_back(Event::SessionChanged { generation, reason });
        }
        generation
    }
}

/// The token lifecycle state machine. See the [crate docs](crate) for the
/// call order.
///
/// Every entry point takes `&mut self` and first decides (on a shared
/// borrow, into an owned decision), then acts: no interior mutability, and
/// nothing is left for a later call to write.
pub struct TokenManager {
    config: Config,
    /// The session this manager serves and what belongs to it alone
    /// (boxed: an application serving many sessions mounts each in turn,
    /// see [`TokenManager::swap_state`]).
    state: Box<SessionState>,
    /// Machine-to-machine tokens (client credentials), by audience and scope.
    machine_cache: TokenCache,
    /// This manager's name in refresh claims (shared stores).
    instance: String,
    /// The host's randomness (DPoP `jti`s, client assertions, session ids).
    entropy: Box<dyn Entropy + Send>,
    /// DPoP, when enabled.
    dpop: Option<dpop::DpopState>,
    /// The issuer's keys, when ID token signatures are checked (shared by
    /// every session a driver mounts).
    #[cfg(feature = "login")]
    jwks: Option<crate::jwks::JwksCache>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("config", &self.config)
            .field("session", &self.state.session)
            .field("flights", &self.state.flights)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A manager without a session. `entropy` supplies randomness (DPoP
    /// `jti`s, PKCE); the core draws none by itself.
    pub fn new(config: Config, entropy: impl Entropy + Send + 'static) -> Self {
        let mut entropy = entropy;
        let instance = TokenManager::instance_name(&mut entropy);
        TokenManager {
            instance,
            #[cfg(feature = "login")]
            jwks: TokenManager::jwks_cache_for(&config),
            config,
            state: Box::default(),
            machine_cache: TokenCache::new(),
            entropy: Box::new(entropy),
            dpop: None,
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
        self.state.session.as_ref()
    }

    /// Installs a session (after a login, or reloaded from a store). Flights
    /// in progress keep running; their results apply to this session.
    pub fn set_session(&mut self, session: Session) {
        self.state.session = Some(session);
    }

    /// Gives the session the generation one above both its own and
    /// `found` (a store's), announcing nothing: the keeper saves it next.
    /// Returns the new generation.
    pub(crate) fn renumber_session(&mut self, found: Option<u64>) -> u64 {
        let Some(session) = self.state.session.as_mut() else {
            return 0;
        };
        let base = session.generation().max(found.unwrap_or(0));
        session.set_generation(base);
        session.bump_generation()
    }

    /// Gives `session` an id from this manager's entropy if it has none.
    pub fn assign_session_id(&mut self, session: &mut Session) {
        session.ensure_id(&mut *self.entropy);
    }

    /// Swaps the per-session part of this manager with `other` (a pointer
    /// swap): an application serving many sessions mounts one session's
    /// state for a call and parks it again after (see
    /// [`Sessions`](crate::driver::Sessions)).
    pub(crate) fn swap_state(&mut self, other: &mut Box<SessionState>) {
        core::mem::swap(&mut self.state, other);
    }

    /// Removes the session and returns it.
    pub fn clear_session(&mut self) -> Option<Session> {
        self.state.session.take()
    }

    /// Raises a change of the session, if there is one (see
    /// [`Events::session_changed`]).
    fn session_changed(&mut self, reasons: &[ChangeReason]) -> Option<u64> {
        let session = self.state.session.as_mut()?;
        Some(self.state.events.session_changed(session, reasons))
    }

    /// Asks for an access token. See [`Action`].
    ///
    /// Decides first (where the token is, or why a refresh is due: an owned
    /// decision), then acts: counts the cache hit, builds the ready token
    /// from where the decision found it, or starts the refresh.
    pub fn get_access_token(&mut self, request: &TokenRequest<'_>, now: UnixTime) -> Action<'_> {
        if self.prune_unrefreshable(now) {
            // Entries that expired and cannot be refreshed are dead weight
            // in the stored session.
            self.session_changed(&[ChangeReason::Evicted]);
        }
        let decided = self.decide(request, now);
        if let (Some(found), Some(session)) = (decided.found, self.state.session.as_mut()) {
            session.cache.touch(found);
        }
        match decided.next {
            Next::Ready(at) => match self.token_at(at) {
                Some(token) => Action::Ready(token),
                // Unreachable: a ready token was just found where it is.
                None => Action::LoginRequired(Error::MissingSession),
            },
            Next::LoginRequired(error) => Action::LoginRequired(error),
            Next::Wait(id) => Action::Wait(id),
            Next::Reload { until } => Action::Reload { until },
            Next::Refresh(plan) => self.start_refresh(*plan, now),
            Next::Failed(error) => Action::Failed(error),
            // Unreachable: only a peek decides this.
            Next::NotReady => Action::LoginRequired(Error::MissingSession),
        }
    }

    /// Drops cache entries that expired at `now` when the session cannot
    /// refresh them. Returns whether any went.
    fn prune_unrefreshable(&mut self, now: UnixTime) -> bool {
        let Some(session) = self.state.session.as_mut() else {
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
        if self.state.flights.is_active(waited) {
            return Action::Wait(waited);
        }
        let (audience, _) = lookup::resolve(&self.config, request);
        let mut request = *request;
        if let Some((flight_audience, result)) = self.state.flights.outcome(waited)
            && flight_audience == audience
        {
            decision!(
                debug,
                event = "joined",
                request_id = waited.as_u64(),
                ok = result.is_ok()
            );
            match result {
                Err(error) => return Action::Failed(error.clone()),
                Ok(()) => request.force_refresh = false,
            }
        }
        self.get_access_token(&request, now)
    }

    /// Whether the token of a grant response can be used: RFC 9449 §5 (a
    /// token asked for with DPoP must come back as DPoP), and not already
    /// expired at `now` (its lifetime counts from the send time). Gives the
    /// expiry. `wrap` names the failure (`failed_to_refresh_token`, …).
    fn usable_expiry(
        &self,
        flight: &Flight,
        parsed: &TokenResponse,
        status: u16,
        now: UnixTime,
        wrap: fn(ResponseError) -> Error,
    ) -> Result<UnixTime, Error> {
        if flight.dpop && parsed.token_type != TokenType::DPoP {
            return Err(Error::TokenTypeMismatch {
                received: String::from(parsed.token_type.as_str()),
            });
        }
        // A JWT access token must be for the API asked for: a server that
        // ignored the target parameter answers with a token for another one.
        if let Some(audience) = flight.token_audience()
            && crate::jwt::access_token_names_audience(parsed.access_token.secret(), audience)
                == Some(false)
        {
            return Err(Error::AccessTokenAudienceMismatch {
                requested: String::from(audience),
            });
        }
        let expires_at = parsed.expires_at(flight.sent_at, self.config.default_lifetime);
        if expires_at <= now {
            return Err(wrap(ResponseError::Malformed {
                status,
                reason: "the access token expired before the response arrived",
            }));
        }
        Ok(expires_at)
    }

    /// The error for a grant response that could not be parsed:
    /// `mfa_required` becomes [`Error::MfaRequired`] with its details, the
    /// rest is wrapped by `wrap`.
    #[cold]
    #[inline(never)]
    fn grant_error(
        &self,
        error: ResponseError,
        answer: &ParsedResponse<'_>,
        wrap: fn(ResponseError) -> Error,
    ) -> Error {
        if let ResponseError::Server(server) = &error
            && server.error == "mfa_required"
            && let Some(mfa) = answer.mfa_required()
        {
            return Error::MfaRequired(mfa);
        }
        wrap(error)
    }

    /// Registers a flight for `request` and hands the request out.
    /// With DPoP on, token requests carry a proof (revocation does not
    /// need one).
    fn launch(
        &mut self,
        kind: FlightKind,
        audience: Option<String>,
        requested_scope: String,
        request: HttpRequest,
        now: UnixTime,
    ) -> Result<Dispatch, Error> {
        let assertion = match &self.config.client_auth {
            ClientAuth::PrivateKeyJwt(key) => Some((key.clone(), self.config.client_id.clone())),
            _ => None,
        };
        self.launch_as(kind, audience, requested_scope, request, assertion, now)
    }

    /// [`TokenManager::launch`] for a request built for a given client
    /// (`assertion`: a `private_key_jwt` client and its id).
    fn launch_as(
        &mut self,
        kind: FlightKind,
        audience: Option<String>,
        requested_scope: String,
        request: HttpRequest,
        assertion: Option<(ClientAssertionKey, String)>,
        now: UnixTime,
    ) -> Result<Dispatch, Error> {
        let dpop = self.dpop.is_some() && !matches!(kind, FlightKind::Revocation { .. });
        // Only with DPoP can a response ask for the request again.
        // The rarely used parts are boxed: flights are moved around whole.
        let kept = self.dpop.is_some().then(|| Box::new(request.clone()));
        let (prepared, sent_nonce) =
            self.prepare_token_request(request, assertion.as_ref(), dpop, now)?;
        let assertion = assertion.map(Box::new);
        let id = self.state.flights.next_id();
        let (dispatch, pending_proof) = match prepared {
            dpop::Prepared::Ready(ready) => {
                (Dispatch::Send(OutgoingRequest { id, request: ready }), None)
            }
            dpop::Prepared::Deferred(unsigned, with_assertion) => (
                Dispatch::Sign(SignatureRequest {
                    id,
                    signing_input: String::from(unsigned.signing_input()),
                }),
                Some(Box::new((unsigned, with_assertion))),
            ),
        };
        self.state.flights.start(Flight {
            id,
            kind,
            audience,
            requested_scope,
            sent_at: now,
            deadline: now.saturating_add(self.config.lease),
            attempt: 0,
            dpop,
            request: kept,
            assertion,
            pending_proof,
            sent_nonce,
            id_token_keys: None,
        });
        Ok(dispatch)
    }

    /// Feeds the response to request `id`, whatever its status.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        response: HttpResponse,
        now: UnixTime,
    ) -> Completion<'_> {
        span!("response", request_id = id.as_u64());
        // An ID token's signature is checked (its keys fetched first, under
        // the same id) before anything else reads the answer.
        #[cfg(feature = "login")]
        let mut response = response;
        #[cfg(feature = "login")]
        let check = match self.id_token_answer(id, &mut response, now) {
            signature::Answer::Plain => None,
            signature::Answer::Check { fetched } => Some(fetched),
        };
        // Parsed once: the signature check, the nonce retry, the errors and
        // the tokens read it (the ID token checked is the one applied).
        let mut answer = ParsedResponse::parse(&response, &self.config.limits);
        #[cfg(feature = "login")]
        if let Some(fetched) = check
            && let Some(request) = self.check_id_token(id, &answer, fetched, now)
        {
            drop(answer);
            self.park(id, response);
            return Completion::Resend(OutgoingRequest { id, request });
        }
        let Some((flight, abandoned)) = self.state.flights.take(id) else {
            // Forgotten (or never ours): a refresh token it proves is not
            // dropped silently.
            self.revoke_rotated(&mut answer);
            return Completion::Failed(Error::UnknownRequest);
        };
        if self.nonce_retry_due(&flight, &answer, abandoned, now) {
            return self.retry_with_nonce(flight, now);
        }
        // The claim goes with the flight; when nothing else is stored, its
        // release is announced on its own.
        // An abandoned flight's claim was released at its deadline; the
        // claim now held belongs to the refresh that replaced it.
        let claimed = flight.refresh_token().is_some() && !abandoned && self.release_claim();
        let generation = self.state.session.as_ref().map(Session::generation);
        if let Some(spent) = flight.refresh_token() {
            let session = self.state.session.as_ref();
            let current = session.and_then(|s| s.token_set.refresh_token.as_ref());
            if current != Some(spent) || session.is_some_and(Session::is_logged_out) {
                // The session moved on (a new login, a logout, or a lease
                // that ran out): applying this could overwrite newer tokens,
                // or bring a logged-out session back. A refresh token the
                // answer rotated in is live all the same: revoke it.
                decision!(warn, event = "abandoned_answer", request_id = id.as_u64());
                self.revoke_rotated(&mut answer);
                if claimed {
                    self.announce_release();
                }
                return Completion::Failed(Error::RequestAbandoned);
            }
        }
        let result = match &flight.kind {
            FlightKind::Refresh { .. } => self.apply_refresh(&flight, &mut answer, now),
            #[cfg(feature = "login")]
            FlightKind::CodeExchange { .. } => self.apply_login(&flight, &mut answer, now),
            FlightKind::ClientCredentials => self.apply_machine_token(&flight, &mut answer, now),
            #[cfg(feature = "exchange")]
            FlightKind::Connection(_) => self.apply_connection_token(&flight, &mut answer, now),
            #[cfg(feature = "exchange")]
            FlightKind::TokenExchange => {
                let result = self.apply_exchange(&mut answer);
                self.state
                    .flights
                    .finish(&flight, result.as_ref().map(|_| ()).map_err(Clone::clone));
                return match result {
                    Ok(token) => Completion::Exchanged(Box::new(token)),
                    Err(error) => Completion::Failed(error),
                };
            }
            FlightKind::Revocation { refresh_token } => {
                let result = self.apply_revocation(refresh_token, &answer);
                self.state.flights.finish(&flight, result.clone());
                return match result {
                    Ok(()) => Completion::Revoked,
                    Err(error) => Completion::Failed(error),
                };
            }
        };
        self.state
            .flights
            .finish(&flight, result.as_ref().map(|_| ()).map_err(Clone::clone));
        if claimed && self.state.session.as_ref().map(Session::generation) == generation {
            self.announce_release();
        }
        decision!(
            debug,
            event = "request_finished",
            request_id = id.as_u64(),
            code = result.as_ref().err().map_or("ok", Error::code)
        );
        match result {
            Ok(at) => match self.token_at(at) {
                Some(token) => Completion::Ready(token),
                // Unreachable: the write paths just stored it there.
                None => Completion::Failed(Error::UnknownRequest),
            },
            Err(error) => Completion::Failed(error),
        }
    }

    /// The host could not send request `id` or got no response. The flight
    /// is released and nothing stored changes; callers waiting for the same
    /// audience get [`Error::Transport`].
    pub fn handle_transport_error(&mut self, id: RequestId, now: UnixTime) -> Error {
        #[cfg(not(feature = "login"))]
        let _ = now;
        span!("transport_error", request_id = id.as_u64());
        decision!(
            info,
            event = "request_failed",
            request_id = id.as_u64(),
            code = "transport_error"
        );
        // A JWKS fetch failed, but the token endpoint had answered: the
        // answer (and the refresh token it rotated in) is applied, refused
        // for its unchecked ID token, never dropped.
        #[cfg(feature = "login")]
        if let Some(parked) = self.unpark(id, true) {
            let _ = self.handle_response(id, parked, now);
            return Error::Transport;
        }
        match self.state.flights.take(id) {
            Some((flight, abandoned)) => {
                if flight.refresh_token().is_some() && !abandoned {
                    self.release_claim_and_announce();
                }
                self.state.flights.finish(&flight, Err(Error::Transport));
                Error::Transport
            }
            None => Error::UnknownRequest,
        }
    }

    /// Gives up on request `id` (its caller went away). The flight is
    /// released without an outcome, so its waiters take their own turn.
    /// Returns whether such a request was in flight.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        // Given up while its JWKS was fetched: the token endpoint had
        // answered, so the answer is applied (refused for its unchecked ID
        // token, its rotated refresh token kept, or revoked when the
        // session moved on) rather than dropped with the flight.
        #[cfg(feature = "login")]
        if let Some(parked) = self.unpark(id, false) {
            let now = self
                .state
                .flights
                .get_mut(id)
                .map_or(UnixTime::EPOCH, |f| f.sent_at);
            let _ = self.handle_response(id, parked, now);
            return true;
        }
        match self.state.flights.release(id) {
            Some(flight) => {
                if flight.refresh_token().is_some() {
                    self.release_claim_and_announce();
                }
                true
            }
            None => false,
        }
    }

    /// The next time [`TokenManager::handle_timeout`] must be called: the
    /// earliest lease deadline of a request in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.state.flights.next_deadline()
    }

    /// Releases flights whose lease ran out at `now`, so a caller that
    /// vanished cannot block the others. A response that still arrives for
    /// such a flight is applied only if the session has not moved on.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        if self.state.flights.expire(now) > 0 && self.state.flights.refresh_in_flight().is_none() {
            self.release_claim_and_announce();
        }
    }

    /// The next event for the host. Drain after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.state.events.0.pop_front()
    }

    /// Whether request `id` is in flight (its lease has not run out).
    #[must_use]
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.state.flights.is_active(id)
    }

    /// Whether request `id` is a refresh in flight.
    #[must_use]
    pub fn is_refresh(&self, id: RequestId) -> bool {
        self.state
            .flights
            .active()
            .any(|f| f.id == id && f.refresh_token().is_some())
    }

    /// The number of requests in flight (at most one refresh).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.state.flights.active_count()
    }

    /// The refresh tokens spent by the requests in flight (for tests and
    /// fuzzing of the single-flight invariant).
    #[must_use]
    pub fn in_flight_refresh_tokens(&self) -> Vec<RefreshToken> {
        self.state
            .flights
            .active()
            .filter_map(|f| f.refresh_token().cloned())
            .collect()
    }
}
