//! One caller's round trip through the driver ([`Call`]): ask, send,
//! complete, persist, wake, revoke, as a state machine the host drives
//! with [`Driver::poll`] and the `handle_*` inputs.

use alloc::boxed::Box;

use super::effect::{Effect, Failure, Finished, StoreAnswer, Wait, WaitReason};
use super::persist::{Job, JobStep, JobValue, MovedOnStage};
use super::{Ask, Driver, Saved, Step, dispatch_id};
use crate::dpop::EcdsaSignature;
use crate::error::Error;
use crate::flight::RequestId;
use crate::http::HttpResponse;
use crate::manager::{Completion, Dispatch, OutgoingRequest};
use crate::session::Session;
use crate::store::StoreError;
use crate::time::UnixTime;
use crate::trace::decision;

/// One caller's round trip: a token asked for, a flight owned (a login's
/// code exchange, a token exchange, a logout's revocation), or a store job
/// (load, install, clear, persist). Made by the constructors below, driven
/// by [`Driver::poll`] until [`Effect::Done`]. A call dropped before it is
/// done must be given to [`Driver::abandon`] (its flight is cancelled, the
/// store released).
#[derive(Debug)]
#[must_use]
pub struct Call<'r, 'a> {
    ask: Option<Ask<'r, 'a>>,
    stage: Stage,
    holds_store: bool,
    /// Counted among its session's callers ([`Sessions`](super::Sessions)
    /// evicts no session a call is under way on).
    pub(crate) entered: bool,
}

/// A store job not started yet (made when it starts: a persist drains the
/// core's events then).
#[derive(Debug)]
enum Spec {
    Load,
    Install(Box<Session>),
    Clear,
    Persist,
    MovedOn,
}

/// (One per call, on the caller's stack, moved only within `poll`: its
/// size does not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Ask the core (a token call).
    Ask {
        waited: Option<RequestId>,
    },
    /// Start a store job (waits while another call holds the store).
    Begin(Spec, Then),
    /// Hand this operation to the host.
    Issue(crate::driver::StoreOp, Job, Then),
    /// The host runs a store operation of `Job`.
    Running(Job, Then),
    /// Go on with a job's result.
    Resume(Then, Result<JobValue, StoreError>),
    /// Own flight `id`: send or sign.
    Flight(RequestId, Dispatch),
    /// The host sends flight `id`.
    OnWire(RequestId),
    /// The host signs for flight `id`.
    Signing(RequestId),
    /// Sends the revocations the core asks for, then ends with `result`.
    Revoking {
        on_wire: Option<RequestId>,
        result: Result<Finished, Failure>,
    },
    Done,
}

/// What follows a store job.
#[derive(Debug)]
enum Then {
    /// The call is a store job: its result is the call's.
    Return,
    /// The core answered `Step` and what changed was saved.
    Asked(Step),
    /// Before the flight goes out: has the store moved on?
    LostCheck(Dispatch),
    /// A lost flight was cancelled and that saved: ask again.
    AskAgain,
    /// Another process refreshes: the store was read.
    Reloaded(UnixTime),
    /// The flight ended with this; its change was saved.
    Finish(Result<Finished, Failure>),
    /// A retry of a refresh: the renewed claim was saved.
    Confirmed(RequestId, Dispatch),
    /// A retry of a refresh: has the store moved on?
    ConfirmMovedOn(RequestId, Dispatch),
    /// The deferred signature was applied and saved.
    Signed(RequestId, Result<OutgoingRequest, Error>),
    /// A flight started outside a call (login, exchange, logout): saved.
    StartFlight(Dispatch),
    /// The driver's startup (load, install) ran first; then this.
    Started(Box<Stage>),
}

impl Then {
    /// Whether the job before may be skipped while another call holds the
    /// store (its changes are saved after that call's job): only for an
    /// answer that sends nothing.
    fn may_defer(&self) -> bool {
        matches!(
            self,
            Then::Asked(Step::Ready(_) | Step::Failed(_) | Step::Wait(..) | Step::Reload(_))
        )
    }

