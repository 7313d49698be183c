// `#[command]` goes on a struct.
use annals::prelude::*;

#[command(aggregate = Account)]
pub enum Deposit {
    Cash { amount: u64 },
}

fn main() {}
