use annals::prelude::*;

#[command]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

fn main() {}
