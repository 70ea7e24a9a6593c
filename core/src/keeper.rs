//! A manager and its session store kept in step: the persistence rules every
//! adapter needs, written once.
//!
//! ```text
//! step(ask, waited, now) ──► asks the core once, then persist():
//!                            drain poll_event(); on SessionChanged save with
//!                            expected = the generation last saved
//!   ├─ Ready(token) / Failed(error)
//!   ├─ Own(dispatch)   this caller sends the request (its refresh token is
//!   │                  the live one: a lost claim or a store that moved on
//!   │                  cancels it unsent and asks again)
//!   ├─ Wait(id, deadline)
//!   └─ Reload(until)   another process refreshes (shared stores)
//! ```
//!
//! On a compare-and-swap conflict the stored session is adopted, unless
//! the unsaved change here must win, as this table says (`same` = the
//! stored session is this session: the same id, see [`Session::id`]):
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
//! store ever held ([`SessionStore::floor`]).

use alloc::boxed::Box;

use crate::error::Error;
use crate::flight::RequestId;
use crate::manager::{
    AccessTokenInfo, Action, ChangeReason, Dispatch, Event, TokenManager, TokenRequest,
};
use crate::session::Session;
use crate::store::{SessionStore, StoreError};
use crate::time::UnixTime;
use crate::trace::decision;

/// A manager and its session store, kept in step: every change the core
/// announces is saved with compare-and-swap. Adapters keep one behind
/// their lock.
///
/// `S` is the store's type: by default a `Send` trait object, so a keeper
/// can sit behind a `Mutex` shared by threads; single-threaded hosts (wasm)
/// use `Keeper<dyn SessionStore>` for stores that hold JavaScript objects.
pub struct Keeper<S: SessionStore + ?Sized = dyn SessionStore + Send> {
    /// The token manager.
    pub manager: TokenManager,
    store: Box<S>,
    /// The generation the store holds, as far as this handle knows.
    saved: Option<u64>,
    /// The highest generation this handle has seen stored.
    floor: u64,
    /// What the change not saved yet (the last save failed) holds.
    pending: Pending,
}

/// The kinds of an unsaved change that decide a conflict.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// Something changed.
    any: bool,
    /// A new session (a code login).
    login: bool,
    /// The session was logged out.
    logout: bool,
    /// A rotated refresh token: the only live one.
    rotation: bool,
    /// The refresh token was found dead (`invalid_grant`).
    reauth: bool,
}

/// How a conflict ends.
enum Verdict {
    /// The stored session is adopted; the change here is dropped.
    Adopt,
    /// Another writer ended or replaced the session: adopted, and the
    /// rotated refresh token here revoked.
    Retire,
    /// The change here is written over the stored session.
    Win(&'static str),
}

impl<S: SessionStore + ?Sized> Keeper<S> {
    /// Loads the session from `store`, or installs `session` (and saves it).
    pub fn new(
        mut manager: TokenManager,
        mut store: Box<S>,
        session: Option<Session>,
    ) -> Result<Self, StoreError> {
        let stored = store.load()?;
        let saved = stored.as_ref().map(Session::generation);
        if let Some(stored) = stored {
            manager.set_session(stored);
        }
        let mut state = Keeper {
            manager,
            store,
            saved,
            floor: saved.unwrap_or(0),
            pending: Pending::default(),
        };
        if let Some(session) = session {
            state.install(session)?;
        }
        Ok(state)
    }

    /// Installs `session` (a login) and saves it over whatever is stored,
    /// one generation above the highest the store ever held (so no handle
    /// that saw an older session can write it back). A session without an
    /// id gets one from the manager's entropy.
    ///
    /// # Errors
    /// A store error; the session is installed here all the same and its
    /// save retried after the next core call.
    pub fn install(&mut self, mut session: Session) -> Result<(), StoreError> {
        self.manager.assign_session_id(&mut session);
        let floor = self
            .store
            .floor()?
            .max(self.floor)
            .max(self.saved.unwrap_or(0));
        let mut generation = session.generation();
        if generation <= floor {
            session.set_generation(floor);
            generation = session.bump_generation();
        }
        let result = match self.store.save(&session, self.saved) {
            Err(StoreError::Conflict { found }) => {
                if found.is_some_and(|found| found >= generation) {
                    session.set_generation(found.unwrap_or(0));
                    generation = session.bump_generation();
                }
                self.store.save(&session, found)
            }
            other => other,
        };
        self.manager.set_session(session);
        self.pending = Pending::default();
        if result.is_ok() {
            self.mark_saved(generation);
        } else {
            self.pending.any = true;
            self.pending.login = true;
        }
        result
    }

    /// Removes the session here and in the store.
    pub fn clear(&mut self) -> Result<Option<Session>, StoreError> {
        self.store.clear()?;
        self.saved = None;
        self.pending = Pending::default();
        Ok(self.manager.clear_session())
    }

