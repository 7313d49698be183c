use annals::prelude::*;

#[event(moved = ["CardLocked"])]
pub enum AccountEvent {
    Credited { cents: u64, reference: String },
    Debited { cents: u64 },
    FeeCharged { cents: u64 },
}

#[derive(serde::Deserialize)]
struct DepositedV1 {
    cents: u64,
}

#[derive(serde::Serialize)]
struct Credited {
    cents: u64,
    reference: String,
}

// Renamed, with a field from the stored event's metadata.
#[upcaster(from = "Deposited", version = 1, to = "Credited")]
fn deposited(old: DepositedV1, meta: &EventMeta<'_>) -> Credited {
    Credited { cents: old.cents, reference: meta.event_id().to_string() }
}

#[derive(serde::Deserialize)]
struct TransferredV1 {
    cents: u64,
    fee: u64,
}

// Split into events of two types.
#[upcaster(from = "Transferred", version = 1, to = AccountEvent)]
fn transferred(old: TransferredV1) -> Result<Vec<AccountEvent>, std::io::Error> {
    Ok(vec![AccountEvent::Debited { cents: old.cents }, AccountEvent::FeeCharged { cents: old.fee }])
}

// Dropped.
#[upcaster(from = "Noted", version = 1, to = AccountEvent)]
fn noted(_old: serde_json::Value, _meta: &EventMeta) -> Option<AccountEvent> {
    None
}

fn main() {}
