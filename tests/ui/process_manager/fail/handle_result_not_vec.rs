// A `#[handle]` returning `Result<Dispatch, E>`: one error, at `Dispatch`.
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

#[derive(Debug, thiserror::Error)]
#[error("refused")]
pub struct Refused;

#[process_manager]
impl Withdrawal {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(withdrawal.clone())
    }

    #[handle]
    fn on_teller(&self, _event: &TellerEvent) -> Result<Dispatch, Refused> {
        Err(Refused)
    }
}

fn main() {}
