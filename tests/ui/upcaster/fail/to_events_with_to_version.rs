use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Debited { cents: u64 },
    FeeCharged { cents: u64 },
}

#[upcaster(from = "Transferred", version = 1, to = AccountEvent, to_version = 2)]
fn transfer_splits(old: serde_json::Value) -> Vec<AccountEvent> {
    let _ = old;
    Vec::new()
}

fn main() {}
