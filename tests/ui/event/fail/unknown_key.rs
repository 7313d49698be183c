use annals::prelude::*;

#[event(name = "Account")]
pub enum AccountEvent {
    Opened { owner: String },
    #[event(renamed = "Closed")]
    Closed,
}

fn main() {}
