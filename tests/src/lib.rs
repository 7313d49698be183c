//! Workspace tests of annals.

pub mod conformance;
pub mod contention;
pub mod postgres;
