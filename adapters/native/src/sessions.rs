//! [`Sessions`]: one application-wide handle serving any number of
//! sessions by id — a web backend's users — on one transport and one core
//! ([`tokenkeeper::driver::Sessions`]): configuration, DPoP key and token
//! endpoint nonces, machine tokens shared; single flight per session; a
//! bounded number of sessions in memory (least recently used), the rest
//! loaded from the store on demand. An adapter wraps it as it wraps
//! [`Handle`](crate::Handle) (`tokenkeeper_reqwest::Sessions`).
//!
//! ```text
//! SessionsSettings::new(config) .store/.async_store/.capacity/.dpop
//!   ─ build(transport) ─> Sessions ─ (Arc in the adapter)
//!   .login(&transaction, callback)      ─► (id, token)   new session stored under id
//!   .insert(session)                    ─► id            a session from elsewhere
//!   .get_access_token(id, &request)     ─► token         cached (no I/O) or refreshed
//!   .resource(id, &request, method, url) ─► ResourceCall
//!   .logout(id) / .clear(id)
//!
//! each call on id: run(id, Call) ─> drive(host, core, ById(id), call),
//!   the one effect loop of Handle too, lock held per step only —
//!   core.poll(id, call) ─> Effect: Send | Store | Sign | Wait | Done
//! ```
//!
//! The core sits behind a `std::sync::Mutex` held for one driver step at a
//! time: never across an `.await`, a request, a store operation or a
//! signature. A cached token is answered under the lock alone.

use std::sync::{Mutex, MutexGuard};

use event_listener::Event;
use tokenkeeper::dpop::{EcdsaSignature, Signer};
use tokenkeeper::driver::{self, Ask, Call, Finished};
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Config, ConnectionRequest, HttpRequest, HttpResponse,
    Session, SessionStore, TokenManager, TokenRequest,
};

use crate::drive::{ById, Host, drive, lock};
use crate::handle::{DeferredSigner, unexpected};
use crate::platform::{OsEntropy, now};
use crate::store::{Blocking, DynStore, StoreSource};
use crate::{Error, Transport};

/// How many sessions [`SessionsSettings`] keeps in memory unless told.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// What an adapter's sessions builder collects besides its HTTP client:
/// the configuration, the store, the bound on sessions in memory and the
/// DPoP signers. [`SessionsSettings::build`] makes the [`Sessions`].
#[must_use]
pub struct SessionsSettings {
    config: Config,
    store: StoreSource,
    capacity: usize,
    dpop: Option<Box<dyn Signer + Send>>,
    deferred_signer: Option<Box<DeferredSigner>>,
}

impl SessionsSettings {
    /// Settings for `config`: no store (this process only: memory holds the
    /// only copy of each session, so none is evicted while it holds one,
    /// whatever the capacity), [`DEFAULT_CAPACITY`] sessions in memory, no
    /// DPoP.
    pub fn new(config: Config) -> Self {
        SessionsSettings {
            config,
            store: StoreSource::Memory,
            capacity: DEFAULT_CAPACITY,
            dpop: None,
            deferred_signer: None,
        }
    }

    /// DPoP with `signer` for every session (one key, shared nonces).
    pub fn dpop(&mut self, signer: Box<dyn Signer + Send>) {
        self.dpop = Some(signer);
    }

    /// The signer for a DPoP signer that defers.
    pub fn deferred_signer(&mut self, sign: Box<DeferredSigner>) {
        self.deferred_signer = Some(sign);
    }

    /// A blocking store (it must answer at once in an async adapter); each
    /// session is kept under its id.
    pub fn store(&mut self, store: Box<dyn SessionStore + Send>) {
        self.store = StoreSource::Blocking(store);
    }

    /// An awaited store, run with no lock held.
    pub fn async_store(&mut self, store: impl AsyncSessionStore + 'static) {
        self.store = StoreSource::Async(Box::new(store));
    }

