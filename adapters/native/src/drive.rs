//! The one effect loop of the native adapters: [`drive`] runs a call on
//! the core to its end, for [`Handle`](crate::Handle) (its one
//! [`Driver`]) and for [`Sessions`](crate::Sessions) (one session of a
//! [`driver::Sessions`], by id) alike. What differs between the two — which
//! core, which session — is a [`Target`]; what the loop does with each
//! effect — send, store, sign, wait — is the [`Host`]'s, shared.
//!
//! ```text
//! drive(host, core, target, call):
//!   loop { lock core; effect = target.poll(core, call, now); unlock
//!     Send  ─> host.transport.send (budget: lease - margin)
//!              ─> lock; target.handle_response | handle_transport_error; notify
//!     Store ─> host.store.run(op).await ─> lock; target.handle_store; notify
//!     Sign  ─> host.deferred_signer      ─> lock; target.handle_signature; notify
//!     Wait  ─> transport.wait(listener, until the deadline) — another process
//!              refreshing: the store's change notice when the target watches
//!              a key, else read again within RELOAD_POLL (not woken by the
//!              callers here: no storm of store reads)
//!     Done  ─> the result (the adapter's transport or signing error kept) }
//!   dropped before Done ─> lock; target.abandon(call); notify
//! ```
//!
//! The core's lock is taken for each step and never held across an
//! `.await`, a request, a store operation or a signature.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use event_listener::Event;
use tokenkeeper::dpop::EcdsaSignature;
use tokenkeeper::driver::{self, Call, Driver, Effect, Finished, StoreAnswer, WaitReason};
use tokenkeeper::store::Changed;
use tokenkeeper::{HttpResponse, UnixTime};

use crate::handle::DeferredSigner;
use crate::platform::{budget, now, until};
use crate::store::DynStore;
use crate::{Error, Transport};

/// How often the store is read while another process refreshes.
pub(crate) const RELOAD_POLL: Duration = Duration::from_millis(50);

/// The longest wait for a store's change notice
/// ([`AsyncSessionStore::changed`](tokenkeeper::AsyncSessionStore::changed))
/// before the store is read anyway.
const CHANGE_POLL: Duration = Duration::from_millis(250);

/// What runs the core's effects: the transport, the store, the deferred
/// signer and the wake-up for waiting callers. One per
/// [`Handle`](crate::Handle) or [`Sessions`](crate::Sessions).
pub(crate) struct Host<T: Transport> {
    pub(crate) transport: T,
    /// Where sessions are kept; its operations are awaited with no lock
    /// held.
    pub(crate) store: Box<dyn DynStore>,
    /// Notified whenever a call makes progress (a flight or a store
    /// operation ends, a flight is cancelled): waiters look again.
    pub(crate) progress: Event,
    pub(crate) max_body: usize,
    pub(crate) deferred_signer: Option<Box<DeferredSigner>>,
}

impl<T: Transport> Host<T> {
    /// Wakes every waiting caller: something changed.
    pub(crate) fn notify(&self) {
        self.progress.notify(usize::MAX);
    }

    /// Signs with the deferred signer (no lock held).
    pub(crate) async fn sign(
        &self,
        signing_input: String,
    ) -> Result<EcdsaSignature, Error<T::Error>> {
        let sign = self.deferred_signer.as_ref().ok_or_else(|| {
            Error::Signing("the DPoP signer deferred and no deferred signer is configured".into())
        })?;
        sign(signing_input).await.map_err(Error::Signing)
    }
}

/// Which session a call drives on which core: the handle's one
/// [`Driver`] ([`One`]), or a session by id of a [`driver::Sessions`]
/// ([`ById`]). Each method is the core's step of the same name.
pub(crate) trait Target: Copy {
    /// The core behind the lock.
    type Core: Send;

    fn poll(self, core: &mut Self::Core, call: &mut Call<'_, '_>, now: UnixTime) -> Effect;

    fn handle_response(
        self,
        core: &mut Self::Core,
        call: &mut Call<'_, '_>,
        response: HttpResponse,
        now: UnixTime,
    );

    fn handle_transport_error(self, core: &mut Self::Core, call: &mut Call<'_, '_>, now: UnixTime);

