//! `cargo run -p bank`: a short demo of an event-sourced bank account.

use annals::{App, DispatchError, MemoryStore};
use bank::accounts::{AccountId, CloseAccount, DepositMoney, OpenAccount, PinHasher, WithdrawMoney};
use std::fmt::Debug;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = App::builder()
        .store(MemoryStore::new())
        .service(PinHasher::new("demo-secret"))
        .build()?;
    println!("annals bank demo: store = in-memory");

    let id = AccountId::new();
    report("open account for Ada", app.dispatch(OpenAccount { account_id: id, owner: "Ada".into(), pin: "1234".into() }).await);
    report("deposit 100.00", app.dispatch(DepositMoney { account_id: id, amount: 10_000 }).await);
    report("withdraw 30.00", app.dispatch(WithdrawMoney { account_id: id, amount: 3_000 }).await);
    report("withdraw 500.00", app.dispatch(WithdrawMoney { account_id: id, amount: 50_000 }).await);
    report("close", app.dispatch(CloseAccount { account_id: id }).await);
    report("withdraw 70.00", app.dispatch(WithdrawMoney { account_id: id, amount: 7_000 }).await);
    report("close", app.dispatch(CloseAccount { account_id: id }).await);
    report("deposit 1.00", app.dispatch(DepositMoney { account_id: id, amount: 100 }).await);
    Ok(())
}

fn report<A: annals::Aggregate, E: std::error::Error>(what: &str, outcome: Result<annals::Dispatched<A>, DispatchError<E>>)
where
    A::Event: Debug,
{
    match outcome {
        Ok(done) => println!("{what:<20} ok       v{} {:?}", done.version, done.events),
        Err(DispatchError::Domain(refused)) => println!("{what:<20} refused  {refused}"),
        Err(other) => println!("{what:<20} failed   {other}"),
    }
}
