// `#[event]` on a struct: one event type, renamed and versioned.
use annals::prelude::*;

#[event(rename = "account.opened", version = 3)]
pub struct AccountOpened {
    pub owner: String,
}

fn main() {
    let event = AccountOpened { owner: "ada".into() };
    assert_eq!((event.event_type(), event.event_version()), ("account.opened", 3));
    assert_eq!(AccountOpened::TYPES, &[annals::EventType { name: "account.opened", version: 3 }]);
    let payload = event.encode().unwrap();
    assert_eq!(AccountOpened::decode("account.opened", 3, &payload).unwrap(), event);
    assert!(AccountOpened::decode("account.opened", 2, &payload).is_err());
}
