// `#[event]` goes on an enum or a struct.
use annals::prelude::*;

#[event]
pub fn account_opened() {}

fn main() {}
