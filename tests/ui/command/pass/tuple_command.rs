// A command may be a tuple struct; `name` renames it for JSON routing.
use annals::prelude::*;

#[event]
pub enum AccountEvent {
    Closed,
}

#[aggregate(events = AccountEvent)]
#[derive(Default)]
pub struct Account {
    closed: bool,
}

#[command(aggregate = Account, name = "account.close")]
pub struct Close(#[id] pub u32);

#[aggregate]
impl Account {
    #[handle]
    fn close(&self, _cmd: Close) -> AccountEvent {
        AccountEvent::Closed
    }

    #[apply]
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Closed => self.closed = true,
        }
    }
}

fn main() {
    assert_eq!(<Close as Command>::NAME, "account.close");
    assert_eq!(Close(7).aggregate_id().to_string(), "7");
}
