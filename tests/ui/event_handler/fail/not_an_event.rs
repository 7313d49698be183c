// A method taking a type that is not an `#[event]`: one error, at that type.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Deposited {
    pub amount: u64,
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}

    fn on_deposit(&self, _event: &Deposited, _meta: &EventMeta<'_>) {}
}

fn main() {}
