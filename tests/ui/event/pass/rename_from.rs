use annals::prelude::*;
use annals::{Event, Payload};

#[event]
pub enum AccountEvent {
    #[event(rename_from = "FundsWithdrawn")]
    MoneyWithdrawn { cents: u64 },
    #[event(version = 2, rename_from = ["Credited", "Paid"])]
    MoneyDeposited { cents: u64 },
}

#[event(rename = "card.locked", rename_from = "CardLocked")]
#[derive(Clone, Debug, PartialEq)]
pub struct CardLocked {
    pub reason: String,
}

fn main() {
    let old = Payload::from_json(r#"{"cents":5}"#).unwrap();
    assert_eq!(
        AccountEvent::decode("FundsWithdrawn", 1, &old).unwrap(),
        AccountEvent::MoneyWithdrawn { cents: 5 }
    );
    assert_eq!(
        AccountEvent::decode("Paid", 2, &old).unwrap(),
        AccountEvent::MoneyDeposited { cents: 5 }
    );
}
