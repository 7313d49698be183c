// `#[handle]` (a habit from `#[aggregate]`) on a handler method: every function is one already.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    #[handle]
    fn on_account(&self, _event: &AccountEvent) {}
}

fn main() {}
