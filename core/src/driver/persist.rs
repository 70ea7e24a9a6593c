//! The persistence rules as resumable jobs: each step either names the
//! next store operation or ends with what the job found. The conflict
//! table is in the [module docs](super).

use alloc::boxed::Box;

use super::effect::{StoreAnswer, StoreOp, StoreValue};
use super::{Driver, Saved};
use crate::manager::{ChangeReason, Event};
use crate::session::Session;
use crate::store::StoreError;
use crate::trace::decision;

/// The kinds of an unsaved change that decide a conflict.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pending {
    /// Something changed.
    pub(crate) any: bool,
    /// A new session (a code login).
    pub(crate) login: bool,
    /// The session was logged out.
    pub(crate) logout: bool,
    /// A rotated refresh token: the only live one.
    pub(crate) rotation: bool,
    /// The refresh token was found dead (`invalid_grant`).
    pub(crate) reauth: bool,
}

impl Pending {
    /// Whether the change would win a conflict (it is saved before the
    /// store is compared).
    fn weighs(self) -> bool {
        self.any && (self.login || self.logout || self.rotation || self.reauth)
    }

    /// `self` followed by `later`.
    fn then(self, later: Pending) -> Pending {
        if later.login {
            return later;
        }
        Pending {
            any: self.any | later.any,
            login: self.login,
            logout: self.logout | later.logout,
            rotation: self.rotation | later.rotation,
            reauth: self.reauth | later.reauth,
        }
    }
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

/// A multi-step store job.
#[derive(Debug)]
pub(crate) enum Job {
    /// Load the session (a handle starts).
    Load,
    /// Install a new session (a login) above the store's floor.
    Install(Box<Session>, InstallStage),
    /// Remove the session here and in the store.
    Clear,
    /// Save the pending change (`persist`, or inside `moved_on`).
    Save(SaveMode, SaveStage),
    /// Adopt what the store holds if another writer moved it on.
    MovedOn(MovedOnStage),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum InstallStage {
    Floor,
    Cas(u64),
    Retry(u64),
}

/// What a save is for: how its end reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SaveMode {
    /// [`Driver::persist`]: a failure to save a change made before this
    /// call is not this call's failure.
    Persist {
        /// Whether this call drained a change.
        changed: bool,
    },
    /// Inside `moved_on`: answers whether the session here changed.
    MovedOn {
        /// A rotation was pending: only this handle holds the newest
        /// refresh token, so a store away is no reason to stop.
        rotation: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SaveStage {
    Start,
    Floor,
    Cas(u64),
    Load(Option<u64>),
    Win(u64),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum MovedOnStage {
    Start,
    Generation,
    Load,
}

/// What a job found.
#[derive(Debug)]
pub(crate) enum JobValue {
    Loaded(bool),
    Installed,
    Cleared(Option<Box<Session>>),
    Saved(Saved),
    MovedOn(bool),
}

/// A job's next step (made and matched at once, never kept).
#[allow(clippy::large_enum_variant)]
pub(crate) enum JobStep {
    /// Run this operation, then resume the job with its answer.
    Op(StoreOp, Job),
    /// The job is over.
    Done(Result<JobValue, StoreError>),
}

impl Driver {
    /// A persist job: drains the core's events into the pending change.
    pub(crate) fn persist_job(&mut self) -> Job {
        let changed = self.drain_events();
        Job::Save(SaveMode::Persist { changed }, SaveStage::Start)
    }

    /// A memory-only driver's persist, whole and at once: what the save
    /// job ([`Driver::persist_job`], its operations answered in memory by
    /// [`Driver::settle_in_memory`]) comes to, without its steps — this
    /// runs twice per refresh. The session here is the only copy: a change
    /// is marked saved as it is; a new session still goes above the
    /// highest generation this driver saw.
    pub(crate) fn persist_in_memory(&mut self) -> Saved {
        self.drain_events();
        if !self.persistence.pending.any {
            return Saved::Nothing;
        }
        let login = self.persistence.pending.login;
        let floor = self.persistence.floor;
        self.persistence.pending = Pending::default();
        let Some(session) = self.manager.session() else {
            return Saved::Nothing;
        };
        let mut generation = session.generation();
        if login && generation <= floor {
            generation = self.manager.renumber_session(Some(floor));
        }
        self.mark_saved(generation);
        Saved::Stored
    }

    /// Drains the core's events into the pending change; whether any came.
    pub(crate) fn drain_events(&mut self) -> bool {
        let mut changed = false;
        while let Some(Event::SessionChanged { reason, .. }) = self.manager.poll_event() {
            changed = true;
            let pending = &mut self.persistence.pending;
            match reason {
                ChangeReason::TokensUpdated {
                    refresh_token_rotated: true,
                } => pending.rotation = true,
                ChangeReason::LoggedOut => pending.logout = true,
                ChangeReason::LoggedIn => {
                    // A new session: nothing unsaved of the old one matters.
                    *pending = Pending {
                        login: true,
                        ..Pending::default()
                    };
                }
                ChangeReason::ReauthenticationRequired => pending.reauth = true,
                _ => {}
            }
        }
        self.persistence.pending.any |= changed;
        changed
    }

    /// Runs a job's first step, or resumes it with `answer`.
    pub(crate) fn advance(&mut self, job: Job, answer: Option<StoreAnswer>) -> JobStep {
        match job {
            Job::Load => match answer {
                None => JobStep::Op(self.op_load(), Job::Load),
                Some(answer) => JobStep::Done(loaded(answer).map(|stored| {
                    self.persistence.saved = stored.as_ref().map(Session::generation);
                    self.persistence.floor = self
                        .persistence
                        .floor
                        .max(self.persistence.saved.unwrap_or(0));
                    let found = stored.is_some();
                    if let Some(stored) = stored {
                        self.manager.set_session(stored);
                    }
                    JobValue::Loaded(found)
                })),
            },
            Job::Clear => match answer {
                None => JobStep::Op(
                    StoreOp::Clear {
                        key: self.persistence.key.clone(),
                    },
                    Job::Clear,
                ),
                Some(answer) => JobStep::Done(answer.map(|_| {
                    self.persistence.saved = None;
                    self.persistence.pending = Pending::default();
                    JobValue::Cleared(self.manager.clear_session().map(Box::new))
                })),
            },
            Job::Install(session, stage) => self.install(session, stage, answer),
            Job::Save(mode, stage) => match self.save(mode, stage, answer) {
                JobStep::Done(result) => JobStep::Done(finish_save(mode, result)),
                step => step,
            },
            Job::MovedOn(stage) => self.moved_on(stage, answer),
        }
    }

    /// Runs `step` on to its end when there is no store
    /// ([`Driver::memory_only`]), answering each operation here; any other
    /// driver gets `step` back as it was.
    pub(crate) fn settle_in_memory(&mut self, mut step: JobStep) -> JobStep {
        while self.persistence.memory_only
            && let JobStep::Op(op, job) = step
        {
            let answer = self.answer_in_memory(&op);
            step = self.advance(job, Some(answer));
        }
        step
    }

    /// What a store would answer `op` with when there is none
    /// ([`Driver::memory_only`]): what an `UnsharedStore` answers (nothing
    /// to load, the generation last saved, every save and clear accepted).
    /// A memory-only driver answers its own operations; a host without a
    /// store can hand this to [`Driver::handle_store`] all the same.
    pub fn answer_in_memory(&self, op: &StoreOp) -> StoreAnswer {
        Ok(match op {
            StoreOp::Load { .. } => StoreValue::Loaded(None),
            StoreOp::Generation { .. } => StoreValue::Generation(self.persistence.saved),
            StoreOp::Save { .. } => StoreValue::Saved,
            StoreOp::Clear { .. } => StoreValue::Cleared,
            StoreOp::Floor { .. } => StoreValue::Floor(self.persistence.floor),
        })
    }

    fn op_load(&self) -> StoreOp {
        StoreOp::Load {
            key: self.persistence.key.clone(),
        }
    }

    fn install(
        &mut self,
        mut session: Box<Session>,
        stage: InstallStage,
        answer: Option<StoreAnswer>,
    ) -> JobStep {
        let Some(answer) = answer else {
            self.manager.assign_session_id(&mut session);
            return JobStep::Op(
                StoreOp::Floor {
                    key: self.persistence.key.clone(),
                },
                Job::Install(session, InstallStage::Floor),
            );
        };
        let result = match (stage, answer) {
            (InstallStage::Floor, answer) => {
                let floor = match answer {
                    Ok(StoreValue::Floor(floor)) => floor,
                    Ok(_) => 0,
                    Err(error) => return JobStep::Done(Err(error)),
                };
                // A login goes one generation above the highest the store
                // ever held, so no handle that saw an older session can
                // write it back.
                let floor = floor
                    .max(self.persistence.floor)
                    .max(self.persistence.saved.unwrap_or(0));
                let mut generation = session.generation();
                if generation <= floor {
                    session.set_generation(floor);
                    generation = session.bump_generation();
                }
                let op = self.op_save(session.clone(), self.persistence.saved);
                return JobStep::Op(op, Job::Install(session, InstallStage::Cas(generation)));
            }
            (InstallStage::Cas(generation), Err(StoreError::Conflict { found })) => {
                let mut generation = generation;
                if found.is_some_and(|found| found >= generation) {
                    session.set_generation(found.unwrap_or(0));
                    generation = session.bump_generation();
                }
                let op = self.op_save(session.clone(), found);
                return JobStep::Op(op, Job::Install(session, InstallStage::Retry(generation)));
            }
            (InstallStage::Cas(generation) | InstallStage::Retry(generation), answer) => {
                answer.map(|_| generation)
            }
        };
        self.manager.set_session(*session);
        self.persistence.pending = Pending::default();
        JobStep::Done(match result {
            Ok(generation) => {
                self.mark_saved(generation);
                Ok(JobValue::Installed)
            }
            Err(error) => {
                self.persistence.pending.any = true;
                self.persistence.pending.login = true;
                Err(error)
            }
        })
    }

    fn op_save(&self, session: Box<Session>, expected: Option<u64>) -> StoreOp {
        StoreOp::Save {
            key: self.persistence.key.clone(),
            session,
            expected,
        }
    }

    /// The save with compare-and-swap (the table in the module docs).
    fn save(&mut self, mode: SaveMode, stage: SaveStage, answer: Option<StoreAnswer>) -> JobStep {
        let job = |stage| Job::Save(mode, stage);
        match (stage, answer) {
            (SaveStage::Start, _) => {
                if let SaveMode::Persist { .. } = mode
                    && !self.persistence.pending.any
                {
                    return JobStep::Done(Ok(JobValue::Saved(Saved::Nothing)));
                }
                if self.manager.session().is_none() {
                    self.persistence.pending = Pending::default();
                    return JobStep::Done(Ok(JobValue::Saved(Saved::Nothing)));
                }
                if self.persistence.pending.login {
                    let op = StoreOp::Floor {
                        key: self.persistence.key.clone(),
                    };
                    return JobStep::Op(op, job(SaveStage::Floor));
                }
                self.save_cas(mode)
            }
            (SaveStage::Floor, Some(answer)) => {
                let floor = match answer {
                    Ok(StoreValue::Floor(floor)) => floor.max(self.persistence.floor),
                    Ok(_) => self.persistence.floor,
                    Err(error) => return JobStep::Done(Err(error)),
                };
                // A new session goes above the highest generation the
                // store ever held: no handle that saw an older one can
                // match it.
                if self
                    .manager
                    .session()
                    .is_some_and(|s| s.generation() <= floor)
                {
                    self.manager.renumber_session(Some(floor));
                }
                self.save_cas(mode)
            }
            (SaveStage::Cas(generation) | SaveStage::Win(generation), Some(Ok(_))) => {
                self.mark_saved(generation);
                self.persistence.pending = Pending::default();
                JobStep::Done(Ok(JobValue::Saved(Saved::Stored)))
            }
            (SaveStage::Cas(_), Some(Err(StoreError::Conflict { found }))) => {
                JobStep::Op(self.op_load(), job(SaveStage::Load(found)))
            }
            (SaveStage::Load(found), Some(answer)) => {
                let stored = match loaded(answer) {
                    Ok(stored) => stored,
                    Err(error) => return JobStep::Done(Err(error)),
                };
                self.conflict(mode, stored, found)
            }
            (_, Some(Err(error))) => JobStep::Done(Err(error)),
            (_, None) => JobStep::Done(Ok(JobValue::Saved(Saved::Nothing))),
        }
    }

    fn save_cas(&mut self, mode: SaveMode) -> JobStep {
        let Some(session) = self.manager.session() else {
            return JobStep::Done(Ok(JobValue::Saved(Saved::Nothing)));
        };
        let generation = session.generation();
        if self.persistence.memory_only {
            // Saved as it is: the session here is the only copy. Answered
            // here, not by `settle_in_memory`, so no `Save` op clones it.
            let done = Job::Save(mode, SaveStage::Cas(generation));
            return self.advance(done, Some(Ok(StoreValue::Saved)));
        }
        let op = self.op_save(Box::new(session.clone()), self.persistence.saved);
        JobStep::Op(op, Job::Save(mode, SaveStage::Cas(generation)))
    }

    /// Another writer saved first: what it stored decides.
    fn conflict(&mut self, mode: SaveMode, stored: Option<Session>, found: Option<u64>) -> JobStep {
        let found = stored.as_ref().map(Session::generation).or(found);
        if let Some(found) = found {
            self.persistence.floor = self.persistence.floor.max(found);
        }
        match self.verdict(stored.as_ref()) {
            Verdict::Adopt => {
                decision!(info, event = "claim_conflict", outcome = "adopted");
                self.adopt(stored);
                JobStep::Done(Ok(JobValue::Saved(Saved::Adopted)))
            }
            Verdict::Retire => {
                decision!(info, event = "claim_conflict", outcome = "session_ended");
                self.retire_rotation(stored);
                JobStep::Done(Ok(JobValue::Saved(Saved::Adopted)))
            }
            Verdict::Win(_outcome) => {
                decision!(info, event = "claim_conflict", outcome = _outcome);
                // A logout written over another writer's rotation revokes
                // the token that writer rotated in.
                let own = self
                    .manager
                    .session()
                    .and_then(|s| s.token_set().refresh_token.clone());
                if self.persistence.pending.logout
                    && let Some(theirs) = stored
                        .as_ref()
                        .and_then(|s| s.token_set().refresh_token.clone())
                    && Some(&theirs) != own.as_ref()
                {
                    self.manager.revoke_later(theirs);
                }
                let generation = self
                    .manager
                    .renumber_session(found.max(Some(self.persistence.floor)));
                match self.manager.session() {
                    Some(session) => {
                        let op = self.op_save(Box::new(session.clone()), found);
                        JobStep::Op(op, Job::Save(mode, SaveStage::Win(generation)))
                    }
                    None => {
                        self.mark_saved(generation);
                        self.persistence.pending = Pending::default();
                        JobStep::Done(Ok(JobValue::Saved(Saved::Stored)))
                    }
                }
            }
        }
    }

    /// How a conflict with `stored` ends for the unsaved change here.
    fn verdict(&self, stored: Option<&Session>) -> Verdict {
        let Some(ours) = self.manager.session() else {
            return Verdict::Adopt;
        };
        let same = stored.is_some_and(|s| s.is_same_session(ours));
        let pending = self.persistence.pending;
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

    fn moved_on(&mut self, stage: MovedOnStage, answer: Option<StoreAnswer>) -> JobStep {
        match (stage, answer) {
            (MovedOnStage::Start, _) => {
                let pending = self.persistence.pending;
                if pending.weighs() {
                    // An unsaved change that would win a conflict is saved
                    // first instead.
                    let mode = SaveMode::MovedOn {
                        rotation: pending.rotation,
                    };
                    return self.advance(Job::Save(mode, SaveStage::Start), None);
                }
                let op = StoreOp::Generation {
                    key: self.persistence.key.clone(),
                };
                JobStep::Op(op, Job::MovedOn(MovedOnStage::Generation))
            }
            (MovedOnStage::Generation, Some(Ok(StoreValue::Generation(generation)))) => {
                if generation == self.persistence.saved {
                    return JobStep::Done(Ok(JobValue::MovedOn(false)));
                }
                JobStep::Op(self.op_load(), Job::MovedOn(MovedOnStage::Load))
            }
            (MovedOnStage::Load, Some(answer)) => JobStep::Done(loaded(answer).map(|stored| {
                self.adopt(stored);
                JobValue::MovedOn(true)
            })),
            (_, Some(Err(error))) => JobStep::Done(Err(error)),
            (_, _) => JobStep::Done(Ok(JobValue::MovedOn(false))),
        }
    }

    pub(crate) fn mark_saved(&mut self, generation: u64) {
        self.persistence.saved = Some(generation);
        self.persistence.floor = self.persistence.floor.max(generation);
    }

    /// The session here holds the only live (rotated) refresh token, but
    /// another writer ended or replaced the session: queue that token for
    /// revocation and adopt what is stored.
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
        self.persistence.saved = stored.as_ref().map(Session::generation);
        if let Some(saved) = self.persistence.saved {
            self.persistence.floor = self.persistence.floor.max(saved);
        }
        match stored {
            Some(session) => self.manager.set_session(session),
            None => drop(self.manager.clear_session()),
        }
        self.persistence.pending = Pending::default();
    }

    /// Folds the changes drained while another call held the store into
    /// the pending change, once that call's job ended.
    pub(crate) fn fold_deferred(&mut self) {
        let deferred = core::mem::take(&mut self.persistence.deferred);
        self.persistence.pending = self.persistence.pending.then(deferred);
    }

    /// Drains the core's events while another call holds the store: kept
    /// aside and folded in when that job ends.
    pub(crate) fn defer_events(&mut self) {
        let held = core::mem::take(&mut self.persistence.pending);
        self.drain_events();
        let drained = core::mem::replace(&mut self.persistence.pending, held);
        self.persistence.deferred = self.persistence.deferred.then(drained);
    }
}

/// A load's session.
fn loaded(answer: StoreAnswer) -> Result<Option<Session>, StoreError> {
    match answer? {
        StoreValue::Loaded(stored) => Ok(stored.map(|s| *s)),
        _ => Ok(None),
    }
}

/// How a save's end reads for what it was for.
fn finish_save(
    mode: SaveMode,
    result: Result<JobValue, StoreError>,
) -> Result<JobValue, StoreError> {
    match (mode, result) {
        (SaveMode::Persist { changed: false }, Err(_)) => Ok(JobValue::Saved(Saved::Nothing)),
        (SaveMode::MovedOn { .. }, Ok(JobValue::Saved(saved))) => {
            Ok(JobValue::MovedOn(saved == Saved::Adopted))
        }
        (SaveMode::MovedOn { rotation: true }, Err(_)) => Ok(JobValue::MovedOn(false)),
        (_, result) => result,
    }
}