    /// Drains the core's events and saves the session when it changed,
    /// with `expected` = the last saved generation. A conflict (another
    /// process saved meanwhile) ends as the [module docs](self) say.
    ///
    /// Returns an error only when a change made by this call could not be
    /// saved (it stays pending and is retried after the next core call).
    pub fn persist(&mut self) -> Result<Saved, StoreError> {
        let mut changed = false;
        while let Some(Event::SessionChanged { reason, .. }) = self.manager.poll_event() {
            changed = true;
            match reason {
                ChangeReason::TokensUpdated {
                    refresh_token_rotated: true,
                } => self.pending.rotation = true,
                ChangeReason::LoggedOut => self.pending.logout = true,
                ChangeReason::LoggedIn => {
                    // A new session: nothing unsaved of the old one matters.
                    self.pending = Pending {
                        login: true,
                        ..Pending::default()
                    };
                }
                ChangeReason::ReauthenticationRequired => self.pending.reauth = true,
                _ => {}
            }
        }
        self.pending.any |= changed;
        if !self.pending.any {
            return Ok(Saved::Nothing);
        }
        match self.save() {
            Err(_) if !changed => Ok(Saved::Nothing),
            other => other,
        }
    }

    fn save(&mut self) -> Result<Saved, StoreError> {
        if self.manager.session().is_none() {
            self.pending = Pending::default();
            return Ok(Saved::Nothing);
        }
        if self.pending.login {
            // A new session goes above the highest generation the store
            // ever held: no handle that saw an older one can match it.
            let floor = self.store.floor()?.max(self.floor);
            if self
                .manager
                .session()
                .is_some_and(|s| s.generation() <= floor)
            {
                self.manager.renumber_session(Some(floor));
            }
        }
        let Some(session) = self.manager.session() else {
            return Ok(Saved::Nothing);
        };
        let mut generation = session.generation();
        match self.store.save(session, self.saved) {
            Ok(()) => {}
            Err(StoreError::Conflict { found }) => {
                let stored = self.store.load()?;
                let found = stored.as_ref().map(Session::generation).or(found);
                if let Some(found) = found {
                    self.floor = self.floor.max(found);
                }
                match self.verdict(stored.as_ref()) {
                    Verdict::Adopt => {
                        decision!(info, event = "claim_conflict", outcome = "adopted");
                        self.adopt(stored);
                        return Ok(Saved::Adopted);
                    }
                    Verdict::Retire => {
                        decision!(info, event = "claim_conflict", outcome = "session_ended");
                        self.retire_rotation(stored);
                        return Ok(Saved::Adopted);
                    }
                    Verdict::Win(_outcome) => {
                        decision!(info, event = "claim_conflict", outcome = _outcome);
                        // A logout written over another writer's rotation
                        // revokes the token that writer rotated in.
                        let own = self
                            .manager
                            .session()
                            .and_then(|s| s.token_set().refresh_token.clone());
                        if self.pending.logout
                            && let Some(theirs) = stored
                                .as_ref()
                                .and_then(|s| s.token_set().refresh_token.clone())
                            && Some(&theirs) != own.as_ref()
                        {
                            self.manager.revoke_later(theirs);
                        }
                        generation = self.manager.renumber_session(found.max(Some(self.floor)));
                        if let Some(session) = self.manager.session() {
                            self.store.save(session, found)?;
                        }
                    }
                }
            }
            Err(error) => return Err(error),
        }
        self.mark_saved(generation);
        self.pending = Pending::default();
        Ok(Saved::Stored)
    }

    /// How a conflict with `stored` ends for the unsaved change here (the
    /// table in the [module docs](self)).
    fn verdict(&self, stored: Option<&Session>) -> Verdict {
        let Some(ours) = self.manager.session() else {
            return Verdict::Adopt;
        };
        let same = stored.is_some_and(|s| s.is_same_session(ours));
        let pending = self.pending;
        if pending.login {
            Verdict::Win("login_wins")
        } else if pending.logout {
            if same {
                Verdict::Win("logout_wins")
            } else {
                Verdict::Adopt
            }
        } else if pending.rotation {
            if same && !stored.is_some_and(Session::is_logged_out) {
                Verdict::Win("rotation_wins")
            } else {
                Verdict::Retire
            }
        } else if pending.reauth
            && same
            && stored.is_some_and(|s| {
                !s.is_logged_out() && s.token_set().refresh_token == ours.token_set().refresh_token
            })
        {
            Verdict::Win("reauthentication_wins")
        } else {
            Verdict::Adopt
        }
    }

    fn mark_saved(&mut self, generation: u64) {
        self.saved = Some(generation);
        self.floor = self.floor.max(generation);
    }

    /// The session here holds the only live (rotated) refresh token, but
    /// another writer ended or replaced the session: queue that token for
    /// revocation ([`TokenManager::poll_revocation`]) and adopt what is
    /// stored.
    fn retire_rotation(&mut self, stored: Option<Session>) {
        if let Some(rotated) = self
            .manager
            .session()
            .and_then(|s| s.token_set().refresh_token.clone())
        {
            // Adopt first: the token is then no longer the session's own.
            self.adopt(stored);
            self.manager.revoke_later(rotated);
        } else {
            self.adopt(stored);
        }
    }

