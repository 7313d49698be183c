use annals::process::{Dispatch, Route};
use annals::{process_manager, EventMeta, HandlerError};

pub enum TellerEvent {
    Requested { withdrawal: String, account: String },
}
pub enum AccountEvent {
    Debited { withdrawal: String },
}
pub struct Debit {
    pub account: String,
}

pub struct Withdrawal {
    teller: String,
}

#[process_manager(name = "withdrawal")]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal, .. } = event;
        Route::Start(withdrawal.clone())
    }

    #[route]
    fn route_account(event: &AccountEvent, meta: &EventMeta<'_>) -> Route {
        let AccountEvent::Debited { withdrawal } = event;
        let _ = meta.position();
        Route::Stop(withdrawal.clone())
    }

    #[handle]
    fn on_teller(&self, event: &TellerEvent) -> Result<Vec<Dispatch>, HandlerError> {
        let TellerEvent::Requested { account, .. } = event;
        Ok(Vec::from([Dispatch::command(Debit { account: account.clone() })]))
    }

    #[handle]
    fn on_account(&self, _event: &AccountEvent) -> Vec<Dispatch> {
        Vec::new()
    }

    #[apply]
    fn apply_teller(&mut self, _event: &TellerEvent, meta: &EventMeta<'_>) {
        self.teller = meta.stream_id().to_string();
    }
}

fn main() {}
