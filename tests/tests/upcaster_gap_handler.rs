//! An event type that only a handler reads (no aggregate declares it) at
//! version 2 with no upcaster from version 1: building an App that runs the
//! handler is refused, naming the missing step; an App without the handler
//! does not read the type and builds.

use annals::BuildError;
use annals::prelude::*;

#[event]
pub enum NoticeEvent {
    #[event(version = 2)]
    Posted { text: String, urgent: bool },
}

#[derive(Clone, Default)]
pub struct Notices;

#[event_handler(name = "notices")]
impl Notices {
    fn on_notice(&self, _: &NoticeEvent) {}
}

#[tokio::test]
async fn a_gap_in_a_handlers_chain_is_refused_when_the_app_is_built() {
    let error = App::builder()
        .store(MemoryStore::new())
        .handler(Notices)
        .build()
        .map(drop)
        .unwrap_err();
    assert!(
        matches!(
            error,
            BuildError::UpcasterGap {
                event_type: "Posted",
                missing_from: 1,
                current: 2
            }
        ),
        "{error:?}"
    );
    let app = App::builder().store(MemoryStore::new()).build().unwrap();
    app.shutdown().await.unwrap();
}
