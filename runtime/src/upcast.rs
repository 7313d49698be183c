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
//! managers all decode through [`Event::decode`], which
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
//! An upcaster may also:
//!
//! - rename the type (`to = "NewName"`, with `to_version`);
//! - take and return [`serde_json::Value`] when no old type is kept;
//! - read the stored event's metadata: a second argument
//!   `meta: &EventMeta` (its stream, position, time, correlation and
//!   causation ids, and `event_type()`/`event_version()` as stored, before
//!   any step);
//! - drop the event (return `Option<T>`: `None` reads as no event at all)
//!   or split it (return `Vec<T>`: each element is one event, in order, at
//!   the stored event's position);
//! - return current events of an `#[event]` type instead of payloads
//!   (`to = AccountEvent`, a type path rather than a name), each stored
//!   under its own name and version: a split into events of several types;
//! - fail with an error (return `Result<_, E>`), which reads as
//!   [`DecodeError::Upcast`] naming the step.
//!
//! An event type that no longer reads some stored type at all, because it
//! moved to another `#[event]` type (`#[event(moved = ["CardLocked"])]`),
//! skips it when its stream is replayed, while handlers of the type that
//! declares it now receive it.
//!
//! Readers that hold a [`RecordedEvent`] (aggregates, handlers,
//! projections, process managers) read every event a stored one upcasts
//! into, through [`decode_recorded`]; [`Event::decode`]
//! returns exactly one event, and refuses a stored event that upcasts into
//! none or several ([`DecodeError::NotOne`]).
//! [`App::builder().build()`](crate::AppBuilder::build) refuses two
//! upcasters for one step ([`BuildError::DuplicateUpcaster`](crate::BuildError::DuplicateUpcaster))
//! and an event type whose chain has a gap
//! ([`BuildError::UpcasterGap`](crate::BuildError::UpcasterGap)).

use crate::aggregate::{DecodeError, Event, EventType};
use crate::app::BoxError;
use crate::handler::EventMeta;
use crate::store::{Metadata, Payload, RecordedEvent, StreamId};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// A stored event's type, version and payload, as an upcaster's step
/// returns it.
///
/// The payload is JSON text, as stored: the next step, or the event type
/// at the end of the chain, reads it with one serde pass, as it reads a
/// stored payload (a `serde_json::Value` in between would cost a tree of
/// allocations per step).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredShape {
    /// The type name.
    pub event_type: &'static str,
    /// The version.
    pub event_version: u32,
    /// The payload.
    pub payload: Payload,
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

fn failed(step: &Upcaster, source: BoxError) -> DecodeError {
    DecodeError::Upcast(Box::new(UpcastError {
        event_type: step.from_type.to_owned(),
        event_version: step.from_version,
        upcaster: step.name,
        source,
    }))
}

/// The step of an [`Upcaster`]: the stored (or previous step's) payload and
/// the stored event's metadata in, the next shapes out (one, usually, held
/// without allocating).
pub type Step = fn(&Payload, &EventMeta<'_>) -> Result<Decoded<StoredShape>, BoxError>;

/// One registered step of a chain: from a stored `(type, version)` to the
/// next shapes. Written by [`#[upcaster]`](crate::upcaster); registered with
/// `inventory`.
#[derive(Debug)]
pub struct Upcaster {
    /// The stored type name it takes.
    pub from_type: &'static str,
    /// The stored version it takes.
    pub from_version: u32,
    /// The shapes it may return: one `(to, to_version)`, or every type of
    /// the `#[event]` type it returns values of.
    pub to: &'static [EventType],
    /// Whether it returns values of an `#[event]` type (`to = Type`), any
    /// of whose types it may lead to, rather than payloads of one.
    pub to_events: bool,
    /// The function's path, for errors.
    pub name: &'static str,
    /// The step.
    pub step: Step,
}

inventory::collect!(Upcaster);

/// How many steps a chain may take: more means a cycle.
const MAX_STEPS: usize = 64;

/// foldhash instead of SipHash: every read of an upcast event looks its
/// stored `(type, version)` up.
type StepMap = HashMap<(&'static str, u32), &'static Upcaster, foldhash::fast::FixedState>;

/// The registered steps by `(type, version)`; the first of two for one step
/// (the App's build refuses those).
fn steps() -> &'static StepMap {
    static STEPS: OnceLock<StepMap> = OnceLock::new();
    STEPS.get_or_init(|| {
        let mut steps = StepMap::default();
        for u in inventory::iter::<Upcaster> {
            steps.entry((u.from_type, u.from_version)).or_insert(u);
        }
        steps
    })
}

/// The events one stored event reads as: usually one, none when an
/// upcaster dropped it or its type moved to another event type, several
/// when an upcaster split it. An iterator, in order; one event is held
/// without allocating. A step of a chain returns its shapes so too.
#[derive(Debug)]
pub struct Decoded<E>(Repr<E>);

#[derive(Debug)]
enum Repr<E> {
    One(Option<E>),
    Many(std::vec::IntoIter<E>),
}

impl<E> Decoded<E> {
    fn one(event: E) -> Self {
        Self(Repr::One(Some(event)))
    }
}

impl<E> Iterator for Decoded<E> {
    type Item = E;

    fn next(&mut self) -> Option<E> {
        match &mut self.0 {
            Repr::One(one) => one.take(),
            Repr::Many(many) => many.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            Repr::One(one) => usize::from(one.is_some()),
            Repr::Many(many) => many.len(),
        };
        (n, Some(n))
    }
}

impl<E> ExactSizeIterator for Decoded<E> {}

impl<E> FromIterator<E> for Decoded<E> {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        let mut out = Collect::Zero;
        for item in iter {
            out.push(item);
        }
        out.into_decoded()
    }
}

