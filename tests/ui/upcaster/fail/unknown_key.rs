use annals::prelude::*;

#[upcaster(from = "Deposited", verison = 1)]
fn deposited(old: serde_json::Value) -> serde_json::Value {
    old
}

fn main() {}
