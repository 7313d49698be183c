// A generic method: the interest set is fixed at compile time.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_any<E: Event>(&self, _event: &E) {}
}

fn main() {}
