use annals::event;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    #[event(rename = "Deposited", version = 2)]
    MoneyDeposited { amount: u64 },
    Noted(String),
    Closed,
}

fn main() {}
