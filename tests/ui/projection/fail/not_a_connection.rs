// A pool where the connection goes: one error, at the type.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
}

pub struct Totals;

#[projection]
impl Totals {
    async fn on_account(&self, pool: &mut sqlx::SqlitePool, event: &AccountEvent) {
        let _ = (pool, event);
    }
}

fn main() {}