    /// The flight this continuation holds, if any.
    fn flight(&self) -> Option<RequestId> {
        match self {
            Then::Asked(Step::Own(dispatch))
            | Then::LostCheck(dispatch)
            | Then::StartFlight(dispatch) => dispatch_id(dispatch),
            Then::Confirmed(id, _) | Then::ConfirmMovedOn(id, _) | Then::Signed(id, _) => Some(*id),
            Then::Started(next) => match &**next {
                Stage::Begin(_, then) => then.flight(),
                _ => None,
            },
            _ => None,
        }
    }
}

impl<'r, 'a> Call<'r, 'a> {
    /// A token call: the cached token, or refreshed (single flight), or
    /// a client-credentials token.
    pub fn token(ask: Ask<'r, 'a>) -> Self {
        Call::with(Some(ask), Stage::Ask { waited: None })
    }

    fn with(ask: Option<Ask<'r, 'a>>, stage: Stage) -> Self {
        Call {
            ask,
            stage,
            holds_store: false,
            entered: false,
        }
    }
}

impl Call<'static, 'static> {
    /// Owns a flight the core started outside a token call (a login's
    /// [`exchange_code`](crate::TokenManager::exchange_code), an
    /// [`exchange_token`](crate::TokenManager::exchange_token), a
    /// [`logout`](crate::TokenManager::logout)'s revocation): what the core
    /// changed is saved first, then it is sent and completed.
    pub fn flight(dispatch: Dispatch) -> Self {
        Call::with(
            None,
            Stage::Begin(Spec::Persist, Then::StartFlight(dispatch)),
        )
    }

    /// Loads the session from the store ([`Finished::Loaded`]).
    pub fn load() -> Self {
        Call::with(None, Stage::Begin(Spec::Load, Then::Return))
    }

    /// Installs `session` (a login) and saves it above the store's floor
    /// ([`Finished::Installed`]). A session without an id gets one.
    pub fn install(session: Session) -> Self {
        Call::with(
            None,
            Stage::Begin(Spec::Install(Box::new(session)), Then::Return),
        )
    }

    /// Removes the session here and in the store ([`Finished::Cleared`]).
    pub fn clear() -> Self {
        Call::with(None, Stage::Begin(Spec::Clear, Then::Return))
    }

    /// Saves what the core changed ([`Finished::Persisted`]), after the
    /// host called the manager itself.
    pub fn persist() -> Self {
        Call::with(None, Stage::Begin(Spec::Persist, Then::Return))
    }
}

impl Call<'_, '_> {
    /// Whether the call is over.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// Whether the call asks for a client-credentials token (served by no
    /// session).
    #[must_use]
    pub fn is_machine(&self) -> bool {
        matches!(self.ask, Some(Ask::Machine(_)))
    }
}

