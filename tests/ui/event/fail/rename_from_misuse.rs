use annals::prelude::*;

#[event(moved = ["CardLocked"])]
pub enum AccountEvent {
    #[event(rename_from = "Credited")]
    Deposited { cents: u64 },
    #[event(rename_from = ["Debited", "CardLocked"])]
    Credited { cents: u64 },
    #[event(rename_from = "Debited")]
    Withdrawn { cents: u64 },
}

fn main() {}
