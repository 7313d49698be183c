// A `#[route]` taking `&self`: it runs before any instance is loaded.
// One error; the event type still counts as routed.
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
    fn route_teller(&self, _event: &TellerEvent) -> Route {
        Route::Ignore
    }

    #[apply]
    fn apply_teller(&mut self, _event: &TellerEvent) {
        self.amount += 1;
    }
}

fn main() {}
