//! The `vitrina` binary's library: command line, launcher and the per-service entry
//! points. Integration tests in `tests/` use it too.

pub mod cli;
pub mod launcher;
pub mod services;
