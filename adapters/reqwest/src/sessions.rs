//! [`Sessions`]: one application-wide handle serving any number of
//! sessions by id — a web backend's users — on one client and one core
//! ([`tokenkeeper::driver::Sessions`]): configuration, DPoP key and token
//! endpoint nonces, machine tokens shared; single flight per session; a
//! bounded number of sessions in memory, the rest loaded from the store on
//! demand.
//!
//! ```text
//! Sessions::builder(config).store(..)/async_store(..).capacity(n).build()
//!   .login(&transaction, callback)      ─► (id, token)   new session stored under id
//!   .insert(session)                    ─► id            a session from elsewhere
//!   .get_access_token(id, &request)     ─► token         cached (no I/O) or refreshed
//!   .send_authorized(id, &request, req) ─► response
//!   .logout(id) / .clear(id)
//! ```
//!
//! The core sits behind a `std::sync::Mutex` held for one driver step at a
//! time: never across an `.await`, a request or a store operation. A
//! cached token is answered under the lock alone.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use event_listener::Event;
use tokenkeeper::dpop::{EcdsaSignature, Signer};
use tokenkeeper::driver::{self, Ask, Call, Effect, Finished, WaitReason};
use tokenkeeper::login::LoginTransaction;
use tokenkeeper::{
    AccessTokenInfo, AsyncSessionStore, Authorization, Config, Headers, HttpResponse,
    ResourceRetries, ResourceVerdict, Session, SessionStore, TokenManager, TokenRequest,
    UnsharedStore,
};

use crate::{
    Blocking, DEFAULT_TIMEOUT, DynStore, Error, OsEntropy, RELOAD_POLL, StoreSource, budget, error,
    follows_redirects, lock, platform::now, send, until, wait_for, with_roots,
};

/// The application-wide handle (see the [module docs](self)). Cheap to
/// clone; every clone serves the same sessions.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    core: Mutex<driver::Sessions>,
    store: Box<dyn DynStore>,
    /// Notified whenever a call makes progress.
    progress: Event,
    max_body: usize,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// Builds a [`Sessions`].
#[must_use]
pub struct SessionsBuilder {
    config: Config,
    client: Option<reqwest::Client>,
    timeout: Duration,
    store: StoreSource,
    capacity: usize,
    dpop: Option<Box<dyn Signer + Send>>,
}

impl SessionsBuilder {
    /// Sends with `client` (it must not follow redirects; see
    /// [`crate::client`]).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The default client's timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps sessions in `store` (blocking: must answer at once, as an
    /// in-memory one does). Default: memory, this process only.
    pub fn store(mut self, store: impl SessionStore + Send + 'static) -> Self {
        self.store = StoreSource::Blocking(Box::new(store));
        self
    }

    /// Keeps sessions in an async `store`, awaited with no lock held.
    pub fn async_store(mut self, store: impl AsyncSessionStore + 'static) -> Self {
        self.store = StoreSource::Async(Box::new(store));
        self
    }

    /// At most `capacity` sessions in memory (default 10,000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// DPoP with `signer` for every session (one key, shared nonces).
    pub fn dpop(mut self, signer: impl Signer + Send + 'static) -> Self {
        self.dpop = Some(Box::new(signer));
        self
    }

    /// The handle.
    ///
    /// # Errors
    /// [`Error::ClientFollowsRedirects`], [`Error::Transport`] when the
    /// default client cannot be built, [`Error::Core`] for a DPoP signer
    /// that is not ES256.
    pub fn build(self) -> Result<Sessions, Error> {
        let client = match self.client {
            Some(client) if follows_redirects(&client) => {
                return Err(Error::ClientFollowsRedirects);
            }
            Some(client) => client,
            None => with_roots(reqwest::Client::builder().timeout(self.timeout), &[])?,
        };
        let max_body = self.config.limits().max_body_bytes;
        let mut manager = TokenManager::new(self.config, OsEntropy);
        if let Some(signer) = self.dpop {
            manager.enable_dpop(signer)?;
        }
        let store: Box<dyn DynStore> = match self.store {
            StoreSource::Blocking(store) => Box::new(Blocking(Mutex::new(store))),
            StoreSource::Async(store) => store,
        };
        Ok(Sessions {
            inner: Arc::new(Inner {
                client,
                core: Mutex::new(driver::Sessions::new(manager, self.capacity)),
                store,
                progress: Event::new(),
                max_body,
            }),
        })
    }
}

impl Sessions {
    /// A builder: client, store, capacity, DPoP.
    pub fn builder(config: Config) -> SessionsBuilder {
        SessionsBuilder {
            config,
            client: None,
            timeout: DEFAULT_TIMEOUT,
            store: StoreSource::Blocking(Box::new(UnsharedStore::new())),
            capacity: 10_000,
            dpop: None,
        }
    }

    /// The client requests are sent with.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    /// The number of sessions in memory now.
    #[must_use]
    pub fn in_memory(&self) -> usize {
        self.inner.lock().len()
    }

