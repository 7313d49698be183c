//! Two upcasters for one stored shape: the App refuses to build, naming both.

use annals::BuildError;
use annals::prelude::*;

#[event]
pub enum ParcelEvent {
    #[event(version = 2)]
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
fn weighed_in_grams(old: serde_json::Value) -> serde_json::Value {
    old
}

mod elsewhere {
    #[annals::upcaster(from = "Weighed", version = 1)]
    fn weighed_again(old: serde_json::Value) -> serde_json::Value {
        old
    }
}

#[test]
fn two_upcasters_for_one_step_are_refused_naming_both() {
    let error = App::builder()
        .store(MemoryStore::new())
        .build()
        .map(drop)
        .unwrap_err();
    let BuildError::DuplicateUpcaster {
        event_type,
        event_version,
        first,
        second,
    } = &error
    else {
        panic!("expected the duplicate, got {error:?}");
    };
    assert_eq!((*event_type, *event_version), ("Weighed", 1));
    let mut both = [*first, *second];
    both.sort();
    assert_eq!(
        both,
        [
            "upcaster_duplicate::elsewhere::weighed_again",
            "upcaster_duplicate::weighed_in_grams"
        ]
    );
}