impl Driver {
    /// What `call` needs next. See [`Effect`] for what the host does with
    /// each.
    pub fn poll(&mut self, call: &mut Call<'_, '_>, now: UnixTime) -> Effect {
        if self.persistence.startup.is_some()
            && !call.holds_store
            && matches!(call.stage, Stage::Ask { .. } | Stage::Begin(..))
        {
            // Also while another call's startup is between its load and
            // its install: a second load would replace the session under
            // that call's feet.
            if self.persistence.store_busy || self.persistence.starting {
                return Effect::Wait(Wait {
                    deadline: None,
                    reason: WaitReason::Store,
                });
            }
            self.persistence.starting = true;
            let next = core::mem::replace(&mut call.stage, Stage::Done);
            call.stage = Stage::Begin(Spec::Load, Then::Started(Box::new(next)));
        }
        loop {
            match core::mem::replace(&mut call.stage, Stage::Done) {
                Stage::Ask { waited } => {
                    let Some(ask) = call.ask else {
                        return Effect::Done(Err(Failure::Core(Error::RequestAbandoned)));
                    };
                    let step = self.ask(ask, waited, now);
                    call.stage = Stage::Begin(Spec::Persist, Then::Asked(step));
                }
                Stage::Begin(Spec::Persist, then)
                    if self.persistence.memory_only && !self.persistence.store_busy =>
                {
                    let saved = self.persist_in_memory();
                    call.stage = Stage::Resume(then, Ok(JobValue::Saved(saved)));
                }
                Stage::Begin(spec, then) => {
                    if self.persistence.store_busy && !call.holds_store {
                        if matches!(spec, Spec::Persist) && then.may_defer() {
                            self.defer_events();
                            call.stage = Stage::Resume(then, Ok(JobValue::Saved(Saved::Nothing)));
                            continue;
                        }
                        call.stage = Stage::Begin(spec, then);
                        return Effect::Wait(Wait {
                            deadline: None,
                            reason: WaitReason::Store,
                        });
                    }
                    let job = match spec {
                        Spec::Load => Job::Load,
                        Spec::Install(session) => {
                            Job::Install(session, super::persist::InstallStage::Floor)
                        }
                        Spec::Clear => Job::Clear,
                        Spec::Persist => self.persist_job(),
                        Spec::MovedOn => Job::MovedOn(MovedOnStage::Start),
                    };
                    self.persistence.store_busy = true;
                    call.holds_store = true;
                    self.step_job(call, job, then, None);
                }
                Stage::Issue(op, job, then) => {
                    call.stage = Stage::Running(job, then);
                    return Effect::Store(op);
                }
                Stage::Resume(then, result) => {
                    if let Some(effect) = self.then(call, then, result, now) {
                        return effect;
                    }
                }
                Stage::Flight(id, dispatch) => match dispatch {
                    Dispatch::Send(out) => {
                        if !self.manager.is_in_flight(id) {
                            // The lease ran out (another caller may have
                            // taken the flight over): not sent at all.
                            let _ = self.manager.handle_transport_error(id, now);
                            call.stage = Stage::Begin(
                                Spec::Persist,
                                Then::Finish(Err(Failure::LeaseExpired)),
                            );
                            continue;
                        }
                        if self.manager.is_refresh(id) && !self.manager.holds_own_claim() {
                            // The session here was replaced (another call
                            // loaded or adopted the store's) between the
                            // claim and its save: the save wrote the store's
                            // claim, not this one. Not sent; ask again.
                            decision!(info, event = "claim_lost", request_id = id.as_u64());
                            self.lost(call, id);
                            continue;
                        }
                        call.stage = Stage::OnWire(id);
                        return Effect::Send {
                            request: out,
                            deadline: self.manager.poll_timeout(),
                        };
                    }
                    Dispatch::Sign(request) => {
                        call.stage = Stage::Signing(id);
                        return Effect::Sign(request);
                    }
                },
                Stage::Revoking {
                    on_wire: None,
                    result,
                } => match self.manager.poll_revocation(now) {
                    Some(Ok(Dispatch::Send(out))) => {
                        call.stage = Stage::Revoking {
                            on_wire: Some(out.id),
                            result,
                        };
                        return Effect::Send {
                            request: out,
                            deadline: None,
                        };
                    }
                    Some(Ok(other)) => {
                        if let Some(id) = dispatch_id(&other) {
                            let _ = self.manager.cancel(id);
                        }
                        call.stage = Stage::Revoking {
                            on_wire: None,
                            result,
                        };
                    }
                    Some(Err(_)) => {
                        call.stage = Stage::Revoking {
                            on_wire: None,
                            result,
                        };
                    }
                    None => return Effect::Done(result),
                },
                // Polled while the host owes an answer: nothing to do.
                stage @ (Stage::Running(..)
                | Stage::OnWire(_)
                | Stage::Signing(_)
                | Stage::Revoking { .. }) => {
                    call.stage = stage;
                    return Effect::Wait(Wait {
                        deadline: None,
                        reason: WaitReason::Flight,
                    });
                }
                Stage::Done => return Effect::Done(Err(Failure::Core(Error::RequestAbandoned))),
            }
        }
    }

    /// The answer to an [`Effect::Store`] of `call`.
    pub fn handle_store(&mut self, call: &mut Call<'_, '_>, answer: StoreAnswer) {
        match core::mem::replace(&mut call.stage, Stage::Done) {
            Stage::Running(job, then) => self.step_job(call, job, then, Some(answer)),
            other => call.stage = other,
        }
    }

