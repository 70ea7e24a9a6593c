//! Requests in flight: ids, leases, and the single-flight rule.
//!
//! At most one refresh is in flight per refresh token, across every
//! audience: with rotation, a second concurrent refresh would spend a
//! consumed token and the server would revoke the whole grant. Every other
//! caller waits on the flight's [`RequestId`]. Each flight holds a lease; a
//! flight whose lease ran out is released and remembered for a while, so a
//! late response can still be applied when nothing else changed meanwhile.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::dpop::UnsignedProof;
use crate::error::{Error, IdTokenError};
use crate::grant::client_auth::ClientAssertionKey;
use crate::http::{HttpRequest, HttpResponse};
use crate::secret::RefreshToken;
use crate::time::UnixTime;

/// Identifies one request issued by the manager; the response is handed
/// back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The raw number (unique within one manager).
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl core::fmt::Display for RequestId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where the result of a refresh goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The session's main token set.
    Main,
    /// The per-audience entry for this audience; the refreshed token
    /// replaces the entry found for the request (its key scope), if any.
    Entry(String, Option<String>),
}

/// What a flight is for. `Debug` shows no nonce (nor refresh token).
#[derive(Clone)]
pub(crate) enum FlightKind {
    /// A `refresh_token` grant spending this refresh token.
    Refresh {
        destination: Destination,
        refresh_token: RefreshToken,
        /// The API named on the wire (`audience` / `resource`): what a JWT
        /// access token in the answer must be for. The main token of a
        /// session is refreshed for its own API even when the request
        /// named none.
        target: Option<String>,
    },
    /// The `authorization_code` exchange of a login; the ID token must carry
    /// this nonce.
    #[cfg(feature = "login")]
    CodeExchange { nonce: String },
    /// A `client_credentials` grant (machine to machine).
    ClientCredentials,
    /// An RFC 8693 token exchange; the result is handed back, not stored.
    #[cfg(feature = "exchange")]
    TokenExchange,
    /// A Token Vault exchange of the session's refresh token (`subject`)
    /// for the access token of `connection` (with `login_hint`).
    #[cfg(feature = "exchange")]
    Connection(Box<ConnectionFlight>),
    /// The revocation of a refresh token: the session's at logout, or one
    /// that an answer proved and that could not be stored.
    Revocation { refresh_token: RefreshToken },
}

impl core::fmt::Debug for FlightKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlightKind::Refresh {
                destination,
                refresh_token,
                target,
            } => f
                .debug_struct("Refresh")
                .field("destination", destination)
                .field("target", target)
                // `RefreshToken` redacts itself.
                .field("refresh_token", refresh_token)
                .finish(),
            // The nonce binds the login's ID token: it must not leak
            // before the ID token is checked.
            #[cfg(feature = "login")]
            FlightKind::CodeExchange { nonce } => f
                .debug_struct("CodeExchange")
                .field("nonce", &format_args!("<redacted {} bytes>", nonce.len()))
                .finish(),
            FlightKind::ClientCredentials => f.write_str("ClientCredentials"),
            #[cfg(feature = "exchange")]
            FlightKind::TokenExchange => f.write_str("TokenExchange"),
            #[cfg(feature = "exchange")]
            FlightKind::Connection(flight) => f
                .debug_struct("Connection")
                .field("connection", &flight.connection)
                .field("login_hint", &flight.login_hint)
                .finish_non_exhaustive(),
            FlightKind::Revocation { .. } => f.write_str("Revocation"),
        }
    }
}

/// What a Token Vault exchange is for (boxed in [`FlightKind`]: flights
/// are moved around whole).
#[cfg(feature = "exchange")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionFlight {
    /// The refresh token sent as the subject token: the answer is stored
    /// only while the session still holds it.
    pub subject: RefreshToken,
    pub connection: String,
    pub login_hint: Option<String>,
}

#[cfg(feature = "exchange")]
impl ConnectionFlight {
    /// Whether this exchange is for `connection` with `login_hint`.
    pub fn is_for(&self, connection: &str, login_hint: Option<&str>) -> bool {
        self.connection == connection && self.login_hint.as_deref() == login_hint
    }
}

