// A handler may return one event, several, maybe one, none, or a `Result` of those,
// spelt out or through an alias, in one impl block or several.
use annals::prelude::*;

#[event]
pub enum CounterEvent {
    Added { n: u64 },
}

#[derive(Debug)]
pub struct TooBig;

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too big")
    }
}

impl std::error::Error for TooBig {}

/// An alias the macros cannot see through: checked as a whole.
pub type Checked = Result<Vec<CounterEvent>, TooBig>;

/// A one-parameter `Result` alias, as many crates declare.
pub type CounterResult<T> = std::result::Result<T, TooBig>;

#[aggregate(events = CounterEvent)]
#[derive(Default, Clone)]
pub struct Counter {
    total: u64,
}

#[command(aggregate = Counter)]
pub struct AddOne {
    #[id]
    pub id: String,
}

#[command(aggregate = Counter)]
pub struct AddMany {
    #[id]
    pub id: String,
    pub times: u64,
}

#[command(aggregate = Counter)]
pub struct AddIfEven {
    #[id]
    pub id: String,
    pub n: u64,
}

#[command(aggregate = Counter)]
pub struct Touch {
    #[id]
    pub id: String,
}

#[command(aggregate = Counter)]
pub struct AddChecked {
    #[id]
    pub id: String,
    pub n: u64,
}

#[command(aggregate = Counter)]
pub struct AddViaAlias {
    #[id]
    pub id: String,
}

#[command(aggregate = Counter)]
pub struct AddViaPath {
    #[id]
    pub id: String,
}

#[command(aggregate = Counter)]
pub struct AddPair {
    #[id]
    pub id: String,
}

#[aggregate]
impl Counter {
    #[handle]
    fn add_via_alias(&self, _cmd: AddViaAlias) -> Checked {
        Ok(vec![CounterEvent::Added { n: 1 }])
    }

    #[handle]
    fn add_via_path(&self, _cmd: AddViaPath) -> std::result::Result<CounterEvent, TooBig> {
        Ok(CounterEvent::Added { n: 1 })
    }

    #[handle]
    async fn add_pair(&self, _cmd: AddPair) -> CounterResult<[CounterEvent; 2]> {
        Ok([CounterEvent::Added { n: 1 }, CounterEvent::Added { n: 1 }])
    }
}

#[aggregate]
impl Counter {
    #[handle]
    fn add_one(&self, _cmd: AddOne) -> CounterEvent {
        CounterEvent::Added { n: 1 }
    }

    #[handle]
    fn add_many(&self, cmd: AddMany) -> Vec<CounterEvent> {
        (0..cmd.times).map(|_| CounterEvent::Added { n: 1 }).collect()
    }

    #[handle]
    fn add_if_even(&self, cmd: AddIfEven) -> Option<CounterEvent> {
        (cmd.n % 2 == 0).then_some(CounterEvent::Added { n: cmd.n })
    }

    #[handle]
    fn touch(&self, _cmd: Touch) {}

    #[handle]
    fn add_checked(&self, cmd: AddChecked) -> Result<Vec<CounterEvent>, TooBig> {
        if self.total + cmd.n > 100 {
            return Err(TooBig);
        }
        Ok(vec![CounterEvent::Added { n: cmd.n }])
    }

    #[apply]
    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added { n } => self.total += n,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = App::builder().store(MemoryStore::new()).build().unwrap();
    let id = || "c".to_owned();
    assert_eq!(app.dispatch(AddOne { id: id() }).await.unwrap().events.len(), 1);
    assert_eq!(app.dispatch(AddMany { id: id(), times: 3 }).await.unwrap().events.len(), 3);
    assert_eq!(app.dispatch(AddIfEven { id: id(), n: 3 }).await.unwrap().events.len(), 0);
    assert_eq!(app.dispatch(Touch { id: id() }).await.unwrap().events.len(), 0);
    assert!(app.dispatch(AddChecked { id: id(), n: 1000 }).await.is_err());
    assert_eq!(app.dispatch(AddViaAlias { id: id() }).await.unwrap().events.len(), 1);
    assert_eq!(app.dispatch(AddViaPath { id: id() }).await.unwrap().events.len(), 1);
    assert_eq!(app.dispatch(AddPair { id: id() }).await.unwrap().events.len(), 2);
    let (counter, version) = app.load::<Counter>("c").await.unwrap();
    assert_eq!((counter.total, version), (8, 8));
}
