//! A process manager's name keys its checkpoint among the event handlers'
//! names: a process manager and an event handler linked into one binary
//! under one name are refused, naming both, as two handlers are.

use annals::prelude::*;

#[event]
pub enum PingEvent {
    Pinged { id: String },
}

#[derive(Default)]
pub struct Auditor;

#[event_handler(name = "audit")]
impl Auditor {
    fn on_ping(&self, _: &PingEvent) {}
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Audit;

#[process_manager(name = "audit")]
impl Audit {
    #[route]
    fn route_ping(event: &PingEvent) -> Route {
        let PingEvent::Pinged { id } = event;
        Route::Start(id.clone())
    }
}

#[tokio::test]
async fn a_process_manager_and_a_handler_with_one_name_are_refused() {
    let refused = App::builder()
        .store(MemoryStore::new())
        .process_manager::<Audit>()
        .build()
        .unwrap_err();
    match &refused {
        annals::BuildError::DuplicateHandler {
            name,
            first,
            second,
        } => {
            assert_eq!(*name, "audit");
            let mut both = [*first, *second];
            both.sort_unstable();
            assert_eq!(
                both,
                [
                    "process_manager_names::Audit",
                    "process_manager_names::Auditor"
                ]
            );
        }
        other => panic!("expected DuplicateHandler, got {other:?}"),
    }
}
