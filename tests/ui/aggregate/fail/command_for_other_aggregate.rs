use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

#[aggregate(events = AccountEvent)]
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

#[event]
pub enum LoanEvent {
    LoanGranted { amount: u64 },
}

#[aggregate(events = LoanEvent)]
#[derive(Default)]
pub struct Loan {
    granted: u64,
}

#[command(aggregate = Loan)]
pub struct GrantLoan {
    #[id]
    pub loan: String,
    pub amount: u64,
}

#[aggregate]
impl Loan {
    #[apply]
    fn apply(&mut self, event: &LoanEvent) {
        match event {
            LoanEvent::LoanGranted { amount } => self.granted += amount,
        }
    }
}

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, cmd: Deposit) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    // Meant for `Loan`, written in the wrong impl block.
    #[handle]
    fn grant(&self, cmd: GrantLoan) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}

fn main() {}
