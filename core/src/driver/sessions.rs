//! Many sessions in one process ([`Sessions`]): one application-wide
//! driver serves any number of sessions by id. What is shared exists once —
//! the configuration and discovered endpoints, the DPoP key and the token
//! endpoint's nonces, the machine-token cache, the entropy, the instance
//! name in refresh claims — on one [`TokenManager`]. What belongs to one
//! session — the session, its flights (single flight per session), its
//! events, its revocation queue, how it stands with the store — is kept per
//! id, and mounted on that manager for each step of a call on it (two
//! pointer swaps and a small copy; nothing allocated).
//!
//! At most `capacity` sessions are kept in memory, the least recently used
//! going first, and only idle ones (no call under way, no flight, nothing
//! unsaved or owed); the others are loaded from the store on demand,
//! through the same [`StoreOp`](super::StoreOp)s keyed by id. With no store
//! ([`Sessions::memory_only`]) memory holds the only copy: a session never
//! leaves it, and only the slots of ids that hold none do.
//!
//! # Call order
//!
//! ```text
//! cached_token(id, request, now) ─► Some(token)   in memory and fresh: no I/O,
//!                                                 nothing allocated
//!                                ─► None           run a call:
//! let mut call = Call::token(Ask::User(&request))
//! loop {                                (lock only around each step)
//!     match sessions.poll(id, &mut call, now) {
//!         Effect::Send/Store/Sign … ─► run it, then sessions.handle_*(id, &mut call, …)
//!         Effect::Wait(wait)        ─► wait (wake every waiter after each handle_*)
//!         Effect::Done(result)      ─► return result
//!     }
//! }
//! (dropped before Done: sessions.abandon(id, &mut call))
//!
//! login:  let (id, dispatch) = exchange_code(transaction, callback, now)?;
//!         run Call::flight(dispatch) on id          the new session is stored under id
//! logout: hold(id); run Call::load() on id; with_session(id, |m| m.logout(now));
//!         run Call::flight / Call::persist on id; release(id)
//! machine tokens: Call::token(Ask::Machine(..)) on any id (one app-wide slot)
//! ```
//!
//! # A session's slot
//!
//! ```text
//!  (absent) ──first call──► Unloaded ──its first poll loads──► Loaded ◄──┐
//!     ▲                                                          │      │ calls,
//!     └──── evicted: least recently used, idle (no caller, ──────┘──────┘ cached hits
//!           no flight, nothing unsaved) while over capacity
//! ```

use alloc::boxed::Box;
use alloc::string::String;

use super::effect::{Effect, StoreAnswer};
use super::table::Table;
use super::{Call, Driver, Persistence};
use crate::dpop::EcdsaSignature;
#[cfg(feature = "login")]
use crate::error::Error;
use crate::http::HttpResponse;
#[cfg(feature = "login")]
use crate::login::LoginTransaction;
#[cfg(feature = "login")]
use crate::manager::Dispatch;
use crate::manager::{AccessTokenRef, SessionState, TokenManager, TokenRequest};
use crate::session::Session;
use crate::time::UnixTime;

/// One session's part: the manager's and the driver's per-session state,
/// and how many calls are under way on it.
#[derive(Debug)]
struct Slot {
    state: Box<SessionState>,
    persistence: Persistence,
    callers: usize,
}

impl Slot {
    fn new(key: &str, load_first: bool, memory_only: bool) -> Self {
        let mut persistence = Persistence::new(key);
        if memory_only {
            persistence = persistence.in_memory();
        }
        Slot {
            state: Box::default(),
            persistence: if load_first {
                persistence.load_first()
            } else {
                persistence
            },
            callers: 0,
        }
    }

    /// Whether the slot may leave memory: nothing under way or owed, and,
    /// without a store, no session (memory is its only copy).
    fn may_go(&self) -> bool {
        self.callers == 0
            && self.persistence.is_settled()
            && self.state.is_idle()
            && !(self.persistence.is_memory_only() && self.state.session().is_some())
    }
}

/// Where a step runs: a session's slot, or the machine-token slot.
#[derive(Debug, Clone, Copy)]
enum Place {
    Session(usize),
    Machine,
}

/// Many sessions served by one driver (see the [`driver`](crate::driver) docs and the module source).
/// Hosts keep one behind their lock for the whole application.
#[derive(Debug)]
pub struct Sessions {
    /// The shared manager, with the slot of the step under way mounted.
    driver: Driver,
    table: Table<Slot>,
    /// Client-credentials calls: machine tokens belong to no session.
    machine: Slot,
    capacity: usize,
}

