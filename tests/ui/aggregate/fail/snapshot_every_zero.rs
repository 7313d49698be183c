// `snapshot_every = 0` would never take a snapshot: rejected at the number.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent, snapshot_every = 0)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Account {
    balance: u64,
}

fn main() {}
