// A handler holding an `Rc`: the runner shares it between tasks. One error,
// at the type; the methods, whose futures hold a `&self` that is not `Send`, add none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event(rename = "audit.passed")]
pub struct AuditPassed;

pub struct Notifier {
    sent: std::rc::Rc<std::cell::Cell<u64>>,
}

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {
        self.sent.set(self.sent.get() + 1);
    }

    async fn on_audit(&self, _event: &AuditPassed, _meta: &EventMeta<'_>) {}
}

fn main() {}
