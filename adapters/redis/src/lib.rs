//! # tokenkeeper-redis
//!
//! A session store shared by every instance of an application (a fleet
//! behind a load balancer) on Redis, for the
//! [tokenkeeper] core: sessions keyed by id, compare-and-swap
//! in one Lua script, the refresh claim as its own key with a lease, and
//! pub/sub wake-ups for instances waiting on another's refresh. One
//! refresh token is spent once by the whole fleet.
//!
//! [`RedisStore`] is an [`AsyncSessionStore`](tokenkeeper::AsyncSessionStore)
//! (the reqwest adapter's `Builder::async_store`);
//! [`BlockingRedisStore`] a [`SessionStore`](tokenkeeper::SessionStore)
//! (the ureq adapter, the command line). Configure the core with
//! `ConfigBuilder::shared_store(true)`, so it claims the refresh token
//! before a refresh leaves.
//!
//! ```no_run
//! # async fn run(session_id: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use tokenkeeper::{Config, TokenRequest};
//! use tokenkeeper_redis::{RedisStore, RedisStoreOptions};
//! use tokenkeeper_reqwest::TokenKeeper;
//!
//! let store = RedisStore::connect_with(
//!     "redis://:secret@127.0.0.1:6379/0", // rediss://… for TLS
//!     RedisStoreOptions::default().prefix("myapp"),
//! )
//! .await?;
//! // Every instance: the same Redis, the same prefix, shared_store(true).
//! let config = Config::builder("https://as.example/oauth/token", "client-1")
//!     .shared_store(true)
//!     .build()?;
//! let keeper = TokenKeeper::builder(config)
//!     .async_store(store)
//!     .session_key(session_id)
//!     .build()?;
//! let token = keeper.get_access_token(&TokenRequest::new()).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! See the README for running several instances: what to configure, what
//! the store guarantees, what happens on each fault.
//!
//! # Keys
//!
//! ```text
//! <prefix>:session:<key>   hash {session: JSON, generation, claim_owner}, TTL = the session's ceiling
//! <prefix>:floor:<key>     the highest generation ever stored (kept across clear)
//! <prefix>:claim:<key>     the refresh claim, JSON {"owner","until","generation"}, PX = the lease
//! <prefix>:changed         channel: the key of every session saved or cleared
//! <prefix>:bcl:sid:<sid>   back-channel logout marks and seen jtis (RedisLogoutMarks)
//! ```
//!
//! # The refresh claim
//!
//! The core writes its claim into the session and saves it with
//! compare-and-swap before the refresh leaves. The save script also
//! writes the claim key with the lease as its TTL (`SET … PX`) — and
//! refuses the save, as a conflict, while another owner's claim key is
//! live. The core sends the refresh only when that save succeeded and the
//! session it holds still carries its own claim (a session another caller
//! loaded in between — another instance's claim — never lets it out). A
//! load reads the session hash's `claim_owner` (written by the same
//! save); only when it names an owner does it read the claim key back,
//! with the session, in one transaction: the session's claim is the key's
//! owner, ending at this host's clock plus the key's remaining lease (so
//! instances with skewed clocks agree on it), or none once Redis expired
//! the key (a crashed owner blocks the others for one lease at most). A
//! claim key whose owner the session does not record (left by a session
//! that expired under it) is nobody's claim. A save without a claim
//! deletes the claim key it displaces (the owner's release with the new
//! tokens); a clear deletes it.
//!
//! ```text
//!            claim saved (SET PX lease)        tokens saved (DEL claim, PUBLISH)
//! unclaimed ───────────────────────────► claimed ─────────────────────────────► unclaimed
//!     ▲                                      │
//!     └────────── lease ran out (Redis expires the key) ◄──┘
//! others: load ─► claim live ─► wait: changed(key) (pub/sub, at most 250 ms) ─► load …
//! ```
//!
//! # Call order (one operation)
//!
//! `generation`, `floor`, `save`, `clear`: one script each, one round
//! trip, atomic on the server. `load`: one `HMGET` (atomic); a second
//! round trip, a `MULTI`/`EXEC` that also reads the claim key, only when
//! the session records a claim or is not found. `changed(key, within)`: waits for a
//! message on the channel about `key` since this store's last load of it.
//!
//! # Errors
//!
//! Every failure is a [`StoreError::Backend`](tokenkeeper::StoreError::Backend)
//! whose [source](std::error::Error::source) is a [`RedisStoreError`]: Redis
//! down or slow (the connection manager reconnects by itself; the next call
//! works again), a value under a session key that this store did not write
//! or that does not parse (left as it was). A refused compare-and-swap is
//! [`StoreError::Conflict`](tokenkeeper::StoreError::Conflict).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod blocking;
mod counters;
mod error;
mod keys;
mod logout_marks;
mod nonblocking;
mod ops;
mod options;
mod script;
mod wake;

pub use blocking::BlockingRedisStore;
pub use counters::Counters;
pub use error::RedisStoreError;
pub use keys::DEFAULT_PREFIX;
pub use logout_marks::RedisLogoutMarks;
pub use nonblocking::RedisStore;
pub use options::RedisStoreOptions;
pub use tokenkeeper;
pub use tokenkeeper::store::Changed;
