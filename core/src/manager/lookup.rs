//! Where a request's token is, and what to do about it: the decision half
//! of [`TokenManager::get_access_token`].
//!
//! ```text
//! decide(request, now)            on a shared borrow; owns its answer
//!   ├─► Ready(TokenAt)            the main set, or the entry at this index
//!   ├─► LoginRequired(error)
//!   ├─► Wait(id) / Reload{until}  another refresh is on its way
//!   └─► Refresh(RefreshPlan)      refresh from here (owned: the refresh
//!                                 token, the destination, the scope)
//! then, on `&mut`: count the cache hit (`found`), and either borrow the
//! token at `TokenAt` (no second search) or start the refresh.
//! ```

use alloc::boxed::Box;
use alloc::string::String;

use super::refresh::RefreshPlan;
use super::{AccessTokenRef, TokenManager, TokenRequest};
use crate::cache::{EntryIndex, WantedScope};
use crate::config::Config;
use crate::error::Error;
use crate::flight::{Destination, RequestId};
use crate::session::Session;
use crate::time::UnixTime;
use crate::token::{AccessTokenSet, Decision, Freshness, TokenType};
use crate::trace::decision;

static BEARER: TokenType = TokenType::Bearer;

/// Where a ready token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenAt {
    /// The session's main token set.
    Main,
    /// A per-audience entry of the session's cache.
    Entry(EntryIndex),
    /// An entry of the machine (client credentials) cache.
    Machine(EntryIndex),
    /// An entry of the session's `connectionTokenSets` (Token Vault).
    #[cfg(feature = "exchange")]
    Connection(usize),
}

/// What [`TokenManager::get_access_token`] does next.
#[derive(Debug)]
pub(super) enum Next {
    Ready(TokenAt),
    LoginRequired(Error),
    Wait(RequestId),
    Reload {
        until: UnixTime,
    },
    /// Boxed: the ready path returns this enum on every cached call, and
    /// a refresh allocates anyway.
    Refresh(Box<RefreshPlan>),
    /// (Peeking only.) Not ready; the full ask decides what follows.
    NotReady,
    /// A cached token that cannot be handed out (`strict_scopes`: its
    /// granted scope misses some of the wanted one).
    Failed(Error),
}

/// Whether a decision is acted on or only peeked at.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The full ask: every outcome planned and announced.
    Act,
    /// The cached path alone: only a ready token counts.
    Peek,
}

/// A decision, and the cache entry it found (a hit counts as use even when
/// the entry is stale and only a refresh can use it).
#[derive(Debug)]
pub(super) struct Decided {
    pub(super) found: Option<EntryIndex>,
    pub(super) next: Next,
}

impl Decided {
    /// A decision made before any lookup.
    fn before_lookup(next: Next) -> Self {
        Decided { found: None, next }
    }
}

/// Only a login can help: the refresh token is dead (`reauth`) or missing.
fn login_required(reauth: bool, access_token_expired: bool) -> Next {
    let error = if reauth {
        Error::ReauthenticationRequired
    } else {
        Error::MissingRefreshToken {
            access_token_expired,
        }
    };
    decision!(info, event = "login_required", code = error.code());
    Next::LoginRequired(error)
}

/// Where a request's token lives.
#[derive(Debug, Clone, Copy)]
enum Location<'r> {
    /// The main token set; `covers` tells whether its requested scope covers
    /// the wanted scope.
    Main { covers: bool },
    /// A per-audience entry (found or not).
    Entry {
        audience: &'r str,
        found: Option<EntryIndex>,
    },
}

impl TokenManager {
    /// Decides what a token request needs, changing nothing.
    pub(super) fn decide(&self, request: &TokenRequest<'_>, now: UnixTime) -> Decided {
        self.decide_as(request, now, Mode::Act)
    }

