//! Bank accounts.

mod aggregate;
mod commands;
mod events;
pub mod http;
mod pin;
mod upcasters;

pub use aggregate::{Account, AccountError, AccountStatus};
pub use commands::{CloseAccount, DepositMoney, OpenAccount, WithdrawAtTeller, WithdrawMoney};
pub use events::AccountEvent;
pub use pin::PinHasher;

use serde::{Deserialize, Serialize};

/// The currency every account is kept in: a balance is one number, of its
/// cents, so deposits in other currencies are refused
/// ([`AccountError::UnsupportedCurrency`]).
pub const CURRENCY: &str = "EUR";
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// An owner's name in full, as the bank writes it: "Ada Lovelace", or
/// "Grace" for someone with no first name.
pub fn full_name(first_name: &str, last_name: &str) -> String {
    if first_name.is_empty() {
        last_name.to_owned()
    } else {
        format!("{first_name} {last_name}")
    }
}

/// Identifies an account.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct AccountId(pub Uuid);

impl AccountId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AccountId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}
