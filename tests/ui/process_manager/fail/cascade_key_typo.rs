// One misspelt key (`nme`) in a process manager's program: one error; its
// functions, and code that runs it and reads its constants, add none.
use annals::prelude::*;
use std::time::Duration;

#[event]
pub enum TellerEvent {
    Requested { withdrawal: String, account: String },
}

#[event]
pub enum AccountEvent {
    Debited { withdrawal: String },
}

#[command(aggregate = Account)]
#[derive(serde::Serialize)]
pub struct Debit {
    #[id]
    pub account: String,
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account;

#[aggregate]
impl Account {
    #[handle]
    fn debit(&self, _command: Debit) -> AccountEvent {
        AccountEvent::Debited { withdrawal: String::new() }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Debited { .. } => {}
        }
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    account: String,
}

#[process_manager(nme = "withdrawal")]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal, .. } = event;
        Route::Start(withdrawal.clone())
    }

    #[route]
    fn route_account(event: &AccountEvent, _meta: &EventMeta<'_>) -> Route {
        let AccountEvent::Debited { withdrawal } = event;
        Route::Continue(withdrawal.clone())
    }

    #[handle]
    fn on_teller(&self, event: &TellerEvent) -> Result<Vec<Dispatch>, annals::HandlerError> {
        let TellerEvent::Requested { account, .. } = event;
        Ok(vec![Dispatch::later(Debit { account: account.clone() }, Duration::from_secs(1))?])
    }

    #[apply]
    fn apply_teller(&mut self, event: &TellerEvent) {
        let TellerEvent::Requested { account, .. } = event;
        self.account = account.clone();
    }
}

fn main() {
    let _ = App::builder().process_manager::<Withdrawal>();
    let _ = <Withdrawal as annals::process::ProcessManager>::INTEREST;
}
