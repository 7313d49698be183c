//! The bank deposit workload on cqrs-es 0.5 + postgres-es, for
//! `tests/benches/stores.rs`, which runs it as
//! `cqrs-es-postgres-peer URL SCHEMA TASKS SECONDS ACCOUNTS` and reads the
//! last line, `ops=N elapsed_us=N`.
//!
//! It creates postgres-es's `events` and `snapshots` tables as its docs give
//! them (`db/init.sql`) in the fresh schema SCHEMA (the caller drops it),
//! opens ACCOUNTS accounts, then TASKS tasks deposit to disjoint accounts,
//! round-robin, one command at a time, for SECONDS. The framework is the
//! plain `postgres_cqrs` set-up (`PersistedEventStore::new_event_store`: it
//! loads the aggregate's events for every command) over a 16-connection pool,
//! as many as the Annals store gets (`default_postgress_pool` opens 10).

use cqrs_es::CqrsFramework;
use cqrs_es::persist::PersistedEventStore;
use postgres_es::PostgresEventRepository;
use sqlx::Executor as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod bank {
    use cqrs_es::event_sink::EventSink;
    use cqrs_es::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, thiserror::Error)]
    pub enum AccountError {
        #[error("the account is already open")]
        AlreadyOpen,
        #[error("the account is not open")]
        NotOpen,
        #[error("the amount must be more than zero")]
        ZeroAmount,
        #[error("the balance would overflow")]
        Overflow,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub enum AccountCommand {
        OpenAccount { owner: String },
        DepositMoney { amount: u64 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum AccountEvent {
        AccountOpened { owner: String },
        MoneyDeposited { amount: u64 },
    }

    impl DomainEvent for AccountEvent {
        fn event_type(&self) -> String {
            match self {
                Self::AccountOpened { .. } => "AccountOpened",
                Self::MoneyDeposited { .. } => "MoneyDeposited",
            }
            .to_owned()
        }

        fn event_version(&self) -> String {
            "1".to_owned()
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Account {
        open: bool,
        balance: u64,
    }

    impl Aggregate for Account {
        const TYPE: &'static str = "Account";
        type Command = AccountCommand;
        type Event = AccountEvent;
        type Error = AccountError;
        type Services = ();

        async fn handle(
            &mut self,
            command: AccountCommand,
            _: &(),
            sink: &EventSink<Self>,
        ) -> Result<(), AccountError> {
            let event = match command {
                AccountCommand::OpenAccount { owner } => {
                    if self.open {
                        return Err(AccountError::AlreadyOpen);
                    }
                    AccountEvent::AccountOpened { owner }
                }
                AccountCommand::DepositMoney { amount } => {
                    if !self.open {
                        return Err(AccountError::NotOpen);
                    }
                    if amount == 0 {
                        return Err(AccountError::ZeroAmount);
                    }
                    self.balance
                        .checked_add(amount)
                        .ok_or(AccountError::Overflow)?;
                    AccountEvent::MoneyDeposited { amount }
                }
            };
            sink.write(event, self).await;
            Ok(())
        }

        fn apply(&mut self, event: AccountEvent) {
            match event {
                AccountEvent::AccountOpened { .. } => self.open = true,
                AccountEvent::MoneyDeposited { amount } => self.balance += amount,
            }
        }
    }
}

type Framework =
    CqrsFramework<bank::Account, PersistedEventStore<PostgresEventRepository, bank::Account>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, schema, tasks, secs, accounts] = args.as_slice() else {
        eprintln!("usage: cqrs-es-postgres-peer URL SCHEMA TASKS SECONDS ACCOUNTS");
        std::process::exit(2);
    };
    let tasks: usize = tasks.parse().expect("TASKS is a number");
    let secs = Duration::from_secs(secs.parse().expect("SECONDS is a number"));
    let accounts: usize = accounts.parse().expect("ACCOUNTS is a number");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (ops, elapsed) = rt.block_on(run(url, schema, tasks, secs, accounts));
    println!("ops={ops} elapsed_us={}", elapsed.as_micros());
}

async fn run(
    url: &str,
    schema: &str,
    tasks: usize,
    secs: Duration,
    accounts: usize,
) -> (usize, Duration) {
    use bank::AccountCommand;
    assert!(
        schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "plain schema name"
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await
        .expect("connects");
    pool.execute(
        format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.events (
                 aggregate_type text NOT NULL, aggregate_id text NOT NULL,
                 sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
                 event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL,
                 PRIMARY KEY (aggregate_type, aggregate_id, sequence));
             CREATE TABLE {schema}.snapshots (
                 aggregate_type text NOT NULL, aggregate_id text NOT NULL,
                 last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
                 current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
                 payload json NOT NULL,
                 PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));"
        )
        .as_str(),
    )
    .await
    .expect("creates the postgres-es tables");
    let repo = PostgresEventRepository::new(pool.clone())
        .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"));
    let cqrs: Arc<Framework> = Arc::new(CqrsFramework::new(
        PersistedEventStore::new_event_store(repo),
        vec![],
        (),
    ));

    let names: Vec<String> = (0..accounts).map(|i| format!("account-{i}")).collect();
    futures::future::join_all(names.iter().map(|name| {
        let cqrs = cqrs.clone();
        async move {
            cqrs.execute(
                name,
                AccountCommand::OpenAccount {
                    owner: "bench".into(),
                },
            )
            .await
            .expect("opens")
        }
    }))
    .await;

    let start = Instant::now();
    let deadline = start + secs;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let cqrs = cqrs.clone();
            let mine: Vec<String> = names.iter().skip(t).step_by(tasks).cloned().collect();
            tokio::spawn(async move {
                let mut done = 0;
                while Instant::now() < deadline {
                    cqrs.execute(
                        &mine[done % mine.len()],
                        AccountCommand::DepositMoney { amount: 1 },
                    )
                    .await
                    .expect("deposits");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut ops = 0;
    for h in handles {
        ops += h.await.expect("task ran");
    }
    let elapsed = start.elapsed();
    let recorded: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.events"))
        .fetch_one(&pool)
        .await
        .expect("counts");
    assert_eq!(
        recorded as usize,
        accounts + ops,
        "every acknowledged deposit is in the table"
    );
    pool.close().await;
    (ops, elapsed)
}
