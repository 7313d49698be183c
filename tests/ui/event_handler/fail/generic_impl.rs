// A generic impl: every instance would share one name, and so one checkpoint.
// One error; code that runs the handler adds none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier<M> {
    mailer: M,
}

#[event_handler]
impl<M: Send + Sync + 'static> Notifier<M> {
    fn on_account(&self, _event: &AccountEvent) {
        let _ = &self.mailer;
    }
}

fn runs<H: annals::EventHandler>(_: H) {}

fn main() {
    runs(Notifier { mailer: () });
}
