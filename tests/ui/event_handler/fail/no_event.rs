// A helper method taking only `&self`: it handles nothing; the error says to move it.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {
        self.helper();
    }

    fn helper(&self) {}
}

fn main() {}
