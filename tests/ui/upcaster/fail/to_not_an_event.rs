use annals::prelude::*;

#[derive(serde::Serialize)]
pub struct Debited {
    cents: u64,
}

// `to = Debited` names an `#[event]` type whose events the step returns;
// a payload struct goes with `to = "Debited"`.
#[upcaster(from = "Transferred", version = 1, to = Debited)]
fn transfer_debits(old: serde_json::Value) -> Vec<Debited> {
    let _ = old;
    vec![Debited { cents: 1 }]
}

fn main() {}
