use annals::prelude::*;

pub struct Account {
    pub balance: u64,
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

fn main() {}
