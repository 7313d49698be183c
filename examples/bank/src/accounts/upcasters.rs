//! The account events' older shapes, read as the current ones.
//!
//! Each function is one step of a stored event's chain: it takes the payload
//! of an old `(type, version)` and returns the next shape. They state what
//! the old events meant when they were written, so they never use a value
//! that may change later (the bank's currency today, say): a step's output
//! must stay the same for as long as such events are stored.

use annals::upcaster;
use serde_json::Value;

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
