//! The adapters' shared test helpers live in the integration crate.

#![allow(unused_imports)]

pub use tokenkeeper_integration::adapter_support::*;