    /// At most `capacity` (at least one) sessions in memory; the least
    /// recently used idle one goes first.
    pub fn capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// The sessions handle sending with `transport`. Nothing is loaded
    /// here: each session is loaded from the store at its first call.
    ///
    /// # Errors
    /// [`Error::Core`] when the DPoP signer is not ES256.
    pub fn build<T: Transport>(self, transport: T) -> Result<Sessions<T>, Error<T::Error>> {
        let max_body = self.config.limits().max_body_bytes;
        let mut manager = TokenManager::new(self.config, OsEntropy);
        if let Some(signer) = self.dpop {
            manager.enable_dpop(signer)?;
        }
        let mut core = driver::Sessions::new(manager, self.capacity);
        let store: Box<dyn DynStore> = match self.store {
            StoreSource::Memory => {
                core = core.memory_only();
                StoreSource::never_asked()
            }
            StoreSource::Blocking(store) => Box::new(Blocking(Mutex::new(store))),
            StoreSource::Async(store) => store,
        };
        Ok(Sessions {
            core: Mutex::new(core),
            host: Host {
                transport,
                store,
                progress: Event::new(),
                max_body,
                deferred_signer: self.deferred_signer,
            },
        })
    }
}

/// Many sessions by id on one transport, shared by every caller (an
/// adapter's `Sessions` holds it in an `Arc`): configuration, DPoP key and
/// token-endpoint nonces, machine tokens shared; single flight per
/// session; at most the settings' capacity of sessions in memory, the
/// rest loaded from the store on demand. The lock on the core is held for
/// one driver step at a time, never across an `.await`.
pub struct Sessions<T: Transport> {
    core: Mutex<driver::Sessions>,
    /// The transport, the store (each session under its id), the signer
    /// and the waiters' wake-up.
    host: Host<T>,
}

impl<T: Transport> std::fmt::Debug for Sessions<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl<T: Transport> Sessions<T> {
    /// The transport requests are sent with.
    pub fn transport(&self) -> &T {
        &self.host.transport
    }

    /// The number of sessions in memory now.
    #[must_use]
    pub fn in_memory(&self) -> usize {
        self.lock().len()
    }

    /// The DPoP key's JWK thumbprint (for a login's `dpop_jkt`).
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<String> {
        self.lock().manager().dpop_thumbprint().map(String::from)
    }

