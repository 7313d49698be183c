// `crate = ".."` reaches the runtime under another name.
#![deny(warnings)]

use annals as ledger;
use ledger::{event, event_handler, EventHandler};

#[event(crate = "ledger")]
pub enum AccountEvent {
    Opened { owner: String },
}

pub struct Printer;

#[event_handler(crate = "ledger", name = "printer")]
impl Printer {
    fn on_account(&self, event: &AccountEvent, meta: &ledger::EventMeta<'_>) {
        let _ = (event, meta.position());
    }
}

fn main() {
    assert_eq!(<Printer as EventHandler>::NAME, "printer");
}
