//! In-memory dispatch throughput (issues 2 and 7): Annals vs cqrs-es 0.5 `MemStore`.
//!
//! Run with `cargo bench -p annals-tests --bench dispatch`.
//!
//! Workloads, counting deposits only (accounts are opened before the clock starts):
//! - (a) 1,000 accounts x 100 deposits, round-robin over the accounts;
//! - (b) 1 account x 10,000 deposits.
//!
//! Every row of one table runs on the same tokio runtime flavour: a
//! current-thread runtime for the sequential rows, a 2-worker multi-thread
//! runtime for the concurrent rows (4 tasks over disjoint accounts).
//! The "floor" row is a hand-written loop doing the least a command needs.

use std::future::Future;
use std::time::{Duration, Instant};

use annals::prelude::*;
use annals_tests::fmt_rate;
use uuid::Uuid;

const ACCOUNTS: usize = 1_000;
const DEPOSITS_EACH: usize = 100;
const SINGLE_DEPOSITS: usize = 10_000;
/// Annals and floor rows run this many times; the median is reported.
const REPEAT: usize = 5;
/// cqrs-es replays the whole stream per command, so on (b) it stops after this long.
const CQRS_ES_B_CAP: Duration = Duration::from_secs(6);

// ---------------------------------------------------------------- Annals

mod annals_bank {
    use annals::prelude::*;
    use uuid::Uuid;

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum AccountError {
        #[error("the account is already open")]
        AlreadyOpen,
        #[error("the account is not open")]
        NotOpen,
        #[error("the amount must be more than zero")]
        ZeroAmount,
        #[error("the balance would overflow")]
        Overflow,
        #[error("insufficient funds")]
        InsufficientFunds,
    }

    #[event]
    pub enum AccountEvent {
        AccountOpened { owner: String },
        MoneyDeposited { amount: u64 },
        MoneyWithdrawn { amount: u64 },
    }

    #[command(aggregate = Account)]
    pub struct OpenAccount {
        #[id]
        pub account_id: Uuid,
        pub owner: String,
    }

    #[command(aggregate = Account)]
    pub struct DepositMoney {
        #[id]
        pub account_id: Uuid,
        pub amount: u64,
    }

    #[command(aggregate = Account)]
    pub struct WithdrawMoney {
        #[id]
        pub account_id: Uuid,
        pub amount: u64,
    }

    #[aggregate(events = AccountEvent)]
    #[derive(Debug, Clone, Default)]
    pub struct Account {
        open: bool,
        balance: u64,
    }

    #[aggregate]
    impl Account {
        #[handle]
        fn open(&self, _cmd: OpenAccount) -> Result<AccountEvent, AccountError> {
            if self.open {
                return Err(AccountError::AlreadyOpen);
            }
            Ok(AccountEvent::AccountOpened { owner: _cmd.owner })
        }

        #[handle]
        fn deposit(&self, cmd: DepositMoney) -> Result<AccountEvent, AccountError> {
            if !self.open {
                return Err(AccountError::NotOpen);
            }
            if cmd.amount == 0 {
                return Err(AccountError::ZeroAmount);
            }
            self.balance
                .checked_add(cmd.amount)
                .ok_or(AccountError::Overflow)?;
            Ok(AccountEvent::MoneyDeposited { amount: cmd.amount })
        }

        #[handle]
        fn withdraw(&self, cmd: WithdrawMoney) -> Result<AccountEvent, AccountError> {
            if !self.open {
                return Err(AccountError::NotOpen);
            }
            if cmd.amount > self.balance {
                return Err(AccountError::InsufficientFunds);
            }
            Ok(AccountEvent::MoneyWithdrawn { amount: cmd.amount })
        }

        #[apply]
        fn apply(&mut self, event: &AccountEvent) {
            match event {
                AccountEvent::AccountOpened { .. } => self.open = true,
                AccountEvent::MoneyDeposited { amount } => self.balance += amount,
                AccountEvent::MoneyWithdrawn { amount } => self.balance -= amount,
            }
        }
    }

