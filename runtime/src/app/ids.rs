//! Ids of commands and of the events they record.
//!
//! A command given no id gets a fresh uuid v7 from one process-wide sequence,
//! and its events get the ids right after it: one clock read and no lock per
//! command, and every id distinct (the sequence only moves forward). A command
//! given an id by its caller has event ids derived from it, so sending it
//! again collides with what it recorded the first time.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// A uuid v7 has 74 bits after its 48-bit millisecond timestamp (beside the
/// version and variant bits). Fresh ids split them, from the top:
/// `SEQUENCE_BITS` of the sequence within the millisecond (so ids sort in the
/// order they were made), `RANDOM_BITS` random, `SLOT_BITS` numbering the
/// command's events (0 is the command itself).
const SEQUENCE_BITS: u32 = 20;
const SLOT_BITS: u32 = 16;
const RANDOM_BITS: u32 = 74 - SEQUENCE_BITS - SLOT_BITS;

/// The last value handed out: milliseconds since the Unix epoch, shifted left
/// by `SEQUENCE_BITS`, plus the sequence within that millisecond.
static LAST: AtomicU64 = AtomicU64::new(0);

/// A command's fresh id (its slot bits zero), which also numbers its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FreshId(Uuid);

impl FreshId {
    /// How many events a command can number this way; more get ids that the store checks.
    pub(crate) const MAX_EVENTS: usize = (1 << SLOT_BITS) - 1;

    /// The next id of the process-wide sequence: one clock read, no lock.
    pub(crate) fn new() -> Self {
        Self::at(SystemTime::now())
    }

    /// The next id of the process-wide sequence, for a command made at `now`.
    pub(crate) fn at(now: SystemTime) -> Self {
        // Before the epoch (a badly set clock) counts as the epoch: the sequence
        // still moves forward, so ids stay distinct.
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let millis = since_epoch.as_secs() * 1000 + u64::from(since_epoch.subsec_millis());
        let floor = millis << SEQUENCE_BITS;
        let mut last = LAST.load(Ordering::Relaxed);
        let value = loop {
            // A new millisecond starts its sequence at a random point of the lower
            // half, leaving room to count up; within one (or if the clock stepped
            // back) count on from the last value. A sequence that runs over its
            // bits carries into the millisecond: later, never repeated.
            let next = if last < floor {
                floor | (random() >> (64 - SEQUENCE_BITS + 1))
            } else {
                last + 1
            };
            match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(seen) => last = seen,
            }
        };
        let millis = u128::from(value >> SEQUENCE_BITS) & ((1 << 48) - 1);
        let sequence = u128::from(value & ((1 << SEQUENCE_BITS) - 1));
        let random = u128::from(random() >> (64 - RANDOM_BITS));
        let rest = (sequence << (RANDOM_BITS + SLOT_BITS)) | (random << SLOT_BITS);
        // The uuid v7 layout: 48 bits of milliseconds, the version, 12 bits,
        // the variant, 62 bits.
        Self(Uuid::from_u128(
            (millis << 80)
                | (0x7 << 76)
                | ((rest >> 62) << 64)
                | (0b10 << 62)
                | (rest & ((1 << 62) - 1)),
        ))
    }

    /// The command's id.
    pub(crate) fn command_id(self) -> Uuid {
        self.0
    }

    /// The id of the command's event `index`, if it has one of its own
    /// (`index < MAX_EVENTS`).
    pub(crate) fn event_id(self, index: usize) -> Option<Uuid> {
        // The slot bits are the lowest ones, below the variant: adding sets them.
        (index < Self::MAX_EVENTS).then(|| Uuid::from_u128(self.0.as_u128() + index as u128 + 1))
    }
}

/// Where a command's id and its events' ids come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EventIds {
    /// The caller gave the command id: event ids derive from it, so a retry collides.
    Derived(Uuid),
    /// A fresh command id, whose events take the ids that follow it.
    Fresh(FreshId),
}

impl EventIds {
    pub(crate) fn new(given: Option<Uuid>) -> Self {
        match given {
            Some(id) => Self::Derived(id),
            None => Self::Fresh(FreshId::new()),
        }
    }

    pub(crate) fn command_id(self) -> Uuid {
        match self {
            Self::Derived(id) => id,
            Self::Fresh(fresh) => fresh.command_id(),
        }
    }

    pub(crate) fn event_id(self, index: usize) -> Uuid {
        match self {
            Self::Derived(id) => derived_event_id(id, index),
            // Past the ids a fresh command numbers itself, a random one (which the store checks).
            Self::Fresh(fresh) => fresh.event_id(index).unwrap_or_else(Uuid::now_v7),
        }
    }
}

/// The id of event `index` of command `command_id`: a uuid v7 carrying the
/// command id's timestamp (its first 48 bits) and 74 bits hashed from the command
/// id and the index. Deterministic, so a retried command collides with itself.
fn derived_event_id(command_id: Uuid, index: usize) -> Uuid {
    let hashed = Uuid::new_v5(&command_id, &(index as u64).to_be_bytes()).as_u128();
    let time = command_id.as_u128() & (!0u128 << 80);
    let rand = hashed & !(!0u128 << 80);
    let bits = (time | rand) & !(0xF << 76) & !(0b11 << 62);
    Uuid::from_u128(bits | (0x7 << 76) | (0b10 << 62))
}

/// 64 random bits from a per-thread generator (wyrand) seeded from the
/// standard library's random hash keys. Not for secrets: it only keeps fresh
/// ids from being guessable by counting, as uuid v7 asks.
pub(crate) fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = RandomState::new().hash_one(std::thread::current().id()) | 1;
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s).wrapping_mul(u128::from(s ^ 0xe703_7ed1_a0b4_28db));
        ((t >> 64) ^ t) as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn fresh_ids_are_v7_and_carry_the_time() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let fresh = FreshId::new();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for id in [
            fresh.command_id(),
            fresh.event_id(0).unwrap(),
            fresh.event_id(FreshId::MAX_EVENTS - 1).unwrap(),
        ] {
            assert_eq!(id.get_version_num(), 7, "{id}");
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            let millis = secs * 1000 + u64::from(nanos) / 1_000_000;
            // The sequence may run a millisecond ahead when it overflows, never behind.
            assert!(before <= millis && millis <= after + 1, "{id}");
        }
        assert_eq!(fresh.event_id(FreshId::MAX_EVENTS), None);
    }

    /// No two fresh ids are ever equal,
    /// across commands, events and threads, and they sort in the order made.
    #[test]
    fn fresh_ids_never_repeat_and_sort_in_order() {
        let per_thread = 20_000;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let ids: Vec<Uuid> = (0..per_thread)
                        .flat_map(|_| {
                            let fresh = FreshId::new();
                            [
                                fresh.command_id(),
                                fresh.event_id(0).unwrap(),
                                fresh.event_id(1).unwrap(),
                            ]
                        })
                        .collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "one thread's ids sort");
                    ids
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(seen.insert(id), "{id} handed out twice");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread * 3);
    }
}
