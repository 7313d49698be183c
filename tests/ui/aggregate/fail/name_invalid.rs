// An aggregate name is the prefix of its streams, "{name}-{id}": an empty one,
// or one with `-`, NUL or whitespace, is rejected at the string.
use annals::prelude::*;

#[event]
pub enum Event {
    Happened,
}

#[aggregate(events = Event, name = "")]
#[derive(Default)]
pub struct Empty {}

#[aggregate(events = Event, name = "Acct-x")]
#[derive(Default)]
pub struct Dashed {}

#[aggregate(events = Event, name = "bank account")]
#[derive(Default)]
pub struct Spaced {}

#[aggregate(events = Event, name = "acct\0")]
#[derive(Default)]
pub struct Nul {}

fn main() {}
