//! A process manager across two aggregates (a cash withdrawal at a teller,
//! debiting an account) on every store: the happy path, a decline, causation
//! and correlation through the whole process, and no second command after a
//! redelivery, even one that lost the process's saved state.

use annals::handler::{ErrorPolicy, HandlerOptions};
use annals::testing::{assert_same_correlation, eventually_recorded};
use annals::{HandlerError, RecordedEvent, Snapshot, StreamId, prelude::*};
use annals_tests::conformance::{MemoryFactory, StoreFactory};
use annals_tests::postgres::PostgresFactory;
use std::time::Duration;

#[event]
pub enum AccountEvent {
    Opened { balance: u64 },
    Debited { amount: u64, withdrawal: String },
    DebitDeclined { withdrawal: String, reason: String },
}

#[event]
pub enum TellerEvent {
    WithdrawalRequested {
        withdrawal: String,
        account: String,
        amount: u64,
    },
    CashDispensed {
        withdrawal: String,
        amount: u64,
    },
    WithdrawalDeclined {
        withdrawal: String,
        reason: String,
    },
}

#[command(aggregate = Account)]
pub struct Open {
    #[id]
    pub account: String,
    pub balance: u64,
}

#[command(aggregate = Account)]
pub struct Debit {
    #[id]
    pub account: String,
    pub amount: u64,
    pub withdrawal: String,
}

#[command(aggregate = Teller)]
pub struct RequestWithdrawal {
    #[id]
    pub teller: String,
    pub withdrawal: String,
    pub account: String,
    pub amount: u64,
}

#[command(aggregate = Teller)]
pub struct Dispense {
    #[id]
    pub teller: String,
    pub withdrawal: String,
    pub amount: u64,
}

#[command(aggregate = Teller)]
pub struct Decline {
    #[id]
    pub teller: String,
    pub withdrawal: String,
    pub reason: String,
}

#[aggregate(events = AccountEvent)]
#[derive(Clone, Default)]
pub struct Account {
    balance: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn open(&self, command: Open) -> AccountEvent {
        AccountEvent::Opened {
            balance: command.balance,
        }
    }

    #[handle]
    fn debit(&self, command: Debit) -> AccountEvent {
        if command.amount > self.balance {
            return AccountEvent::DebitDeclined {
                withdrawal: command.withdrawal,
                reason: format!("insufficient funds: {} < {}", self.balance, command.amount),
            };
        }
        AccountEvent::Debited {
            amount: command.amount,
            withdrawal: command.withdrawal,
        }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { balance } => self.balance = *balance,
            AccountEvent::Debited { amount, .. } => self.balance -= amount,
            AccountEvent::DebitDeclined { .. } => {}
        }
    }
}

#[aggregate(events = TellerEvent)]
#[derive(Default)]
pub struct Teller;

#[aggregate]
impl Teller {
    #[handle]
    fn request(&self, c: RequestWithdrawal) -> TellerEvent {
        TellerEvent::WithdrawalRequested {
            withdrawal: c.withdrawal,
            account: c.account,
            amount: c.amount,
        }
    }

    #[handle]
    fn dispense(&self, c: Dispense) -> TellerEvent {
        TellerEvent::CashDispensed {
            withdrawal: c.withdrawal,
            amount: c.amount,
        }
    }

    #[handle]
    fn decline(&self, c: Decline) -> TellerEvent {
        TellerEvent::WithdrawalDeclined {
            withdrawal: c.withdrawal,
            reason: c.reason,
        }
    }

    #[apply]
    fn apply(&mut self, _: &TellerEvent) {}
}

/// One withdrawal: asks the account for the money, then has the teller
/// dispense it or decline.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    teller: String,
    amount: u64,
}

#[process_manager(name = "withdrawal")]
impl Withdrawal {
    #[route]
    fn route_account(event: &AccountEvent) -> Route {
        match event {
            AccountEvent::Debited { withdrawal, .. }
            | AccountEvent::DebitDeclined { withdrawal, .. } => Route::Continue(withdrawal.clone()),
            AccountEvent::Opened { .. } => Route::Ignore,
        }
    }

    #[route]
    fn route_teller(event: &TellerEvent) -> Route {
        match event {
            TellerEvent::WithdrawalRequested { withdrawal, .. } => Route::Start(withdrawal.clone()),
            TellerEvent::CashDispensed { withdrawal, .. }
            | TellerEvent::WithdrawalDeclined { withdrawal, .. } => Route::Stop(withdrawal.clone()),
        }
    }

