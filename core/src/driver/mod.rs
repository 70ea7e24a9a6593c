//! The driver: a [`TokenManager`] and the persistence of its session, as
//! one sans-IO state machine that owns the whole round trip — ask, send,
//! complete (DPoP nonce resends, deferred signatures, transport errors,
//! cancel), persist, wake waiters, revoke orphaned refresh tokens. The
//! store is an effect like HTTP: the driver *describes* each store
//! operation ([`StoreOp`]: load, generation, compare-and-swap save, clear,
//! floor — the refresh claim lives in the session and is written by the
//! compare-and-swap save) and the host runs it on its own runtime, blocking
//! or awaited, then hands the answer back. An adapter only sends requests,
//! runs store operations, signs when asked and waits.
//!
//! # Call order
//!
//! ```text
//! lock; let mut call = Call::token(Ask::User(&request)); unlock
//! loop {
//!     lock; let effect = driver.poll(&mut call, now); unlock
//!     match effect {
//!         Effect::Send { request, deadline } => send it (give up before deadline),
//!             lock; driver.handle_response(&mut call, response, now)  (or handle_transport_error)
//!         Effect::Store(op)   => op.run(store) / op.run_async(store).await,
//!             lock; driver.handle_store(&mut call, answer)
//!         Effect::Sign(req)   => sign req.signing_input,
//!             lock; driver.handle_signature(&mut call, Some(&signature), now)
//!         Effect::Wait(wait)  => wait until woken or wait.deadline
//!         Effect::Done(result) => return result
//!     }
//!     after every handle_*: wake every waiter
//! }
//! (a call dropped before Done: lock; driver.abandon(&mut call))
//! ```
//!
//! No lock is held while a request, a store operation or a signature is
//! under way. One store job (a save and its conflict handling) runs at a
//! time per session: a call that needs the store while another call's job
//! runs waits ([`WaitReason::Store`]), except a call whose token is cached
//! — it never waits for the store (what it changed is saved after).
//!
//! # States of a token call
//!
//! ```text
//! Ask ──► persist ──► Ready / Failed ──────────────────────────► Revoking ─► Done
//!  ▲         │  └───► Wait (another caller's flight) ──┐            ▲
//!  │         │  └───► Reload (another process) ──┐     │            │
//!  ├─────────┼────────────────────────────────────┴─────┘            │
//!  │         └───► Own: claim saved? store moved on? ─lost─► cancel, persist ─► Ask
//!  │                    │ no
//!  │                    ▼
//!  │               Send ─► response ─► Ready/Failed ─► persist ────────┘
//!  │                 ▲        └──► Resend/Sign: store moved on? ─yes─► cancel ─► Finish(abandoned)
//!  │                 └────────────────────────────────────no──┘
//! ```
//!
//! # Conflicts
//!
//! On a compare-and-swap conflict the stored session is adopted, unless
//! the unsaved change here must win, as this table says (`same` = the
//! stored session is this session: the same id, see [`Session::id`](crate::Session::id)):
//!
//! | unsaved change here        | stored: same session        | stored: another session, or none |
//! |----------------------------|-----------------------------|----------------------------------|
//! | a login                    | wins                        | wins                             |
//! | a logout                   | wins (revoking what it rotated) | adopted (ours was replaced)  |
//! | a rotated refresh token    | wins, unless logged out     | adopted, ours revoked            |
//! | `invalid_grant` verdict    | wins if it holds the same token | adopted                      |
//! | anything else              | adopted                     | adopted                          |
//!
//! A change that wins is written one generation above both, so a stored
//! generation only grows; a login goes above the highest generation the
//! store ever held under the key ([`SessionStore::floor`](crate::SessionStore::floor)).
//!
//! # Keys
//!
//! A driver serves the session stored under one [`SessionKey`]: a
//! session's [`Session::id`](crate::Session::id) when an application keeps many, or the slot
//! of a handle that serves one ([`DEFAULT_KEY`](crate::store::DEFAULT_KEY)).

use alloc::string::String;

use crate::error::Error;
use crate::flight::RequestId;
#[cfg(feature = "exchange")]
use crate::manager::ConnectionRequest;
use crate::manager::{AccessTokenInfo, Action, Dispatch, TokenManager, TokenRequest};
use crate::store::SessionKey;
use crate::time::UnixTime;

