use annals::{EventMeta, upcaster};

/// Stands in for an `#[event]` enum.
enum AccountEvent {
    Debited { cents: u64 },
    FeeCharged { cents: u64 },
}

struct DepositedV1 {
    amount: u64,
}

struct DepositedV2 {
    amount: u64,
    currency: String,
}

#[upcaster(from = "Deposited", version = 1)]
fn deposited_gains_a_currency(old: DepositedV1) -> Result<DepositedV2, String> {
    Ok(DepositedV2 { amount: old.amount, currency: "EUR".into() })
}


struct TransferredV1 {
    cents: u64,
    fee: u64,
}

// Split into events of the `#[event]` type `AccountEvent`, reading the
// stored event's metadata.
#[upcaster(from = "Transferred", version = 1, to = AccountEvent)]
fn transfer_splits(old: TransferredV1, meta: &EventMeta) -> Vec<AccountEvent> {
    let _ = meta;
    vec![AccountEvent::Debited { cents: old.cents }, AccountEvent::FeeCharged { cents: old.fee }]
}

fn main() {}
