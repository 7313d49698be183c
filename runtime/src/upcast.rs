//! Upcasters: stored events of an older shape rewritten into the current
//! one as they are read, so domain code only ever sees current events.
//!
//! Events are stored forever under a type name and a version (`#[event]`'s
//! `name` and `version`). When an event's shape changes, bump its version and
//! write an upcaster from the old version to the next with
//! [`#[upcaster]`](crate::upcaster): a function from the old payload (a
//! typed struct of the old fields, or a [`serde_json::Value`]) to the next
//! one. Upcasters register themselves at compile time, and every decode of a
//! stored `(type, version)` that the event type no longer declares runs the
//! chain `v1 -> v2 -> ...` until a declared `(type, version)` comes out:
//! aggregates, snapshots' replays, event handlers, projections and process
//! managers all decode through [`Event::decode`](crate::Event::decode), which
//! `#[event]` writes to fall back on the chain.
//!
//! ```
//! use annals::prelude::*;
//! use annals::{Event, Payload};
//!
//! #[event]
//! pub enum AccountEvent {
//!     // Version 1 had no currency.
//!     #[event(version = 2)]
//!     MoneyDeposited { amount: u64, currency: String },
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct DepositedV1 {
//!     amount: u64,
//! }
//!
//! #[derive(serde::Serialize)]
//! struct DepositedV2 {
//!     amount: u64,
//!     currency: String,
//! }
//!
//! #[upcaster(from = "MoneyDeposited", version = 1)]
//! fn deposited_gains_a_currency(old: DepositedV1) -> DepositedV2 {
//!     DepositedV2 { amount: old.amount, currency: "EUR".into() }
//! }
//!
//! // A payload stored years ago, as version 1:
//! let old = Payload::from_json(r#"{"amount":5}"#).unwrap();
//! let event = AccountEvent::decode("MoneyDeposited", 1, &old).unwrap();
//! assert_eq!(event, AccountEvent::MoneyDeposited { amount: 5, currency: "EUR".into() });
//! ```
//!
//! An upcaster may also rename the type (`to = "NewName"`, with
//! `to_version`), take and return [`serde_json::Value`] when no old type is
//! kept, and fail with an error (return `Result<_, E>`), which reads as
//! [`DecodeError::Upcast`](crate::DecodeError::Upcast) naming the step.
//! [`App::builder().build()`](crate::AppBuilder::build) refuses two
//! upcasters for one step ([`BuildError::DuplicateUpcaster`](crate::BuildError::DuplicateUpcaster))
//! and an event type whose chain has a gap
//! ([`BuildError::UpcasterGap`](crate::BuildError::UpcasterGap)).

use crate::aggregate::{DecodeError, Event};
use crate::app::BoxError;
use crate::store::Payload;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A stored event's type, version and payload, as an upcaster takes and
/// returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredShape {
    /// The type name.
    pub event_type: String,
    /// The version.
    pub event_version: u32,
    /// The payload.
    pub payload: serde_json::Value,
}

/// Why a step of an upcaster chain failed: [`DecodeError::Upcast`].
#[derive(Debug, thiserror::Error)]
#[error("upcaster `{upcaster}` failed on `{event_type}` version {event_version}")]
pub struct UpcastError {
    /// The type name the failing step takes.
    pub event_type: String,
    /// The version the failing step takes.
    pub event_version: u32,
    /// The upcaster's function path.
    pub upcaster: &'static str,
    /// Why.
    #[source]
    pub source: BoxError,
}

fn failed(step: &Upcaster, event_type: &str, event_version: u32, source: BoxError) -> DecodeError {
    DecodeError::Upcast(Box::new(UpcastError {
        event_type: event_type.to_owned(),
        event_version,
        upcaster: step.name,
        source,
    }))
}

/// One registered step of a chain: from a stored `(type, version)` to the
/// next shape. Written by [`#[upcaster]`](crate::upcaster); registered with
/// `inventory`.
#[derive(Debug)]
pub struct Upcaster {
    /// The stored type name it takes.
    pub from_type: &'static str,
    /// The stored version it takes.
    pub from_version: u32,
    /// The type name it returns.
    pub to_type: &'static str,
    /// The version it returns.
    pub to_version: u32,
    /// The function's path, for errors.
    pub name: &'static str,
    /// The step.
    pub step: fn(serde_json::Value) -> Result<serde_json::Value, BoxError>,
}