mod call;
mod effect;
mod persist;
mod sessions;
mod table;

pub use crate::keeper::Keeper;
pub use call::Call;
pub use effect::{Effect, Failure, Finished, StoreAnswer, StoreOp, StoreValue, Wait, WaitReason};
pub(crate) use persist::{Job, JobStep, JobValue, MovedOnStage, Pending};
pub use sessions::Sessions;

/// An install job's first stage.
pub(crate) fn persist_install_start() -> persist::InstallStage {
    persist::InstallStage::Floor
}

/// A manager and the persistence of its session (see the
/// [module docs](self)). Hosts keep one behind their lock per session, or
/// one [`Sessions`] for many.
#[derive(Debug)]
pub struct Driver {
    /// The token manager.
    pub manager: TokenManager,
    /// How the mounted session stands with the store.
    persistence: Persistence,
}

/// How one session stands with the store: the driver's per-session part
/// (with the manager's [`SessionState`](crate::manager::SessionState), what
/// [`Sessions`] keeps per session).
#[derive(Debug)]
pub(crate) struct Persistence {
    /// The key the session is stored under.
    key: String,
    /// The generation the store holds, as far as this driver knows.
    saved: Option<u64>,
    /// The highest generation this driver has seen stored.
    floor: u64,
    /// What the change not saved yet (the last save failed) holds.
    pending: Pending,
    /// Changes drained while another call's job held the store.
    deferred: Pending,
    /// A call runs a store job.
    store_busy: bool,
    /// Load (then install this session) before the next call: a host that
    /// could not await the store when it made the driver.
    startup: Option<Option<alloc::boxed::Box<crate::session::Session>>>,
    /// A call runs the startup (its load, then its install): the others
    /// wait until it is done.
    starting: bool,
    /// No store: the manager's memory is the only copy, and every store
    /// operation is answered here ([`Driver::memory_only`]).
    memory_only: bool,
}

impl Persistence {
    /// Nothing known of the session stored under `key` yet.
    pub(crate) fn new(key: &SessionKey) -> Self {
        Persistence {
            key: key.into(),
            saved: None,
            floor: 0,
            pending: Pending::default(),
            deferred: Pending::default(),
            store_busy: false,
            startup: None,
            starting: false,
            memory_only: false,
        }
    }

    /// No store behind this session ([`Driver::memory_only`]).
    pub(crate) fn in_memory(mut self) -> Self {
        self.memory_only = true;
        self
    }

    /// Whether no store is behind this session.
    pub(crate) fn is_memory_only(&self) -> bool {
        self.memory_only
    }

    /// Loads the session before the first call.
    pub(crate) fn load_first(mut self) -> Self {
        self.startup = Some(None);
        self
    }

    /// Whether the session is loaded (not waiting for its first load).
    pub(crate) fn is_loaded(&self) -> bool {
        self.startup.is_none()
    }

    /// Whether nothing is owed to the store: no unsaved change, no store
    /// job under way.
    pub(crate) fn is_settled(&self) -> bool {
        !self.pending.any && !self.deferred.any && !self.store_busy
    }
}

impl Driver {
    /// A driver for the session stored under `key`; nothing is loaded yet
    /// (run [`Call::load`], or [`Call::install`] a session).
    pub fn new(manager: TokenManager, key: &SessionKey) -> Self {
        Driver {
            manager,
            persistence: Persistence::new(key),
        }
    }

    /// Swaps the per-session persistence with `other` (see [`Sessions`]).
    pub(crate) fn swap_persistence(&mut self, other: &mut Persistence) {
        core::mem::swap(&mut self.persistence, other);
    }

    /// A driver that loads its session (then installs `session`, if
    /// given) when the first call runs: for hosts that cannot await the
    /// store where they make the driver.
    pub fn starting(
        manager: TokenManager,
        key: &SessionKey,
        session: Option<crate::session::Session>,
    ) -> Self {
        let mut driver = Driver::new(manager, key);
        driver.persistence.startup = Some(session.map(alloc::boxed::Box::new));
        driver
    }

