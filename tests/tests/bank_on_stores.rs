//! The bank's accounts end to end through `App`, on every store: the same
//! application code, the same outcomes, and state that survives a cold start.

use annals::sqlite::SqliteStore;
use annals::{App, DispatchError, EventStore};
use annals_tests::conformance::{MemoryFactory, StoreFactory};
use annals_tests::postgres::PostgresFactory;
use bank::accounts::{
    Account, AccountError, AccountId, AccountStatus, CloseAccount, DepositMoney, OpenAccount,
    PinHasher, WithdrawMoney,
};

fn app_on(store: impl EventStore) -> App {
    App::builder()
        .store(store)
        .service(PinHasher::new("e2e"))
        .build()
        .expect("a consistent registry")
}

async fn bank_scenario<S: EventStore + Clone>(store: S) {
    let node_a = app_on(store.clone());
    let id = AccountId::new();
    // A first name may be empty, a last name may not.
    let nameless = node_a
        .dispatch(OpenAccount {
            account_id: id,
            first_name: "Grace".into(),
            last_name: " ".into(),
            pin: "2468".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(nameless, DispatchError::Domain(AccountError::EmptyLastName)),
        "{nameless:?}"
    );
    node_a
        .dispatch(OpenAccount {
            account_id: id,
            first_name: "Grace".into(),
            last_name: "Hopper".into(),
            pin: "2468".into(),
        })
        .await
        .unwrap();
    node_a
        .dispatch(DepositMoney {
            account_id: id,
            amount: 1_000,
            currency: None,
        })
        .await
        .unwrap();
    let refused = node_a
        .dispatch(WithdrawMoney {
            account_id: id,
            amount: 5_000,
        })
        .await
        .unwrap_err();
    assert!(matches!(
        refused,
        DispatchError::Domain(AccountError::InsufficientFunds {
            balance: 1_000,
            requested: 5_000
        })
    ));
    // An account is kept in euros: a deposit in another currency is refused.
    let foreign = node_a
        .dispatch(DepositMoney {
            account_id: id,
            amount: 500,
            currency: Some("USD".into()),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&foreign, DispatchError::Domain(AccountError::UnsupportedCurrency(c)) if c == "USD"),
        "{foreign:?}"
    );

    // 20 concurrent deposits: all recorded, one version each.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = node_a.clone();
            tokio::spawn(async move {
                app.dispatch(DepositMoney {
                    account_id: id,
                    amount: 10,
                    currency: None,
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("concurrent deposits all succeed");
    }

    // A second node with a cold cache sees exactly the same state...
    let node_b = app_on(store.clone());
    let (account, version) = node_b.load::<Account>(id).await.unwrap();
    assert_eq!(
        (
            account.balance(),
            version,
            account.first_name(),
            account.last_name()
        ),
        (1_200, 22, "Grace", "Hopper")
    );
    // ...writes behind node A's cache...
    node_b
        .dispatch(WithdrawMoney {
            account_id: id,
            amount: 1_200,
        })
        .await
        .unwrap();
    // ...and node A, stale, still decides correctly: closing needs the zero balance B made.
    let closed = node_a
        .dispatch(CloseAccount { account_id: id })
        .await
        .expect("node A catches up and closes");
    assert_eq!(closed.version, 24);
    let (account, _) = app_on(store.clone()).load::<Account>(id).await.unwrap();
    assert_eq!(account.status(), AccountStatus::Closed);
    let recorded = store.read_stream(&closed.stream_id, 1, 100).await.unwrap();
    assert_eq!(
        recorded
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        (1..=24).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_on_memory() {
    let factory = MemoryFactory;
    bank_scenario(factory.create().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_on_sqlite_file_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    bank_scenario(SqliteStore::open(&path).await.unwrap()).await;
    // Reopen the file: every account's events are still there.
    let reopened = SqliteStore::open(&path).await.unwrap();
    let log = reopened.read_all(1, 1_000).await.unwrap();
    assert_eq!(log.len(), 24);
    assert_eq!(log.last().unwrap().event_type, "AccountClosed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_on_postgres() {
    let factory = PostgresFactory;
    let store = factory.create().await;
    bank_scenario(store.clone()).await;
    factory.dispose(store).await;
}
