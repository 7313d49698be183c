// On the struct instead of its impl block: one error; code that runs the
// handler adds none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event_handler]
pub struct Notifier;

impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

fn runs<H: annals::EventHandler>(handler: H) {
    let _ = handler;
}

fn main() {
    runs(Notifier);
    let _ = Notifier::on_account;
}
