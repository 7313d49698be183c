// A generic impl: every instance would share one name, and so one checkpoint
// and its instances' streams. One error; code that runs it adds none.
use annals::prelude::*;

#[event]
pub enum TellerEvent {
    Requested { withdrawal: String },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal<C> {
    currency: C,
}

#[process_manager]
impl<C: Default + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static> Withdrawal<C> {
    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(withdrawal.clone())
    }

}

fn main() {
    let _ = App::builder().process_manager::<Withdrawal<u8>>();
}
