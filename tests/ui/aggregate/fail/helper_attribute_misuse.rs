// `#[handle]` and `#[apply]` take no arguments, appear once, and not both on one
// function: one error each, and the functions still count as what they are.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

#[command(aggregate = Account)]
pub struct Withdraw {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[command(aggregate = Account)]
pub struct Close {
    #[id]
    pub account: String,
}

#[aggregate]
impl Account {
    #[handle(async)]
    fn deposit(&self, cmd: Deposit) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[handle]
    #[handle]
    fn withdraw(&self, cmd: Withdraw) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[handle]
    fn close(&self, _cmd: Close) {}

    #[handle]
    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

async fn run(app: &App) -> Result<(), Box<dyn std::error::Error>> {
    app.dispatch(Deposit { account: "a".into(), amount: 1 }).await?;
    app.dispatch(Withdraw { account: "a".into(), amount: 1 }).await?;
    app.dispatch(Close { account: "a".into() }).await?;
    Ok(())
}

fn main() {
    let _ = run;
}
