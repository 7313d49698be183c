// A `#[handle]` for an event type without a `#[route]`: its events would
// never arrive. One error, at the event type, saying to add a route.
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
    fn on_account(&self, _event: &AccountEvent) -> Vec<Dispatch> {
        Vec::new()
    }
}

fn main() {}
