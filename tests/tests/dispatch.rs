//! The App's dispatch guarantees, observed through the bank's accounts.

use annals::testing::AggregateTest;
use annals::{
    App, DispatchError, DispatchOptions, EventStore, ExpectedVersion, JsonDispatchError, LoadError,
    MemoryStore, NewEvent, Payload, StoreError, StoreFuture, StreamId,
};
use bank::accounts::{
    Account, AccountError, AccountEvent, AccountId, CloseAccount, DepositMoney, OpenAccount,
    PinHasher, WithdrawMoney,
};
use futures::stream::BoxStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

fn app_on(store: impl EventStore) -> App {
    App::builder()
        .store(store)
        .service(PinHasher::new("test"))
        .build()
        .expect("registry is consistent")
}

async fn open(app: &App, id: AccountId) {
    app.dispatch(OpenAccount {
        account_id: id,
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        pin: "1234".into(),
    })
    .await
    .expect("a new account opens");
}

fn stream_of(id: AccountId) -> StreamId {
    StreamId::new(format!("Account-{id}"))
}

/// Wraps a store, counting reads and optionally failing appends.
#[derive(Clone, Default)]
struct Probe {
    inner: MemoryStore,
    reads: Arc<AtomicUsize>,
    /// Version each `read_stream` started from, last one.
    last_read_from: Arc<AtomicU64>,
    /// Make every append fail as if another writer always got there first.
    always_conflict: Arc<AtomicBool>,
    /// Record the next append, then report the connection lost.
    lose_next_ack: Arc<AtomicBool>,
}

impl EventStore for Probe {
    fn append<'a>(
        &'a self,
        stream: &'a StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> StoreFuture<'a, annals::AppendResult> {
        Box::pin(async move {
            if self.always_conflict.load(Ordering::SeqCst) {
                let actual = self.inner.stream_version(stream).await?;
                return Err(StoreError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected,
                    actual: Some(actual.unwrap_or(0) + 1),
                });
            }
            let done = self.inner.append(stream, expected, events).await?;
            if self.lose_next_ack.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Unavailable(
                    "connection reset after commit".into(),
                ));
            }
            Ok(done)
        })
    }
    fn read_stream<'a>(
        &'a self,
        stream: &'a StreamId,
        from_version: u64,
        max_count: usize,
    ) -> StoreFuture<'a, Vec<annals::RecordedEvent>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.last_read_from.store(from_version, Ordering::SeqCst);
        self.inner.read_stream(stream, from_version, max_count)
    }
    fn stream_version<'a>(&'a self, stream: &'a StreamId) -> StoreFuture<'a, Option<u64>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.stream_version(stream)
    }
    fn read_all(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> StoreFuture<'_, Vec<annals::RecordedEvent>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_all(from_position, max_count)
    }
    fn subscribe_all(
        &self,
        from_position: u64,
    ) -> BoxStream<'static, Result<annals::RecordedEvent, StoreError>> {
        self.inner.subscribe_all(from_position)
    }
    fn save_snapshot(&self, snapshot: annals::Snapshot) -> StoreFuture<'_, ()> {
        self.inner.save_snapshot(snapshot)
    }
    fn load_snapshot<'a>(
        &'a self,
        stream: &'a StreamId,
    ) -> StoreFuture<'a, Option<annals::Snapshot>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.load_snapshot(stream)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_to_one_aggregate_get_consecutive_versions() {
    let store = MemoryStore::new();
    let app = app_on(store.clone());
    // Four nodes of one service: tasks of one app queue on its cache, the
    // apps race through the store.
    let nodes: Vec<App> = (0..4).map(|_| app_on(store.clone())).collect();
    let id = AccountId::new();
    open(&app, id).await;
    const N: u64 = 200;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let app = nodes[i as usize % nodes.len()].clone();
            tokio::spawn(async move {
                app.dispatch(DepositMoney {
                    account_id: id,
                    amount: i + 1,
                    currency: None,
                })
                .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().expect("every deposit succeeds").version);
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=N + 1).collect::<Vec<_>>(),
        "each command got its own version"
    );

    let recorded = store.read_stream(&stream_of(id), 1, 10_000).await.unwrap();
    assert_eq!(
        recorded.len() as u64,
        N + 1,
        "exactly one event per command"
    );
    let stream_versions: Vec<u64> = recorded.iter().map(|e| e.stream_version).collect();
    assert_eq!(stream_versions, (1..=N + 1).collect::<Vec<_>>());
    let (account, version) = app.load::<Account>(id).await.unwrap();
    assert_eq!(version, N + 1);
    assert_eq!(account.balance(), N * (N + 1) / 2);
}

