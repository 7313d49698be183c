// `Result<u64, E>`: the success value would have nowhere to go.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("the mail server is down")]
pub struct NotifyError;

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) -> Result<u64, NotifyError> {
        Ok(1)
    }
}

fn main() {}
