use annals::upcaster;

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

fn main() {}
