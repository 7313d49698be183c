use annals::prelude::*;

#[event]
pub enum AccountEvent {
    #[event(version = 0)]
    Deposited { amount: u64 },
}

fn main() {}
