//! An aggregate's event at version 3 whose chain has a step from version 1
//! but none from 2: the App refuses to build, naming the missing step,
//! instead of failing in the middle of a stream at runtime; an upcaster
//! that splits another type into the same enum does not hide it.

use annals::BuildError;
use annals::prelude::*;

#[event]
pub enum ParcelEvent {
    #[event(version = 3)]
    Weighed { grams: u64 },
}

#[aggregate(events = ParcelEvent)]
#[derive(Default)]
pub struct Parcel;

#[aggregate]
impl Parcel {
    #[apply]
    fn apply(&mut self, _: &ParcelEvent) {}
}

#[upcaster(from = "Weighed", version = 1)]
fn weighed_v1(old: serde_json::Value) -> serde_json::Value {
    old
}

/// A split into parcel events may lead to any of them, but renames none:
/// the chain of `Weighed` is still checked from version 1.
#[upcaster(from = "Bundled", version = 1, to = ParcelEvent)]
fn bundles_split(_old: serde_json::Value) -> Vec<ParcelEvent> {
    Vec::new()
}

#[test]
fn a_gap_in_a_chain_is_refused_when_the_app_is_built() {
    let error = App::builder()
        .store(MemoryStore::new())
        .build()
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(
            error,
            BuildError::UpcasterGap {
                event_type: "Weighed",
                missing_from: 2,
                current: 3
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("#[upcaster(from = \"Weighed\", version = 2)]"),
        "the error says what to add: {error}"
    );
}
