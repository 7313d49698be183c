// Two event types sharing a type name (`Opened`): events are routed by name,
// so the handler could not tell where an `Opened` event goes. One error, at
// the second method's type, naming the name.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event]
pub enum TellerEvent {
    Opened { teller: String },
    Closed,
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}

    fn on_teller(&self, _event: &TellerEvent) {}
}

fn main() {}
