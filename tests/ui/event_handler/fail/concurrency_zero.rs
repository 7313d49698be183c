// `concurrency = 0` would never handle anything.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler(concurrency = 0)]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
