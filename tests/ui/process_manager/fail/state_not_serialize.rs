// A state that cannot be saved (no `Serialize`): one error, at the type,
// saying what to derive; the app that runs it adds none.
use annals::prelude::*;

#[event]
pub enum TellerEvent {
    Requested { withdrawal: String },
}

#[event]
pub enum AccountEvent {
    Debited { withdrawal: String },
}

#[derive(Default, serde::Deserialize)]
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
    fn apply_teller(&mut self, _event: &TellerEvent) {
        self.amount += 1;
    }
}

fn main() {
    let _ = App::builder().process_manager::<Withdrawal>();
}
