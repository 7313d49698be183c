// A method taking a type that is not an `#[event]`: one error, at the type.
use annals::prelude::*;
use sqlx::SqliteConnection;

pub struct Totals;

#[projection]
impl Totals {
    async fn on_note(&self, tx: &mut SqliteConnection, note: &String) {
        let _ = (tx, note);
    }
}

fn main() {}
