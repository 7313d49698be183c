// Two `#[handle]`s for one event type: one error, at the second.
use annals::prelude::*;

#[event]
pub enum TellerEvent {
    Requested { withdrawal: String },
}

#[event]
pub enum AccountEvent {
    Debited { withdrawal: String },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    amount: u64,
}

#[process_manager]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(withdrawal.clone())
    }

    #[handle]
    fn on_teller(&self, _event: &TellerEvent) -> Vec<Dispatch> {
        Vec::new()
    }

    #[handle]
    fn on_teller_again(&self, _event: &TellerEvent) -> Vec<Dispatch> {
        Vec::new()
    }
}

fn main() {}