inventory::collect!(Upcaster);

/// How many steps a chain may take: more means a cycle.
const MAX_STEPS: usize = 64;

/// The registered steps by `(type, version)`; the first of two for one step
/// (the App's build refuses those).
fn steps() -> &'static HashMap<(&'static str, u32), &'static Upcaster> {
    static STEPS: OnceLock<HashMap<(&'static str, u32), &'static Upcaster>> = OnceLock::new();
    STEPS.get_or_init(|| {
        let mut steps = HashMap::new();
        for u in inventory::iter::<Upcaster> {
            steps.entry((u.from_type, u.from_version)).or_insert(u);
        }
        steps
    })
}

/// Decodes a stored `(type, version)` that `E` does not declare by running
/// its chain of upcasters to one that it does.
#[doc(hidden)]
pub fn decode_upcast<E: Event>(
    event_type: &str,
    event_version: u32,
    payload: &Payload,
) -> Result<E, DecodeError> {
    let steps = steps();
    let Some(mut step) = steps.get(&(event_type, event_version)).copied() else {
        return Err(DecodeError::UnknownType {
            event_type: event_type.to_owned(),
            event_version,
        });
    };
    let mut value: serde_json::Value =
        serde_json::from_str(payload.as_str()).map_err(|source| DecodeError::Payload {
            event_type: event_type.to_owned(),
            event_version,
            source,
        })?;
    for _ in 0..MAX_STEPS {
        value = (step.step)(value)
            .map_err(|source| failed(step, step.from_type, step.from_version, source))?;
        let declared = E::TYPES
            .iter()
            .any(|t| t.name == step.to_type && t.version == step.to_version);
        if declared {
            let payload =
                Payload::from_serialize(&value).map_err(|source| DecodeError::Payload {
                    event_type: step.to_type.to_owned(),
                    event_version: step.to_version,
                    source,
                })?;
            return E::decode(step.to_type, step.to_version, &payload);
        }
        step = match steps.get(&(step.to_type, step.to_version)) {
            Some(next) => next,
            None => {
                return Err(DecodeError::UnknownType {
                    event_type: step.to_type.to_owned(),
                    event_version: step.to_version,
                });
            }
        };
    }
    Err(failed(
        step,
        event_type,
        event_version,
        format!("the chain of upcasters takes more than {MAX_STEPS} steps (a cycle?)").into(),
    ))
}

/// What is wrong with the registered upcasters, given every `(type,
/// version)` the aggregates' event types declare: two upcasters for one
/// step, or a declared type at version `n > 1` with an older version that is
/// neither declared nor upcast (a stored event of it could not be read).
/// Versions below the one an upcaster renames another type into never
/// existed under this name. A type at `n > 1` with no upcaster of its name
/// at all is refused too: bumping a version without a step is the mistake
/// this catches.
pub(crate) fn check(
    declared: &[crate::aggregate::EventType],
) -> Result<(), crate::app::BuildError> {
    let mut steps: HashMap<(&'static str, u32), &'static Upcaster> = HashMap::new();
    for u in inventory::iter::<Upcaster> {
        if let Some(first) = steps.insert((u.from_type, u.from_version), u) {
            return Err(crate::app::BuildError::DuplicateUpcaster {
                event_type: u.from_type,
                event_version: u.from_version,
                first: first.name,
                second: u.name,
            });
        }
    }
    let is_declared = |name: &str, version: u32| {
        declared
            .iter()
            .any(|t| t.name == name && t.version == version)
    };
    for t in declared {
        let first = steps
            .values()
            .filter(|u| u.to_type == t.name && u.from_type != t.name)
            .map(|u| u.to_version)
            .max()
            .unwrap_or(1);
        for version in first..t.version {
            if !is_declared(t.name, version) && !steps.contains_key(&(t.name, version)) {
                return Err(crate::app::BuildError::UpcasterGap {
                    event_type: t.name,
                    missing_from: version,
                    current: t.version,
                });
            }
        }
    }
    Ok(())
}