    fn handle_store(self, core: &mut Self::Core, call: &mut Call<'_, '_>, answer: StoreAnswer);

    fn handle_signature(
        self,
        core: &mut Self::Core,
        call: &mut Call<'_, '_>,
        signature: Option<&EcdsaSignature>,
        now: UnixTime,
    );

    fn abandon(self, core: &mut Self::Core, call: &mut Call<'_, '_>);

    /// The store key whose change notice ends a wait for another process's
    /// refresh; `None`: the store is read again within [`RELOAD_POLL`].
    fn watched_key(self, core: &Self::Core) -> Option<String>;
}

/// The one session of a [`Driver`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct One;

impl Target for One {
    type Core = Driver;

    fn poll(self, core: &mut Driver, call: &mut Call<'_, '_>, now: UnixTime) -> Effect {
        core.poll(call, now)
    }

    fn handle_response(
        self,
        core: &mut Driver,
        call: &mut Call<'_, '_>,
        response: HttpResponse,
        now: UnixTime,
    ) {
        core.handle_response(call, response, now);
    }

    fn handle_transport_error(self, core: &mut Driver, call: &mut Call<'_, '_>, now: UnixTime) {
        core.handle_transport_error(call, now);
    }

    fn handle_store(self, core: &mut Driver, call: &mut Call<'_, '_>, answer: StoreAnswer) {
        core.handle_store(call, answer);
    }

    fn handle_signature(
        self,
        core: &mut Driver,
        call: &mut Call<'_, '_>,
        signature: Option<&EcdsaSignature>,
        now: UnixTime,
    ) {
        core.handle_signature(call, signature, now);
    }

    fn abandon(self, core: &mut Driver, call: &mut Call<'_, '_>) {
        core.abandon(call);
    }

    fn watched_key(self, core: &Driver) -> Option<String> {
        Some(core.key().to_owned())
    }
}

/// Session `.0` of a [`driver::Sessions`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ById<'i>(pub(crate) &'i str);

impl Target for ById<'_> {
    type Core = driver::Sessions;

    fn poll(self, core: &mut driver::Sessions, call: &mut Call<'_, '_>, now: UnixTime) -> Effect {
        core.poll(self.0, call, now)
    }

    fn handle_response(
        self,
        core: &mut driver::Sessions,
        call: &mut Call<'_, '_>,
        response: HttpResponse,
        now: UnixTime,
    ) {
        core.handle_response(self.0, call, response, now);
    }

    fn handle_transport_error(
        self,
        core: &mut driver::Sessions,
        call: &mut Call<'_, '_>,
        now: UnixTime,
    ) {
        core.handle_transport_error(self.0, call, now);
    }

    fn handle_store(
        self,
        core: &mut driver::Sessions,
        call: &mut Call<'_, '_>,
        answer: StoreAnswer,
    ) {
        core.handle_store(self.0, call, answer);
    }

    fn handle_signature(
        self,
        core: &mut driver::Sessions,
        call: &mut Call<'_, '_>,
        signature: Option<&EcdsaSignature>,
        now: UnixTime,
    ) {
        core.handle_signature(self.0, call, signature, now);
    }

    fn abandon(self, core: &mut driver::Sessions, call: &mut Call<'_, '_>) {
        core.abandon(self.0, call);
    }

    fn watched_key(self, _core: &driver::Sessions) -> Option<String> {
        // Kept as it was: many sessions poll the store while another
        // process refreshes.
        None
    }
}

