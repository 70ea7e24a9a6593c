//! tokenkeeper adapter for reqwest (in progress)