    #[handle]
    fn on_account(&self, event: &AccountEvent) -> Vec<Dispatch> {
        match event {
            AccountEvent::Debited { withdrawal, amount } => vec![Dispatch::command(Dispense {
                teller: self.teller.clone(),
                withdrawal: withdrawal.clone(),
                amount: *amount,
            })],
            AccountEvent::DebitDeclined { withdrawal, reason } => {
                vec![Dispatch::command(Decline {
                    teller: self.teller.clone(),
                    withdrawal: withdrawal.clone(),
                    reason: reason.clone(),
                })]
            }
            AccountEvent::Opened { .. } => Vec::new(),
        }
    }

    #[handle]
    fn on_teller(
        &self,
        event: &TellerEvent,
        meta: &EventMeta<'_>,
    ) -> Result<Vec<Dispatch>, HandlerError> {
        let TellerEvent::WithdrawalRequested {
            withdrawal,
            account,
            amount,
        } = event
        else {
            return Ok(Vec::new());
        };
        if account == "silent" {
            // Nobody answers for this account: only the timeout will.
            let timeout = Decline {
                teller: teller_of(meta),
                withdrawal: withdrawal.clone(),
                reason: "timed out".into(),
            };
            return Ok(vec![Dispatch::later(timeout, Duration::from_millis(600))?]);
        }
        Ok(vec![Dispatch::command(Debit {
            account: account.clone(),
            amount: *amount,
            withdrawal: withdrawal.clone(),
        })])
    }

    #[apply]
    fn apply_teller(&mut self, event: &TellerEvent, meta: &EventMeta<'_>) {
        if let TellerEvent::WithdrawalRequested { amount, .. } = event {
            self.teller = teller_of(meta);
            self.amount = *amount;
        }
    }
}

/// The teller whose stream an event is in.
fn teller_of(meta: &EventMeta<'_>) -> String {
    meta.stream_id()
        .aggregate_id()
        .unwrap_or_default()
        .to_owned()
}

fn app(store: impl EventStore) -> App {
    App::builder()
        .store(store)
        .process_manager_with::<Withdrawal>(HandlerOptions::new().on_error(
            ErrorPolicy::retry(3).backoff(Duration::from_millis(1), Duration::from_millis(5)),
        ))
        .build()
        .unwrap()
}

async fn recorded(app: &App, event_type: &'static str, withdrawal: &str) -> RecordedEvent {
    let wanted = withdrawal.to_owned();
    eventually_recorded(&**app.store(), Duration::from_secs(10), move |e| {
        e.event_type == event_type && e.payload.as_str().contains(&format!("\"{wanted}\""))
    })
    .await
}

async fn all_of(store: &dyn EventStore, event_type: &str) -> usize {
    let mut count = 0;
    let mut next = 1;
    loop {
        let page = store.read_all(next, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return count;
        };
        next = last.global_position + 1;
        count += page.iter().filter(|e| e.event_type == event_type).count();
    }
}

/// Requested, debited, dispensed: one request from end to end.
async fn withdraws_across_aggregates<F: StoreFactory>(_: &F, store: &F::Store) {
    let app = app(store.clone());
    app.dispatch(Open {
        account: "acc".into(),
        balance: 100,
    })
    .await
    .unwrap();
    let asked = app
        .dispatch(RequestWithdrawal {
            teller: "atm-1".into(),
            withdrawal: "w1".into(),
            account: "acc".into(),
            amount: 40,
        })
        .await
        .unwrap();
    let dispensed = recorded(&app, "CashDispensed", "w1").await;
    let debited = recorded(&app, "Debited", "w1").await;
    let requested = recorded(&app, "WithdrawalRequested", "w1").await;
    assert_eq!(dispensed.stream_id.as_str(), "Teller-atm-1");
    assert_eq!(
        requested.metadata.correlation_id,
        Some(asked.correlation_id)
    );
    assert_same_correlation(&requested, &debited);
    assert_same_correlation(&debited, &dispensed);
    assert_eq!(debited.metadata.causation_id, Some(requested.event_id));
    assert_eq!(dispensed.metadata.causation_id, Some(debited.event_id));
    let (account, _) = app.load::<Account>("acc").await.unwrap();
    assert_eq!(account.balance, 60);
    app.shutdown().await.unwrap();
}

