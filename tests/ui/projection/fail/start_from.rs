// `start_from` is an event handler's key: refused, saying why.
use annals::prelude::*;
use sqlx::SqliteConnection;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
}

pub struct Totals;

#[projection(start_from = now)]
impl Totals {
    async fn on_account(&self, tx: &mut SqliteConnection, event: &AccountEvent) {
        let _ = (tx, event);
    }
}

fn main() {}