/// A request in flight.
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    pub id: RequestId,
    pub kind: FlightKind,
    /// The audience the request resolved to (for waiters' matching).
    pub audience: Option<String>,
    /// The merged scope asked for (recorded as `requestedScope`).
    pub requested_scope: String,
    /// When the request was built (the base of `expiresAt`).
    pub sent_at: UnixTime,
    /// When the lease runs out.
    pub deadline: UnixTime,
    /// 0 for the first try, 1 after a `use_dpop_nonce` retry.
    pub attempt: u8,
    /// Whether the request asked for a DPoP-bound token.
    pub dpop: bool,
    /// The request as built, before any DPoP proof, kept when DPoP is on
    /// (its URL keys the token endpoint's nonce; a retry re-signs it).
    pub request: Option<Box<HttpRequest>>,
    /// The `private_key_jwt` client the request authenticates as: a fresh
    /// assertion is added on every try.
    pub assertion: Option<Box<(ClientAssertionKey, String)>>,
    /// A proof waiting for a deferred signer's signature, with the request
    /// (client assertion included) it goes on.
    pub pending_proof: Option<Box<(UnsignedProof, HttpRequest)>>,
    /// The DPoP nonce the request's proof carried (a `use_dpop_nonce`
    /// answer earns its retry only when it offers another).
    pub sent_nonce: Option<Box<str>>,
    /// (Login and refresh with a JWKS configured.) Where the signature
    /// check of the ID token in the answer stands.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub id_token_keys: Option<Box<IdTokenKeys>>,
}

/// The signature check of the ID token a token response carries (the
/// manager's `signature` flow).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "login"), allow(dead_code))]
pub(crate) enum IdTokenKeys {
    /// The token response, parked while the issuer's JWKS is fetched: the
    /// next response handed back with this flight's id is the JWKS.
    Fetching(HttpResponse),
    /// The verdict on the signature, for the apply step.
    Checked(Result<(), IdTokenError>),
}

impl Flight {
    /// The API a JWT access token in the answer must be for: the one named
    /// on the wire for a refresh, the audience asked for otherwise.
    pub fn token_audience(&self) -> Option<&str> {
        match &self.kind {
            FlightKind::Refresh { target, .. } => target.as_deref(),
            _ => self.audience.as_deref(),
        }
    }

    /// The refresh token a refresh spends.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        match &self.kind {
            FlightKind::Refresh { refresh_token, .. } => Some(refresh_token),
            _ => None,
        }
    }
}

/// How a finished flight ended, kept for the callers that waited on it.
#[derive(Debug, Clone)]
struct Outcome {
    id: RequestId,
    audience: Option<String>,
    /// A Token Vault exchange's connection and login hint.
    #[cfg(feature = "exchange")]
    connection: Option<Box<(String, Option<String>)>>,
    result: Result<(), Error>,
}

const KEEP_OUTCOMES: usize = 32;
const KEEP_ABANDONED: usize = 8;

/// The table of flights.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    next_id: u64,
    active: Vec<Flight>,
    outcomes: VecDeque<Outcome>,
    abandoned: VecDeque<Flight>,
}

impl Flights {
    pub fn next_id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    /// The refresh in flight, if any (there is at most one).
    pub fn refresh_in_flight(&self) -> Option<RequestId> {
        self.active
            .iter()
            .find(|f| matches!(f.kind, FlightKind::Refresh { .. }))
            .map(|f| f.id)
    }

    /// The client-credentials request in flight for this audience and
    /// scope, if any.
    pub fn machine_in_flight(&self, audience: Option<&str>, scope: &str) -> Option<RequestId> {
        self.active
            .iter()
            .find(|f| {
                matches!(f.kind, FlightKind::ClientCredentials)
                    && f.audience.as_deref() == audience
                    && crate::scope::same_set(&f.requested_scope, scope)
            })
            .map(|f| f.id)
    }

    /// The Token Vault exchange in flight for `connection` with
    /// `login_hint`, if any.
    #[cfg(feature = "exchange")]
    pub fn connection_in_flight(
        &self,
        connection: &str,
        login_hint: Option<&str>,
    ) -> Option<RequestId> {
        self.active
            .iter()
            .find(|f| matches!(&f.kind, FlightKind::Connection(c) if c.is_for(connection, login_hint)))
            .map(|f| f.id)
    }