/// Insufficient funds: the account declines, and so does the teller.
async fn a_decline_ends_the_process<F: StoreFactory>(_: &F, store: &F::Store) {
    let app = app(store.clone());
    app.dispatch(Open {
        account: "poor".into(),
        balance: 10,
    })
    .await
    .unwrap();
    app.dispatch(RequestWithdrawal {
        teller: "atm-2".into(),
        withdrawal: "w2".into(),
        account: "poor".into(),
        amount: 40,
    })
    .await
    .unwrap();
    let declined = recorded(&app, "WithdrawalDeclined", "w2").await;
    assert!(declined.payload.as_str().contains("insufficient funds"));
    assert_eq!(all_of(&**app.store(), "CashDispensed").await, 0);
    app.shutdown().await.unwrap();
}

/// Everything delivered again (checkpoint rewound), and even the instance's
/// saved state lost: no command is carried out twice.
async fn redelivery_issues_no_second_command<F: StoreFactory>(factory: &F, store: &F::Store) {
    let first = app(factory.open_again(store).await);
    first
        .dispatch(Open {
            account: "twice".into(),
            balance: 100,
        })
        .await
        .unwrap();
    first
        .dispatch(RequestWithdrawal {
            teller: "atm-3".into(),
            withdrawal: "w3".into(),
            account: "twice".into(),
            amount: 30,
        })
        .await
        .unwrap();
    recorded(&first, "CashDispensed", "w3").await;
    first.shutdown().await.unwrap();

    let again = factory.open_again(store).await;
    again.save_checkpoint("withdrawal", 0).await.unwrap();
    again
        .save_snapshot(Snapshot {
            stream_id: StreamId::new("$process-withdrawal-w3"),
            stream_version: 0,
            snapshot_version: 1,
            state: annals::Payload::from_json(r#"{"state":null}"#).unwrap(),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let second = app(again);
    // A later withdrawal shows the replay has passed w3.
    second
        .dispatch(RequestWithdrawal {
            teller: "atm-3".into(),
            withdrawal: "w4".into(),
            account: "twice".into(),
            amount: 5,
        })
        .await
        .unwrap();
    recorded(&second, "CashDispensed", "w4").await;
    assert_eq!(all_of(&**second.store(), "Debited").await, 2);
    assert_eq!(all_of(&**second.store(), "CashDispensed").await, 2);
    let (account, _) = second.load::<Account>("twice").await.unwrap();
    assert_eq!(account.balance, 65);
    second.shutdown().await.unwrap();
}

/// A timeout scheduled before a shutdown fires after the restart, once.
async fn a_timeout_fires_after_a_restart<F: StoreFactory>(factory: &F, store: &F::Store) {
    let first = app(factory.open_again(store).await);
    first
        .dispatch(RequestWithdrawal {
            teller: "atm-9".into(),
            withdrawal: "w9".into(),
            account: "silent".into(),
            amount: 10,
        })
        .await
        .unwrap();
    eventually_recorded(&**first.store(), Duration::from_secs(10), |e| {
        e.event_type == "CommandScheduled"
    })
    .await;
    first.shutdown().await.unwrap();
    assert_eq!(
        all_of(&factory.open_again(store).await, "WithdrawalDeclined").await,
        0
    );

    let second = app(factory.open_again(store).await);
    let declined = recorded(&second, "WithdrawalDeclined", "w9").await;
    assert!(declined.payload.as_str().contains("timed out"));
    let requested = recorded(&second, "WithdrawalRequested", "w9").await;
    assert_same_correlation(&requested, &declined);
    // Give a second firing, if there wrongly were one, time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all_of(&**second.store(), "WithdrawalDeclined").await, 1);
    assert_eq!(all_of(&**second.store(), "ScheduledCommandFired").await, 1);
    second.shutdown().await.unwrap();
}

macro_rules! process_suite {
    ($factory:expr) => {
        process_suite!(@ $factory;
            withdraws_across_aggregates,
            a_decline_ends_the_process,
            redelivery_issues_no_second_command,
            a_timeout_fires_after_a_restart,
        );
    };
    (@ $factory:expr; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let factory = $factory;
            let store = factory.create().await;
            super::$check(&factory, &store).await;
        }
    )*};
}

mod memory {
    use super::*;
    process_suite!(MemoryFactory);
}

mod sqlite {
    use super::*;
    use annals::sqlite::SqliteStore;

    pub struct Files(tempfile::TempDir);

    impl StoreFactory for Files {
        type Store = SqliteStore;
        async fn create(&self) -> SqliteStore {
            SqliteStore::open(self.0.path().join("events.db"))
                .await
                .unwrap()
        }
        async fn open_again(&self, store: &SqliteStore) -> SqliteStore {
            SqliteStore::open(store.filename()).await.unwrap()
        }
    }

    process_suite!(Files(tempfile::tempdir().unwrap()));
}

mod postgres {
    use super::*;
    process_suite!(PostgresFactory);
}
