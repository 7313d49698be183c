// A `#[route]` returning nothing: one error, saying what to return.
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
    fn route_teller(_event: &TellerEvent) {}
}

fn main() {}
