use annals::prelude::*;

struct DepositedV1 {
    amount: u64,
}

#[upcaster(from = "Deposited", version = 1)]
fn deposited(old: DepositedV1) -> serde_json::Value {
    serde_json::json!({ "amount": old.amount })
}

fn main() {}
