// A parameter after the metadata.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent, _meta: &EventMeta<'_>, _retry: u32) {}
}

fn main() {}
