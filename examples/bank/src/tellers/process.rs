//! The withdrawal process: teller -> account -> teller.

use super::{DeclineWithdrawal, DispenseCash, TellerEvent};
use crate::accounts::{AccountEvent, WithdrawAtTeller};
use annals::process::{Dispatch, Route};
use annals::{EventMeta, HandlerError, process_manager};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a withdrawal may wait for its account before it is declined.
pub const WITHDRAWAL_TIMEOUT: Duration = Duration::from_secs(30);

/// One cash withdrawal in progress: which teller asked, for how much.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WithdrawalProcess {
    teller_id: String,
    amount: u64,
}

#[process_manager(name = "withdrawal")]
impl WithdrawalProcess {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        match event {
            TellerEvent::WithdrawalRequested { withdrawal_id, .. } => {
                Route::Start(withdrawal_id.clone())
            }
            TellerEvent::CashDispensed { withdrawal_id, .. }
            | TellerEvent::WithdrawalDeclined { withdrawal_id, .. } => {
                Route::Stop(withdrawal_id.clone())
            }
        }
    }

    #[route]
    fn route_account(event: &AccountEvent) -> Route {
        match event {
            AccountEvent::WithdrawalAuthorised { withdrawal_id, .. }
            | AccountEvent::WithdrawalDeclined { withdrawal_id, .. } => {
                Route::Continue(withdrawal_id.clone())
            }
            _ => Route::Ignore,
        }
    }

    /// A request asks the account, and declines the withdrawal if the
    /// account does not answer in time.
    #[handle]
    fn on_teller(
        &self,
        event: &TellerEvent,
        meta: &EventMeta<'_>,
    ) -> Result<Vec<Dispatch>, HandlerError> {
        let TellerEvent::WithdrawalRequested {
            withdrawal_id,
            account_id,
            amount,
            pin_hash,
        } = event
        else {
            return Ok(Vec::new());
        };
        let timeout = DeclineWithdrawal {
            teller_id: meta.aggregate_id().unwrap_or_default().to_owned(),
            withdrawal_id: withdrawal_id.clone(),
            reason: "the account did not answer in time".into(),
        };
        Ok(vec![
            Dispatch::command(WithdrawAtTeller {
                account_id: *account_id,
                withdrawal_id: withdrawal_id.clone(),
                amount: *amount,
                pin_hash: pin_hash.clone(),
            }),
            Dispatch::later(timeout, WITHDRAWAL_TIMEOUT)?,
        ])
    }

    /// The account's answer: the teller dispenses, or declines.
    #[handle]
    fn on_account(&self, event: &AccountEvent) -> Vec<Dispatch> {
        match event {
            AccountEvent::WithdrawalAuthorised {
                withdrawal_id,
                amount,
            } => vec![Dispatch::command(DispenseCash {
                teller_id: self.teller_id.clone(),
                withdrawal_id: withdrawal_id.clone(),
                amount: *amount,
            })],
            AccountEvent::WithdrawalDeclined {
                withdrawal_id,
                reason,
            } => vec![Dispatch::command(DeclineWithdrawal {
                teller_id: self.teller_id.clone(),
                withdrawal_id: withdrawal_id.clone(),
                reason: reason.clone(),
            })],
            _ => Vec::new(),
        }
    }

    #[apply]
    fn apply_teller(&mut self, event: &TellerEvent, meta: &EventMeta<'_>) {
        if let TellerEvent::WithdrawalRequested { amount, .. } = event {
            self.teller_id = meta.aggregate_id().unwrap_or_default().to_owned();
            self.amount = *amount;
        }
    }
}
