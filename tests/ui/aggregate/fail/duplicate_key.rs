use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent, name = "Account", name = "BankAccount")]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

fn main() {}
