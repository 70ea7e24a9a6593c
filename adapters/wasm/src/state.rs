//! The state behind the handle: the core's manager and the session store,
//! kept in step. Pure Rust (the time is a parameter), so it builds and is
//! tested on every target; only the driver around it needs JavaScript.

use tokenkeeper::dpop::EcdsaSignature;
use tokenkeeper::token::TokenResponse;
use tokenkeeper::{
    AccessTokenInfo, Action, ChangeReason, Completion, Dispatch, Event, HttpResponse,
    OutgoingRequest, RequestId, Session, SessionStore, SignatureRequest, StoreError, TokenManager,
    TokenRequest, UnixTime,
};

use crate::Error;

/// How many times one question is asked again because the store moved on
/// under it (another tab or process saved meanwhile).
const STORE_RACE_RETRIES: usize = 8;

/// What saving after a core call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persisted {
    /// Nothing to save.
    Nothing,
    /// The session was saved.
    Saved,
    /// Another writer had saved first: its session was installed here and
    /// this change dropped.
    Adopted,
}

/// The manager and its store.
pub(crate) struct State {
    pub(crate) manager: TokenManager,
    store: Box<dyn SessionStore>,
    /// The generation the store holds, as far as this handle knows.
    saved: Option<u64>,
    /// A change not saved yet (the last save failed).
    pending: bool,
    /// The unsaved change holds a rotated refresh token (the only live one).
    pending_rotation: bool,
    /// The unsaved change claims the refresh token (shared stores).
    pending_claim: bool,
}

/// What one question to the core led to, owned (no borrow of the manager).
#[derive(Debug)]
pub(crate) enum Step {
    /// The token.
    Ready(AccessTokenInfo),
    /// Send this request (its claim, if any, is saved).
    Send(OutgoingRequest),
    /// Sign this DPoP proof (deferred signer), then send (its claim, if
    /// any, is saved).
    Sign(SignatureRequest),
    /// Wait for flight `id`, until it ends or the lease deadline.
    Wait(RequestId, Option<UnixTime>),
    /// Another manager sharing the store is refreshing: ask again a little
    /// later (the store is reloaded each time), at the latest at `until`.
    Reload(UnixTime),
    /// The answer is this error.
    Failed(tokenkeeper::Error),
}

/// Which token a caller asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ask<'r, 'a> {
    /// The session's (a user's) token: refreshed with the refresh token.
    User(&'r TokenRequest<'a>),
    /// A client-credentials token (no session).
    Machine(&'r TokenRequest<'a>),
}

/// How a flight ended, or that it must be sent again.
#[derive(Debug)]
pub(crate) enum Finished {
    /// A token (refresh, login, client credentials).
    Token(AccessTokenInfo),
    /// A token exchange's result (not stored).
    Exchanged(Box<TokenResponse>),
    /// A refresh token was revoked.
    Revoked,
    /// Send this request again, same id (a `use_dpop_nonce` retry).
    Resend(OutgoingRequest),
    /// Sign the retry's proof first (deferred signer), then send it.
    Sign(SignatureRequest),
}

impl Step {
    /// The flight a `Send` or `Sign` step registered.
    pub(crate) fn flight(&self) -> Option<RequestId> {
        match self {
            Step::Send(out) => Some(out.id),
            Step::Sign(sign) => Some(sign.id),
            _ => None,
        }
    }
}

/// A core request to send, or to sign first.
pub(crate) fn dispatch_step(dispatch: Dispatch) -> Result<Step, Error> {
    match dispatch {
        Dispatch::Send(out) => Ok(Step::Send(out)),
        Dispatch::Sign(sign) => Ok(Step::Sign(sign)),
        other => Err(Error::Unsupported(format!("{other:?}"))),
    }
}

impl State {
    /// Loads the session from `store`, or installs `session` (and saves it).
    pub(crate) fn new(
        mut manager: TokenManager,
        mut store: Box<dyn SessionStore>,
        session: Option<Session>,
    ) -> Result<Self, StoreError> {
        let stored = store.load()?;
        let saved = stored.as_ref().map(Session::generation);
        if let Some(stored) = stored {
            manager.set_session(stored);
        }
        let mut state = State {
            manager,
            store,
            saved,
            pending: false,
            pending_rotation: false,
            pending_claim: false,
        };
        if let Some(session) = session {
            state.install(session)?;
        }
        Ok(state)
    }

