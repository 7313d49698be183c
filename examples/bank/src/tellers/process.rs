//! The withdrawal process: teller -> account -> teller.

use super::{DeclineWithdrawal, DispenseCash, TellerEvent};
use crate::accounts::{AccountEvent, WithdrawAtTeller};
use annals::process::{Dispatch, ProcessManager, Route};
use annals::{Event, HandlerError, RecordedEvent};
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

impl ProcessManager for WithdrawalProcess {
    const NAME: &'static str = "withdrawal";
    const INTEREST: &'static [&'static [annals::aggregate::EventType]] = &[
        <TellerEvent as Event>::TYPES,
        <AccountEvent as Event>::TYPES,
    ];

    fn route(event: &RecordedEvent) -> Result<Route, HandlerError> {
        if event.stream_id.category() == Some("Teller") {
            return Ok(match HandlerError::decode::<TellerEvent>(event)? {
                TellerEvent::WithdrawalRequested { withdrawal_id, .. } => {
                    Route::Start(withdrawal_id)
                }
                TellerEvent::CashDispensed { withdrawal_id, .. }
                | TellerEvent::WithdrawalDeclined { withdrawal_id, .. } => {
                    Route::Stop(withdrawal_id)
                }
            });
        }
        Ok(match HandlerError::decode::<AccountEvent>(event)? {
            AccountEvent::WithdrawalAuthorised { withdrawal_id, .. }
            | AccountEvent::WithdrawalRefused { withdrawal_id, .. } => {
                Route::Continue(withdrawal_id)
            }
            _ => Route::Ignore,
        })
    }

    fn handle(&self, event: &RecordedEvent) -> Result<Vec<Dispatch>, HandlerError> {
        if event.stream_id.category() == Some("Teller") {
            let TellerEvent::WithdrawalRequested {
                withdrawal_id,
                account_id,
                amount,
                pin_hash,
            } = HandlerError::decode::<TellerEvent>(event)?
            else {
                return Ok(Vec::new());
            };
            let teller_id = event
                .stream_id
                .aggregate_id()
                .unwrap_or_default()
                .to_owned();
            let timeout = DeclineWithdrawal {
                teller_id,
                withdrawal_id: withdrawal_id.clone(),
                reason: "the account did not answer in time".into(),
            };
            return Ok(vec![
                Dispatch::command(WithdrawAtTeller {
                    account_id,
                    withdrawal_id,
                    amount,
                    pin_hash,
                }),
                Dispatch::later(timeout, WITHDRAWAL_TIMEOUT)?,
            ]);
        }
        Ok(match HandlerError::decode::<AccountEvent>(event)? {
            AccountEvent::WithdrawalAuthorised {
                withdrawal_id,
                amount,
            } => vec![Dispatch::command(DispenseCash {
                teller_id: self.teller_id.clone(),
                withdrawal_id,
                amount,
            })],
            AccountEvent::WithdrawalRefused {
                withdrawal_id,
                reason,
            } => vec![Dispatch::command(DeclineWithdrawal {
                teller_id: self.teller_id.clone(),
                withdrawal_id,
                reason,
            })],
            _ => Vec::new(),
        })
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.stream_id.category() == Some("Teller")
            && let TellerEvent::WithdrawalRequested { amount, .. } =
                HandlerError::decode::<TellerEvent>(event)?
        {
            self.teller_id = event
                .stream_id
                .aggregate_id()
                .unwrap_or_default()
                .to_owned();
            self.amount = amount;
        }
        Ok(())
    }
}
