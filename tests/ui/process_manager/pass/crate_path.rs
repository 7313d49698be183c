// `crate = ".."` reaches the runtime under another name.
#![deny(warnings)]

use annals as ledger;
use ledger::process::{ProcessManager, Route};
use ledger::{event, process_manager};

#[event(crate = "ledger")]
pub enum TellerEvent {
    Requested { withdrawal: String },
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal;

#[process_manager(crate = "ledger", name = "withdrawal")]
impl Withdrawal {
    #[route]
    fn route(event: &TellerEvent, meta: &ledger::EventMeta<'_>) -> Route {
        let TellerEvent::Requested { withdrawal } = event;
        Route::Start(format!("{withdrawal}-{}", meta.position()))
    }
}

fn main() {
    assert_eq!(<Withdrawal as ProcessManager>::NAME, "withdrawal");
}