    impl Account {
        pub fn balance(&self) -> u64 {
            self.balance
        }
    }
}

// ---------------------------------------------------------------- cqrs-es

mod cqrs_bank {
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
        #[error("insufficient funds")]
        InsufficientFunds,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub enum AccountCommand {
        OpenAccount { owner: String },
        DepositMoney { amount: u64 },
        WithdrawMoney { amount: u64 },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum AccountEvent {
        AccountOpened { owner: String },
        MoneyDeposited { amount: u64 },
        MoneyWithdrawn { amount: u64 },
    }

    impl DomainEvent for AccountEvent {
        fn event_type(&self) -> String {
            match self {
                Self::AccountOpened { .. } => "AccountOpened",
                Self::MoneyDeposited { .. } => "MoneyDeposited",
                Self::MoneyWithdrawn { .. } => "MoneyWithdrawn",
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
            _services: &(),
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
                AccountCommand::WithdrawMoney { amount } => {
                    if !self.open {
                        return Err(AccountError::NotOpen);
                    }
                    if amount > self.balance {
                        return Err(AccountError::InsufficientFunds);
                    }
                    AccountEvent::MoneyWithdrawn { amount }
                }
            };
            sink.write(event, self).await;
            Ok(())
        }

        fn apply(&mut self, event: AccountEvent) {
            match event {
                AccountEvent::AccountOpened { .. } => self.open = true,
                AccountEvent::MoneyDeposited { amount } => self.balance += amount,
                AccountEvent::MoneyWithdrawn { amount } => self.balance -= amount,
            }
        }
    }
}

// ---------------------------------------------------------------- floor

mod floor {
    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use std::collections::HashMap;
    use std::time::Duration;
    use uuid::Uuid;

    #[derive(Serialize)]
    enum Event {
        MoneyDeposited { amount: u64 },
    }

    struct Record {
        _event_id: Uuid,
        _stream: u32,
        _version: u64,
        _payload: String,
        _at: DateTime<Utc>,
    }

    #[derive(Default)]
    struct State {
        open: bool,
        balance: u64,
        version: u64,
    }

    /// The least a command needs: find the state, check the rule, apply,
    /// a v7 id, a timestamp, the JSON payload, a push onto the log.
    pub fn run(accounts: &[Uuid], rounds: usize) -> (usize, Duration) {
        let mut states: HashMap<Uuid, (u32, State)> = accounts
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    *id,
                    (
                        i as u32,
                        State {
                            open: true,
                            ..State::default()
                        },
                    ),
                )
            })
            .collect();
        let mut log: Vec<Record> = Vec::new();
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            for id in accounts {
                let (stream, state) = states.get_mut(id).expect("opened");
                assert!(state.open);
                let amount = 1;
                let balance = state.balance.checked_add(amount).expect("no overflow");
                let payload =
                    serde_json::to_string(&Event::MoneyDeposited { amount }).expect("encodes");
                state.balance = balance;
                state.version += 1;
                log.push(Record {
                    _event_id: Uuid::now_v7(),
                    _stream: *stream,
                    _version: state.version,
                    _payload: payload,
                    _at: Utc::now(),
                });
            }
        }
        let elapsed = start.elapsed();
        std::hint::black_box(&log);
        (log.len(), elapsed)
    }
}

// ---------------------------------------------------------------- drivers

/// One measured run: how many commands, how long.
#[derive(Clone, Copy)]
struct Run {
    commands: usize,
    elapsed: Duration,
}

