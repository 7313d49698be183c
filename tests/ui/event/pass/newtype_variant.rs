// A variant may wrap exactly one type; its payload is that type's serde form.
use annals::prelude::*;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Opened {
    pub owner: String,
}

#[event]
pub enum AccountEvent {
    Opened(Opened),
    #[event(rename = "Deposited", version = 2)]
    MoneyDeposited { amount: u64 },
    Closed,
}

fn main() {
    let opened = AccountEvent::Opened(Opened { owner: "ada".into() });
    let payload = opened.encode().unwrap();
    assert_eq!(payload.as_str(), r#"{"owner":"ada"}"#);
    assert_eq!(AccountEvent::decode("Opened", 1, &payload).unwrap(), opened);
    let deposited = AccountEvent::MoneyDeposited { amount: 5 };
    assert_eq!((deposited.event_type(), deposited.event_version()), ("Deposited", 2));
    assert_eq!(AccountEvent::decode("Closed", 1, &AccountEvent::Closed.encode().unwrap()).unwrap(), AccountEvent::Closed);
}
