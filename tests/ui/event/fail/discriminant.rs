// Event variants are stored by name: a discriminant is rejected.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened = 1,
    Closed = 2,
}

fn main() {}
