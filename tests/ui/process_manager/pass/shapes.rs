// Every function shape a `#[process_manager]` takes, under `#![deny(warnings)]`:
// routes with and without metadata, handles returning `Vec<Dispatch>` or a
// `Result` (with a domain error, or `HandlerError` passed on with `?`), applies
// with and without metadata, beside a plain impl block of helpers; the default
// name; a process manager for one instance of a generic struct; and all of
// them run by an app.
#![deny(warnings)]

use annals::process::ProcessManager;
use annals::prelude::*;
use annals::HandlerError;
use std::time::Duration;

#[event]
pub enum TellerEvent {
    WithdrawalRequested { withdrawal: String, account: String, amount: u64 },
    CashDispensed { withdrawal: String },
}

#[event]
pub enum AccountEvent {
    Debited { withdrawal: String },
    DebitDeclined { withdrawal: String },
}

#[event(rename = "audit.passed")]
pub struct AuditPassed {
    pub withdrawal: String,
}

#[command(aggregate = Account)]
pub struct Debit {
    #[id]
    pub account: String,
    pub withdrawal: String,
    pub amount: u64,
}

#[command(aggregate = Account)]
#[derive(serde::Serialize)]
pub struct Expire {
    #[id]
    pub account: String,
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account;

#[aggregate]
impl Account {
    #[handle]
    fn debit(&self, command: Debit) -> AccountEvent {
        AccountEvent::Debited { withdrawal: command.withdrawal }
    }

    #[handle]
    fn expire(&self, command: Expire) -> AccountEvent {
        AccountEvent::DebitDeclined { withdrawal: command.account }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Debited { .. } | AccountEvent::DebitDeclined { .. } => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the withdrawal is refused")]
pub struct Refused;

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    account: String,
    audited: bool,
}

#[process_manager(name = "withdrawal")]
impl Withdrawal {
    /// Documented.
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        match event {
            TellerEvent::WithdrawalRequested { withdrawal, .. } => Route::Start(withdrawal.clone()),
            TellerEvent::CashDispensed { withdrawal } => Route::Stop(withdrawal.clone()),
        }
    }

    #[route]
    pub fn route_account(event: &AccountEvent, meta: &EventMeta<'_>) -> annals::process::Route {
        match event {
            AccountEvent::Debited { withdrawal } if meta.position() > 0 => Route::Continue(withdrawal.clone()),
            _ => Route::Ignore,
        }
    }

    #[route]
    fn route_audit(event: &AuditPassed) -> Route {
        Route::Continue(event.withdrawal.clone())
    }

    #[handle]
    fn on_teller(&self, event: &TellerEvent, meta: &EventMeta<'_>) -> Result<Vec<Dispatch>, HandlerError> {
        let TellerEvent::WithdrawalRequested { withdrawal, account, amount } = event else {
            return Ok(Vec::new());
        };
        let _ = meta.stream_id();
        Ok(vec![
            Dispatch::command(Debit { account: account.clone(), withdrawal: withdrawal.clone(), amount: *amount }),
            Dispatch::later(Expire { account: account.clone() }, Duration::from_secs(30))?,
        ])
    }

    #[handle]
    fn on_account(&self, _event: &AccountEvent) -> Result<Vec<Dispatch>, Refused> {
        if self.audited { Ok(Vec::new()) } else { Err(Refused) }
    }

    #[handle]
    fn on_audit(&self, _: &AuditPassed) -> Vec<Dispatch> {
        self.none()
    }

    #[apply]
    fn apply_teller(&mut self, event: &TellerEvent, meta: &annals::EventMeta) {
        if let TellerEvent::WithdrawalRequested { account, .. } = event {
            self.account = format!("{account}@{}", meta.stream_id());
        }
    }

    #[apply]
    fn apply_audit(&mut self, _event: &AuditPassed) -> () {
        self.audited = true;
    }
}

impl Withdrawal {
    fn none(&self) -> Vec<Dispatch> {
        Vec::new()
    }
}

pub trait Currency: Default + Send + Sync + 'static {}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Eur;

impl Currency for Eur {}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Exchange<C> {
    currency: C,
}

#[process_manager]
impl Exchange<Eur> {
    #[route]
    fn route(event: &TellerEvent) -> Route {
        match event {
            TellerEvent::WithdrawalRequested { withdrawal, .. } | TellerEvent::CashDispensed { withdrawal } => {
                Route::Start(withdrawal.clone())
            }
        }
    }
}

fn main() {
    assert_eq!(Withdrawal::NAME, "withdrawal");
    assert_eq!(
        Withdrawal::INTEREST,
        &[TellerEvent::TYPES, AccountEvent::TYPES, AuditPassed::TYPES]
    );
    assert_eq!(<Exchange<Eur> as ProcessManager>::NAME, "Exchange<Eur>");
    let _ = Exchange::<Eur>::default().currency;
    let _ = App::builder()
        .process_manager::<Withdrawal>()
        .process_manager::<Exchange<Eur>>();
}
