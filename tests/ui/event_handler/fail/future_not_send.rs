// An async method whose future is not `Send` (an `Rc` held across `.await`): one error, at the method.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

pub struct Notifier;

#[event_handler]
impl Notifier {
    async fn on_account(&self, event: &AccountEvent) {
        let held = std::rc::Rc::new(event.clone());
        std::future::ready(()).await;
        drop(held);
    }
}

fn main() {}
