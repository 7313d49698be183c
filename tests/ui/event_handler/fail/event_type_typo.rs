// A misspelt event type and a misspelt error type: rustc's one error for
// each, at the signature; the generated code adds none.
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
    async fn on_account(&self, _event: &AcountEvent, _meta: &EventMeta<'_>) -> Result<(), NotifyEror> {
        Ok(())
    }
}

fn runs<H: annals::EventHandler>(_: H) {}

fn main() {
    runs(Notifier);
}