/// Drives `call` on `target` of `core` to its end (see the
/// [module docs](self)). If this future is dropped (a task cancelled, a
/// thread unwinding through [`block_on`](crate::block_on)), the call is
/// abandoned: its flight cancelled, a waiting caller takes over.
pub(crate) async fn drive<T: Transport, G: Target>(
    host: &Host<T>,
    core: &Mutex<G::Core>,
    target: G,
    call: Call<'_, '_>,
) -> Result<Finished, Error<T::Error>> {
    let mut running = Running {
        host,
        core,
        target,
        call,
        armed: true,
    };
    // The adapter's own errors, kept while the driver ends the call.
    let mut failed: Option<Error<T::Error>> = None;
    // The time an answer was handed in, for the poll right after it (the
    // core's clock counts seconds; reading it costs more than the poll).
    let mut answered_at: Option<UnixTime> = None;
    loop {
        let (effect, listener) = {
            let mut state = lock(core);
            let at = answered_at.take().unwrap_or_else(now);
            let effect = target.poll(&mut state, &mut running.call, at);
            // Listening before the lock is released: no wake-up is lost.
            let listener = matches!(effect, Effect::Wait(_)).then(|| host.progress.listen());
            (effect, listener)
        };
        match effect {
            Effect::Send { request, deadline } => {
                let sent = match deadline.map(budget) {
                    Some(None) => Err(Error::Timeout(None)),
                    limit => {
                        host.transport
                            .send(request.request, host.max_body, limit.flatten())
                            .await
                    }
                };
                let mut state = lock(core);
                let at = now();
                answered_at = Some(at);
                match sent {
                    Ok(response) => {
                        target.handle_response(&mut state, &mut running.call, response, at);
                    }
                    Err(error) => {
                        failed = Some(error);
                        target.handle_transport_error(&mut state, &mut running.call, at);
                    }
                }
                drop(state);
                host.notify();
            }
            Effect::Store(op) => {
                let answer = host.store.run(op).await;
                target.handle_store(&mut lock(core), &mut running.call, answer);
                host.notify();
            }
            Effect::Sign(request) => {
                let signature = host.sign(request.signing_input).await;
                let signature = signature.map_err(|e| failed = Some(e)).ok();
                target.handle_signature(
                    &mut lock(core),
                    &mut running.call,
                    signature.as_ref(),
                    now(),
                );
                host.notify();
            }
            Effect::Wait(wait) => {
                let Some(listener) = listener else {
                    continue;
                };
                let pause = match wait.deadline {
                    Some(deadline) => until(deadline),
                    None => Duration::from_secs(1),
                };
                let pause = pause.max(Duration::from_millis(1));
                if wait.reason == WaitReason::OtherProcess {
                    drop(listener);
                    let key = target.watched_key(&lock(core));
                    wait_other_process(host, key, pause).await;
                } else {
                    host.transport.wait(listener, pause).await;
                }
            }
            Effect::Done(result) => {
                running.armed = false;
                return result.map_err(|failure| Error::from_failure(failure, failed.take()));
            }
            other => {
                running.armed = false;
                target.abandon(&mut lock(core), &mut running.call);
                return Err(Error::Unsupported(format!("{other:?}")));
            }
        }
    }
}

/// Another process refreshes: wait for the store's notice that the session
/// under `key` changed (bounded: a notice lost with a connection costs at
/// most [`CHANGE_POLL`]), or, for a store that cannot tell (or no key
/// watched), read it again within [`RELOAD_POLL`]. Not woken by the other
/// callers here: each of them reading the store while it waits would wake
/// the rest into reading it again, round after round, for the whole lease
/// (a storm on the store); what they could learn, the store tells too.
async fn wait_other_process<T: Transport>(host: &Host<T>, key: Option<String>, pause: Duration) {
    if let Some(key) = key
        && host.store.changed(&key, pause.min(CHANGE_POLL)).await != Changed::Unsupported
    {
        return;
    }
    // A listener nobody notifies: the transport's timer alone.
    let timer = Event::new();
    host.transport
        .wait(timer.listen(), pause.min(RELOAD_POLL))
        .await;
}

/// A lock poisoned by a panic elsewhere is used as it is: the driver and
/// the store change whole or not at all.
pub(crate) fn lock<S: ?Sized>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A call in progress: abandoned (its flight cancelled, waiters woken) if
/// its future is dropped before it is done.
struct Running<'h, 'r, 'a, T: Transport, G: Target> {
    host: &'h Host<T>,
    core: &'h Mutex<G::Core>,
    target: G,
    call: Call<'r, 'a>,
    armed: bool,
}

impl<T: Transport, G: Target> Drop for Running<'_, '_, '_, T, G> {
    fn drop(&mut self) {
        if self.armed {
            self.target.abandon(&mut lock(self.core), &mut self.call);
            self.host.notify();
        }
    }
}
