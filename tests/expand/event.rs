use annals::event;

#[event(moved = ["CardLocked"])]
pub enum AccountEvent {
    #[event(rename_from = "AccountCreated")]
    Opened { owner: String },
    #[event(rename = "Deposited", version = 2)]
    MoneyDeposited { amount: u64 },
    Noted(String),
    Closed,
}

fn main() {}
