// A `#[route]` returning something else than `Route`: one error, at the type.
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
    fn route_teller(event: &TellerEvent) -> Option<Route> {
        let TellerEvent::Requested { withdrawal } = event;
        Some(Route::Start(withdrawal.clone()))
    }
}

fn main() {}
