// The event by value: it is taken by reference.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: AccountEvent) {}
}

fn main() {}
