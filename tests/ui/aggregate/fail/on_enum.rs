use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub enum Account {
    #[default]
    Open,
    Closed,
}

fn main() {}
