// `&mut self`: one handler value serves concurrent calls.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier {
    sent: u64,
}

#[event_handler]
impl Notifier {
    fn on_account(&mut self, _event: &AccountEvent) {
        self.sent += 1;
    }
}

fn main() {}
