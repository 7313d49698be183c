use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account(u64);

fn main() {}