    /// The DPoP key's JWK thumbprint (for a login's `dpop_jkt`).
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<String> {
        self.inner
            .lock()
            .manager()
            .dpop_thumbprint()
            .map(String::from)
    }

    /// Session `id`'s access token for `request`: the cached one when it is
    /// in memory and fresh (no I/O, no wait), otherwise loaded and/or
    /// refreshed (one refresh per session at a time; its other callers wait
    /// for it and share its result).
    ///
    /// # Errors
    /// As [`TokenKeeper::get_access_token`](crate::TokenKeeper::get_access_token).
    pub async fn get_access_token(
        &self,
        id: &str,
        request: &TokenRequest<'_>,
    ) -> Result<AccessTokenInfo, Error> {
        if let Some(token) = self.inner.lock().cached_token(id, request, now()) {
            return Ok(token.to_owned());
        }
        match self.run(id, Call::token(Ask::User(request))).await? {
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
    ) -> Result<AccessTokenInfo, Error> {
        match self.run("", Call::token(Ask::Machine(request))).await? {
            Finished::Token(token) => Ok(token),
            other => Err(unexpected(&other)),
        }
    }

    /// Finishes a login (see [`TokenKeeper::login`](crate::TokenKeeper::login)):
    /// the new session is stored under a new id, returned with its token.
    ///
    /// # Errors
    /// [`Error::Core`] with the failed check or the server's error,
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn login(
        &self,
        transaction: &LoginTransaction,
        callback: &str,
    ) -> Result<(String, AccessTokenInfo), Error> {
        let (id, dispatch) = self
            .inner
            .lock()
            .exchange_code(transaction, callback, now())?;
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
    pub async fn insert(&self, session: Session) -> Result<String, Error> {
        let mut session = session;
        let id = self.inner.lock().assign_id(&mut session);
        self.run(&id, Call::install(session)).await?;
        Ok(id)
    }

    /// A copy of session `id` as held in memory (`None` when it is not in
    /// memory: see [`Sessions::load`]).
    #[must_use]
    pub fn session(&self, id: &str) -> Option<Session> {
        self.inner.lock().session(id).cloned()
    }

    /// Session `id`, loaded from the store if it is not in memory.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn load(&self, id: &str) -> Result<Option<Session>, Error> {
        let _held = Held::new(&self.inner, id);
        self.run(id, Call::persist()).await?;
        Ok(self.session(id))
    }

    /// Logs session `id` out: marked logged out and saved at once, then
    /// its refresh token revoked (when the configuration has a revocation
    /// endpoint).
    ///
    /// # Errors
    /// [`Error::Core`] (no such session, the revocation failed),
    /// [`Error::Transport`], [`Error::Store`].
    pub async fn logout(&self, id: &str) -> Result<(), Error> {
        let _held = Held::new(&self.inner, id);
        // Loads the session when it is not in memory.
        self.run(id, Call::persist()).await?;
        let out = self
            .inner
            .lock()
            .with_session(id, |m| m.logout(now()))
            .ok_or(Error::Core(tokenkeeper::Error::MissingSession))??;
        let Some(out) = out else {
            self.run(id, Call::persist()).await?;
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
    pub async fn clear(&self, id: &str) -> Result<Option<Session>, Error> {
        match self.run(id, Call::clear()).await? {
            Finished::Cleared(session) => Ok(session.map(|s| *s)),
            _ => Ok(None),
        }
    }

    /// Sends `request` with session `id`'s token for `token_request` (see
    /// [`TokenKeeper::send_authorized`](crate::TokenKeeper::send_authorized)).
    ///
    /// # Errors
    /// Getting the token, authorizing it, or sending.
    pub async fn send_authorized(
        &self,
        id: &str,
        token_request: &TokenRequest<'_>,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, Error> {
        let _held = Held::new(&self.inner, id);
        let method = tokenkeeper::Method::new(request.method().as_str());
        let url = request.url().to_string();
        let mut token = self.get_access_token(id, token_request).await?;
        let mut retries = ResourceRetries::new();
        let mut next = Some(request);
        while let Some(mut attempt) = next.take() {
            let spare = attempt.try_clone();
            let authorization = self
                .with_session(id, |m| m.authorize(&method, &url, &token, now()))
                .await??;
            let headers = match authorization {
                Authorization::Ready(headers) => headers,
                other => return Err(Error::Unsupported(format!("{other:?}"))),
            };
            for (name, _) in headers.iter() {
                attempt.headers_mut().remove(name);
            }
            for (name, value) in headers.iter() {
                let name = http::HeaderName::try_from(name).map_err(http::Error::from)?;
                let value = http::HeaderValue::try_from(value).map_err(http::Error::from)?;
                attempt.headers_mut().append(name, value);
            }
            let response = self
                .inner
                .client
                .execute(attempt)
                .await
                .map_err(error::transport)?;
            let seen = HttpResponse {
                status: response.status().as_u16(),
                headers: Headers::from(response.headers()),
                body: Vec::new(),
            };
            let verdict = self
                .with_session(id, |m| {
                    m.handle_resource_response(&url, &token, &seen, now())
                })
                .await?;
            let Some(spare) = spare else {
                return Ok(response);
            };
            match retries.admit(verdict) {
                Some(ResourceVerdict::TokenRejected) => {
                    token = self.get_access_token(id, token_request).await?;
                    next = Some(spare);
                }
                Some(_) => next = Some(spare),
                None => return Ok(response),
            }
        }
        Err(Error::Unsupported("no attempt was made".into()))
    }

    /// Calls `f` with the manager, session `id` mounted (loaded first when
    /// needed), then saves any change it made.
    async fn with_session<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut TokenManager) -> R,
    ) -> Result<R, Error> {
        let _held = Held::new(&self.inner, id);
        let mut f = Some(f);
        for _ in 0..2 {
            let result = {
                let mut core = self.inner.lock();
                let f = &mut f;
                core.with_session(id, |m| f.take().map(|f| f(m)))
            };
            if let Some(Some(result)) = result {
                self.inner.progress.notify(usize::MAX);
                self.run(id, Call::persist()).await?;
                return Ok(result);
            }
            // Not in memory yet: a persist call loads it first.
            self.run(id, Call::persist()).await?;
        }
        Err(Error::Core(tokenkeeper::Error::MissingSession))
    }

    /// Drives `call` on session `id` to its end, as
    /// [`TokenKeeper`](crate::TokenKeeper) does for its one session: the
    /// lock is taken for each step, never across an `.await`.
    async fn run(&self, id: &str, call: Call<'_, '_>) -> Result<Finished, Error> {
        let inner = &*self.inner;
        let mut running = Running {
            inner,
            id,
            call,
            armed: true,
        };
        let mut failed: Option<Error> = None;
        loop {
            let (effect, listener) = {
                let mut core = inner.lock();
                let effect = core.poll(id, &mut running.call, now());
                let listener = matches!(effect, Effect::Wait(_)).then(|| inner.progress.listen());
                (effect, listener)
            };
            match effect {
                Effect::Send { request, deadline } => {
                    let sent = match deadline.map(budget) {
                        Some(None) => Err(Error::Timeout(None)),
                        Some(Some(budget)) => {
                            send(&inner.client, request.request, inner.max_body, Some(budget)).await
                        }
                        None => send(&inner.client, request.request, inner.max_body, None).await,
                    };
                    let mut core = inner.lock();
                    match sent {
                        Ok(response) => {
                            core.handle_response(id, &mut running.call, response, now());
                        }
                        Err(error) => {
                            failed = Some(error);
                            core.handle_transport_error(id, &mut running.call, now());
                        }
                    }
                    drop(core);
                    inner.progress.notify(usize::MAX);
                }
                Effect::Store(op) => {
                    let answer = inner.store.run(op).await;
                    inner.lock().handle_store(id, &mut running.call, answer);
                    inner.progress.notify(usize::MAX);
                }
                Effect::Sign(_) => {
                    // Deferred signers are the single-session handle's.
                    inner.lock().handle_signature(
                        id,
                        &mut running.call,
                        None::<&EcdsaSignature>,
                        now(),
                    );
                    failed = Some(Error::Signing(
                        "a deferred DPoP signer is not supported by Sessions".into(),
                    ));
                    inner.progress.notify(usize::MAX);
                }
                Effect::Wait(wait) => {
                    let pause = match wait.deadline {
                        Some(deadline) => until(deadline),
                        None => Duration::from_secs(1),
                    };
                    let pause = match wait.reason {
                        WaitReason::OtherProcess => pause.min(RELOAD_POLL),
                        _ => pause,
                    };
                    if let Some(listener) = listener {
                        wait_for(listener, pause).await;
                    }
                }
                Effect::Done(result) => {
                    running.armed = false;
                    return result.map_err(|failure| error::from_failure(failure, failed.take()));
                }
                other => {
                    running.armed = false;
                    inner.lock().abandon(id, &mut running.call);
                    return Err(Error::Unsupported(format!("{other:?}")));
                }
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, driver::Sessions> {
        lock(&self.core)
    }
}

/// A call ended in another way than its kind should.
fn unexpected(finished: &Finished) -> Error {
    Error::Unsupported(format!("{finished:?}"))
}

/// A call in progress: abandoned if its future is dropped before it ends.
struct Running<'i, 's, 'r, 'a> {
    inner: &'i Inner,
    id: &'s str,
    call: Call<'r, 'a>,
    armed: bool,
}

impl Drop for Running<'_, '_, '_, '_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.lock().abandon(self.id, &mut self.call);
            self.inner.progress.notify(usize::MAX);
        }
    }
}

/// Keeps a session in memory while the host works on it between calls.
struct Held<'i> {
    inner: &'i Inner,
    id: String,
}

impl<'i> Held<'i> {
    fn new(inner: &'i Inner, id: &str) -> Self {
        inner.lock().hold(id);
        Held {
            inner,
            id: id.to_owned(),
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.inner.lock().release(&self.id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_handle_is_shareable() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<super::Sessions>();
    }
}