    /// Installs `session` (a login) and saves it over whatever is stored.
    pub(crate) fn install(&mut self, session: Session) -> Result<(), StoreError> {
        let generation = session.generation();
        let result = match self.store.save(&session, self.saved) {
            Err(StoreError::Conflict { found }) => self.store.save(&session, found),
            other => other,
        };
        self.manager.set_session(session);
        self.clear_pending();
        self.pending = result.is_err();
        if result.is_ok() {
            self.saved = Some(generation);
        }
        result
    }

    /// Removes the session here and in the store.
    pub(crate) fn clear(&mut self) -> Result<Option<Session>, StoreError> {
        self.store.clear()?;
        self.saved = None;
        self.clear_pending();
        Ok(self.manager.clear_session())
    }

    fn clear_pending(&mut self) {
        self.pending = false;
        self.pending_rotation = false;
        self.pending_claim = false;
    }

    /// Drains the core's events and saves the session when it changed, with
    /// `expected` = the last saved generation (compare-and-swap).
    ///
    /// On a conflict (another writer saved meanwhile) the stored session is
    /// adopted — unless this change rotated the refresh token: then the
    /// stored session was derived from a spent refresh token, and this one
    /// overwrites it. A conflicting refresh claim is always dropped: the
    /// other writer's claim or tokens win, and the request must not leave.
    ///
    /// Returns an error only when a change made by this call could not be
    /// saved (it stays pending and is retried after the next core call).
    pub(crate) fn persist(&mut self) -> Result<Persisted, StoreError> {
        let mut changed = false;
        while let Some(event) = self.manager.poll_event() {
            if let Event::SessionChanged { reason, .. } = event {
                changed = true;
                match reason {
                    ChangeReason::TokensUpdated {
                        refresh_token_rotated: true,
                    } => self.pending_rotation = true,
                    ChangeReason::RefreshClaimed => self.pending_claim = true,
                    _ => {}
                }
            }
        }
        self.pending |= changed;
        if !self.pending {
            return Ok(Persisted::Nothing);
        }
        match self.save() {
            Err(error) if !changed => {
                // An older change still waits; this call made none.
                let _ = error;
                Ok(Persisted::Nothing)
            }
            other => other,
        }
    }

    fn save(&mut self) -> Result<Persisted, StoreError> {
        let Some(session) = self.manager.session() else {
            self.clear_pending();
            return Ok(Persisted::Nothing);
        };
        let generation = session.generation();
        let result = match self.store.save(session, self.saved) {
            Err(StoreError::Conflict { found }) if self.pending_rotation && !self.pending_claim => {
                self.store.save(session, found)
            }
            Err(StoreError::Conflict { .. }) => {
                let stored = self.store.load()?;
                self.adopt(stored);
                return Ok(Persisted::Adopted);
            }
            other => other,
        };
        result?;
        self.saved = Some(generation);
        self.clear_pending();
        Ok(Persisted::Saved)
    }

    /// Installs `stored` (what the store holds now; `None`: another writer
    /// logged out), dropping any unsaved change here.
    fn adopt(&mut self, stored: Option<Session>) {
        self.saved = stored.as_ref().map(Session::generation);
        match stored {
            Some(session) => self.manager.set_session(session),
            None => drop(self.manager.clear_session()),
        }
        self.clear_pending();
    }

    /// Reloads the store and adopts what it holds when another writer moved
    /// it on. Returns whether the session here changed. An unsaved rotation
    /// is never dropped this way (only this handle holds the live refresh
    /// token then).
    pub(crate) fn reload(&mut self) -> Result<bool, StoreError> {
        if self.pending_rotation {
            return Ok(false);
        }
        let stored = self.store.load()?;
        if stored.as_ref().map(Session::generation) == self.saved {
            return Ok(false);
        }
        self.adopt(stored);
        Ok(true)
    }