/// [`Decoded`] being built: a second item moves the first into a `Vec`.
enum Collect<E> {
    Zero,
    One(E),
    Many(Vec<E>),
}

impl<E> Collect<E> {
    fn push(&mut self, item: E) {
        *self = match std::mem::replace(self, Collect::Zero) {
            Collect::Zero => Collect::One(item),
            Collect::One(first) => Collect::Many(vec![first, item]),
            Collect::Many(mut all) => {
                all.push(item);
                Collect::Many(all)
            }
        };
    }

    fn into_decoded(self) -> Decoded<E> {
        Decoded(match self {
            Collect::Zero => Repr::One(None),
            Collect::One(one) => Repr::One(Some(one)),
            Collect::Many(all) => Repr::Many(all.into_iter()),
        })
    }
}

/// What to do with a shape at the end of a chain that `E` does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undeclared {
    /// An error: an aggregate's stream holds events of its own type only.
    Refuse,
    /// Skip it: a handler reads the events of the types it handles.
    Skip,
}

/// Decodes a recorded event as the events of `E` it reads as, through its
/// chain of upcasters when `E` does not declare its stored `(type,
/// version)`. The upcasters see the event's metadata. A shape at the end of
/// a chain that `E` does not declare is an error
/// ([`DecodeError::UnknownType`]) unless `E` lists it as
/// [moved](crate::Event::MOVED).
///
/// ```
/// use annals::prelude::*;
/// use annals::upcast::decode_recorded;
/// # use annals::{MemoryStore, ExpectedVersion, NewEvent, Payload, StreamId};
///
/// #[event]
/// pub enum Ledger {
///     Credited { cents: u64 },
/// }
///
/// #[derive(serde::Deserialize)]
/// struct BatchV1 {
///     credits: Vec<u64>,
/// }
///
/// #[derive(serde::Serialize)]
/// struct Credited {
///     cents: u64,
/// }
///
/// // Version 1 stored a batch of credits as one event; now each is one.
/// #[upcaster(from = "CreditBatch", version = 1, to = "Credited")]
/// fn batch_splits(old: BatchV1) -> Vec<Credited> {
///     old.credits.into_iter().map(|cents| Credited { cents }).collect()
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let old = NewEvent::new("CreditBatch", 1, Payload::from_json(r#"{"credits":[1,2]}"#).unwrap());
/// store.append(&StreamId::new("Ledger-1"), ExpectedVersion::NoStream, vec![old]).await.unwrap();
/// let recorded = &store.read_all(1, 10).await.unwrap()[0];
/// let events: Vec<Ledger> = decode_recorded(recorded).unwrap().collect();
/// assert_eq!(events, [Ledger::Credited { cents: 1 }, Ledger::Credited { cents: 2 }]);
/// # });
/// ```
pub fn decode_recorded<E: Event>(event: &RecordedEvent) -> Result<Decoded<E>, DecodeError> {
    decode_as(event, Undeclared::Refuse)
}

/// [`decode_recorded`] for a handler: shapes at the end of a chain that
/// `E` does not declare are skipped, not refused.
pub(crate) fn decode_handled<E: Event>(event: &RecordedEvent) -> Result<Decoded<E>, DecodeError> {
    decode_as(event, Undeclared::Skip)
}

fn decode_as<E: Event>(
    event: &RecordedEvent,
    undeclared: Undeclared,
) -> Result<Decoded<E>, DecodeError> {
    let (event_type, event_version) = (&*event.event_type, event.event_version);
    if let Some(decoded) = E::decode_declared(event_type, event_version, &event.payload) {
        return decoded.map(Decoded::one);
    }
    if E::MOVED.contains(&event_type) {
        return Ok(Decoded(Repr::Many(Vec::new().into_iter())));
    }
    let Some(step) = steps().get(&(event_type, event_version)).copied() else {
        return Err(DecodeError::UnknownType {
            event_type: event_type.to_owned(),
            event_version,
        });
    };
    let meta = EventMeta::of(event);
    let mut out = Collect::Zero;
    run::<E>(step, &event.payload, &meta, undeclared, &mut out, 0)?;
    Ok(out.into_decoded())
}

/// Runs `step` on `payload` and every step after it, pushing the events of
/// `E` the chain ends in onto `out`, in order.
fn run<E: Event>(
    step: &'static Upcaster,
    payload: &Payload,
    meta: &EventMeta<'_>,
    undeclared: Undeclared,
    out: &mut Collect<E>,
    depth: usize,
) -> Result<(), DecodeError> {
    if depth == MAX_STEPS {
        return Err(failed(
            step,
            format!("the chain of upcasters takes more than {MAX_STEPS} steps (a cycle?)").into(),
        ));
    }
    let shapes = (step.step)(payload, meta).map_err(|source| failed(step, source))?;
    for shape in shapes {
        let (event_type, event_version) = (shape.event_type, shape.event_version);
        if let Some(event) = E::decode_declared(event_type, event_version, &shape.payload) {
            out.push(event?);
        } else if let Some(next) = steps().get(&(event_type, event_version)) {
            run(next, &shape.payload, meta, undeclared, out, depth + 1)?;
        } else if undeclared == Undeclared::Refuse && !E::MOVED.contains(&event_type) {
            return Err(DecodeError::UnknownType {
                event_type: event_type.to_owned(),
                event_version,
            });
        }
    }
    Ok(())
}

/// Decodes a stored `(type, version)` that `E` does not declare by running
/// its chain of upcasters, for [`Event::decode`]: with no recorded event,
/// the upcasters see empty metadata (nil ids, position 0); exactly one
/// event must come out.
#[doc(hidden)]
pub fn decode_upcast<E: Event>(
    event_type: &str,
    event_version: u32,
    payload: &Payload,
) -> Result<E, DecodeError> {
    let detached = RecordedEvent {
        event_id: uuid::Uuid::nil(),
        stream_id: StreamId::new(""),
        stream_version: 0,
        global_position: 0,
        event_type: event_type.to_owned().into(),
        event_version,
        payload: payload.clone(),
        metadata: Metadata::default(),
        recorded_at: chrono::DateTime::UNIX_EPOCH,
    };
    let mut decoded = decode_recorded::<E>(&detached)?;
    match (decoded.next(), decoded.len()) {
        (Some(event), 0) => Ok(event),
        (first, rest) => Err(DecodeError::NotOne {
            event_type: event_type.to_owned(),
            event_version,
            count: usize::from(first.is_some()) + rest,
        }),
    }
}

/// Which list of `interest` receives a stored `(type, version)` that no
/// list declares by name, following the chain's declared targets: the first
/// list that declares a type the chain may end in.
pub(crate) fn route(
    interest: &[&[EventType]],
    event_type: &str,
    event_version: u32,
) -> Option<usize> {
    let steps = steps();
    let declaring = |name: &str| {
        interest
            .iter()
            .position(|types| types.iter().any(|t| t.name == name))
    };
    // Most chains reach a read type in one step: no allocation for those,
    // which a handler catching up over old events meets once per event.
    let first = steps.get(&(event_type, event_version))?;
    if let Some(i) = first.to.iter().find_map(|target| declaring(target.name)) {
        return Some(i);
    }
    let mut frontier = vec![(event_type, event_version)];
    let mut seen = HashSet::new();
    while let Some(at) = frontier.pop() {
        let Some(step) = steps.get(&at) else { continue };
        if !seen.insert((step.from_type, step.from_version)) {
            continue;
        }
        for target in step.to {
            if let Some(i) = declaring(target.name) {
                return Some(i);
            }
            frontier.push((target.name, target.version));
        }
    }
    None
}

/// Every stored type name whose chain may end in one of `names`: the names
/// a reader of `names` must also read.
pub(crate) fn sources_of(names: &[&'static str]) -> Vec<&'static str> {
    let mut wanted: HashSet<&'static str> = names.iter().copied().collect();
    let mut sources = Vec::new();
    loop {
        let before = sources.len();
        for u in inventory::iter::<Upcaster> {
            if !wanted.contains(u.from_type) && u.to.iter().any(|t| wanted.contains(t.name)) {
                wanted.insert(u.from_type);
                sources.push(u.from_type);
            }
        }
        if sources.len() == before {
            return sources;
        }
    }
}

/// What is wrong with the registered upcasters, given every `(type,
/// version)` the aggregates' event types declare: two upcasters for one
/// step, or a declared type at version `n > 1` with an older version that is
/// neither declared nor upcast (a stored event of it could not be read).
/// Versions below the one an upcaster renames another type into never
/// existed under this name. A type at `n > 1` with no upcaster of its name
/// at all is refused too: bumping a version without a step is the mistake
/// this catches.
pub(crate) fn check(declared: &[EventType]) -> Result<(), crate::app::BuildError> {
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
        // A rename into `t` (one target of another name): `t`'s versions
        // before the renamed one never existed under its name.
        let first = steps
            .values()
            .filter(|u| u.from_type != t.name && !u.to_events)
            .flat_map(|u| u.to.iter())
            .filter(|to| to.name == t.name)
            .map(|to| to.version)
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