    /// Session `id`'s access token for `request`: the cached one when it is
    /// in memory and fresh (no I/O, no wait), otherwise loaded and/or
    /// refreshed (one refresh per session at a time; its other callers wait
    /// for it and share its result; other sessions do not wait).
    ///
    /// # Errors
    /// [`Error::Core`] for the core's answers (no session stored under
    /// `id`: login required; the refresh failed, …), a transport error,
    /// [`Error::Store`].
    pub async fn get_access_token(
        &self,
        id: &str,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        if let Some(token) = self.lock().cached_token(id, request, now()) {
            return Ok(token.to_owned());
        }
        match self.run(id, Call::token(Ask::User(request))).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// A federated connection's access token for the session stored under
    /// `id` (Token Vault; see [`Handle::get_connection_token`](crate::Handle::get_connection_token)).
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`]; `failed_to_exchange_refresh_token`
    /// when the server refused the exchange.
    pub async fn get_connection_token(
        &self,
        id: &str,
        request: &ConnectionRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        match self.run(id, Call::token(Ask::Connection(request))).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// A client-credentials token, shared by the whole application.
    ///
    /// # Errors
    /// As [`Sessions::get_access_token`].
    pub async fn get_client_credentials_token(
        &self,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error<T::Error>> {
        match self.run("", Call::token(Ask::Machine(request))).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// Finishes a login (the callback checked against `transaction`, the
    /// code exchanged): the new session is stored under a new id, returned
    /// with its token.
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error, a
    /// transport error, [`Error::Store`].
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<(String, AccessTokenInfo), Error<T::Error>> {
        let (id, dispatch) = self.lock().exchange_code(transaction, callback, now())?;
        match self.run(&id, Call::flight(dispatch)).await? {
            Finished::Token(token) => Ok((id, token)),
            other => Err(unexpected(&other)),
        }
    }

    /// Stores `session` (made elsewhere: a login this handle did not run,
    /// an import) under its id, given one if it has none; returns the id.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn insert(&self, session: Session) -> Result<String, Error<T::Error>> {
        let mut session = session;
        let id = self.lock().assign_id(&mut session);
        self.run(&id, Call::install(session)).await?;
        Ok(id)
    }

    /// A copy of session `id` as held in memory (`None` when it is not in
    /// memory: see [`Sessions::load`]).
    #[must_use]
    pub fn session(&self, id: &str) -> Option<Session> {
        self.lock().session(id).cloned()
    }

    /// The generation of session `id` as held in memory (`None` when it is
    /// not in memory): what [`Sessions::session`] would tell of it, without
    /// copying the session.
    #[must_use]
    pub fn generation(&self, id: &str) -> Option<u64> {
        self.lock().session(id).map(Session::generation)
    }

    /// Session `id`, loaded from the store if it is not in memory.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn load(&self, id: &str) -> Result<Option<Session>, Error<T::Error>> {
        let _held = Held::new(self, id);
        self.run(id, Call::persist()).await?;
        Ok(self.session(id))
    }

    /// Logs session `id` out: marked logged out and saved at once, then
    /// its refresh token revoked (when the configuration has a revocation
    /// endpoint).
    ///
    /// # Errors
    /// [`Error::Core`] (no such session, the revocation failed), a
    /// transport error, [`Error::Store`].
    pub async fn logout(&self, id: &str) -> Result<(), Error<T::Error>> {
        // Held until the revocation is sent: it is this session's flight.
        let _held = Held::new(self, id);
        let out = self.with_session(id, |m| m.logout(now())).await??;
        let Some(out) = out else {
            return Ok(());
        };
        match self.run(id, Call::flight(out)).await? {
            Finished::Revoked => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes session `id` here and from the store.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn clear(&self, id: &str) -> Result<Option<Session>, Error<T::Error>> {
        match self.run(id, Call::clear()).await? {
            Finished::Cleared(session) => Ok(session.map(|s| *s)),
            _ => Ok(None),
        }
    }

    /// Sends a request the core described outside the token lifecycle, with
    /// the token-endpoint settings.
    ///
    /// # Errors
    /// A transport error when it could not be sent.
    pub async fn send_request(
        &self,
        request: HttpRequest,
    ) -> Result<HttpResponse, Error<T::Error>> {
        self.host
            .transport
            .send(request, self.host.max_body, None)
            .await
    }

    /// Calls `f` with the core's manager, session `id` mounted (loaded from
    /// the store first when needed), then saves any change it made.
    ///
    /// # Errors
    /// [`Error::Core`] with [`tokenkeeper::Error::MissingSession`] when no
    /// session is stored under `id`, [`Error::Store`].
    pub async fn with_session<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error<T::Error>> {
        // Held: the session must not be evicted between its load and `f`.
        let _held = Held::new(self, id);
        let mut f = Some(f);
        for _ in 0..2 {
            let result = {
                let mut core = self.lock();
                let f = &mut f;
                core.with_session(id, |m| f.take().map(|f| f(m)))
            };
            if let Some(Some(result)) = result {
                // `f` may have finished or cancelled a flight.
                self.host.notify();
                self.run(id, Call::persist()).await?;
                return Ok(result);
            }
            // Not in memory yet: a persist call loads it first.
            self.run(id, Call::persist()).await?;
        }
        Err(Error::Core(tokenkeeper::Error::MissingSession))
    }

    /// Signs with the deferred signer (no lock held).
    pub(crate) async fn sign(
        &self,
        signing_input: String,
    ) -> Result<EcdsaSignature, Error<T::Error>> {
        self.host.sign(signing_input).await
    }

    /// Drives `call` on session `id` to its end (the one loop, [`drive`],
    /// as [`Handle`](crate::Handle) runs it for its one session). If this
    /// future is dropped, the call is abandoned: its flight cancelled, a
    /// waiting caller of the same session takes over.
    async fn run(&self, id: &str, call: Call<'_, '_>) -> Result<Finished, Error<T::Error>> {
        drive(&self.host, &self.core, ById(id), call).await
    }

    fn lock(&self) -> MutexGuard<'_, driver::Sessions> {
        lock(&self.core)
    }
}

/// Keeps a session in memory while the host works on it across calls.
struct Held<'s, T: Transport> {
    sessions: &'s Sessions<T>,
    id: String,
}

impl<'s, T: Transport> Held<'s, T> {
    fn new(sessions: &'s Sessions<T>, id: &str) -> Self {
        sessions.lock().hold(id);
        Held {
            sessions,
            id: id.to_owned(),
        }
    }
}

impl<T: Transport> Drop for Held<'_, T> {
    fn drop(&mut self) {
        self.sessions.lock().release(&self.id);
    }
}
