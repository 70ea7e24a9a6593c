//! What the driver asks of its host ([`Effect`]), and the store operations
//! it describes ([`StoreOp`]) with their answers ([`StoreValue`]).

use alloc::boxed::Box;
use alloc::string::String;

use crate::error::Error;
use crate::manager::{AccessTokenInfo, OutgoingRequest, SignatureRequest};
use crate::session::Session;
use crate::store::{AsyncSessionStore, SessionStore, StoreError};
use crate::time::UnixTime;
use crate::token::TokenResponse;

/// What the host does next for a [`Call`](super::Call).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum Effect {
    /// Send this request, within the lease: give it up before `deadline`
    /// (when a waiting caller may take the flight over), then hand the
    /// response to [`Driver::handle_response`](super::Driver::handle_response)
    /// or the failure to
    /// [`Driver::handle_transport_error`](super::Driver::handle_transport_error).
    Send {
        /// The request and its flight.
        request: OutgoingRequest,
        /// The earliest lease deadline in flight, if any.
        deadline: Option<UnixTime>,
    },
    /// Run this store operation (holding no lock of the driver's), then
    /// hand the answer to [`Driver::handle_store`](super::Driver::handle_store).
    Store(StoreOp),
    /// Sign this DPoP signing input with the deferred signer, then hand the
    /// signature to [`Driver::handle_signature`](super::Driver::handle_signature).
    Sign(SignatureRequest),
    /// Wait until another call makes progress (wake every waiter after each
    /// `handle_*`), at the latest until `deadline`; then poll again.
    Wait(Wait),
    /// The call is over.
    Done(Result<Finished, Failure>),
}

/// How long and why a call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Poll again at the latest then (`None`: when woken).
    pub deadline: Option<UnixTime>,
    /// What is waited for.
    pub reason: WaitReason,
}

/// What a call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// Another caller's flight (single flight): it ends or its lease runs
    /// out.
    Flight,
    /// Another call's store operation on this session.
    Store,
    /// Another process refreshes (shared stores): read the store again
    /// when it says the session changed, or soon, until the claim ends.
    /// The reqwest adapter waits on
    /// [`AsyncSessionStore::changed`](crate::store::AsyncSessionStore::changed)
    /// (the Redis store's pub/sub) for at most 250 ms, and polls every 50 ms
    /// a store that cannot tell; blocking hosts poll.
    OtherProcess,
}

/// How a call ended well.
#[derive(Debug)]
#[non_exhaustive]
pub enum Finished {
    /// The access token.
    Token(AccessTokenInfo),
    /// A token exchange's result (not stored).
    Exchanged(Box<TokenResponse>),
    /// The refresh token was revoked (logout).
    Revoked,
    /// The session was loaded from the store (`true`: one was stored).
    Loaded(bool),
    /// The session was installed and saved.
    Installed,
    /// The session was removed (here and in the store); it was this.
    Cleared(Option<Box<Session>>),
    /// Pending changes were saved as this says.
    Persisted(super::Saved),
}

/// How a call ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The core's answer (the server's error, a login required, …).
    #[error(transparent)]
    Core(#[from] Error),
    /// A store operation failed; the session in memory is intact and its
    /// change is saved again after the next call.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host reported a transport failure
    /// ([`Driver::handle_transport_error`](super::Driver::handle_transport_error)):
    /// the host keeps its own error.
    #[error("transport failure")]
    Transport,
    /// The host's deferred signer failed
    /// ([`Driver::handle_signature`](super::Driver::handle_signature)).
    #[error("deferred signing failed")]
    Signing,
    /// The flight's lease ran out before its request could be sent.
    #[error("the flight's lease ran out")]
    LeaseExpired,
}

/// A store operation the driver needs, with everything it needs (owned:
/// the host runs it after releasing its lock on the driver).
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum StoreOp {
    /// [`SessionStore::load`].
    Load {
        /// The session's key.
        key: String,
    },
    /// [`SessionStore::generation`].
    Generation {
        /// The session's key.
        key: String,
    },
    /// [`SessionStore::save`] with compare-and-swap on `expected`.
    Save {
        /// The session's key.
        key: String,
        /// What to store.
        session: Box<Session>,
        /// The generation it replaces (`None`: nothing stored).
        expected: Option<u64>,
    },
    /// [`SessionStore::clear`].
    Clear {
        /// The session's key.
        key: String,
    },
    /// [`SessionStore::floor`].
    Floor {
        /// The session's key.
        key: String,
    },
}

/// What a store operation gave.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreValue {
    /// [`StoreOp::Load`]'s session.
    Loaded(Option<Box<Session>>),
    /// [`StoreOp::Generation`]'s generation.
    Generation(Option<u64>),
    /// [`StoreOp::Save`] succeeded.
    Saved,
    /// [`StoreOp::Clear`] succeeded.
    Cleared,
    /// [`StoreOp::Floor`]'s floor.
    Floor(u64),
}

/// A store operation's answer, for [`Driver::handle_store`](super::Driver::handle_store).
pub type StoreAnswer = Result<StoreValue, StoreError>;

impl StoreOp {
    /// The key the operation is for.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            StoreOp::Load { key }
            | StoreOp::Generation { key }
            | StoreOp::Save { key, .. }
            | StoreOp::Clear { key }
            | StoreOp::Floor { key } => key,
        }
    }

    /// Runs the operation on a blocking store.
    pub fn run<S: SessionStore + ?Sized>(self, store: &mut S) -> StoreAnswer {
        match self {
            StoreOp::Load { key } => store
                .load(&key)
                .map(|s| StoreValue::Loaded(s.map(Box::new))),
            StoreOp::Generation { key } => store.generation(&key).map(StoreValue::Generation),
            StoreOp::Save {
                key,
                session,
                expected,
            } => store
                .save(&key, &session, expected)
                .map(|()| StoreValue::Saved),
            StoreOp::Clear { key } => store.clear(&key).map(|()| StoreValue::Cleared),
            StoreOp::Floor { key } => store.floor(&key).map(StoreValue::Floor),
        }
    }

    /// Runs the operation on an async store.
    pub async fn run_async<S: AsyncSessionStore + ?Sized>(self, store: &S) -> StoreAnswer {
        match self {
            StoreOp::Load { key } => store
                .load(&key)
                .await
                .map(|s| StoreValue::Loaded(s.map(Box::new))),
            StoreOp::Generation { key } => store.generation(&key).await.map(StoreValue::Generation),
            StoreOp::Save {
                key,
                session,
                expected,
            } => store
                .save(&key, &session, expected)
                .await
                .map(|()| StoreValue::Saved),
            StoreOp::Clear { key } => store.clear(&key).await.map(|()| StoreValue::Cleared),
            StoreOp::Floor { key } => store.floor(&key).await.map(StoreValue::Floor),
        }
    }
}
