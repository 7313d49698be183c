// Two `#[route]`s for one event type: one error, at the second.
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

    #[route]
    fn route_again(_event: &TellerEvent) -> Route {
        Route::Ignore
    }
}

fn main() {}
