use annals::{event_handler, EventMeta};

pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct TellerAssigned;
#[derive(Debug)]
pub struct NotifyError;

#[derive(Default)]
pub struct BalanceNotifier;

#[event_handler(name = "balance-notifier", start_from = now, concurrency = 4)]
impl BalanceNotifier {
    async fn on_account(&self, event: &AccountEvent, meta: &EventMeta<'_>) -> Result<(), NotifyError> {
        let _ = (event, meta.position());
        Ok(())
    }

    fn on_teller(&self, _event: &TellerAssigned) {}
}

fn main() {}
