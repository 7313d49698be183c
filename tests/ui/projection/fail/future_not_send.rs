// An async method whose future is not `Send` (an `Rc` held across `.await`): one error, at the method.
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
        let held = std::rc::Rc::new(event.clone());
        std::future::ready(()).await;
        drop((held, tx));
    }
}

fn main() {}
