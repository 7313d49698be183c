// One misspelt key (`concurency`) in a handler's program: one error; its
// methods, and code that runs it and reads its constants, add none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event(rename = "audit.passed")]
pub struct AuditPassed;

#[derive(Debug, thiserror::Error)]
#[error("the mail server is down")]
pub struct NotifyError;

#[derive(Default)]
pub struct Notifier {
    sent: std::sync::atomic::AtomicU64,
}

#[event_handler(name = "notifier", concurency = 4, start_from = now)]
impl Notifier {
    async fn on_account(&self, _event: &AccountEvent, meta: &EventMeta<'_>) -> Result<(), NotifyError> {
        self.sent.fetch_add(meta.position(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn on_audit(&self, _event: &AuditPassed) {}
}

async fn run<H: annals::EventHandler>(handler: &H, event: &annals::RecordedEvent) -> usize {
    handler.handle(event).await.unwrap();
    H::CONCURRENCY
}

fn main() {
    let _ = run::<Notifier>;
    let _ = <Notifier as annals::EventHandler>::INTEREST;
}
