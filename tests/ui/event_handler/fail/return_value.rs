// A method returning a value: a handler returns `()` or `Result<(), E>`.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) -> bool {
        true
    }
}

fn main() {}
