// Two methods for one event type: one error, at the second one's type, naming the first.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}

    async fn on_deposit(&self, _event: &AccountEvent, _meta: &EventMeta<'_>) {}
}

fn main() {}
