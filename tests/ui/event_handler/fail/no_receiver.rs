// A constructor in the handler's impl block: every function there is a
// handler method, so the error says to move it to another impl block.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    pub fn new() -> Self {
        Notifier
    }

    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
