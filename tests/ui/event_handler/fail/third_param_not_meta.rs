// A third parameter that is not the event's metadata: services belong in the handler's fields.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Mailer;

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent, _mailer: &Mailer) {}
}

fn main() {}