    /// How flight `id` ended when it was a Token Vault exchange for
    /// `connection` with `login_hint`.
    #[cfg(feature = "exchange")]
    pub fn connection_outcome(
        &self,
        id: RequestId,
        connection: &str,
        login_hint: Option<&str>,
    ) -> Option<&Result<(), Error>> {
        self.outcomes
            .iter()
            .find(|o| o.id == id)
            .filter(|o| {
                o.connection
                    .as_deref()
                    .is_some_and(|(c, h)| c == connection && h.as_deref() == login_hint)
            })
            .map(|o| &o.result)
    }

    pub fn is_active(&self, id: RequestId) -> bool {
        self.active.iter().any(|f| f.id == id)
    }

    pub fn start(&mut self, flight: Flight) {
        self.active.push(flight);
    }

    /// Removes and returns the flight `id`, active or recently abandoned.
    /// The flag tells whether it had been abandoned.
    pub fn take(&mut self, id: RequestId) -> Option<(Flight, bool)> {
        if let Some(i) = self.active.iter().position(|f| f.id == id) {
            return Some((self.active.remove(i), false));
        }
        let i = self.abandoned.iter().position(|f| f.id == id)?;
        self.abandoned.remove(i).map(|f| (f, true))
    }

    /// Records how a flight ended, for its waiters.
    pub fn finish(&mut self, flight: &Flight, result: Result<(), Error>) {
        if self.outcomes.len() == KEEP_OUTCOMES {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(Outcome {
            id: flight.id,
            audience: flight.audience.clone(),
            #[cfg(feature = "exchange")]
            connection: match &flight.kind {
                FlightKind::Connection(c) => {
                    Some(Box::new((c.connection.clone(), c.login_hint.clone())))
                }
                _ => None,
            },
            result,
        });
    }

    /// How flight `id` ended, when known, as (audience, result).
    pub fn outcome(&self, id: RequestId) -> Option<(Option<&str>, &Result<(), Error>)> {
        self.outcomes
            .iter()
            .find(|o| o.id == id)
            .map(|o| (o.audience.as_deref(), &o.result))
    }

    /// Releases a flight without an outcome (cancelled, or the caller gave
    /// up); its waiters then take their own turn.
    pub fn release(&mut self, id: RequestId) -> Option<Flight> {
        let i = self.active.iter().position(|f| f.id == id)?;
        Some(self.active.remove(i))
    }

    /// Moves flights whose lease ran out at `now` to the abandoned list.
    pub fn expire(&mut self, now: UnixTime) -> usize {
        let mut expired = 0;
        while let Some(i) = self.active.iter().position(|f| f.deadline <= now) {
            let flight = self.active.remove(i);
            if self.abandoned.len() == KEEP_ABANDONED {
                // A refresh's late answer may carry the only live refresh
                // token: other flights make room first.
                let victim = self
                    .abandoned
                    .iter()
                    .position(|f| f.refresh_token().is_none())
                    .unwrap_or(0);
                self.abandoned.remove(victim);
            }
            self.abandoned.push_back(flight);
            expired += 1;
        }
        expired
    }

    /// The earliest lease deadline.
    pub fn next_deadline(&self) -> Option<UnixTime> {
        self.active.iter().map(|f| f.deadline).min()
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    pub fn active(&self) -> impl Iterator<Item = &Flight> {
        self.active.iter()
    }

    /// Whether a revocation of `refresh_token` is in flight.
    pub fn revoking(&self, refresh_token: &RefreshToken) -> bool {
        self.active.iter().any(|f| {
            matches!(&f.kind, FlightKind::Revocation { refresh_token: t } if t == refresh_token)
        })
    }

    /// The proof of flight `id` waiting for a signature, with the request
    /// it goes on.
    pub fn take_pending_proof(&mut self, id: RequestId) -> Option<(UnsignedProof, HttpRequest)> {
        let flight = self.active.iter_mut().find(|f| f.id == id)?;
        flight.pending_proof.take().map(|pending| *pending)
    }

    /// The flight `id`, active or recently abandoned, to update in place.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub fn get_mut(&mut self, id: RequestId) -> Option<&mut Flight> {
        match self.active.iter().position(|f| f.id == id) {
            Some(i) => self.active.get_mut(i),
            None => self.abandoned.iter_mut().find(|f| f.id == id),
        }
    }

    /// Re-registers a flight (a `use_dpop_nonce` retry keeps its id).
    pub fn restart(&mut self, flight: Flight) {
        self.active.push(flight);
    }
}
