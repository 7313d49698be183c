use annals::prelude::*;

#[upcaster(from = "Deposited", version = 1)]
fn deposited(old: serde_json::Value, meta: &EventMeta, extra: u32) -> serde_json::Value {
    let _ = (meta, extra);
    old
}

fn main() {}
