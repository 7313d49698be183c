// A generic command: one error; its handler and dispatch sites add none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

#[command(aggregate = Account)]
pub struct Deposit<A> {
    #[id]
    pub account: String,
    pub amount: A,
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, cmd: Deposit<u64>) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

async fn run(app: &App) {
    let _ = app.dispatch(Deposit { account: "a".into(), amount: 1u64 }).await;
}

fn main() {
    let _ = run;
}
