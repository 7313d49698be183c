use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
    #[event(rename = "Deposited")]
    Credited { amount: u64 },
}

fn main() {}