    /// Installs `stored` (what the store holds now; `None`: another writer
    /// logged out), dropping any unsaved change here.
    fn adopt(&mut self, stored: Option<Session>) {
        self.saved = stored.as_ref().map(Session::generation);
        if let Some(saved) = self.saved {
            self.floor = self.floor.max(saved);
        }
        match stored {
            Some(session) => self.manager.set_session(session),
            None => drop(self.manager.clear_session()),
        }
        self.pending = Pending::default();
    }

    /// Before the retry of flight `id` goes out (a `use_dpop_nonce`
    /// [`Completion::Resend`](crate::Completion::Resend) or
    /// [`Completion::Sign`](crate::Completion::Sign)): a retry of a refresh
    /// spends the refresh token again, so it must still be the live one, as
    /// before the first try. When another writer moved the stored session
    /// on (logged it out, cleared or replaced it, refreshed), it is adopted
    /// and the flight cancelled unsent; the answer is `false`.
    ///
    /// # Errors
    /// A store error (the flight stays; the caller may send or cancel it).
    pub fn confirm_resend(&mut self, id: RequestId) -> Result<bool, StoreError> {
        if !self.manager.is_refresh(id) {
            return Ok(true);
        }
        // The renewed claim is saved first; losing that compare-and-swap
        // means another writer moved the session on.
        let saved = self.persist()?;
        if saved == Saved::Adopted || self.moved_on()? {
            let _ = self.manager.cancel(id);
            self.persist()?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Adopts the stored session if another writer moved it on since this
    /// handle last saved or loaded it (before a refresh goes out, its
    /// refresh token is the live one; while another process refreshes, it
    /// brings the new tokens). Returns whether the session here changed.
    ///
    /// An unsaved change that would win a conflict (a login, a logout, a
    /// rotation, an `invalid_grant` verdict) is saved first instead.
    pub fn moved_on(&mut self) -> Result<bool, StoreError> {
        let pending = self.pending;
        if pending.any && (pending.login || pending.logout || pending.rotation || pending.reauth) {
            return match self.save() {
                Ok(saved) => Ok(saved == Saved::Adopted),
                // Only this handle holds the newest refresh token: it goes
                // on with it while the store is away.
                Err(_) if pending.rotation => Ok(false),
                Err(error) => Err(error),
            };
        }
        if self.store.generation()? == self.saved {
            return Ok(false);
        }
        let stored = self.store.load()?;
        self.adopt(stored);
        Ok(true)
    }
}

/// What [`Keeper::persist`] did.
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
/// Exhaustive on purpose: a new step must break the adapters' build, not
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
}

impl<S: SessionStore + ?Sized> Keeper<S> {
    /// Asks the core once (after expiring leases that ran out), and saves
    /// what changed.
    ///
    /// # Errors
    /// A store error while saving or reloading.
    pub fn step(
        &mut self,
        ask: Ask<'_, '_>,
        waited: Option<RequestId>,
        now: UnixTime,
    ) -> Result<Step, StoreError> {
        if self.manager.poll_timeout().is_some_and(|t| t <= now) {
            self.manager.handle_timeout(now);
        }
        let action = match (ask, waited) {
            (Ask::User(request), Some(id)) => {
                self.manager.get_access_token_after_wait(request, id, now)
            }
            (Ask::User(request), None) => self.manager.get_access_token(request, now),
            (Ask::Machine(request), _) => self.manager.get_client_credentials_token(request, now),
        };
        let step = match action {
            Action::Ready(token) => Step::Ready(token.to_owned()),
            Action::Send(out) => Step::Own(Dispatch::Send(out)),
            Action::Sign(request) => Step::Own(Dispatch::Sign(request)),
            Action::Wait(id) => Step::Wait(id, self.manager.poll_timeout()),
            Action::Reload { until } => Step::Reload(until),
            Action::LoginRequired(e) | Action::Failed(e) => Step::Failed(e),
        };
        let saved = self.persist();
        let Some(id) = (match &step {
            Step::Own(dispatch) => dispatch_id(dispatch),
            _ => None,
        }) else {
            return saved.map(|_| step);
        };
        // A refresh spends the session's refresh token: it must still be
        // the live one. With a shared store the core's claim was just saved
        // with compare-and-swap (lost: another process refreshes); without,
        // compare with the store.
        let lost = match saved {
            Ok(Saved::Stored) => Ok(false),
            Ok(Saved::Adopted) => Ok(true),
            Ok(Saved::Nothing) if matches!(ask, Ask::User(_)) => self.moved_on(),
            Ok(Saved::Nothing) => Ok(false),
            Err(error) => Err(error),
        };
        if lost.as_ref().is_ok_and(|lost| !lost) {
            return Ok(step);
        }
        // Nothing was sent: release the flight, then ask again.
        let _ = self.manager.cancel(id);
        lost?;
        self.persist()?;
        self.step(ask, None, now)
    }
}

/// The flight a dispatch belongs to.
#[must_use]
pub fn dispatch_id(dispatch: &Dispatch) -> Option<RequestId> {
    match dispatch {
        Dispatch::Send(out) => Some(out.id),
        Dispatch::Sign(request) => Some(request.id),
    }
}
