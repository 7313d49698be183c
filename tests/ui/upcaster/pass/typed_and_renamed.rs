use annals::prelude::*;

#[derive(serde::Deserialize)]
struct DepositedV1 {
    amount: u64,
}

#[derive(serde::Serialize)]
struct DepositedV2 {
    amount: u64,
    currency: String,
}

#[upcaster(from = "Deposited", version = 1)]
fn deposited(old: DepositedV1) -> DepositedV2 {
    DepositedV2 { amount: old.amount, currency: "EUR".into() }
}

#[upcaster(from = "Credited", version = 4, to = "Deposited", to_version = 2)]
fn credited_is_now_deposited(old: serde_json::Value) -> Result<serde_json::Value, std::io::Error> {
    Ok(old)
}

fn main() {}
