use annals::prelude::*;

#[upcaster(from = "Deposited", version = 1)]
fn deposited(old: serde_json::Value, extra: u32) -> serde_json::Value {
    let _ = extra;
    old
}

fn main() {}
