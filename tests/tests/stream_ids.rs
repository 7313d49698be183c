//! Aggregate ids and type names that cannot name a stream are refused before
//! any store is touched, with one typed error, whatever the store.

use annals::prelude::*;
use annals::{Aggregate, Handles, InvalidStreamId, LoadError, StreamId};
use std::convert::Infallible;
use std::fmt;

#[event]
pub enum NoteEvent {
    Noted { text: String },
}

#[command(aggregate = Note)]
pub struct Write {
    #[id]
    pub id: String,
    pub text: String,
}

#[aggregate(events = NoteEvent)]
#[derive(Default, Clone)]
pub struct Note {
    lines: u32,
}

#[aggregate]
impl Note {
    #[handle]
    fn write(&self, command: Write) -> NoteEvent {
        NoteEvent::Noted { text: command.text }
    }

    #[apply]
    fn apply(&mut self, event: &NoteEvent) {
        match event {
            NoteEvent::Noted { .. } => self.lines += 1,
        }
    }
}

fn app(store: &MemoryStore) -> App {
    App::builder().store(store.clone()).build().unwrap()
}

#[tokio::test]
async fn an_aggregate_id_that_cannot_name_a_stream_is_refused_before_the_store() {
    let store = MemoryStore::new();
    let app = app(&store);
    let too_long = "x".repeat(StreamId::MAX_LEN);
    for (id, expected) in [
        ("", "EmptyAggregateId"),
        ("a\0b", "Nul"),
        (too_long.as_str(), "TooLong"),
    ] {
        let error = app
            .dispatch(Write {
                id: id.to_owned(),
                text: "hello".into(),
            })
            .await
            .unwrap_err();
        match &error {
            DispatchError::InvalidId { command, source } => {
                assert_eq!(*command, "Write");
                assert!(format!("{source:?}").starts_with(expected), "{source:?}");
            }
            other => panic!("expected InvalidId, got {other:?}"),
        }
        assert!(matches!(
            app.load::<Note>(id).await,
            Err(LoadError::InvalidId(_))
        ));
    }
    assert!(store.is_empty(), "nothing was written");
    assert_eq!(app.cached_aggregates(), 0, "nothing was cached");
    // The longest id that fits is fine: "Note-" plus the id is the limit.
    let fits = "y".repeat(StreamId::MAX_LEN - "Note-".len());
    app.dispatch(Write {
        id: fits,
        text: "ok".into(),
    })
    .await
    .unwrap();
}

/// A hand-written aggregate whose type name contains `-`: its stream
/// `Acct-x-R` would alias aggregate `Acct`'s stream of id `x-R`.
#[derive(Default)]
struct Aliasing;

impl Aggregate for Aliasing {
    const TYPE: &'static str = "Note-x";
    type Event = NoteEvent;
    fn apply(&mut self, _: &NoteEvent) {}
}

#[derive(Clone)]
struct Poke {
    id: String,
}

impl annals::Command for Poke {
    const NAME: &'static str = "Poke";
    type Aggregate = Aliasing;
    fn aggregate_id(&self) -> &dyn fmt::Display {
        &self.id
    }
}

impl Handles<Poke> for Aliasing {
    type Error = Infallible;
    type Services = ();
    const HANDLER: &'static str = "poke";
    fn handle<'a>(
        &'a self,
        _: Poke,
        _: &'a (),
    ) -> impl Future<Output = Result<Vec<NoteEvent>, Infallible>> + Send + 'a {
        std::future::ready(Ok(vec![NoteEvent::Noted { text: "x".into() }]))
    }
}

#[tokio::test]
async fn a_type_name_that_could_alias_another_aggregates_streams_is_refused() {
    let store = MemoryStore::new();
    let app = app(&store);
    match app.dispatch(Poke { id: "R".into() }).await.unwrap_err() {
        DispatchError::InvalidId {
            source: InvalidStreamId::BadCategory { category, .. },
            ..
        } => assert_eq!(category, "Note-x"),
        other => panic!("expected BadCategory, got {other:?}"),
    }
    assert!(matches!(app.load::<Note>("x-R").await, Ok((_, 0))));
    assert!(store.is_empty());
    // The id part may hold `-`: only the type name may not.
    app.dispatch(Write {
        id: "x-R".into(),
        text: "fine".into(),
    })
    .await
    .unwrap();
    let stream = StreamId::new("Note-x-R");
    assert_eq!(stream.category(), Some("Note"));
    assert_eq!(stream.aggregate_id(), Some("x-R"));
}
