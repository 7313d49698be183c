// A `#[route]` taking a type that is not an `#[event]`: one error, at that type.
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

pub struct Requested {
    pub withdrawal: String,
}

#[process_manager]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(withdrawal.clone())
    }

    #[route]
    fn route_requested(event: &Requested, _meta: &EventMeta<'_>) -> Route {
        Route::Start(event.withdrawal.clone())
    }
}

fn main() {}