    /// Asks the core once (after expiring leases that ran out), and saves
    /// what changed. Before a refresh leaves, the store is checked: if
    /// another writer moved it on, its refresh token is the live one, so it
    /// is adopted and the question asked again; a refresh claim (shared
    /// stores) is saved first, and a conflict there cancels the request.
    pub(crate) fn step(
        &mut self,
        ask: Ask<'_, '_>,
        waited: Option<RequestId>,
        now: UnixTime,
    ) -> Result<Step, Error> {
        for _ in 0..STORE_RACE_RETRIES {
            if self.manager.poll_timeout().is_some_and(|t| t <= now) {
                self.manager.handle_timeout(now);
            }
            let action = match (ask, waited) {
                (Ask::User(request), Some(id)) => {
                    self.manager.get_access_token_after_wait(request, id, now)
                }
                (Ask::User(request), None) => self.manager.get_access_token(request, now),
                (Ask::Machine(request), _) => {
                    self.manager.get_client_credentials_token(request, now)
                }
            };
            let step = match action {
                Action::Ready(token) => Step::Ready(token.to_owned()),
                Action::Send(out) => Step::Send(out),
                Action::Sign(sign) => Step::Sign(sign),
                Action::Wait(id) => Step::Wait(id, None),
                Action::Reload { until } => Step::Reload(until),
                Action::LoginRequired(e) | Action::Failed(e) => Step::Failed(e),
                other => return Err(Error::Unsupported(format!("{other:?}"))),
            };
            if let (Some(id), Ask::User(_)) = (step.flight(), ask) {
                // A refresh spends the session's refresh token: it must
                // still be the live one.
                let moved = self.reload();
                if !matches!(moved, Ok(false)) {
                    // Nothing was sent: release the flight, ask again.
                    let _ = self.manager.cancel(id);
                    self.persist()?;
                    moved?;
                    continue;
                }
                match self.persist() {
                    Ok(Persisted::Adopted) => {
                        let _ = self.manager.cancel(id);
                        self.persist()?;
                        continue;
                    }
                    Ok(_) => return Ok(step),
                    Err(error) => {
                        let _ = self.manager.cancel(id);
                        return Err(error.into());
                    }
                }
            }
            match step {
                Step::Reload(until) => {
                    if self.reload()? {
                        continue;
                    }
                    self.persist()?;
                    return Ok(Step::Reload(until));
                }
                Step::Wait(id, _) => {
                    self.persist()?;
                    return Ok(Step::Wait(id, self.manager.poll_timeout()));
                }
                other => {
                    if let Err(error) = self.persist() {
                        if let Some(id) = other.flight() {
                            let _ = self.manager.cancel(id);
                        }
                        return Err(error.into());
                    }
                    return Ok(other);
                }
            }
        }
        Err(Error::Store(StoreError::Backend(String::from(
            "the stored session kept changing while a refresh was being prepared",
        ))))
    }

    /// Hands the outcome of sending flight `id` to the core (a response,
    /// whatever its status, or a transport failure), and saves.
    pub(crate) fn complete(
        &mut self,
        id: RequestId,
        sent: Result<HttpResponse, Error>,
        now: UnixTime,
    ) -> Result<Finished, Error> {
        let result = match sent {
            Ok(response) => match self.manager.handle_response(id, response, now) {
                Completion::Ready(token) => Ok(Finished::Token(token.to_owned())),
                Completion::Exchanged(response) => Ok(Finished::Exchanged(response)),
                Completion::Revoked => Ok(Finished::Revoked),
                Completion::Resend(next) => Ok(Finished::Resend(next)),
                Completion::Sign(sign) => Ok(Finished::Sign(sign)),
                Completion::Failed(error) => Err(error.into()),
                other => Err(Error::Unsupported(format!("{other:?}"))),
            },
            Err(error) => {
                let _ = self.manager.handle_transport_error(id, now);
                Err(error)
            }
        };
        let saved = self.persist();
        match (result, saved) {
            (Err(error), _) => Err(error),
            (Ok(done), Ok(_)) => Ok(done),
            (Ok(Finished::Resend(OutgoingRequest { id, .. })), Err(error))
            | (Ok(Finished::Sign(SignatureRequest { id, .. })), Err(error)) => {
                let _ = self.manager.cancel(id);
                Err(error.into())
            }
            (Ok(_), Err(error)) => Err(error.into()),
        }
    }

