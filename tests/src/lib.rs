//! Workspace tests of annals.

pub mod conformance;
pub mod postgres;
