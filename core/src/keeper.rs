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
//! On a compare-and-swap conflict the stored session is adopted, unless the
//! change here rotated the refresh token: then the stored session holds a
//! spent token, and this one overwrites it.

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
    /// A change not saved yet (the last save failed).
    pending: bool,
    /// The unsaved change holds a rotated refresh token (the only live one).
    pending_rotation: bool,
    /// The unsaved change is a logout: it wins any conflict.
    pending_logout: bool,
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
            pending: false,
            pending_rotation: false,
            pending_logout: false,
        };
        if let Some(session) = session {
            state.install(session)?;
        }
        Ok(state)
    }

    /// Installs `session` (a login) and saves it over whatever is stored.
    pub fn install(&mut self, mut session: Session) -> Result<(), StoreError> {
        let mut generation = session.generation();
        let result = match self.store.save(&session, self.saved) {
            Err(StoreError::Conflict { found }) => {
                // A stored generation only grows: the login goes one above
                // whatever is there.
                if found.is_some_and(|found| found >= generation) {
                    session.set_generation(found.unwrap_or(0));
                    generation = session.bump_generation();
                }
                self.store.save(&session, found)
            }
            other => other,
        };
        self.manager.set_session(session);
        self.pending = result.is_err();
        self.pending_rotation = false;
        self.pending_logout = false;
        if result.is_ok() {
            self.saved = Some(generation);
        }
        result
    }

    /// Removes the session here and in the store.
    pub fn clear(&mut self) -> Result<Option<Session>, StoreError> {
        self.store.clear()?;
        self.saved = None;
        self.pending = false;
        self.pending_rotation = false;
        self.pending_logout = false;
        Ok(self.manager.clear_session())
    }

    /// Drains the core's events and saves the session when it changed,
    /// with `expected` = the last saved generation. On a conflict (another
    /// process saved meanwhile) the stored session is adopted — unless this
    /// change rotated the refresh token: then the stored session was
    /// derived from a spent refresh token, and this one overwrites it.
    ///
    /// Returns an error only when a change made by this call could not be
    /// saved (it stays pending and is retried after the next core call).
    pub fn persist(&mut self) -> Result<Saved, StoreError> {
        let mut changed = false;
        while let Some(Event::SessionChanged { reason, .. }) = self.manager.poll_event() {
            changed = true;
            if let ChangeReason::TokensUpdated {
                refresh_token_rotated: true,
            } = reason
            {
                self.pending_rotation = true;
            }
            if reason == ChangeReason::LoggedOut {
                self.pending_logout = true;
            }
        }
        self.pending |= changed;
        if !self.pending {
            return Ok(Saved::Nothing);
        }
        match self.save() {
            Err(_) if !changed => Ok(Saved::Nothing),
            other => other,
        }
    }

    fn save(&mut self) -> Result<Saved, StoreError> {
        let Some(session) = self.manager.session() else {
            self.pending = false;
            return Ok(Saved::Nothing);
        };
        let mut generation = session.generation();
        let result = match self.store.save(session, self.saved) {
            Err(StoreError::Conflict { found }) if self.pending_logout => {
                let stored = self.store.load()?;
                let found = stored.as_ref().map(Session::generation).or(found);
                decision!(info, event = "claim_conflict", outcome = "logout_wins");
                let Some(stored) = stored else {
                    // Cleared meanwhile: ended either way.
                    self.retire_rotation(None);
                    return Ok(Saved::Adopted);
                };
                // A logout is never undone: it is written over what another
                // writer stored, and a refresh token that writer rotated in
                // is revoked too.
                let own = session.token_set().refresh_token.as_ref();
                if let Some(theirs) = stored.token_set().refresh_token.clone()
                    && Some(&theirs) != own
                {
                    self.manager.revoke_later(theirs);
                }
                generation = self.manager.renumber_session(found);
                match self.manager.session() {
                    Some(session) => self.store.save(session, found),
                    None => Ok(()),
                }
            }
            Err(StoreError::Conflict { found }) if self.pending_rotation => {
                let stored = self.store.load()?;
                let found = stored.as_ref().map(Session::generation).or(found);
                if stored.as_ref().is_none_or(Session::is_logged_out) {
                    // Another writer ended the session (cleared it: nothing
                    // stored, or logged it out). A late save must not bring
                    // it back: the rotated refresh token is revoked instead.
                    decision!(info, event = "claim_conflict", outcome = "session_ended");
                    self.retire_rotation(stored);
                    return Ok(Saved::Adopted);
                }
                decision!(info, event = "claim_conflict", outcome = "rotation_wins");
                // The stored session was derived from a spent refresh token:
                // this one overwrites it, one generation above both.
                generation = self.manager.renumber_session(found);
                match self.manager.session() {
                    Some(session) => self.store.save(session, found),
                    None => Ok(()),
                }
            }
            Err(StoreError::Conflict { .. }) => {
                decision!(info, event = "claim_conflict", outcome = "adopted");
                let stored = self.store.load()?;
                self.adopt(stored);
                return Ok(Saved::Adopted);
            }
            other => other,
        };
        result?;
        self.saved = Some(generation);
        self.pending = false;
        self.pending_rotation = false;
        self.pending_logout = false;
        Ok(Saved::Stored)
    }

    /// The session here holds the only live (rotated) refresh token, but
    /// another writer ended the session: queue that token for revocation
    /// ([`TokenManager::poll_revocation`]) and adopt the ended session.
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
        match stored {
            Some(session) => self.manager.set_session(session),
            None => drop(self.manager.clear_session()),
        }
        self.pending = false;
        self.pending_rotation = false;
        self.pending_logout = false;
    }

    /// Adopts the stored session if another writer moved it on since this
    /// handle last saved or loaded it (before a refresh goes out, its
    /// refresh token is the live one; while another process refreshes, it
    /// brings the new tokens). Returns whether the session here changed.
    pub fn moved_on(&mut self) -> Result<bool, StoreError> {
        if self.pending_rotation {
            // Only this handle holds the newest refresh token.
            return Ok(false);
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
