// `start_from` is `origin` or `now`.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler(start_from = latest)]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

pub struct Quoted;

#[event_handler(start_from = "now")]
impl Quoted {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
