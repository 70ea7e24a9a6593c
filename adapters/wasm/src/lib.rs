//! tokenkeeper adapter for wasm (in progress)
