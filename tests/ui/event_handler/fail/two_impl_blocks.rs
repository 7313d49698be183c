// Two `#[event_handler]` impl blocks for one type: a handler's methods are
// declared in one block (helpers go in a plain one).
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event(rename = "audit.passed")]
pub struct AuditPassed;

pub struct Notifier;

#[event_handler]
impl Notifier {
    fn on_account(&self, _event: &AccountEvent) {}
}

#[event_handler]
impl Notifier {
    fn on_audit(&self, _event: &AuditPassed) {}
}

fn main() {}