impl Sessions {
    /// Serves sessions with `manager`'s configuration, DPoP key and
    /// entropy, keeping at most `capacity` (at least one) in memory. The
    /// manager's own session, if any, is not served.
    pub fn new(manager: TokenManager, capacity: usize) -> Self {
        let mut manager = manager;
        let seed = manager.draw_seed();
        Sessions {
            driver: Driver::new(manager, ""),
            table: Table::new(seed),
            machine: Slot::new("", false, false),
            capacity: capacity.max(1),
        }
    }

    /// Serves sessions with no store: memory holds the only copy of each,
    /// so a slot holding a session never leaves it, whatever the capacity
    /// (which then bounds only the slots of ids that hold none), and every
    /// store operation is answered in memory ([`Driver::memory_only`]).
    /// Without this, a session evicted to a store that keeps no copy would
    /// be lost.
    #[must_use]
    pub fn memory_only(mut self) -> Self {
        self.machine.persistence = Persistence::new("").in_memory();
        self
    }

    /// Whether there is no store (the machine slot says it for all).
    fn is_memory_only(&self) -> bool {
        self.machine.persistence.is_memory_only()
    }

    /// The most sessions kept in memory (more only while none may go).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of sessions in memory.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no session is in memory.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The shared manager (configuration, DPoP key; it holds no session of
    /// its own between steps).
    #[must_use]
    pub fn manager(&self) -> &TokenManager {
        &self.driver.manager
    }

    /// The session `id` as held in memory (`None`: not in memory, not
    /// loaded yet, or none stored).
    #[must_use]
    pub fn session(&self, id: &str) -> Option<&Session> {
        self.table.peek(id)?.state.session()
    }

