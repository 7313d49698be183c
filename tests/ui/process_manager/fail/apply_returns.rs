// An `#[apply]` returning a `Result`: folding an event cannot fail. One error.
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

    #[apply]
    fn apply_teller(&mut self, _event: &TellerEvent) -> Result<(), String> {
        self.amount += 1;
        Ok(())
    }
}

fn main() {}
