//! # tokenkeeper-axum
//!
//! The Auth0 Next.js SDK's server side for axum apps, on the tokenkeeper
//! core: `/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/profile`
//! and `/auth/access-token`, mounted with one call; sessions in an
//! encrypted cookie a Next.js app with the same secret reads (and the
//! other way round), or in a shared store; extractors for the user and for
//! access tokens; a layer that requires login.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tokenkeeper_axum::{Auth, User};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::builder(
//!     "https://tenant.example.com/",        // issuer (discovered)
//!     "my-client-id",
//!     "http://127.0.0.1:3000",              // the app's base URL
//!     b"a-secret-of-at-least-32-bytes!!!!!", // AUTH0_SECRET
//! )
//! .client_secret("my-client-secret")
//! .build()
//! .await?;
//! let app: Router = Router::new()
//!     .route("/", get(|user: User| async move { format!("hello {}", user.sub()) }))
//!     .merge(auth.router())
//!     .layer(auth.layer());
//! # Ok(()) }
//! ```
//!
//! # A request's way
//!
//! ```text
//! AuthLayer: load the session once (cookie JWE, or store by id) ─► request extension
//!   extractors: User / Token<A> / Api share it; each refresh replaces it
//! AuthLayer: changed ─► Set-Cookie (+ no-cache); rolling ─► re-set the expiry
//! ```
//!
//! # Session states
//!
//! ```text
//!  none ──/auth/callback──► live ──refresh──► live (cookie rewritten)
//!   ▲                        │
//!   └──/auth/logout, expiry, tamper, foreign key, session_expired──┘
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
pub mod config;
pub mod cookies;
pub mod driver;
mod error;
mod extract;
pub mod jwe;
mod request_session;
mod routes;
pub mod session_cookie;
pub mod stateful;
pub mod transaction;

pub use auth::Auth;
pub use config::{AuthBuilder, MissingSession, Routes};
pub use error::Error;
pub use extract::{Api, AuthLayer, AuthService, DefaultApi, Token, TokenSpec, User};
pub use routes::backchannel_logout::BACKCHANNEL_LOGOUT_PATH;

impl AuthBuilder {
    /// Discovers the server and builds the integration.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable configuration, [`Error::Driver`]
    /// when discovery fails.
    pub async fn build(self) -> Result<Auth, Error> {
        Auth::build(self).await
    }
}
