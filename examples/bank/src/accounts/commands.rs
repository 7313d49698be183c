use super::{Account, AccountId};
use annals::command;

/// Open a new account for its owner, protected by `pin`.
#[command(aggregate = Account)]
#[derive(utoipa::ToSchema)]
pub struct OpenAccount {
    /// The new account's id; left out of a JSON command, a new one.
    #[id]
    #[serde(default)]
    pub account_id: AccountId,
    /// The owner's first name(s); may be empty, for someone known by one
    /// name.
    pub first_name: String,
    /// The owner's last name; not empty.
    pub last_name: String,
    /// 4 to 8 digits.
    pub pin: String,
}

/// Pay money in.
#[command(aggregate = Account)]
#[derive(utoipa::ToSchema)]
pub struct DepositMoney {
    /// The account.
    #[id]
    pub account_id: AccountId,
    /// Amount in cents, more than zero.
    pub amount: u64,
    /// ISO 4217 code; `None` (or leaving it out of a JSON command) means
    /// [`CURRENCY`](super::CURRENCY), the only one an account takes.
    pub currency: Option<String>,
}

/// Pay money out; the balance cannot go below zero.
#[command(aggregate = Account)]
#[derive(utoipa::ToSchema)]
pub struct WithdrawMoney {
    /// The account.
    #[id]
    pub account_id: AccountId,
    /// Amount in cents, more than zero.
    pub amount: u64,
}

/// Close the account; only possible at a zero balance.
#[command(aggregate = Account)]
#[derive(utoipa::ToSchema)]
pub struct CloseAccount {
    /// The account.
    #[id]
    pub account_id: AccountId,
}

/// Withdraw cash at a teller (dispatched by the withdrawal process): checks
/// the PIN hash the teller computed and the funds, then debits.
#[command(aggregate = Account)]
#[derive(utoipa::ToSchema)]
pub struct WithdrawAtTeller {
    /// The account.
    #[id]
    pub account_id: AccountId,
    /// The withdrawal, as the teller named it.
    pub withdrawal_id: String,
    /// Amount in cents, more than zero.
    pub amount: u64,
    /// The PIN's hash, as [`PinHasher::hash`](super::PinHasher::hash) gives it.
    pub pin_hash: String,
}
