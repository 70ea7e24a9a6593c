//! The adapter's side of the core's [`Keeper`] (the manager and its store
//! kept in step, written once in the core): handing a flight's outcome to
//! the core and saving. Pure Rust (the time is a parameter), so it builds
//! and is tested on every target; only the driver around it needs
//! JavaScript.

use tokenkeeper::TokenResponse;
use tokenkeeper::dpop::EcdsaSignature;
use tokenkeeper::driver::{Keeper, Saved};
use tokenkeeper::{
    AccessTokenInfo, Completion, HttpResponse, OutgoingRequest, RequestId, SessionStore,
    SignatureRequest, UnixTime,
};

use crate::Error;

/// The keeper of a single-threaded host: its store need not be `Send`.
pub(crate) type State = Keeper<dyn SessionStore>;

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

/// Hands the outcome of sending flight `id` to the core (a response,
/// whatever its status, or a transport failure), and saves.
pub(crate) fn complete(
    state: &mut State,
    id: RequestId,
    sent: Result<HttpResponse, Error>,
    now: UnixTime,
) -> Result<Finished, Error> {
    let result = match sent {
        Ok(response) => match state.manager.handle_response(id, response, now) {
            Completion::Ready(token) => Ok(Finished::Token(token.to_owned())),
            Completion::Exchanged(response) => Ok(Finished::Exchanged(response)),
            Completion::Revoked => Ok(Finished::Revoked),
            Completion::Resend(next) => Ok(Finished::Resend(next)),
            Completion::Sign(sign) => Ok(Finished::Sign(sign)),
            Completion::Failed(error) => Err(error.into()),
            other => Err(Error::Unsupported(format!("{other:?}"))),
        },
        Err(error) => {
            let _ = state.manager.handle_transport_error(id, now);
            Err(error)
        }
    };
    let saved = state.persist();
    // A retry goes out only while the stored session has not moved on (its
    // refresh token is spent again).
    let withdrawn = match &result {
        Ok(Finished::Resend(OutgoingRequest { id, .. }))
        | Ok(Finished::Sign(SignatureRequest { id, .. })) => {
            let id = *id;
            // A lost compare-and-swap (the renewed claim) adopted what
            // the store holds: the session moved on.
            matches!(saved, Ok(Saved::Adopted)) || (saved.is_ok() && !state.confirm_resend(id)?)
        }
        _ => false,
    };
    if withdrawn {
        return Err(tokenkeeper::Error::RequestAbandoned.into());
    }
    match (result, saved) {
        (Err(error), _) => Err(error),
        (Ok(done), Ok(_)) => Ok(done),
        (Ok(Finished::Resend(OutgoingRequest { id, .. })), Err(error))
        | (Ok(Finished::Sign(SignatureRequest { id, .. })), Err(error)) => {
            let _ = state.manager.cancel(id);
            Err(error.into())
        }
        (Ok(_), Err(error)) => Err(error.into()),
    }
}

/// Hands the host's signature of flight `id`'s DPoP proof to the core (or
/// gives the flight up when signing failed), and saves: the request to
/// send.
pub(crate) fn signed(
    state: &mut State,
    id: RequestId,
    signature: Result<EcdsaSignature, Error>,
    now: UnixTime,
) -> Result<OutgoingRequest, Error> {
    let result = match signature {
        // The core drops the flight when the signature does not verify.
        Ok(signature) => state
            .manager
            .handle_signature(id, &signature, now)
            .map_err(Error::from),
        Err(error) => {
            let _ = state.manager.cancel(id);
            Err(error)
        }
    };
    let saved = state.persist();
    match (result, saved) {
        (Ok(out), Err(error)) => {
            let _ = state.manager.cancel(out.id);
            Err(error.into())
        }
        (result, _) => result,
    }
}

/// Gives up on flight `id` (its owner went away) and saves.
pub(crate) fn cancel(state: &mut State, id: RequestId) {
    if state.manager.cancel(id) {
        let _ = state.persist();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use tokenkeeper::driver::{Ask, Step};
    use tokenkeeper::grant::ClientAuth;
    use tokenkeeper::{
        Config, Dispatch, MemoryStore, SeededEntropy, Session, StoreError, TokenManager,
        TokenRequest,
    };

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
        fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
            self.0.borrow_mut().0.load(key)
        }
        fn save(
            &mut self,
            key: &str,
            session: &Session,
            expected: Option<u64>,
        ) -> Result<(), StoreError> {
            let mut inner = self.0.borrow_mut();
            inner.0.save(key, session, expected)?;
            inner.1 += 1;
            Ok(())
        }
        fn clear(&mut self, key: &str) -> Result<(), StoreError> {
            self.0.borrow_mut().0.clear(key)
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
        let Step::Own(Dispatch::Send(out)) = a
            .step(Ask::User(&request), None, UnixTime::from_secs(T))
            .unwrap()
        else {
            panic!("expected a refresh")
        };
        let Finished::Token(token) =
            complete(&mut a, out.id, Ok(rotated(1)), UnixTime::from_secs(T)).unwrap()
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
        let Ok(Step::Own(Dispatch::Send(out))) =
            a.step(Ask::User(&request), None, UnixTime::from_secs(T))
        else {
            panic!()
        };
        let error =
            complete(&mut a, out.id, Err(Error::Timeout), UnixTime::from_secs(T)).unwrap_err();
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
        let Ok(Step::Own(Dispatch::Send(out))) = b.step(Ask::User(&request), None, now) else {
            panic!()
        };
        assert!(matches!(
            complete(&mut b, out.id, Ok(rotated(1)), now),
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
        let Ok(Step::Own(Dispatch::Send(out))) = a.step(Ask::User(&request), None, now) else {
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
            complete(&mut a, out.id, Ok(rotated(1)), now),
            Ok(Finished::Token(_))
        ));
        assert!(store.stored().unwrap().refresh_claim().is_none());
        // B, told to reload, finds the new tokens in the store.
        assert_eq!(b.moved_on(), Ok(true));
        match b.step(Ask::User(&request), None, now).unwrap() {
            Step::Ready(token) => assert_eq!(token.token.secret(), "at-1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_save_is_an_error_and_retried_later() {
        struct Flaky(Shared, Rc<RefCell<bool>>);
        impl SessionStore for Flaky {
            fn load(&mut self, key: &str) -> Result<Option<Session>, StoreError> {
                self.0.load(key)
            }
            fn save(&mut self, key: &str, s: &Session, e: Option<u64>) -> Result<(), StoreError> {
                if *self.1.borrow() {
                    return Err(StoreError::backend("quota exceeded"));
                }
                self.0.save(key, s, e)
            }
            fn clear(&mut self, key: &str) -> Result<(), StoreError> {
                self.0.clear(key)
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
        let Ok(Step::Own(Dispatch::Send(out))) = a.step(Ask::User(&request), None, now) else {
            panic!()
        };
        let error = complete(&mut a, out.id, Ok(rotated(1)), now).unwrap_err();
        assert_eq!(error.code(), "store_error");
        // The rotated token lives in memory and is saved with the next call.
        *broken.borrow_mut() = false;
        assert!(matches!(
            a.step(Ask::User(&request), None, now),
            Ok(Step::Ready(_))
        ));
        // The pending change went out with that call.
        assert_eq!(refresh_token(&store.stored().unwrap()), "rt-1");
    }
}
