use annals::prelude::*;

#[upcaster(from = "Deposited", version = 1)]
async fn deposited(old: serde_json::Value) -> serde_json::Value {
    old
}

fn main() {}
