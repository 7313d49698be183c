use annals::aggregate;

pub struct Account {
    balance: u64,
}
pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct DepositMoney {
    amount: u64,
}
pub struct OpenAccount;
pub struct Clock;
#[derive(Debug)]
pub struct AccountError;

#[aggregate]
impl Account {
    #[handle]
    fn deposit(&self, cmd: DepositMoney) -> AccountEvent {
        AccountEvent::Deposited { amount: cmd.amount }
    }

    #[handle]
    async fn open(&self, _cmd: OpenAccount, _clock: &Clock) -> Result<Vec<AccountEvent>, AccountError> {
        Ok(Vec::new())
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

fn main() {}