    /// The response to an [`Effect::Send`] of `call`.
    pub fn handle_response(
        &mut self,
        call: &mut Call<'_, '_>,
        response: HttpResponse,
        now: UnixTime,
    ) {
        match core::mem::replace(&mut call.stage, Stage::Done) {
            Stage::OnWire(id) => {
                let result = match self.manager.handle_response(id, response, now) {
                    Completion::Ready(token) => Ok(Finished::Token(token.to_owned())),
                    Completion::Exchanged(response) => Ok(Finished::Exchanged(response)),
                    Completion::Revoked => Ok(Finished::Revoked),
                    // A retry goes out only while the stored session has
                    // not moved on (its refresh token is spent again).
                    Completion::Resend(out) => return self.confirm(call, id, Dispatch::Send(out)),
                    Completion::Sign(request) => {
                        return self.confirm(call, id, Dispatch::Sign(request));
                    }
                    Completion::Failed(error) => Err(Failure::Core(error)),
                };
                call.stage = Stage::Begin(Spec::Persist, Then::Finish(result));
            }
            Stage::Revoking {
                on_wire: Some(id),
                result,
            } => {
                // Best effort: a failed revocation leaves nothing to do.
                let _ = self.manager.handle_response(id, response, now);
                call.stage = Stage::Revoking {
                    on_wire: None,
                    result,
                };
            }
            other => call.stage = other,
        }
    }

    /// The [`Effect::Send`] of `call` failed in transport (or ran out of
    /// time): the flight is released, nothing stored changes; the call
    /// ends with [`Failure::Transport`].
    pub fn handle_transport_error(&mut self, call: &mut Call<'_, '_>, now: UnixTime) {
        match core::mem::replace(&mut call.stage, Stage::Done) {
            Stage::OnWire(id) => {
                let _ = self.manager.handle_transport_error(id, now);
                call.stage = Stage::Begin(Spec::Persist, Then::Finish(Err(Failure::Transport)));
            }
            Stage::Revoking {
                on_wire: Some(id),
                result,
            } => {
                let _ = self.manager.handle_transport_error(id, now);
                call.stage = Stage::Revoking {
                    on_wire: None,
                    result,
                };
            }
            other => call.stage = other,
        }
    }

    /// The deferred signature for an [`Effect::Sign`] of `call` (`None`:
    /// the signer failed; the call ends with [`Failure::Signing`]).
    pub fn handle_signature(
        &mut self,
        call: &mut Call<'_, '_>,
        signature: Option<&EcdsaSignature>,
        now: UnixTime,
    ) {
        match core::mem::replace(&mut call.stage, Stage::Done) {
            Stage::Signing(id) => match signature {
                Some(signature) => {
                    let out = self.manager.handle_signature(id, signature, now);
                    call.stage = Stage::Begin(Spec::Persist, Then::Signed(id, out));
                }
                None => {
                    let _ = self.manager.cancel(id);
                    call.stage = Stage::Begin(Spec::Persist, Then::Finish(Err(Failure::Signing)));
                }
            },
            other => call.stage = other,
        }
    }

    /// `call` is dropped before it is done (its caller went away): its
    /// flight is cancelled (a waiting caller takes its turn) and the store
    /// released (what the operation on it did is unknown: the change is
    /// saved again with the next).
    pub fn abandon(&mut self, call: &mut Call<'_, '_>) {
        if matches!(
            &call.stage,
            Stage::Begin(_, Then::Started(_))
                | Stage::Issue(_, _, Then::Started(_))
                | Stage::Running(_, Then::Started(_))
                | Stage::Resume(Then::Started(_), _)
        ) {
            // The next call starts the driver again.
            self.persistence.starting = false;
        }
        let flight = match core::mem::replace(&mut call.stage, Stage::Done) {
            Stage::Flight(id, _) | Stage::OnWire(id) | Stage::Signing(id) => Some(id),
            Stage::Revoking { on_wire, .. } => on_wire,
            Stage::Begin(_, then) | Stage::Running(_, then) | Stage::Resume(then, _) => {
                then.flight()
            }
            Stage::Issue(_, _, then) => then.flight(),
            Stage::Ask { .. } | Stage::Done => None,
        };
        if let Some(id) = flight {
            let _ = self.manager.cancel(id);
        }
        if call.holds_store {
            self.persistence.pending.any = true;
            self.release(call);
        }
    }

    /// Runs a job one step: its next operation, or its end.
    fn step_job(
        &mut self,
        call: &mut Call<'_, '_>,
        job: Job,
        then: Then,
        answer: Option<StoreAnswer>,
    ) {
        let step = self.advance(job, answer);
        match self.settle_in_memory(step) {
            JobStep::Op(op, job) => call.stage = Stage::Issue(op, job, then),
            JobStep::Done(result) => {
                if matches!(then, Then::Started(_)) {
                    self.startup_job_done(result.is_ok());
                }
                self.release(call);
                call.stage = Stage::Resume(then, result);
            }
        }
    }

