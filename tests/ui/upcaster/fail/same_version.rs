use annals::prelude::*;

#[upcaster(from = "Deposited", version = 2, to_version = 2)]
fn deposited(old: serde_json::Value) -> serde_json::Value {
    old
}

fn main() {}
