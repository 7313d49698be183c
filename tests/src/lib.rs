//! Workspace tests of annals.