    /// Keeps the session in this driver's memory only: no store at all.
    /// Every store operation is answered here, as an
    /// [`UnsharedStore`](crate::UnsharedStore) would answer it (nothing to
    /// load, the generation last saved, every save accepted), and a save
    /// copies nothing. For a host whose session no other writer shares and
    /// that never needs it read back — the adapters' handles when the
    /// application plugs in no store. (For many sessions, see
    /// [`Sessions::memory_only`].)
    ///
    /// A driver made [`starting`](Driver::starting) installs its starting
    /// session here and now (there is nothing to load).
    #[must_use]
    pub fn memory_only(mut self) -> Self {
        self.persistence.memory_only = true;
        if let Some(startup) = self.persistence.startup.take() {
            self.persistence.starting = false;
            if let Some(session) = startup {
                let step = self.advance(Job::Install(session, persist_install_start()), None);
                // In memory every answer is `Ok`: the install cannot fail.
                let _ = self.settle_in_memory(step);
            }
        }
        self
    }

    /// The key the session is stored under.
    #[must_use]
    pub fn key(&self) -> &SessionKey {
        &self.persistence.key
    }

    /// The generation the store holds, as far as this driver knows.
    #[must_use]
    pub fn saved_generation(&self) -> Option<u64> {
        self.persistence.saved
    }

    /// Asks the core once, after expiring leases that ran out.
    pub(crate) fn ask(
        &mut self,
        ask: Ask<'_, '_>,
        waited: Option<RequestId>,
        now: UnixTime,
    ) -> Step {
        if self.manager.poll_timeout().is_some_and(|t| t <= now) {
            self.manager.handle_timeout(now);
        }
        let action = match (ask, waited) {
            (Ask::User(request), Some(id)) => {
                self.manager.get_access_token_after_wait(request, id, now)
            }
            (Ask::User(request), None) => self.manager.get_access_token(request, now),
            (Ask::Machine(request), _) => self.manager.get_client_credentials_token(request, now),
            #[cfg(feature = "exchange")]
            (Ask::Connection(request), Some(id)) => self
                .manager
                .get_connection_token_after_wait(request, id, now),
            #[cfg(feature = "exchange")]
            (Ask::Connection(request), None) => self.manager.get_connection_token(request, now),
        };
        match action {
            Action::Ready(token) => Step::Ready(token.to_owned()),
            Action::Send(out) => Step::Own(Dispatch::Send(out)),
            Action::Sign(request) => Step::Own(Dispatch::Sign(request)),
            Action::Wait(id) => Step::Wait(id, self.manager.poll_timeout()),
            Action::Reload { until } => Step::Reload(until),
            Action::LoginRequired(e) | Action::Failed(e) => Step::Failed(e),
        }
    }
}

/// What [`Keeper::persist`](crate::keeper::Keeper::persist) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Nothing to save.
    Nothing,
    /// Saved with compare-and-swap.
    Stored,
    /// Another writer saved first; its session was adopted.
    Adopted,
}

/// What one question to the core led to, owned (no borrow of the manager).
///
/// Exhaustive on purpose: a new step must break the hosts' build, not
/// reach them at run time.
#[derive(Debug)]
#[must_use]
pub enum Step {
    /// The token.
    Ready(AccessTokenInfo),
    /// Own this flight: send the request (after signing its DPoP proof,
    /// with a deferred signer).
    Own(Dispatch),
    /// Wait for flight `id`, until it ends or the lease deadline (then
    /// [`TokenManager::handle_timeout`] is due).
    Wait(RequestId, Option<UnixTime>),
    /// Another process is refreshing (shared stores): reload the stored
    /// session until its tokens arrive, at the latest until its claim ends.
    Reload(UnixTime),
    /// The answer is this error.
    Failed(Error),
}

/// Which token a caller asks for.
#[derive(Debug, Clone, Copy)]
pub enum Ask<'r, 'a> {
    /// The session's (a user's) token: refreshed with the refresh token.
    User(&'r TokenRequest<'a>),
    /// A client-credentials token (no session).
    Machine(&'r TokenRequest<'a>),
    /// A federated connection's token (Token Vault): exchanged with the
    /// session's refresh token, cached in the session.
    #[cfg(feature = "exchange")]
    Connection(&'r ConnectionRequest<'a>),
}

/// The flight a dispatch belongs to.
#[must_use]
pub fn dispatch_id(dispatch: &Dispatch) -> Option<RequestId> {
    match dispatch {
        Dispatch::Send(out) => Some(out.id),
        Dispatch::Sign(request) => Some(request.id),
    }
}