impl Run {
    fn per_second(self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
    runs[runs.len() / 2]
}

fn ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

async fn annals_run(accounts: &[Uuid], rounds: usize, tasks: usize) -> Run {
    use annals_bank::{Account, DepositMoney, OpenAccount};
    let app = App::builder()
        .store(MemoryStore::new())
        .build()
        .expect("app builds");
    for &account_id in accounts {
        app.dispatch(OpenAccount {
            account_id,
            owner: "bench".into(),
        })
        .await
        .expect("opens");
    }
    let start = Instant::now();
    if tasks <= 1 {
        for _ in 0..rounds {
            for &account_id in accounts {
                app.dispatch(DepositMoney {
                    account_id,
                    amount: 1,
                })
                .await
                .expect("deposits");
            }
        }
    } else {
        let chunks = accounts.chunks(accounts.len().div_ceil(tasks));
        let handles: Vec<_> = chunks
            .map(|chunk| {
                let app = app.clone();
                let chunk = chunk.to_vec();
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        for &account_id in &chunk {
                            app.dispatch(DepositMoney {
                                account_id,
                                amount: 1,
                            })
                            .await
                            .expect("deposits");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task ran");
        }
    }
    let elapsed = start.elapsed();
    // Not timed: check that every deposit was recorded and folded.
    let commands = accounts.len() * rounds;
    assert_eq!(
        app.store()
            .read_all(1, usize::MAX)
            .await
            .expect("reads")
            .len(),
        accounts.len() + commands
    );
    let (account, version) = app.load::<Account>(accounts[0]).await.expect("loads");
    assert_eq!(
        (account.balance(), version),
        (rounds as u64, rounds as u64 + 1)
    );
    Run { commands, elapsed }
}

type CqrsFramework =
    cqrs_es::CqrsFramework<cqrs_bank::Account, cqrs_es::mem_store::MemStore<cqrs_bank::Account>>;

async fn cqrs_run(accounts: &[Uuid], rounds: usize, tasks: usize, cap: Option<Duration>) -> Run {
    use cqrs_bank::AccountCommand;
    use std::sync::Arc;
    let store = cqrs_es::mem_store::MemStore::<cqrs_bank::Account>::default();
    let cqrs = Arc::new(CqrsFramework::new(store, vec![], ()));
    let names: Vec<String> = accounts.iter().map(Uuid::to_string).collect();
    for name in &names {
        cqrs.execute(
            name,
            AccountCommand::OpenAccount {
                owner: "bench".into(),
            },
        )
        .await
        .expect("opens");
    }
    let start = Instant::now();
    let commands = if tasks <= 1 {
        let mut done = 0;
        'all: for _ in 0..rounds {
            for name in &names {
                cqrs.execute(name, AccountCommand::DepositMoney { amount: 1 })
                    .await
                    .expect("deposits");
                done += 1;
                if cap.is_some_and(|cap| start.elapsed() >= cap) {
                    break 'all;
                }
            }
        }
        done
    } else {
        let chunks = names.chunks(names.len().div_ceil(tasks));
        let handles: Vec<_> = chunks
            .map(|chunk| {
                let cqrs = cqrs.clone();
                let chunk = chunk.to_vec();
                tokio::spawn(async move {
                    for _ in 0..rounds {
                        for name in &chunk {
                            cqrs.execute(name, AccountCommand::DepositMoney { amount: 1 })
                                .await
                                .expect("deposits");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task ran");
        }
        accounts.len() * rounds
    };
    Run {
        commands,
        elapsed: start.elapsed(),
    }
}

/// cqrs-es's `MemStore` prints a line to stdout on every load and commit;
/// send fd 1 to /dev/null while it runs so the table stays readable.
fn quiet_stdout<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: plain POSIX fd calls on fds we own; fd 1 is restored before returning.
    let saved = unsafe { libc::dup(1) };
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
    assert!(saved >= 0 && null >= 0, "could not redirect stdout");
    unsafe { libc::dup2(null, 1) };
    let out = f();
    let _ = std::io::stdout().flush();
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
        libc::close(null);
    }
    out
}

fn block_on<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

struct Row {
    workload: String,
    annals: Run,
    cqrs: Run,
    floor: Option<Run>,
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    // For profiling Annals alone (e.g. under callgrind): skip the slow cqrs-es runs.
    let skip_cqrs = std::env::var_os("DISPATCH_BENCH_SKIP_CQRS").is_some();
    let no_run = Run {
        commands: 1,
        elapsed: Duration::from_secs(1),
    };
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let many = ids(ACCOUNTS);
    let one = ids(1);
    let mut rows = Vec::new();
    let total = Instant::now();

    // One sequential row: Annals and the floor (median of REPEAT runs) and cqrs-es (one run).
    let sequential_row =
        |workload: &str, accounts: &[Uuid], deposits: usize, cqrs_cap: Option<Duration>| {
            let annals = median(
                (0..REPEAT)
                    .map(|_| block_on(&current, annals_run(accounts, deposits, 1)))
                    .collect(),
            );
            let floor = median(
                (0..REPEAT)
                    .map(|_| floor::run(accounts, deposits))
                    .map(|(commands, elapsed)| Run { commands, elapsed })
                    .collect(),
            );
            let cqrs = if skip_cqrs {
                Run {
                    commands: 1,
                    elapsed: Duration::from_secs(1),
                }
            } else {
                quiet_stdout(|| block_on(&current, cqrs_run(accounts, deposits, 1, cqrs_cap)))
            };
            Row {
                workload: workload.into(),
                annals,
                cqrs,
                floor: Some(floor),
            }
        };

    if wanted("a") {
        rows.push(sequential_row(
            "(a) 1,000 accounts x 100 deposits, sequential",
            &many,
            DEPOSITS_EACH,
            None,
        ));
    }
    if wanted("b") {
        rows.push(sequential_row(
            "(b) 1 account x 10,000 deposits, sequential",
            &one,
            SINGLE_DEPOSITS,
            Some(CQRS_ES_B_CAP),
        ));
    }
    if wanted("concurrent") {
        let annals = median(
            (0..REPEAT)
                .map(|_| block_on(&multi, annals_run(&many, DEPOSITS_EACH, 4)))
                .collect(),
        );
        let cqrs = if skip_cqrs {
            no_run
        } else {
            quiet_stdout(|| block_on(&multi, cqrs_run(&many, DEPOSITS_EACH, 4, None)))
        };
        rows.push(Row {
            workload: "(a) 1,000 accounts x 100 deposits, 4 tasks (multi-thread, 2 workers)".into(),
            annals,
            cqrs,
            floor: None,
        });
    }

    println!();
    println!(
        "In-memory dispatch, commands/s (Annals and floor: median of {REPEAT} runs; cqrs-es: one run)"
    );
    println!("Sequential rows: tokio current-thread runtime for both frameworks.");
    println!();
    println!(
        "| workload | Annals | cqrs-es 0.5 MemStore | Annals / cqrs-es | floor (hand-written loop) | Annals / floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in &rows {
        let capped = if row.cqrs.commands < row.annals.commands {
            format!(
                " ({} commands, capped at {} s)",
                fmt_rate(row.cqrs.commands as f64),
                CQRS_ES_B_CAP.as_secs()
            )
        } else {
            String::new()
        };
        let (floor, of_floor) = match row.floor {
            Some(f) => (
                fmt_rate(f.per_second()),
                format!("{:.2}", row.annals.per_second() / f.per_second()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {}{} | {:.1}x | {} | {} |",
            row.workload,
            fmt_rate(row.annals.per_second()),
            fmt_rate(row.cqrs.per_second()),
            capped,
            row.annals.per_second() / row.cqrs.per_second(),
            floor,
            of_floor,
        );
    }
    let a = rows
        .iter()
        .find(|r| r.workload.starts_with("(a)") && r.workload.ends_with("sequential"));
    let b = rows.iter().find(|r| r.workload.starts_with("(b)"));
    if let (Some(a), Some(b)) = (a, b) {
        println!();
        println!(
            "targets (issue 7): (a) {} >= 1,500,000/s: {}; (b)/(a) = {:.2} >= 0.9: {}; (a) is {:.1}x cqrs-es",
            fmt_rate(a.annals.per_second()),
            a.annals.per_second() >= 1.5e6,
            b.annals.per_second() / a.annals.per_second(),
            b.annals.per_second() / a.annals.per_second() >= 0.9,
            a.annals.per_second() / a.cqrs.per_second(),
        );
    }
    println!("total bench time: {:.1} s", total.elapsed().as_secs_f64());
}
