//! tokenkeeper core (work in progress)
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod dpop;
pub mod entropy;
pub mod error;
pub mod form;
pub mod http;
pub mod jwt;
pub mod limits;
pub mod scope;
pub mod secret;
pub mod time;
pub mod token;