    /// [`TokenManager::decide`]; with [`Mode::Peek`], anything but a ready
    /// token stops at [`Next::NotReady`] before it is announced or planned.
    fn decide_as(&self, request: &TokenRequest<'_>, now: UnixTime, mode: Mode) -> Decided {
        let config = &self.config;
        let Some(session) = self.state.session.as_ref() else {
            return Decided::before_lookup(Next::LoginRequired(Error::MissingSession));
        };
        if session.is_logged_out() {
            return Decided::before_lookup(Next::LoginRequired(Error::LoggedOut));
        }
        if let Some(ceiling) = session.session_expires_at
            && now >= ceiling.saturating_sub(config.session_ceiling_leeway)
        {
            return Decided::before_lookup(Next::LoginRequired(Error::SessionExpired));
        }
        let (audience, wanted) = resolve(config, request);
        let location = locate(config, session, audience, &wanted, now);
        let found = match location {
            Location::Entry { found, .. } => found,
            Location::Main { .. } => None,
        };
        let decided = |next| Decided { found, next };
        let reauth = session.is_reauthentication_required();
        let peek = matches!(mode, Mode::Peek);
        if peek && request.force_refresh {
            return decided(Next::NotReady);
        }
        if reauth && request.force_refresh {
            // A forced refresh (usually after a 401) cannot be answered with
            // the cached token when the refresh token is known dead.
            decision!(
                info,
                event = "login_required",
                code = "reauthentication_required"
            );
            return decided(Next::LoginRequired(Error::ReauthenticationRequired));
        }
        let entry = found.and_then(|at| session.cache.at(at));
        let (has_access_token, expires_at, lifetime) = match location {
            Location::Main { covers } => (
                covers,
                session.token_set.expires_at,
                session.token_set.expires_in,
            ),
            Location::Entry { .. } => match entry {
                Some(entry) => (true, entry.expires_at, entry.expires_in),
                None => (false, None, None),
            },
        };
        let freshness = Freshness {
            has_access_token,
            expires_at,
            has_refresh_token: session.token_set.refresh_token.is_some() && !reauth,
            lifetime: lifetime.map(core::time::Duration::from_secs),
        };
        let refresh_token =
            match freshness.decide(now, config.refresh_buffer, request.force_refresh) {
                Decision::Ready => {
                    // Strict scopes: the token stored after a refresh that
                    // granted less is not handed out on a later call either.
                    if config.strict_scopes {
                        let granted = match location {
                            Location::Main { .. } => session.token_set.scope.as_deref(),
                            Location::Entry { .. } => entry.and_then(|e| e.scope.as_deref()),
                        };
                        // No `scope` means "as requested" (RFC 6749 §5.1).
                        // Checked without allocating; the list only on failure.
                        if let Some(granted) = granted.filter(|g| !wanted.covered_by(g)) {
                            if peek {
                                return decided(Next::NotReady);
                            }
                            let missing = crate::scope::missing(&wanted.merged(), granted);
                            return decided(Next::Failed(Error::MissingScopes { missing }));
                        }
                    }
                    decision!(
                        debug,
                        event = "cache_hit",
                        audience = audience.unwrap_or("")
                    );
                    // (`peek` stops below for anything else.)
                    return decided(Next::Ready(match found {
                        Some(at) => TokenAt::Entry(at),
                        // A ready token is either the main set or a found entry.
                        None => TokenAt::Main,
                    }));
                }
                _ if peek => return decided(Next::NotReady),
                Decision::MissingRefreshToken {
                    access_token_expired,
                } => return decided(login_required(reauth, access_token_expired)),
                Decision::Refresh => match &session.token_set.refresh_token {
                    Some(refresh_token) => refresh_token,
                    // Unreachable: a refresh is only decided with a refresh token.
                    None => return decided(login_required(reauth, expires_at.is_some())),
                },
            };
        if let Some(id) = self.state.flights.refresh_in_flight() {
            decision!(debug, event = "wait", request_id = id.as_u64());
            return decided(Next::Wait(id));
        }
        if let Some(until) = self.foreign_claim(now) {
            decision!(debug, event = "reload", until = until.as_secs());
            return decided(Next::Reload { until });
        }
        decision!(
            info,
            event = "refresh_started",
            reason = refresh_reason(&freshness, request.force_refresh, now),
            audience = audience.unwrap_or(""),
        );
        let destination = match location {
            Location::Main { .. } => Destination::Main,
            Location::Entry { audience, .. } => Destination::Entry(
                String::from(audience),
                entry.map(|e| String::from(e.key_scope())),
            ),
        };
        // The main token is refreshed for its own API, named on the wire: an
        // RFC 8707 server answers a refresh that names no resource with a
        // token for none (an opaque userinfo token).
        let target = match &destination {
            Destination::Entry(audience, _) => Some(audience.clone()),
            Destination::Main => request
                .audience
                .or(session.token_set.audience.as_deref())
                .or(config.default_audience.as_deref())
                .map(String::from),
        };
        decided(Next::Refresh(Box::new(RefreshPlan {
            destination,
            audience: audience.map(String::from),
            requested_scope: wanted.merged(),
            scope_on_the_wire: request.scope.is_some(),
            target,
            refresh_token: refresh_token.clone(),
        })))
    }

