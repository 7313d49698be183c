// Every method shape an `#[event_handler]` takes, under `#![deny(warnings)]`:
// sync and async, with and without metadata, returning nothing or a `Result`,
// beside a plain impl block of helpers; and a handler for one instance of a
// generic struct.
#![deny(warnings)]

use annals::handler::{EventHandler, StartFrom};
use annals::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event]
pub enum TellerEvent {
    #[event(rename = "teller.assigned")]
    Assigned { teller: String },
}

#[event(rename = "branch.opened")]
pub struct BranchOpened {
    pub city: String,
}

#[event(rename = "audit.passed")]
pub struct AuditPassed;

#[event(rename = "loan.granted")]
pub struct LoanGranted;

#[event(rename = "card.issued")]
pub struct CardIssued;

#[derive(Debug, thiserror::Error)]
#[error("the mail server is down")]
pub struct NotifyError;

#[derive(Default)]
pub struct BalanceNotifier {
    sent: AtomicU64,
}

#[event_handler(name = "balance-notifier", start_from = now, concurrency = 4)]
impl BalanceNotifier {
    /// Documented, public, async, with metadata and a domain error.
    pub async fn on_account(&self, event: &AccountEvent, meta: &EventMeta<'_>) -> Result<(), NotifyError> {
        if let AccountEvent::Deposited { amount } = event {
            self.note(*amount + meta.position());
        }
        std::future::ready(()).await;
        Ok(())
    }

    fn on_teller(&self, event: &TellerEvent) {
        let TellerEvent::Assigned { teller } = event;
        self.note(teller.len() as u64);
    }

    fn on_branch(&self, event: &BranchOpened, meta: &annals::EventMeta) -> () {
        self.note(event.city.len() as u64 + meta.stream_version());
    }

    async fn on_audit(&self, _: &AuditPassed) {}

    fn on_loan<'e>(&self, _event: &'e LoanGranted) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err("no loans today".into())
    }

    fn on_card(&self, _event: &CardIssued) -> Result<(), String> {
        Ok(())
    }
}

impl BalanceNotifier {
    fn note(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }
}

pub trait Mailer: Send + Sync + 'static {
    fn send(&self, to: &str);
}

pub struct Smtp;

impl Mailer for Smtp {
    fn send(&self, _to: &str) {}
}

pub struct Welcome<M> {
    mailer: M,
}

#[event_handler(start_from = origin)]
impl Welcome<Smtp> {
    async fn on_account(&self, event: &AccountEvent) {
        if let AccountEvent::Opened { owner } = event {
            self.mailer.send(owner);
        }
    }
}

fn runs<H: EventHandler>() {}

fn main() {
    runs::<BalanceNotifier>();
    runs::<Welcome<Smtp>>();
    assert_eq!(BalanceNotifier::INTEREST.len(), 6);
    assert_eq!(<Welcome<Smtp> as EventHandler>::NAME, "Welcome<Smtp>");
    assert_eq!(<Welcome<Smtp> as EventHandler>::START_FROM, StartFrom::Origin);
    let _ = BalanceNotifier::default().sent.load(Ordering::Relaxed);
}
