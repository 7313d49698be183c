use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited(u64, String),
}

fn main() {}
