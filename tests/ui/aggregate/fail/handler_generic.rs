// A generic `#[handle]` function: one error; the command still has its handler.
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

#[aggregate]
impl Account {
    #[handle]
    fn deposit<T>(&self, cmd: Deposit) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

async fn deposit(app: &App) -> Result<u64, Box<dyn std::error::Error>> {
    Ok(app.dispatch(Deposit { account: "a".into(), amount: 5 }).await?.version)
}

fn main() {
    let _ = deposit;
}
