// On a trait impl: `#[event_handler]` writes `EventHandler` from an inherent impl.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

pub trait Notify {
    fn on_account(&self, event: &AccountEvent);
}

#[event_handler]
impl Notify for Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn runs<H: annals::EventHandler>(_: H) {}

fn main() {
    runs(Notifier);
}
