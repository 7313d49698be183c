use annals::prelude::*;

#[event]
pub enum AccountEvent {
    #[event(rename = "AccountOpened", version = 2, rename = "Opened")]
    Opened { owner: String },
}

fn main() {}
