// `snapshot_every` needs the state to be serde-serialisable.
use annals::prelude::*;

#[event]
pub enum CounterEvent {
    Added { n: u64 },
}

#[aggregate(events = CounterEvent, name = "counter", snapshot_every = 50, snapshot_version = 2)]
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Counter {
    total: u64,
}

#[aggregate]
impl Counter {
    #[apply]
    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added { n } => self.total += n,
        }
    }
}

fn main() {
    assert_eq!(<Counter as Aggregate>::TYPE, "counter");
    assert_eq!(<Counter as Aggregate>::SNAPSHOT_EVERY, Some(50));
    assert_eq!(<Counter as Aggregate>::SNAPSHOT_VERSION, 2);
    let snapshot = Counter { total: 7 }.snapshot().unwrap().unwrap();
    assert_eq!(Counter::restore(&snapshot).unwrap().unwrap().total, 7);
}
