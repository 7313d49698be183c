// Two methods for one event type: one error, at the second one's type.
use annals::prelude::*;
use sqlx::SqliteConnection;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
}

pub struct Totals;

#[projection]
impl Totals {
    async fn on_account(&self, tx: &mut SqliteConnection, event: &AccountEvent) {
        let _ = (tx, event);
    }

    async fn on_account_again(&self, tx: &mut SqliteConnection, event: &AccountEvent) {
        let _ = (tx, event);
    }
}

fn main() {}