    /// Hands the host's signature of flight `id`'s DPoP proof to the core
    /// (or gives the flight up when signing failed), and saves: the request
    /// to send.
    pub(crate) fn signed(
        &mut self,
        id: RequestId,
        signature: Result<EcdsaSignature, Error>,
        now: UnixTime,
    ) -> Result<OutgoingRequest, Error> {
        let result = match signature {
            // The core drops the flight when the signature does not verify.
            Ok(signature) => self
                .manager
                .handle_signature(id, &signature, now)
                .map_err(Error::from),
            Err(error) => {
                let _ = self.manager.cancel(id);
                Err(error)
            }
        };
        let saved = self.persist();
        match (result, saved) {
            (Ok(out), Err(error)) => {
                let _ = self.manager.cancel(out.id);
                Err(error.into())
            }
            (result, _) => result,
        }
    }

    /// Gives up on flight `id` (its owner went away) and saves.
    pub(crate) fn cancel(&mut self, id: RequestId) {
        if self.manager.cancel(id) {
            let _ = self.persist();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use tokenkeeper::grant::ClientAuth;
    use tokenkeeper::{Config, MemoryStore, SeededEntropy};

    use super::*;

    const T: u64 = 1_700_000_000;

    /// A store shared by several states (standing for several tabs).
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<(MemoryStore, u32)>>);

    impl Shared {
        fn with(session: Session) -> Self {
            Shared(Rc::new(RefCell::new((
                MemoryStore::with_session(session),
                0,
            ))))
        }
        fn stored(&self) -> Option<Session> {
            self.0.borrow().0.session().cloned()
        }
        fn saves(&self) -> u32 {
            self.0.borrow().1
        }
    }

    impl SessionStore for Shared {
        fn load(&mut self) -> Result<Option<Session>, StoreError> {
            self.0.borrow_mut().0.load()
        }
        fn save(&mut self, session: &Session, expected: Option<u64>) -> Result<(), StoreError> {
            let mut inner = self.0.borrow_mut();
            inner.0.save(session, expected)?;
            inner.1 += 1;
            Ok(())
        }
        fn clear(&mut self) -> Result<(), StoreError> {
            self.0.borrow_mut().0.clear()
        }
    }

    fn session(expires_at: u64, refresh_token: &str) -> Session {
        let json = format!(
            r#"{{"tokenSet":{{"accessToken":"at-{refresh_token}","refreshToken":"{refresh_token}","expiresAt":{expires_at}}}}}"#
        );
        Session::from_json(json.as_bytes(), &Default::default()).unwrap()
    }

    fn state(store: &Shared, shared_store: bool, seed: u64) -> State {
        let config = Config::builder("https://as.example/token", "spa")
            .client_auth(ClientAuth::None)
            .shared_store(shared_store)
            .build()
            .unwrap();
        let manager = TokenManager::new(config, SeededEntropy::new(seed));
        State::new(manager, Box::new(store.clone()), None).unwrap()
    }

    fn rotated(n: u32) -> HttpResponse {
        HttpResponse::new(
            200,
            format!(
                r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{n}"}}"#
            ),
        )
    }

    fn refresh_token(session: &Session) -> String {
        session
            .token_set()
            .refresh_token
            .as_ref()
            .unwrap()
            .secret()
            .to_owned()
    }

    #[test]
    fn a_rotation_is_saved_with_compare_and_swap() {
        let store = Shared::with(session(T - 10, "rt-0"));
        let mut a = state(&store, false, 1);
        let request = TokenRequest::new();
        let Step::Send(out) = a
            .step(Ask::User(&request), None, UnixTime::from_secs(T))
            .unwrap()
        else {
            panic!("expected a refresh")
        };
        let Finished::Token(token) = a
            .complete(out.id, Ok(rotated(1)), UnixTime::from_secs(T))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(token.token.secret(), "at-1");
        assert_eq!(refresh_token(&store.stored().unwrap()), "rt-1");
        assert_eq!(store.saves(), 1);
        // Cached now: no I/O, nothing saved.
        assert!(matches!(
            a.step(Ask::User(&request), None, UnixTime::from_secs(T + 1)),
            Ok(Step::Ready(_))
        ));
        assert_eq!(store.saves(), 1);
    }

    #[test]
    fn a_transport_error_changes_nothing_stored() {
        let store = Shared::with(session(T - 10, "rt-0"));
        let mut a = state(&store, false, 1);
        let request = TokenRequest::new();
        let Ok(Step::Send(out)) = a.step(Ask::User(&request), None, UnixTime::from_secs(T)) else {
            panic!()
        };
        let error = a
            .complete(out.id, Err(Error::Timeout), UnixTime::from_secs(T))
            .unwrap_err();
        assert_eq!(error, Error::Timeout);
        assert_eq!(store.saves(), 0);
        assert_eq!(refresh_token(&a.manager.session().unwrap().clone()), "rt-0");
        assert_eq!(a.manager.in_flight(), 0);
    }

    #[test]
    fn a_store_moved_on_by_another_tab_is_adopted_before_refreshing() {
        let store = Shared::with(session(T - 10, "rt-0"));
        let mut a = state(&store, false, 1);
        let mut b = state(&store, false, 2);
        let request = TokenRequest::new();
        let now = UnixTime::from_secs(T);
        let Ok(Step::Send(out)) = b.step(Ask::User(&request), None, now) else {
            panic!()
        };
        assert!(matches!(
            b.complete(out.id, Ok(rotated(1)), now),
            Ok(Finished::Token(_))
        ));
        // A's token is expired too, but B's rotation is in the store: A
        // adopts it instead of spending the consumed rt-0.
        match a.step(Ask::User(&request), None, now).unwrap() {
            Step::Ready(token) => assert_eq!(token.token.secret(), "at-1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.manager.in_flight(), 0);
    }

    #[test]
    fn shared_store_claims_let_one_tab_refresh() {
        let store = Shared::with(session(T - 10, "rt-0"));
        let mut a = state(&store, true, 1);
        let mut b = state(&store, true, 2);
        let request = TokenRequest::new();
        let now = UnixTime::from_secs(T);
        let Ok(Step::Send(out)) = a.step(Ask::User(&request), None, now) else {
            panic!()
        };
        // A's claim is stored before its request leaves.
        assert!(store.stored().unwrap().refresh_claim().is_some());
        // B reloads, sees the live claim, and is told to come back.
        match b.step(Ask::User(&request), None, now).unwrap() {
            Step::Reload(until) => assert!(until > now),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.manager.in_flight(), 0);
        assert!(matches!(
            a.complete(out.id, Ok(rotated(1)), now),
            Ok(Finished::Token(_))
        ));
        assert!(store.stored().unwrap().refresh_claim().is_none());
        match b.step(Ask::User(&request), None, now).unwrap() {
            Step::Ready(token) => assert_eq!(token.token.secret(), "at-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_save_is_an_error_and_retried_later() {
        struct Flaky(Shared, Rc<RefCell<bool>>);
        impl SessionStore for Flaky {
            fn load(&mut self) -> Result<Option<Session>, StoreError> {
                self.0.load()
            }
            fn save(&mut self, s: &Session, e: Option<u64>) -> Result<(), StoreError> {
                if *self.1.borrow() {
                    return Err(StoreError::Backend("quota exceeded".into()));
                }
                self.0.save(s, e)
            }
            fn clear(&mut self) -> Result<(), StoreError> {
                self.0.clear()
            }
        }
        let store = Shared::with(session(T - 10, "rt-0"));
        let broken = Rc::new(RefCell::new(true));
        let config = Config::builder("https://as.example/token", "spa")
            .build()
            .unwrap();
        let manager = TokenManager::new(config, SeededEntropy::new(1));
        let mut a = State::new(
            manager,
            Box::new(Flaky(store.clone(), broken.clone())),
            None,
        )
        .unwrap();
        let request = TokenRequest::new();
        let now = UnixTime::from_secs(T);
        let Ok(Step::Send(out)) = a.step(Ask::User(&request), None, now) else {
            panic!()
        };
        let error = a.complete(out.id, Ok(rotated(1)), now).unwrap_err();
        assert_eq!(error.code(), "store_error");
        // The rotated token lives in memory and is saved with the next call.
        *broken.borrow_mut() = false;
        assert!(matches!(
            a.step(Ask::User(&request), None, now),
            Ok(Step::Ready(_))
        ));
        // The pending change went out with that call.
        assert!(!a.pending);
        assert_eq!(refresh_token(&store.stored().unwrap()), "rt-1");
    }
}