    /// The token at `at`, borrowed (`None` only if it is not there, which
    /// the callers rule out: they just found or stored it there).
    pub(super) fn token_at(&self, at: TokenAt) -> Option<AccessTokenRef<'_>> {
        match at {
            TokenAt::Machine(at) => self.machine_cache.at(at).map(entry_ref),
            at => self.state.token_at(at),
        }
    }

    /// Where a ready token for `request` is, when the cached path answers
    /// alone: the token is fresh and nothing changes but the entry's use
    /// (counted). `None` when anything else is due — a refresh, a wait, a
    /// login, expired entries to prune: ask
    /// [`TokenManager::get_access_token`] then. Changes nothing in that
    /// case and announces nothing, so the full ask that follows decides
    /// (and reports) as if this had not run.
    pub(crate) fn ready_at(
        &mut self,
        request: &TokenRequest<'_>,
        now: UnixTime,
    ) -> Option<TokenAt> {
        let session = self.state.session.as_ref()?;
        let can_refresh =
            session.token_set.refresh_token.is_some() && !session.is_reauthentication_required();
        if !can_refresh && session.cache.has_expired(now) {
            return None;
        }
        let decided = self.decide_as(request, now, Mode::Peek);
        let Next::Ready(at) = decided.next else {
            return None;
        };
        if let (Some(found), Some(session)) = (decided.found, self.state.session.as_mut()) {
            session.cache.touch(found);
        }
        Some(at)
    }
}

/// The main token set as a ready token.
pub(super) fn main_ref(set: &crate::token::TokenSet) -> AccessTokenRef<'_> {
    AccessTokenRef {
        token: &set.access_token,
        expires_at: set.expires_at.unwrap_or(UnixTime::EPOCH),
        scope: set.scope.as_deref(),
        audience: set.audience.as_deref(),
        token_type: set.token_type.as_ref().unwrap_or(&BEARER),
    }
}

/// Why a refresh is due, for the `refresh_started` event.
#[cfg(feature = "tracing")]
fn refresh_reason(freshness: &Freshness, forced: bool, now: UnixTime) -> &'static str {
    match freshness.expires_at {
        _ if !freshness.has_access_token => "no_token",
        _ if forced => "forced",
        None => "no_expiry",
        Some(expires_at) if expires_at <= now => "expired",
        Some(_) => "within_buffer",
    }
}

/// Resolves the audience and the wanted scope of a request (the SDK's
/// scope resolution with `mergeScopes`).
pub(super) fn resolve<'r>(
    config: &'r Config,
    request: &TokenRequest<'r>,
) -> (Option<&'r str>, WantedScope<'r>) {
    let audience = request.audience.or(config.default_audience.as_deref());
    let asked = request.scope.unwrap_or("");
    let wanted = if request.merge_scopes.unwrap_or(config.merge_scopes) {
        if config.default_scope_normalized {
            WantedScope::with_merged_first(config.scope_for(audience), asked)
        } else {
            WantedScope::new(config.scope_for(audience), asked)
        }
    } else {
        WantedScope::new(asked, "")
    };
    (audience, wanted)
}

/// Finds where the token for `audience` + `wanted` lives (the SDK's
/// `#getTokenSetFromSession`).
fn locate<'a>(
    config: &Config,
    session: &Session,
    audience: Option<&'a str>,
    wanted: &WantedScope<'_>,
    now: UnixTime,
) -> Location<'a> {
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
            found: session.cache.locate(aud, wanted, now),
        },
    }
}

pub(super) fn entry_ref(entry: &AccessTokenSet) -> AccessTokenRef<'_> {
    AccessTokenRef {
        token: &entry.access_token,
        expires_at: entry.expires_at.unwrap_or(UnixTime::EPOCH),
        scope: entry.scope.as_deref(),
        audience: Some(&entry.audience),
        token_type: entry.token_type.as_ref().unwrap_or(&BEARER),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::{Config, TokenRequest, scope};

    /// The wanted scope's merge is the merge of the default scope and the
    /// scope asked for, whether the default scope was in merged form (then
    /// copied, not merged) or not.
    #[test]
    fn the_wanted_scope_merges_as_the_default_scope_and_the_ask_do() {
        for default in [
            scope::DEFAULT_SCOPE,
            "read",
            "",
            "a  b",
            " a b",
            "a b ",
            "a b a",
            "openid openid",
        ] {
            let config = Config::builder("https://as.example/token", "client")
                .scope(default)
                .build()
                .unwrap();
            for asked in [None, Some(""), Some("b c"), Some("  ")] {
                let mut request = TokenRequest::new();
                if let Some(asked) = asked {
                    request = request.scope(asked);
                }
                let (_, wanted) = resolve(&config, &request);
                assert_eq!(
                    wanted.merged(),
                    scope::merge(default, asked.unwrap_or("")),
                    "{default:?} + {asked:?}"
                );
            }
        }
    }
}
