// An unknown key lists the valid ones.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler(name = "notifier", retries = 3)]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
