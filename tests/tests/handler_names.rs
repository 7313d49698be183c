//! Two handler types linked into one binary under one durable name would
//! share a checkpoint: the App refuses to build, naming both.

use annals::prelude::*;

#[event]
pub enum PingEvent {
    Pinged,
}

#[derive(Default)]
pub struct Original;

#[event_handler(name = "audit")]
impl Original {
    fn on_ping(&self, _: &PingEvent) {}
}

#[derive(Default)]
pub struct Impostor;

#[event_handler(name = "audit")]
impl Impostor {
    fn on_ping(&self, _: &PingEvent) {}
}

#[tokio::test]
async fn two_handler_types_with_one_name_are_refused() {
    let refused = App::builder()
        .store(MemoryStore::new())
        .handler(Original)
        .build()
        .unwrap_err();
    match &refused {
        annals::BuildError::DuplicateHandler {
            name,
            first,
            second,
        } => {
            assert_eq!(*name, "audit");
            let both = format!("{first} {second}");
            assert!(
                both.contains("Original") && both.contains("Impostor"),
                "{both}"
            );
        }
        other => panic!("expected DuplicateHandler, got {other:?}"),
    }
    assert!(
        refused.to_string().contains("`audit` is used twice"),
        "{refused}"
    );
}
