//! tokenkeeper adapter for ureq (in progress)
