use annals::{projection, EventMeta};
use sqlx::SqliteConnection;

pub enum AccountEvent {
    Deposited { amount: u64 },
}
pub struct AccountAudited;

pub struct Balances;

#[projection(name = "balances")]
impl Balances {
    async fn on_account(
        &self,
        tx: &mut SqliteConnection,
        event: &AccountEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), sqlx::Error> {
        let _ = (tx, event, meta.position());
        Ok(())
    }

    async fn on_audit(&self, tx: &mut SqliteConnection, _event: &AccountAudited) {
        let _ = tx;
    }

    #[reset]
    async fn clear(&self, tx: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        let _ = tx;
        Ok(())
    }
}

fn main() {}
