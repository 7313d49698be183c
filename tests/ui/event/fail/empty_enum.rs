// An event enum with no variant declares no event type.
use annals::prelude::*;

#[event]
pub enum AccountEvent {}

fn main() {}
