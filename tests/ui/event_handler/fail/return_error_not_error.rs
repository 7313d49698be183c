// `Result<(), E>` with an `E` that is not an error.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug)]
pub struct NotifyError;

pub struct Notifier;

#[event_handler]
impl Notifier {
    async fn on_account(&self, _event: &AccountEvent) -> Result<(), NotifyError> {
        Err(NotifyError)
    }
}

fn main() {}