#[tokio::test]
async fn a_warm_aggregate_is_not_read_from_the_store_again() {
    let probe = Probe::default();
    let app = app_on(probe.clone());
    let id = AccountId::new();
    open(&app, id).await;
    let reads_after_first = probe.reads.load(Ordering::SeqCst);
    assert!(
        reads_after_first >= 1,
        "the first command loads the aggregate"
    );
    for _ in 0..50 {
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 10,
            currency: None,
        })
        .await
        .unwrap();
    }
    app.dispatch(WithdrawMoney {
        account_id: id,
        amount: 500,
    })
    .await
    .unwrap();
    assert_eq!(
        probe.reads.load(Ordering::SeqCst),
        reads_after_first,
        "warm commands read nothing"
    );
}

#[tokio::test]
async fn another_writer_in_between_is_caught_up_and_the_command_retried() {
    let store = MemoryStore::new();
    let node_a = app_on(store.clone());
    let node_b = app_on(store.clone());
    let id = AccountId::new();
    open(&node_a, id).await;
    node_a
        .dispatch(DepositMoney {
            account_id: id,
            amount: 100,
            currency: None,
        })
        .await
        .unwrap();
    // Node B deposits behind node A's cache.
    node_b
        .dispatch(DepositMoney {
            account_id: id,
            amount: 50,
            currency: None,
        })
        .await
        .unwrap();
    // Node A's cache says 100, but the withdrawal of 150 is only valid with B's deposit:
    // it must conflict, catch up, and succeed on the retry.
    let done = node_a
        .dispatch(WithdrawMoney {
            account_id: id,
            amount: 150,
        })
        .await
        .unwrap();
    assert_eq!(done.version, 4);
    let (account, _) = node_a.load::<Account>(id).await.unwrap();
    assert_eq!(account.balance(), 0);
}