    /// A startup job (its load, or the install after it) ended. Once the
    /// session is loaded and nothing is left to install, the driver has
    /// started — decided here, when the store's answer arrives (the host
    /// wakes the waiting callers then), not when the starting call is
    /// polled again. A failed job leaves the startup to the next call.
    fn startup_job_done(&mut self, ok: bool) {
        if !ok {
            self.persistence.starting = false;
        } else if matches!(self.persistence.startup, Some(None)) {
            self.persistence.startup = None;
            self.persistence.starting = false;
        } else if self.persistence.startup.is_none() {
            // The install after the load.
            self.persistence.starting = false;
        }
    }

    fn release(&mut self, call: &mut Call<'_, '_>) {
        if call.holds_store {
            call.holds_store = false;
            self.persistence.store_busy = false;
            self.fold_deferred();
        }
    }

    /// The call's result is known: the revocations the core asks for go
    /// out, then it ends.
    fn finish(&mut self, call: &mut Call<'_, '_>, result: Result<Finished, Failure>) {
        call.stage = Stage::Revoking {
            on_wire: None,
            result,
        };
    }

    /// A retry of flight `id` (a `use_dpop_nonce` resend): a retry of a
    /// refresh spends the refresh token again, so the stored session must
    /// not have moved on; the renewed claim is saved first.
    fn confirm(&mut self, call: &mut Call<'_, '_>, id: RequestId, next: Dispatch) {
        call.stage = if self.manager.is_refresh(id) {
            Stage::Begin(Spec::Persist, Then::Confirmed(id, next))
        } else {
            Stage::Flight(id, next)
        };
    }

