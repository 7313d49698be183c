// An async handler that takes a service, dispatched end to end.
use annals::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

#[event]
pub enum TicketEvent {
    Issued { number: u64 },
}

#[aggregate(events = TicketEvent)]
#[derive(Default, Clone)]
pub struct Ticket {
    number: Option<u64>,
}

#[command(aggregate = Ticket)]
pub struct Issue {
    #[id]
    pub ticket: String,
}

/// A service: hands out increasing numbers.
#[derive(Default)]
pub struct Counter(AtomicU64);

#[aggregate]
impl Ticket {
    #[handle]
    async fn issue(&self, _cmd: Issue, counter: &Counter) -> TicketEvent {
        std::future::ready(()).await;
        TicketEvent::Issued { number: counter.0.fetch_add(1, Ordering::SeqCst) + 1 }
    }

    #[apply]
    fn apply(&mut self, event: &TicketEvent) {
        match event {
            TicketEvent::Issued { number } => self.number = Some(*number),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let app = App::builder().store(MemoryStore::new()).service(Counter::default()).build().unwrap();
    app.dispatch(Issue { ticket: "a".into() }).await.unwrap();
    app.dispatch(Issue { ticket: "b".into() }).await.unwrap();
    let (b, version) = app.load::<Ticket>("b").await.unwrap();
    assert_eq!((b.number, version), (Some(2), 1));
}
