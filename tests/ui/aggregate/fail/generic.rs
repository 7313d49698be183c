// A generic aggregate: one error per `#[aggregate]` attribute; its command and
// dispatch sites add none.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account<C> {
    balance: u64,
    currency: C,
}

#[command(aggregate = Account<String>)]
pub struct Deposit {
    #[id]
    pub account: String,
    pub amount: u64,
}

#[aggregate]
impl<C> Account<C> {
    #[handle]
    fn deposit(&self, cmd: Deposit) -> AccountEvent {
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
    let _ = app.dispatch(Deposit { account: "a".into(), amount: 1 }).await;
}

fn main() {
    let _ = run;
}
