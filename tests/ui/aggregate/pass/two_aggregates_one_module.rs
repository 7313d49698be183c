// Two aggregates, their commands and events in one module: the items the
// macros generate for each do not collide.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Deposited { amount: u64 },
}

#[event(rename = "loan.granted")]
pub struct LoanGranted {
    pub amount: u64,
}

#[aggregate(events = AccountEvent, name = "account")]
#[derive(Default)]
pub struct Account {
    balance: u64,
}

#[aggregate(events = LoanGranted, name = "loan", snapshot_every = 5)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Loan {
    granted: u64,
}

#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: u32,
    pub amount: u64,
}

#[command(aggregate = Loan, name = "loan.grant")]
pub struct Grant(#[id] pub uuid::Uuid, pub u64);

#[aggregate]
impl Account {
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

#[aggregate]
impl Loan {
    #[handle]
    fn grant(&self, cmd: Grant) -> LoanGranted {
        LoanGranted { amount: cmd.1 }
    }

    #[apply]
    fn apply(&mut self, event: &LoanGranted) {
        self.granted += event.amount;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = App::builder().store(MemoryStore::new()).build().unwrap();
    let done = app.dispatch(Deposit { account: 7, amount: 5 }).await.unwrap();
    assert_eq!(done.stream_id.as_str(), "account-7");
    let loan = uuid::Uuid::nil();
    let done = app.dispatch(Grant(loan, 9)).await.unwrap();
    assert_eq!(done.stream_id.as_str(), format!("loan-{loan}"));
    let json = app
        .dispatch_json("loan.grant", serde_json::json!([loan, 1]), Default::default())
        .await
        .unwrap();
    assert_eq!(json.version, 2);
}
