//! A [`Driver`] and a blocking store, run in step: the persistence rules of
//! the [driver](crate::driver) with every store operation run at once. For
//! hosts that may block while the store works, and for tests that drive
//! the core step by step (the reference model runs keepers).
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
//! The conflict table is in the [driver's docs](crate::driver#conflicts).
//! [`Keeper::run`] drives a whole [`Call`] (the round trip an adapter runs)
//! with the keeper's store.

use alloc::boxed::Box;
use core::ops::{Deref, DerefMut};

pub use crate::driver::{Ask, Saved, Step, dispatch_id};
use crate::driver::{Call, Driver, Effect, Job, JobStep, JobValue, MovedOnStage};
use crate::flight::RequestId;
use crate::manager::TokenManager;
use crate::session::Session;
use crate::store::{DEFAULT_KEY, SessionKey, SessionStore, StoreError};
use crate::time::UnixTime;

/// A driver and its session store, kept in step: every change the core
/// announces is saved with compare-and-swap, at once. Dereferences to the
/// [`Driver`] (and so to its `manager`).
///
/// `S` is the store's type: by default a `Send` trait object, so a keeper
/// can sit behind a `Mutex` shared by threads; single-threaded hosts (wasm)
/// use `Keeper<dyn SessionStore>` for stores that hold JavaScript objects.
pub struct Keeper<S: SessionStore + ?Sized = dyn SessionStore + Send> {
    driver: Driver,
    store: Box<S>,
}

impl<S: SessionStore + ?Sized> Deref for Keeper<S> {
    type Target = Driver;

    fn deref(&self) -> &Driver {
        &self.driver
    }
}

impl<S: SessionStore + ?Sized> DerefMut for Keeper<S> {
    fn deref_mut(&mut self) -> &mut Driver {
        &mut self.driver
    }
}

impl<S: SessionStore + ?Sized> Keeper<S> {
    /// Loads the session stored under [`DEFAULT_KEY`] from `store`, or
    /// installs `session` (and saves it).
    ///
    /// # Errors
    /// A store error.
    pub fn new(
        manager: TokenManager,
        store: Box<S>,
        session: Option<Session>,
    ) -> Result<Self, StoreError> {
        Keeper::with_key(manager, store, DEFAULT_KEY, session)
    }

    /// [`Keeper::new`] for the session stored under `key`.
    ///
    /// # Errors
    /// A store error.
    pub fn with_key(
        manager: TokenManager,
        store: Box<S>,
        key: &SessionKey,
        session: Option<Session>,
    ) -> Result<Self, StoreError> {
        let mut keeper = Keeper {
            driver: Driver::new(manager, key),
            store,
        };
        keeper.job(Job::Load)?;
        if let Some(session) = session {
            keeper.install(session)?;
        }
        Ok(keeper)
    }

    /// The store.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The driver and the store, apart (a host that built the keeper to
    /// load the session at once, then runs the store itself).
    pub fn into_parts(self) -> (Driver, Box<S>) {
        (self.driver, self.store)
    }

    /// Runs a store job to its end.
    fn job(&mut self, job: Job) -> Result<JobValue, StoreError> {
        let mut step = self.driver.advance(job, None);
        loop {
            match step {
                JobStep::Op(op, job) => {
                    let answer = op.run(&mut *self.store);
                    step = self.driver.advance(job, Some(answer));
                }
                JobStep::Done(result) => return result,
            }
        }
    }

    /// Drives `call` to its end with this keeper's store; `send` sends a
    /// request (`Err`: a transport failure, then the call's
    /// [`Failure::Transport`](crate::driver::Failure::Transport)), `sign`
    /// signs for a deferred signer (`None`: it failed).
    pub fn run(
        &mut self,
        call: &mut Call<'_, '_>,
        now: UnixTime,
        mut send: impl FnMut(crate::HttpRequest) -> Option<crate::HttpResponse>,
        mut sign: impl FnMut(&str) -> Option<crate::dpop::EcdsaSignature>,
    ) -> Result<crate::driver::Finished, crate::driver::Failure> {
        loop {
            match self.driver.poll(call, now) {
                Effect::Send { request, .. } => match send(request.request) {
                    Some(response) => self.driver.handle_response(call, response, now),
                    None => self.driver.handle_transport_error(call, now),
                },
                Effect::Store(op) => {
                    let answer = op.run(&mut *self.store);
                    self.driver.handle_store(call, answer);
                }
                Effect::Sign(request) => {
                    let signature = sign(&request.signing_input);
                    self.driver.handle_signature(call, signature.as_ref(), now);
                }
                // Nothing else runs: a wait would never end.
                Effect::Wait(_) => {
                    self.driver.abandon(call);
                    return Err(crate::driver::Failure::Core(crate::Error::RequestAbandoned));
                }
                Effect::Done(result) => return result,
            }
        }
    }

    /// Installs `session` (a login) and saves it over whatever is stored,
    /// one generation above the highest the store ever held (so no handle
    /// that saw an older session can write it back). A session without an
    /// id gets one from the manager's entropy.
    ///
    /// # Errors
    /// A store error; the session is installed here all the same (unless
    /// the store's floor could not be read) and its save retried after the
    /// next core call.
    pub fn install(&mut self, session: Session) -> Result<(), StoreError> {
        self.job(Job::Install(
            Box::new(session),
            crate::driver::persist_install_start(),
        ))
        .map(|_| ())
    }

    /// Removes the session here and in the store.
    ///
    /// # Errors
    /// A store error.
    pub fn clear(&mut self) -> Result<Option<Session>, StoreError> {
        match self.job(Job::Clear)? {
            JobValue::Cleared(session) => Ok(session.map(|s| *s)),
            _ => Ok(None),
        }
    }

    /// Drains the core's events and saves the session when it changed,
    /// with `expected` = the last saved generation. A conflict (another
    /// process saved meanwhile) ends as the [driver's table](crate::driver#conflicts) says.
    ///
    /// Returns an error only when a change made by this call could not be
    /// saved (it stays pending and is retried after the next core call).
    ///
    /// # Errors
    /// A store error.
    pub fn persist(&mut self) -> Result<Saved, StoreError> {
        let job = self.driver.persist_job();
        match self.job(job)? {
            JobValue::Saved(saved) => Ok(saved),
            _ => Ok(Saved::Nothing),
        }
    }

    /// Adopts the stored session if another writer moved it on since this
    /// handle last saved or loaded it (before a refresh goes out, its
    /// refresh token is the live one; while another process refreshes, it
    /// brings the new tokens). Returns whether the session here changed.
    ///
    /// An unsaved change that would win a conflict (a login, a logout, a
    /// rotation, an `invalid_grant` verdict) is saved first instead.
    ///
    /// # Errors
    /// A store error.
    pub fn moved_on(&mut self) -> Result<bool, StoreError> {
        match self.job(Job::MovedOn(MovedOnStage::Start))? {
            JobValue::MovedOn(moved) => Ok(moved),
            _ => Ok(false),
        }
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
        if !self.driver.manager.is_refresh(id) {
            return Ok(true);
        }
        // The renewed claim is saved first; losing that compare-and-swap
        // means another writer moved the session on.
        let saved = self.persist()?;
        if saved == Saved::Adopted || self.moved_on()? {
            let _ = self.driver.manager.cancel(id);
            self.persist()?;
            return Ok(false);
        }
        Ok(true)
    }

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
        let step = self.driver.ask(ask, waited, now);
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
        let _ = self.driver.manager.cancel(id);
        lost?;
        self.persist()?;
        self.step(ask, None, now)
    }
}
