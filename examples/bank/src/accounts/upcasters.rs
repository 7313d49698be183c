//! The account events' older shapes, read as the current ones.
//!
//! (The rename of `WithdrawalRefused` needs no function: it is
//! `#[event(rename_from = "WithdrawalRefused")]` on the variant.)
//!
//! Each function is one step of a stored event's chain: it takes the payload
//! of an old `(type, version)` and returns the next shape. They state what
//! the old events meant when they were written, so they never use a value
//! that may change later (the bank's currency today, say): a step's output
//! must stay the same for as long as such events are stored.

use annals::upcaster;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `AccountOpened` v1, as the bank stored it while an owner had one name.
#[derive(Deserialize)]
struct OpenedV1 {
    owner: String,
    pin_hash: String,
}

/// `AccountOpened` v2.
#[derive(Serialize)]
struct OpenedV2 {
    first_name: String,
    last_name: String,
    pin_hash: String,
}

/// `AccountOpened` v1 -> v2: the owner's name splits at its last run of
/// whitespace. "Ada King Lovelace" has the first name "Ada King" and the
/// last name "Lovelace"; a name of one word, "Grace", is a last name with
/// an empty first name (as `OpenAccount` takes one today).
#[upcaster(from = "AccountOpened", version = 1)]
fn owner_splits_into_first_and_last_name(old: OpenedV1) -> OpenedV2 {
    let owner = old.owner.trim();
    let (first_name, last_name) = match owner.rsplit_once(char::is_whitespace) {
        Some((first, last)) => (first.trim_end(), last),
        None => ("", owner),
    };
    OpenedV2 {
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        pin_hash: old.pin_hash,
    }
}

/// `MoneyDeposited` v1 -> v2: deposits were all in euros before the
/// currency was recorded. No old type is worth keeping for one added field:
/// the JSON object gains it, and whatever else it holds passes through.
#[upcaster(from = "MoneyDeposited", version = 1)]
fn deposits_were_in_euros(mut deposit: Value) -> Result<Value, &'static str> {
    deposit
        .as_object_mut()
        .ok_or("a MoneyDeposited payload is a JSON object")?
        .insert("currency".into(), "EUR".into());
    Ok(deposit)
}

#[cfg(test)]
mod tests {
    use crate::accounts::AccountEvent;
    use annals::{Event, Payload};

    fn opened_v1(owner: &str) -> AccountEvent {
        let payload = serde_json::json!({ "owner": owner, "pin_hash": "h" });
        let payload = Payload::from_serialize(&payload).unwrap();
        AccountEvent::decode("AccountOpened", 1, &payload).unwrap()
    }

    fn opened(first_name: &str, last_name: &str) -> AccountEvent {
        AccountEvent::AccountOpened {
            first_name: first_name.into(),
            last_name: last_name.into(),
            pin_hash: "h".into(),
        }
    }

    #[test]
    fn an_owner_splits_at_the_last_space() {
        assert_eq!(opened_v1("Ada Lovelace"), opened("Ada", "Lovelace"));
        assert_eq!(
            opened_v1("Ada King Lovelace"),
            opened("Ada King", "Lovelace")
        );
        assert_eq!(opened_v1(" Alan  Turing "), opened("Alan", "Turing"));
    }

    #[test]
    fn a_one_word_owner_is_a_last_name() {
        assert_eq!(opened_v1("Grace"), opened("", "Grace"));
    }

    #[test]
    fn a_refused_withdrawal_is_now_declined() {
        let payload =
            Payload::from_json(r#"{"withdrawal_id":"w-1","reason":"wrong PIN"}"#).unwrap();
        assert_eq!(
            AccountEvent::decode("WithdrawalRefused", 1, &payload).unwrap(),
            AccountEvent::WithdrawalDeclined {
                withdrawal_id: "w-1".into(),
                reason: "wrong PIN".into()
            }
        );
    }

    #[test]
    fn an_old_deposit_is_in_euros() {
        let payload = Payload::from_json(r#"{"amount":250}"#).unwrap();
        assert_eq!(
            AccountEvent::decode("MoneyDeposited", 1, &payload).unwrap(),
            AccountEvent::MoneyDeposited {
                amount: 250,
                currency: "EUR".into()
            }
        );
    }
}