    /// Goes on after a store job; an effect when the call must wait.
    fn then(
        &mut self,
        call: &mut Call<'_, '_>,
        then: Then,
        result: Result<JobValue, StoreError>,
        now: UnixTime,
    ) -> Option<Effect> {
        let _ = now;
        let abandoned = || Err(Failure::Core(Error::RequestAbandoned));
        match then {
            Then::Return => {
                let result = result
                    .map(|value| match value {
                        JobValue::Loaded(found) => Finished::Loaded(found),
                        JobValue::Installed => Finished::Installed,
                        JobValue::Cleared(session) => Finished::Cleared(session),
                        JobValue::Saved(saved) => Finished::Persisted(saved),
                        JobValue::MovedOn(_) => Finished::Persisted(Saved::Nothing),
                    })
                    .map_err(Failure::Store);
                self.finish(call, result);
            }
            Then::Asked(step) => {
                let saved = result.map(|value| match value {
                    JobValue::Saved(saved) => saved,
                    _ => Saved::Nothing,
                });
                let Step::Own(dispatch) = step else {
                    return match saved {
                        Err(error) => {
                            self.finish(call, Err(Failure::Store(error)));
                            None
                        }
                        Ok(_) => self.deliver(call, step),
                    };
                };
                let Some(id) = dispatch_id(&dispatch) else {
                    self.finish(call, abandoned());
                    return None;
                };
                // A refresh spends the session's refresh token: it must
                // still be the live one. With a shared store the core's
                // claim was just saved with compare-and-swap (lost: another
                // process refreshes); without, compare with the store — a
                // store there is: with none, this driver is the only
                // writer.
                match saved {
                    Ok(Saved::Stored) => call.stage = Stage::Flight(id, dispatch),
                    Ok(Saved::Adopted) => self.lost(call, id),
                    Ok(Saved::Nothing)
                        if matches!(call.ask, Some(Ask::User(_)))
                            && !self.persistence.is_memory_only() =>
                    {
                        call.stage = Stage::Begin(Spec::MovedOn, Then::LostCheck(dispatch));
                    }
                    Ok(Saved::Nothing) => call.stage = Stage::Flight(id, dispatch),
                    Err(error) => {
                        let _ = self.manager.cancel(id);
                        self.finish(call, Err(Failure::Store(error)));
                    }
                }
            }
            Then::LostCheck(dispatch) => {
                let id = dispatch_id(&dispatch)?;
                match result {
                    Ok(JobValue::MovedOn(true)) => self.lost(call, id),
                    Ok(_) => call.stage = Stage::Flight(id, dispatch),
                    Err(error) => {
                        let _ = self.manager.cancel(id);
                        self.finish(call, Err(Failure::Store(error)));
                    }
                }
            }
            Then::AskAgain => match result {
                Ok(_) => call.stage = Stage::Ask { waited: None },
                Err(error) => self.finish(call, Err(Failure::Store(error))),
            },
            Then::Reloaded(claim_ends) => match result {
                Ok(JobValue::MovedOn(true)) => call.stage = Stage::Ask { waited: None },
                Ok(_) => {
                    call.stage = Stage::Ask { waited: None };
                    return Some(Effect::Wait(Wait {
                        deadline: Some(claim_ends),
                        reason: WaitReason::OtherProcess,
                    }));
                }
                Err(error) => self.finish(call, Err(Failure::Store(error))),
            },
            Then::Finish(outcome) => {
                let outcome = outcome.and_then(|done| result.map(|_| done).map_err(Failure::Store));
                self.finish(call, outcome);
            }
            Then::Confirmed(id, next) => match result {
                Ok(JobValue::Saved(Saved::Adopted)) => {
                    let _ = self.manager.cancel(id);
                    call.stage = Stage::Begin(Spec::Persist, Then::Finish(abandoned()));
                }
                Ok(_) => call.stage = Stage::Begin(Spec::MovedOn, Then::ConfirmMovedOn(id, next)),
                Err(error) => {
                    let _ = self.manager.cancel(id);
                    self.finish(call, Err(Failure::Store(error)));
                }
            },
            Then::ConfirmMovedOn(id, next) => match result {
                Ok(JobValue::MovedOn(true)) => {
                    let _ = self.manager.cancel(id);
                    call.stage = Stage::Begin(Spec::Persist, Then::Finish(abandoned()));
                }
                Ok(_) => call.stage = Stage::Flight(id, next),
                Err(error) => {
                    let _ = self.manager.cancel(id);
                    self.finish(call, Err(Failure::Store(error)));
                }
            },
            Then::Signed(id, out) => match (result, out) {
                (Ok(_), Ok(out)) => call.stage = Stage::Flight(id, Dispatch::Send(out)),
                (Ok(_), Err(error)) => {
                    let _ = self.manager.cancel(id);
                    self.finish(call, Err(Failure::Core(error)));
                }
                (Err(error), _) => {
                    let _ = self.manager.cancel(id);
                    self.finish(call, Err(Failure::Store(error)));
                }
            },
            Then::Started(next) => match result {
                Ok(JobValue::Loaded(_)) => match self.persistence.startup.take() {
                    Some(Some(session)) => {
                        call.stage = Stage::Begin(Spec::Install(session), Then::Started(next));
                    }
                    _ => call.stage = *next,
                },
                Ok(_) => call.stage = *next,
                Err(error) => self.finish(call, Err(Failure::Store(error))),
            },
            Then::StartFlight(dispatch) => {
                let id = dispatch_id(&dispatch)?;
                match result {
                    Ok(_) => call.stage = Stage::Flight(id, dispatch),
                    Err(error) => {
                        let _ = self.manager.cancel(id);
                        self.finish(call, Err(Failure::Store(error)));
                    }
                }
            }
        }
        None
    }

    /// Another writer moved the session on: the flight is cancelled
    /// unsent, that saved, and the core asked again.
    fn lost(&mut self, call: &mut Call<'_, '_>, id: RequestId) {
        let _ = self.manager.cancel(id);
        call.stage = Stage::Begin(Spec::Persist, Then::AskAgain);
    }

    /// Hands the core's answer (not a flight) to the caller.
    fn deliver(&mut self, call: &mut Call<'_, '_>, step: Step) -> Option<Effect> {
        match step {
            Step::Ready(token) => self.finish(call, Ok(Finished::Token(token))),
            Step::Failed(error) => self.finish(call, Err(Failure::Core(error))),
            Step::Wait(id, deadline) => {
                call.stage = Stage::Ask { waited: Some(id) };
                return Some(Effect::Wait(Wait {
                    deadline,
                    reason: WaitReason::Flight,
                }));
            }
            Step::Reload(until) => {
                call.stage = Stage::Begin(Spec::MovedOn, Then::Reloaded(until));
            }
            Step::Own(_) => self.finish(call, Err(Failure::Core(Error::RequestAbandoned))),
        }
        None
    }
}
