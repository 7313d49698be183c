// Methods on two databases: one error, at the second connection type; the
// projection is still one on the first one's database.
use annals::prelude::*;
use annals::projection::Projection;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
}

#[event]
pub struct AccountAudited;

pub struct Totals;

#[projection]
impl Totals {
    async fn on_account(&self, tx: &mut sqlx::SqliteConnection, event: &AccountEvent) {
        let _ = (tx, event);
    }

    async fn on_audit(&self, tx: &mut sqlx::PgConnection, event: &AccountAudited) {
        let _ = (tx, event);
    }
}

fn main() {
    let _ = <Totals as Projection<sqlx::Sqlite>>::NAME;
}
