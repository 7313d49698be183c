// A key given twice: one error, at the second.
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

#[process_manager(name = "withdrawal", name = "withdrawal-2")]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(withdrawal.clone())
    }

}

fn main() {}