#[tokio::test]
async fn endless_conflicts_end_in_a_typed_error_after_the_configured_attempts() {
    let probe = Probe::default();
    let app = App::builder()
        .store(probe.clone())
        .service(PinHasher::new("t"))
        .max_attempts(3)
        .build()
        .unwrap();
    let id = AccountId::new();
    open(&app, id).await;
    probe.always_conflict.store(true, Ordering::SeqCst);
    let err = app
        .dispatch(DepositMoney {
            account_id: id,
            amount: 1,
            currency: None,
        })
        .await
        .unwrap_err();
    match err {
        DispatchError::Conflict {
            stream,
            attempts,
            expected,
            ..
        } => {
            assert_eq!(stream, stream_of(id));
            assert_eq!(attempts, 3);
            assert_eq!(expected, ExpectedVersion::Exact(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        probe
            .inner
            .read_stream(&stream_of(id), 1, 100)
            .await
            .unwrap()
            .len(),
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn domain_errors_come_back_typed_and_write_nothing() {
    let store = MemoryStore::new();
    let app = app_on(store.clone());
    let id = AccountId::new();
    open(&app, id).await;
    app.dispatch(DepositMoney {
        account_id: id,
        amount: 70,
        currency: None,
    })
    .await
    .unwrap();
    let err = app
        .dispatch(WithdrawMoney {
            account_id: id,
            amount: 100,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DispatchError::Domain(AccountError::InsufficientFunds {
                balance: 70,
                requested: 100
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "insufficient funds: the balance is 70, 100 was requested"
    );
    let err = app
        .dispatch(CloseAccount { account_id: id })
        .await
        .unwrap_err();
    assert_eq!(
        err.domain(),
        Some(&AccountError::NonZeroBalance { balance: 70 })
    );
    assert_eq!(store.len(), 2, "refused commands record nothing");
    let err = app
        .dispatch(DepositMoney {
            account_id: AccountId::new(),
            amount: 1,
            currency: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.domain(), Some(&AccountError::NotOpen));
}

#[tokio::test]
async fn undecodable_history_is_a_typed_load_error_and_other_streams_still_work() {
    let store = MemoryStore::new();
    let app = app_on(store.clone());
    let broken = AccountId::new();
    let healthy = AccountId::new();
    open(&app, healthy).await;
    let bad = vec![
        NewEvent::new(
            "AccountOpened",
            1,
            Payload::from_json(r#"{"owner":"Bo","pin_hash":"x"}"#).unwrap(),
        ),
        NewEvent::new("AccountFrozen", 1, Payload::from_json("{}").unwrap()),
    ];
    store
        .append(&stream_of(broken), ExpectedVersion::NoStream, bad)
        .await
        .unwrap();
    let corrupt = vec![NewEvent::new(
        "MoneyDeposited",
        1,
        Payload::from_json(r#"{"amount":"ten"}"#).unwrap(),
    )];
    let corrupt_id = AccountId::new();
    store
        .append(&stream_of(corrupt_id), ExpectedVersion::NoStream, corrupt)
        .await
        .unwrap();

    match app
        .dispatch(DepositMoney {
            account_id: broken,
            amount: 5,
            currency: None,
        })
        .await
        .unwrap_err()
    {
        DispatchError::Load(LoadError::Decode {
            stream,
            version,
            event_type,
            event_version,
            source,
            ..
        }) => {
            assert_eq!(stream, stream_of(broken));
            assert_eq!(
                (version, event_type.as_str(), event_version),
                (2, "AccountFrozen", 1)
            );
            assert!(matches!(source, annals::DecodeError::UnknownType { .. }));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let err = app
        .dispatch(DepositMoney {
            account_id: corrupt_id,
            amount: 5,
            currency: None,
        })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("version 1") && text.contains("MoneyDeposited"),
        "{text}"
    );
    assert!(matches!(
        err,
        DispatchError::Load(LoadError::Decode {
            source: annals::DecodeError::Payload { .. },
            ..
        })
    ));

    app.dispatch(DepositMoney {
        account_id: healthy,
        amount: 5,
        currency: None,
    })
    .await
    .expect("other streams are unaffected");
}

#[tokio::test]
async fn ids_and_metadata_are_recorded_with_every_event() {
    let store = MemoryStore::new();
    let app = app_on(store.clone());
    let id = AccountId::new();
    open(&app, id).await;
    let (command_id, correlation_id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let options = DispatchOptions::new()
        .command_id(command_id)
        .correlation_id(correlation_id)
        .metadata("teller", "t-9");
    let done = app
        .dispatch_with(
            DepositMoney {
                account_id: id,
                amount: 3,
                currency: None,
            },
            options,
        )
        .await
        .unwrap();
    assert_eq!(
        (done.command_id, done.correlation_id),
        (command_id, correlation_id)
    );
    let recorded = store
        .read_stream(&stream_of(id), 2, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(recorded.metadata.correlation_id, Some(correlation_id));
    assert_eq!(recorded.metadata.causation_id, Some(command_id));
    assert_eq!(
        recorded.metadata.custom.get("teller"),
        Some(&serde_json::json!("t-9"))
    );
    assert_eq!(recorded.event_type, "MoneyDeposited");
    assert_eq!(
        recorded.payload.as_str(),
        r#"{"amount":3,"currency":"EUR"}"#
    );
    assert_eq!(
        recorded.event_id.get_version_num(),
        7,
        "event ids are uuid v7"
    );
    assert_eq!(
        done.positions,
        Some((recorded.global_position, recorded.global_position))
    );

    // Without options, the command id is fresh and doubles as correlation id.
    let done = app
        .dispatch(DepositMoney {
            account_id: id,
            amount: 3,
            currency: None,
        })
        .await
        .unwrap();
    assert_eq!(done.command_id, done.correlation_id);
}

#[tokio::test]
async fn json_commands_are_routed_by_name_through_the_registry() {
    let app = app_on(MemoryStore::new());
    let id = AccountId::new();
    let opened = app
        .dispatch_json(
            "OpenAccount",
            serde_json::json!({"account_id": id, "first_name": "Cy", "last_name": "Young", "pin": "9876"}),
            DispatchOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!((opened.version, opened.events[0].0), (1, "AccountOpened"));
    let deposited = app
        .dispatch_json(
            "DepositMoney",
            serde_json::json!({"account_id": id, "amount": 12}),
            DispatchOptions::new(),
        )
        .await
        .unwrap();
    // Where the events went, and under which ids: what a caller prints.
    assert_eq!(deposited.positions, Some((2, 2)));
    assert_eq!(deposited.command_id, deposited.correlation_id);
    assert_ne!(deposited.command_id, opened.command_id);
    // Left out, the currency is the account's.
    assert_eq!(
        deposited.events,
        vec![(
            "MoneyDeposited",
            2,
            Payload::from_json(r#"{"amount":12,"currency":"EUR"}"#).unwrap()
        )]
    );

    let unknown = app
        .dispatch_json(
            "FreezeAccount",
            serde_json::json!({}),
            DispatchOptions::new(),
        )
        .await;
    assert!(
        matches!(unknown, Err(JsonDispatchError::UnknownCommand(ref n)) if n == "FreezeAccount")
    );
    let malformed = app
        .dispatch_json(
            "DepositMoney",
            serde_json::json!({"account_id": id}),
            DispatchOptions::new(),
        )
        .await;
    match malformed {
        Err(JsonDispatchError::Malformed { command, source }) => {
            assert_eq!(command, "DepositMoney");
            assert!(source.to_string().contains("amount"), "{source}");
        }
        other => panic!("expected malformed, got {other:?}"),
    }
    let refused = app
        .dispatch_json(
            "WithdrawMoney",
            serde_json::json!({"account_id": id, "amount": 100}),
            DispatchOptions::new(),
        )
        .await;
    match refused {
        Err(JsonDispatchError::Dispatch(DispatchError::Domain(e))) => {
            assert!(matches!(
                e.downcast_ref::<AccountError>(),
                Some(AccountError::InsufficientFunds { .. })
            ));
        }
        other => panic!("expected the domain error, got {other:?}"),
    }
    let names: Vec<_> = app.commands().map(|r| r.command).collect();
    for name in [
        "OpenAccount",
        "DepositMoney",
        "WithdrawMoney",
        "CloseAccount",
        "WithdrawAtTeller",
        "InitiateWithdrawal",
    ] {
        assert!(names.contains(&name), "{name} is registered: {names:?}");
    }
    assert!(
        app.aggregates()
            .any(|a| a.name == "Account" && a.event_types.len() == 6)
    );
}

#[tokio::test]
async fn a_handler_service_missing_from_the_app_is_a_typed_error() {
    let app = App::builder().store(MemoryStore::new()).build().unwrap();
    let err = app
        .dispatch(OpenAccount {
            account_id: AccountId::new(),
            first_name: "Di".into(),
            last_name: "Fox".into(),
            pin: "1234".into(),
        })
        .await
        .unwrap_err();
    match err {
        DispatchError::MissingService {
            service,
            command,
            handler,
        } => {
            assert!(service.ends_with("PinHasher"), "{service}");
            assert_eq!((command, handler), ("OpenAccount", "open"));
        }
        other => panic!("expected a missing service, got {other:?}"),
    }
}

#[tokio::test]
async fn an_append_whose_outcome_is_unknown_reloads_the_aggregate_before_the_next_command() {
    let probe = Probe::default();
    let app = app_on(probe.clone());
    let id = AccountId::new();
    open(&app, id).await;
    probe.lose_next_ack.store(true, Ordering::SeqCst);
    let err = app
        .dispatch(DepositMoney {
            account_id: id,
            amount: 40,
            currency: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, DispatchError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    // The deposit was in fact recorded; the app must not trust its stale cache.
    let done = app
        .dispatch(WithdrawMoney {
            account_id: id,
            amount: 40,
        })
        .await
        .expect("the reload saw the deposit");
    assert_eq!(done.version, 3);
}

#[tokio::test]
async fn the_cache_is_bounded_and_evicted_aggregates_reload() {
    let store = MemoryStore::new();
    let app = App::builder()
        .store(store)
        .service(PinHasher::new("t"))
        .cache_capacity(32)
        .build()
        .unwrap();
    let ids: Vec<AccountId> = (0..200).map(|_| AccountId::new()).collect();
    for &id in &ids {
        open(&app, id).await;
        app.dispatch(DepositMoney {
            account_id: id,
            amount: 1,
            currency: None,
        })
        .await
        .unwrap();
    }
    assert!(
        app.cached_aggregates() <= 32 + 16,
        "cache holds {} aggregates",
        app.cached_aggregates()
    );
    for &id in &ids {
        let done = app
            .dispatch(DepositMoney {
                account_id: id,
                amount: 1,
                currency: None,
            })
            .await
            .unwrap();
        assert_eq!(done.version, 3, "an evicted aggregate reloads its history");
    }
}

#[tokio::test]
async fn idle_aggregates_leave_the_cache() {
    let app = App::builder()
        .store(MemoryStore::new())
        .service(PinHasher::new("t"))
        .cache_idle_timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    open(&app, AccountId::new()).await;
    assert_eq!(app.cached_aggregates(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.cached_aggregates() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle aggregate was never evicted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn building_without_a_store_is_a_typed_error() {
    assert!(matches!(
        App::builder().build(),
        Err(annals::BuildError::NoStore)
    ));
}

#[test]
fn account_rules_in_given_when_then_form() {
    let pins = PinHasher::new("kit");
    let id = AccountId::new();
    let opened = AccountEvent::AccountOpened {
        first_name: "Ed".into(),
        last_name: "Wood".into(),
        pin_hash: pins.hash(id, "1234"),
    };
    AggregateTest::<Account>::given_no_events()
        .with_service(pins.clone())
        .when(OpenAccount {
            account_id: id,
            first_name: "  Ed ".into(),
            last_name: "Wood ".into(),
            pin: "1234".into(),
        })
        .then_events([opened.clone()])
        .then_state(|a| assert_eq!(a.full_name(), "Ed Wood"));
    AggregateTest::<Account>::given_no_events()
        .with_service(pins)
        .when(OpenAccount {
            account_id: id,
            first_name: "Ed".into(),
            last_name: "Wood".into(),
            pin: "12a4".into(),
        })
        .then_error(AccountError::InvalidPin);
    AggregateTest::<Account>::given([
        opened.clone(),
        AccountEvent::MoneyDeposited {
            amount: 5,
            currency: "EUR".into(),
        },
    ])
    .when(WithdrawMoney {
        account_id: id,
        amount: 6,
    })
    .then_error(AccountError::InsufficientFunds {
        balance: 5,
        requested: 6,
    });
    AggregateTest::<Account>::given([
        opened.clone(),
        AccountEvent::MoneyDeposited {
            amount: 5,
            currency: "EUR".into(),
        },
    ])
    .when(CloseAccount { account_id: id })
    .then_error(AccountError::NonZeroBalance { balance: 5 });
    AggregateTest::<Account>::given([opened.clone(), AccountEvent::AccountClosed])
        .when(DepositMoney {
            account_id: id,
            amount: 1,
            currency: None,
        })
        .then_error(AccountError::Closed);
    AggregateTest::<Account>::given([
        opened,
        AccountEvent::MoneyDeposited {
            amount: 5,
            currency: "EUR".into(),
        },
    ])
    .when(WithdrawMoney {
        account_id: id,
        amount: 5,
    })
    .then_events([AccountEvent::MoneyWithdrawn { amount: 5 }])
    .then_state(|a| assert_eq!(a.balance(), 0));
}

#[tokio::test]
async fn a_command_id_dispatched_twice_records_once() {
    let store = MemoryStore::new();
    let app = app_on(store.clone());
    let id = AccountId::new();
    open(&app, id).await;
    let command_id = uuid::Uuid::now_v7();
    let deposit = DepositMoney {
        account_id: id,
        amount: 25,
        currency: None,
    };
    let first = app
        .dispatch_with(
            deposit.clone(),
            DispatchOptions::new().command_id(command_id),
        )
        .await
        .unwrap();
    let event_id = store.read_stream(&stream_of(id), 2, 1).await.unwrap()[0].event_id;
    assert_eq!(event_id.get_version_num(), 7, "derived ids are still v7");
    assert_eq!(
        &event_id.as_bytes()[..6],
        &command_id.as_bytes()[..6],
        "and carry the command's timestamp"
    );

    // The retry, from this node or another, records nothing and says why.
    for node in [app.clone(), app_on(store.clone())] {
        let retry = node
            .dispatch_with(
                deposit.clone(),
                DispatchOptions::new().command_id(command_id),
            )
            .await;
        match retry {
            Err(DispatchError::DuplicateCommand {
                command_id: c,
                stream,
            }) => {
                assert_eq!((c, stream), (command_id, stream_of(id)));
            }
            other => panic!("expected a duplicate command, got {other:?}"),
        }
    }
    assert_eq!(store.len(), 2);
    let (account, version) = app.load::<Account>(id).await.unwrap();
    assert_eq!((account.balance(), version), (25, first.version));
    // Another command id is another command.
    app.dispatch_with(
        deposit,
        DispatchOptions::new().command_id(uuid::Uuid::now_v7()),
    )
    .await
    .unwrap();
    assert_eq!(app.load::<Account>(id).await.unwrap().0.balance(), 50);
}

/// A caller's expected version is checked against the store: a node whose
/// cache is stale (another node deposited since) refuses a command that
/// expects what it cached, and records nothing; the current version passes.
#[tokio::test]
async fn an_expected_version_is_checked_against_the_store_not_only_the_cache() {
    let store = MemoryStore::new();
    let (node_a, node_b) = (app_on(store.clone()), app_on(store.clone()));
    let id = AccountId::new();
    open(&node_a, id).await;
    let deposit = |amount| DepositMoney {
        account_id: id,
        amount,
        currency: None,
    };
    // Node B caches version 1; node A moves the stream to 2.
    node_b.load::<Account>(id).await.unwrap();
    node_a.dispatch(deposit(10)).await.unwrap();
    let stale = node_b
        .dispatch_with(deposit(5), DispatchOptions::new().expected_version(1))
        .await
        .unwrap_err();
    match stale {
        DispatchError::Conflict {
            expected, actual, ..
        } => assert_eq!((expected, actual), (ExpectedVersion::Exact(1), Some(2))),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.stream_version(&stream_of(id)).await.unwrap(), Some(2));
    // Expecting "not created yet" of an opened account is a conflict too.
    let created = node_b
        .dispatch_with(deposit(5), DispatchOptions::new().expected_version(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            created,
            DispatchError::Conflict {
                expected: ExpectedVersion::NoStream,
                actual: Some(2),
                ..
            }
        ),
        "{created:?}"
    );
    let done = node_b
        .dispatch_with(deposit(5), DispatchOptions::new().expected_version(2))
        .await
        .unwrap();
    assert_eq!(done.version, 3);
    let (account, _) = node_a.load::<Account>(id).await.unwrap();
    assert_eq!(account.balance(), 15);
}
