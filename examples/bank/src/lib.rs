//! The Annals bank: accounts opened with an owner and a PIN, deposits,
//! withdrawals that cannot overdraw, and closing at a zero balance.
//!
//! Each slice of the domain lives in its own folder (`accounts/`), with its
//! commands, events and aggregate side by side.

pub mod accounts;
