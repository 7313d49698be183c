use annals::prelude::*;

#[upcaster(from = "Deposited", version = 1)]
fn deposited(old: serde_json::Value) {
    let _ = old;
}

fn main() {}
