// A generic `#[apply]`: one error; the aggregate is not also reported as having no fold.
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
    fn deposit(&self, cmd: Deposit) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[apply]
    fn apply<T>(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

fn main() {}
