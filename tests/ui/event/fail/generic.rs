// A generic event type: one error; the aggregate and handlers using it add none.
use annals::prelude::*;

#[event]
pub enum AccountEvent<A> {
    Deposited { amount: A },
}

#[aggregate(events = AccountEvent<u64>)]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, cmd: Deposit) -> AccountEvent<u64> {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent<u64>) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

fn main() {}
