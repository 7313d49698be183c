// An async handler whose future is not `Send` (an `Rc` held across `.await`): one error.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("insufficient funds")]
    InsufficientFunds,
}

#[command(aggregate = Account)]
pub struct Open {
    #[id]
    pub account: String,
    pub owner: String,
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[command(aggregate = Account)]
pub struct Withdraw {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[aggregate(events = AccountEvent, snapshot_every = 10)]
#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Account {
    balance: u64,
}

pub struct Clock;

#[aggregate]
impl Account {
    #[handle]
    fn open(&self, cmd: Open) -> AccountEvent {
        AccountEvent::Opened { owner: cmd.owner }
    }

    #[handle]
    async fn deposit(&self, cmd: Deposit, _clock: &Clock) -> Vec<AccountEvent> {
        let held = std::rc::Rc::new(cmd.amount);
        std::future::ready(()).await;
        vec![AccountEvent::Deposited { amount: *held }]
    }

    #[handle]
    fn withdraw(&self, cmd: Withdraw) -> Result<AccountEvent, AccountError> {
        if cmd.amount > self.balance {
            return Err(AccountError::InsufficientFunds);
        }
        Ok(AccountEvent::Withdrawn { amount: cmd.amount })
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => {}
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

async fn run(app: &App) -> Result<u64, Box<dyn std::error::Error>> {
    app.dispatch(Open { account: "a".into(), owner: "ada".into() }).await?;
    app.dispatch(Deposit { account: "a".into(), amount: 5 }).await?;
    let refused = app.dispatch(Withdraw { account: "a".into(), amount: 50 }).await;
    if let Err(e) = &refused {
        let _: Option<&AccountError> = e.domain();
    }
    let (account, version) = app.load::<Account>("a").await?;
    Ok(account.balance + version)
}

fn main() {
    let _ = run;
}