    /// The cached token of session `id` for `request`, when it is in memory
    /// and fresh: no I/O, nothing allocated, only the entry's use counted.
    /// `None`: run a [`Call::token`] on `id` (it loads, refreshes or waits
    /// as needed, and decides as if this had not run).
    pub fn cached_token(
        &mut self,
        id: &str,
        request: &TokenRequest<'_>,
        now: UnixTime,
    ) -> Option<AccessTokenRef<'_>> {
        let at = self.table.find(id)?;
        let slot = self.table.get_mut(at)?;
        if !slot.persistence.is_loaded() {
            return None;
        }
        let manager = &mut self.driver.manager;
        manager.swap_state(&mut slot.state);
        let ready = manager.ready_at(request, now);
        manager.swap_state(&mut slot.state);
        slot.state.token_at(ready?)
    }

    /// What `call` on session `id` needs next (see [`Driver::poll`]). A
    /// session not in memory is loaded first; a machine-token call runs on
    /// the application's machine slot whatever `id` is.
    pub fn poll(&mut self, id: &str, call: &mut Call<'_, '_>, now: UnixTime) -> Effect {
        let place = self.place(id, call);
        let effect = self.mounted(place, |driver, callers| {
            if !call.entered {
                call.entered = true;
                *callers += 1;
            }
            let effect = driver.poll(call, now);
            if matches!(effect, Effect::Done(_)) {
                call.entered = false;
                *callers = callers.saturating_sub(1);
            }
            effect
        });
        if matches!(effect, Effect::Done(_)) {
            self.evict(self.capacity);
        }
        effect
    }

    /// The answer to an [`Effect::Store`] of `call` on `id`.
    pub fn handle_store(&mut self, id: &str, call: &mut Call<'_, '_>, answer: StoreAnswer) {
        let place = self.place(id, call);
        self.mounted(place, |driver, _| driver.handle_store(call, answer));
    }

    /// The response to an [`Effect::Send`] of `call` on `id`.
    pub fn handle_response(
        &mut self,
        id: &str,
        call: &mut Call<'_, '_>,
        response: HttpResponse,
        now: UnixTime,
    ) {
        let place = self.place(id, call);
        self.mounted(place, |driver, _| {
            driver.handle_response(call, response, now);
        });
    }

    /// The [`Effect::Send`] of `call` on `id` failed in transport.
    pub fn handle_transport_error(&mut self, id: &str, call: &mut Call<'_, '_>, now: UnixTime) {
        let place = self.place(id, call);
        self.mounted(place, |driver, _| driver.handle_transport_error(call, now));
    }

    /// The deferred signature for an [`Effect::Sign`] of `call` on `id`.
    pub fn handle_signature(
        &mut self,
        id: &str,
        call: &mut Call<'_, '_>,
        signature: Option<&EcdsaSignature>,
        now: UnixTime,
    ) {
        let place = self.place(id, call);
        self.mounted(place, |driver, _| {
            driver.handle_signature(call, signature, now);
        });
    }

    /// `call` on `id` is dropped before it is done (see [`Driver::abandon`]).
    pub fn abandon(&mut self, id: &str, call: &mut Call<'_, '_>) {
        let place = self.place(id, call);
        self.mounted(place, |driver, callers| {
            driver.abandon(call);
            if call.entered {
                call.entered = false;
                *callers = callers.saturating_sub(1);
            }
        });
    }

    /// Keeps session `id` in memory until [`Sessions::release`] (a host
    /// about to call the manager on it between calls: a logout).
    pub fn hold(&mut self, id: &str) {
        let at = self.locate(id);
        if let Some(slot) = self.table.get_mut(at) {
            slot.callers += 1;
        }
    }

    /// Ends one [`Sessions::hold`] of `id`.
    pub fn release(&mut self, id: &str) {
        if let Some(slot) = self.table.find(id).and_then(|at| self.table.get_mut(at)) {
            slot.callers = slot.callers.saturating_sub(1);
        }
        self.evict(self.capacity);
    }

    /// Calls `f` with the manager, session `id` mounted (a logout, a
    /// resource request's authorization): `None` when the session is not
    /// in memory and loaded (run a [`Call::load`] on `id` first, holding
    /// it). Changes `f` makes are saved by the next call on `id` (run a
    /// [`Call::persist`]).
    pub fn with_session<R>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Option<R> {
        let at = self.table.find(id)?;
        if !self.table.get_mut(at)?.persistence.is_loaded() {
            return None;
        }
        Some(self.mounted(Place::Session(at), |driver, _| f(&mut driver.manager)))
    }

    /// Starts a login: checks `callback` against `transaction` and gives
    /// the code exchange to send, and the id its session will be stored
    /// under (drawn from the host's entropy now). Run the dispatch as a
    /// [`Call::flight`] on that id.
    ///
    /// # Errors
    /// The failed check (state, issuer, the server's error in the callback).
    #[cfg(feature = "login")]
    #[cfg_attr(docsrs, doc(cfg(feature = "login")))]
    pub fn exchange_code(
        &mut self,
        transaction: &LoginTransaction,
        callback: &str,
        now: UnixTime,
    ) -> Result<(String, Dispatch), Error> {
        let (id, bytes) = self.driver.manager.draw_session_id();
        self.evict(self.capacity.saturating_sub(1));
        let at = self
            .table
            .insert(&id, Slot::new(&id, false, self.is_memory_only()));
        let dispatch = self.mounted(Place::Session(at), |driver, _| {
            driver.manager.choose_login_id(bytes);
            driver.manager.exchange_code(transaction, callback, now)
        });
        Ok((id, dispatch?))
    }

    /// Gives `session` an id from the host's entropy if it has none (the
    /// key to [`Call::install`] it under); returns the id.
    pub fn assign_id(&mut self, session: &mut Session) -> String {
        self.driver.manager.assign_session_id(session);
        session.id().map(String::from).unwrap_or_default()
    }

    /// The slot a step of `call` on `id` runs in.
    fn place(&mut self, id: &str, call: &Call<'_, '_>) -> Place {
        if call.is_machine() {
            Place::Machine
        } else {
            Place::Session(self.locate(id))
        }
    }

    /// Session `id`'s slot, made (to be loaded at its first call) when it
    /// is not in memory.
    fn locate(&mut self, id: &str) -> usize {
        if let Some(at) = self.table.find(id) {
            return at;
        }
        // Room first, so the new slot (the newest) is not what goes.
        self.evict(self.capacity.saturating_sub(1));
        let memory_only = self.is_memory_only();
        self.table.insert(id, Slot::new(id, true, memory_only))
    }

    /// Drops idle sessions, least recently used first, down to `keep`.
    fn evict(&mut self, keep: usize) {
        self.table.evict(keep, Slot::may_go);
    }

    /// Runs `f` with the slot at `place` mounted on the driver.
    fn mounted<R>(&mut self, place: Place, f: impl FnOnce(&mut Driver, &mut usize) -> R) -> R {
        let Sessions {
            driver,
            table,
            machine,
            ..
        } = self;
        let slot = match place {
            Place::Session(at) => match table.get_mut(at) {
                Some(slot) => slot,
                // Unreachable: the slot was located in this step, and
                // nothing is evicted between.
                None => machine,
            },
            Place::Machine => machine,
        };
        driver.manager.swap_state(&mut slot.state);
        driver.swap_persistence(&mut slot.persistence);
        let result = f(driver, &mut slot.callers);
        driver.manager.swap_state(&mut slot.state);
        driver.swap_persistence(&mut slot.persistence);
        result
    }
}
