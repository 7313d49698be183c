//! Tellers (cash machines) and the withdrawal process that spans a teller
//! and an account.
//!
//! A customer asks a teller for cash ([`InitiateWithdrawal`]); the teller
//! records the request with the PIN's hash (never the PIN). The
//! [`WithdrawalProcess`] then asks the account ([`WithdrawAtTeller`]), which
//! checks the PIN and the funds and either authorises and debits, or declines;
//! the process then has the teller dispense the cash or decline. A withdrawal
//! nobody answers is declined after a timeout that survives restarts.
//!
//! [`WithdrawAtTeller`]: crate::accounts::WithdrawAtTeller

pub mod http;
mod process;

pub use process::WithdrawalProcess;

use crate::accounts::{AccountId, PinHasher};
use annals::{aggregate, command, event};

/// What happened at a teller.
#[event]
pub enum TellerEvent {
    /// A customer asked for cash.
    WithdrawalRequested {
        /// The withdrawal's id (unique per teller).
        withdrawal_id: String,
        /// The account to debit.
        account_id: AccountId,
        /// Amount in cents.
        amount: u64,
        /// The PIN's hash, for the account to compare.
        pin_hash: String,
    },
    /// The teller paid the cash out.
    CashDispensed {
        /// The withdrawal.
        withdrawal_id: String,
        /// Amount in cents.
        amount: u64,
    },
    /// The withdrawal was declined; no cash, no debit.
    WithdrawalDeclined {
        /// The withdrawal.
        withdrawal_id: String,
        /// Why, for the customer.
        reason: String,
    },
}

/// Ask a teller for cash.
#[command(aggregate = Teller)]
#[derive(utoipa::ToSchema)]
pub struct InitiateWithdrawal {
    /// The teller.
    #[id]
    pub teller_id: String,
    /// A new id for the withdrawal; left out of a JSON command, a new one.
    #[serde(default = "new_withdrawal_id")]
    pub withdrawal_id: String,
    /// The account.
    pub account_id: AccountId,
    /// Amount in cents.
    pub amount: u64,
    /// The PIN the customer typed.
    pub pin: String,
}

/// A fresh withdrawal id: a uuid v7, as text.
pub fn new_withdrawal_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Pay out an authorised withdrawal (dispatched by the process).
#[command(aggregate = Teller)]
pub struct DispenseCash {
    /// The teller.
    #[id]
    pub teller_id: String,
    /// The withdrawal.
    pub withdrawal_id: String,
    /// Amount in cents.
    pub amount: u64,
}

/// Decline a withdrawal (dispatched by the process, or by its timeout).
#[command(aggregate = Teller)]
pub struct DeclineWithdrawal {
    /// The teller.
    #[id]
    pub teller_id: String,
    /// The withdrawal.
    pub withdrawal_id: String,
    /// Why.
    pub reason: String,
}

/// Why a teller refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TellerError {
    /// The withdrawal id was used before at this teller.
    #[error("withdrawal `{0}` was already requested at this teller")]
    DuplicateWithdrawal(String),
    /// No such withdrawal was requested here.
    #[error("no withdrawal `{0}` was requested at this teller")]
    UnknownWithdrawal(String),
    /// Nothing to pay out.
    #[error("the amount must be more than zero")]
    ZeroAmount,
}

/// Where a withdrawal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawalState {
    /// Asked for, waiting for the account.
    Pending,
    /// Cash paid out.
    Dispensed,
    /// Declined.
    Declined,
}

/// A withdrawal as its teller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// Where it is.
    pub state: WithdrawalState,
    /// The account asked to pay.
    pub account_id: AccountId,
    /// Amount in cents.
    pub amount: u64,
    /// Why it was declined, once it was.
    pub reason: Option<String>,
}

/// A teller: the withdrawals asked for at it.
#[aggregate(events = TellerEvent)]
#[derive(Debug, Clone, Default)]
pub struct Teller {
    withdrawals: std::collections::HashMap<String, Withdrawal>,
}

#[aggregate]
impl Teller {
    #[handle]
    fn initiate(
        &self,
        cmd: InitiateWithdrawal,
        pins: &PinHasher,
    ) -> Result<TellerEvent, TellerError> {
        if self.withdrawals.contains_key(&cmd.withdrawal_id) {
            return Err(TellerError::DuplicateWithdrawal(cmd.withdrawal_id));
        }
        if cmd.amount == 0 {
            return Err(TellerError::ZeroAmount);
        }
        Ok(TellerEvent::WithdrawalRequested {
            pin_hash: pins.hash(cmd.account_id, &cmd.pin),
            withdrawal_id: cmd.withdrawal_id,
            account_id: cmd.account_id,
            amount: cmd.amount,
        })
    }

    /// Pays out a pending withdrawal; one already finished records nothing.
    #[handle]
    fn dispense(&self, cmd: DispenseCash) -> Result<Option<TellerEvent>, TellerError> {
        match self.withdrawal(&cmd.withdrawal_id) {
            None => Err(TellerError::UnknownWithdrawal(cmd.withdrawal_id)),
            Some(WithdrawalState::Pending) => Ok(Some(TellerEvent::CashDispensed {
                withdrawal_id: cmd.withdrawal_id,
                amount: cmd.amount,
            })),
            Some(_) => Ok(None),
        }
    }

    /// Declines a pending withdrawal; one already finished (a timeout that
    /// comes after the cash was paid) records nothing.
    #[handle]
    fn decline(&self, cmd: DeclineWithdrawal) -> Result<Option<TellerEvent>, TellerError> {
        match self.withdrawal(&cmd.withdrawal_id) {
            None => Err(TellerError::UnknownWithdrawal(cmd.withdrawal_id)),
            Some(WithdrawalState::Pending) => Ok(Some(TellerEvent::WithdrawalDeclined {
                withdrawal_id: cmd.withdrawal_id,
                reason: cmd.reason,
            })),
            Some(_) => Ok(None),
        }
    }

    #[apply]
    fn apply(&mut self, event: &TellerEvent) {
        match event {
            TellerEvent::WithdrawalRequested {
                withdrawal_id,
                account_id,
                amount,
                ..
            } => {
                self.withdrawals.insert(
                    withdrawal_id.clone(),
                    Withdrawal {
                        state: WithdrawalState::Pending,
                        account_id: *account_id,
                        amount: *amount,
                        reason: None,
                    },
                );
            }
            TellerEvent::CashDispensed { withdrawal_id, .. } => {
                if let Some(w) = self.withdrawals.get_mut(withdrawal_id) {
                    w.state = WithdrawalState::Dispensed;
                }
            }
            TellerEvent::WithdrawalDeclined {
                withdrawal_id,
                reason,
            } => {
                if let Some(w) = self.withdrawals.get_mut(withdrawal_id) {
                    w.state = WithdrawalState::Declined;
                    w.reason = Some(reason.clone());
                }
            }
        }
    }
}

impl Teller {
    /// Where withdrawal `id` is, if it was asked for here.
    pub fn withdrawal(&self, id: &str) -> Option<WithdrawalState> {
        self.withdrawals.get(id).map(|w| w.state)
    }

    /// Withdrawal `id`, if it was asked for here.
    pub fn withdrawal_details(&self, id: &str) -> Option<&Withdrawal> {
        self.withdrawals.get(id)
    }
}
