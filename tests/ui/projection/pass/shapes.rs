// Every method shape, on both databases, under a renamed crate, with no warning.
#![deny(warnings)]

use annals as ledger;
use ledger::projection::Projection;
use ledger::{event, projection, EventMeta};

#[event(crate = "ledger")]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event(crate = "ledger")]
pub struct AccountAudited {
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
pub struct Refused;

type Conn = sqlx::SqliteConnection;

pub struct Totals;

#[projection(crate = "ledger", name = "totals")]
impl Totals {
    async fn on_account(&self, tx: &mut Conn, event: &AccountEvent) -> Result<(), sqlx::Error> {
        if let AccountEvent::Deposited { amount } = event {
            sqlx::query("UPDATE totals SET cents = cents + ?1")
                .bind(*amount as i64)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    // Not async, no result, with its metadata; the connection spelled out.
    fn on_audit(&self, _tx: &mut sqlx::SqliteConnection, event: &AccountAudited, meta: &EventMeta<'_>) {
        let _ = (&event.by, meta.position());
    }

    #[reset]
    async fn clear(&self, tx: &mut Conn) -> Result<(), Refused> {
        sqlx::query("DELETE FROM totals")
            .execute(&mut *tx)
            .await
            .map_err(|_| Refused)?;
        Ok(())
    }
}

pub struct PgTotals;

#[projection(crate = "ledger")]
impl PgTotals {
    async fn on_account(&self, tx: &mut sqlx::PgConnection, event: &AccountEvent, meta: &EventMeta<'_>) {
        let _ = (tx, event, meta.stream_id());
    }
}

fn main() {
    assert_eq!(<Totals as Projection<sqlx::Sqlite>>::NAME, "totals");
    assert_eq!(
        <Totals as Projection<sqlx::Sqlite>>::INTEREST,
        &[<AccountEvent as ledger::Event>::TYPES, <AccountAudited as ledger::Event>::TYPES]
    );
    assert_eq!(<PgTotals as Projection<sqlx::Postgres>>::NAME, "PgTotals");
}
