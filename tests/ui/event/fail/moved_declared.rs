use annals::prelude::*;

#[event(moved = ["CardLocked", "CardUnlocked", "CardLocked"])]
pub enum AccountEvent {
    Opened { owner: String },
    CardUnlocked,
}

fn main() {}
