// A key given twice, reported at the second.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler(name = "notifier", name = "mailer")]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
