//! What `#[event_handler]` writes, called directly (no runner): events read
//! back from a store reach the right method, decoded, with their metadata;
//! other events are ignored; a corrupt payload and a failing method come
//! back as the typed errors a runner acts on.

use annals::handler::{EventHandler, HandlerError, HandlerRegistration, StartFrom};
use annals::prelude::*;
use annals::{ExpectedVersion, Metadata, NewEvent, Payload, RecordedEvent, StreamId, Uuid};
use std::error::Error as _;
use std::sync::Mutex;

#[event]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
}

#[event(rename = "teller.assigned")]
pub struct TellerAssigned {
    pub teller: String,
}

#[event]
pub enum AuditEvent {
    Audited,
}

#[derive(Debug, thiserror::Error)]
#[error("the mail server refused to write to `{0}`")]
pub struct NotifyError(String);

/// What one call of a handler method saw.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Account {
        event: AccountEvent,
        position: u64,
        stream: String,
        stream_version: u64,
        correlation: Option<Uuid>,
    },
    Teller(TellerAssigned),
}

#[derive(Default)]
pub struct BalanceNotifier {
    calls: Mutex<Vec<Call>>,
}

#[event_handler(name = "balance-notifier", start_from = now, concurrency = 4)]
impl BalanceNotifier {
    async fn on_account(
        &self,
        event: &AccountEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), NotifyError> {
        // A real await point: the method runs inside the returned future.
        tokio::task::yield_now().await;
        if let AccountEvent::Opened { owner } = event
            && owner == "mallory"
        {
            return Err(NotifyError(owner.clone()));
        }
        self.calls.lock().unwrap().push(Call::Account {
            event: event.clone(),
            position: meta.position(),
            stream: meta.stream_id().to_string(),
            stream_version: meta.stream_version(),
            correlation: meta.correlation_id(),
        });
        Ok(())
    }

    fn on_teller(&self, event: &TellerAssigned) {
        self.calls.lock().unwrap().push(Call::Teller(event.clone()));
    }
}

impl BalanceNotifier {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// Every key left at its default.
pub struct Auditor;

#[event_handler]
impl Auditor {
    fn on_audit(&self, _event: &AuditEvent) {}
}

fn new_event(event: &impl Event, metadata: Metadata) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.event_version(),
        event.encode().unwrap(),
    )
    .with_metadata(metadata)
}

/// Appends one event to each of three streams and reads the log back.
async fn recorded(correlation: Uuid) -> Vec<RecordedEvent> {
    let store = MemoryStore::new();
    let traced = Metadata {
        correlation_id: Some(correlation),
        ..Metadata::default()
    };
    let appends = [
        (
            "Account-1",
            vec![
                new_event(
                    &AccountEvent::Opened {
                        owner: "ada".into(),
                    },
                    traced.clone(),
                ),
                new_event(&AccountEvent::Deposited { amount: 5 }, traced),
            ],
        ),
        (
            "Teller-7",
            vec![new_event(
                &TellerAssigned {
                    teller: "bob".into(),
                },
                Metadata::default(),
            )],
        ),
        (
            "Audit-1",
            vec![new_event(&AuditEvent::Audited, Metadata::default())],
        ),
    ];
    for (stream, events) in appends {
        store
            .append(&StreamId::new(stream), ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    store.read_all(1, 100).await.unwrap()
}

#[test]
fn the_declared_constants() {
    assert_eq!(BalanceNotifier::NAME, "balance-notifier");
    assert_eq!(
        BalanceNotifier::INTEREST,
        &[AccountEvent::TYPES, TellerAssigned::TYPES]
    );
    assert_eq!(BalanceNotifier::START_FROM, StartFrom::Now);
    assert_eq!(BalanceNotifier::CONCURRENCY, 4);

    assert_eq!(Auditor::NAME, "Auditor");
    assert_eq!(Auditor::INTEREST, &[AuditEvent::TYPES]);
    assert_eq!(Auditor::START_FROM, StartFrom::Origin);
    assert_eq!(Auditor::CONCURRENCY, 1);
}

#[tokio::test]
async fn each_event_reaches_its_method_with_its_metadata() {
    let correlation = Uuid::now_v7();
    let log = recorded(correlation).await;
    assert_eq!(log.len(), 4);
    let handler = BalanceNotifier::default();
    for event in &log {
        handler.handle(event).await.unwrap();
    }
    assert_eq!(
        handler.calls(),
        [
            Call::Account {
                event: AccountEvent::Opened {
                    owner: "ada".into()
                },
                position: log[0].global_position,
                stream: "Account-1".into(),
                stream_version: 1,
                correlation: Some(correlation),
            },
            Call::Account {
                event: AccountEvent::Deposited { amount: 5 },
                position: log[1].global_position,
                stream: "Account-1".into(),
                stream_version: 2,
                correlation: Some(correlation),
            },
            Call::Teller(TellerAssigned {
                teller: "bob".into()
            }),
        ],
        "the audit event is not in the interest set, so no method saw it"
    );
}

#[tokio::test]
async fn an_event_outside_the_interest_is_ignored() {
    let log = recorded(Uuid::now_v7()).await;
    let audited = log.iter().find(|e| e.event_type == "Audited").unwrap();
    let handler = BalanceNotifier::default();
    handler.handle(audited).await.unwrap();
    assert_eq!(handler.calls(), []);

    // Auditor wants it, and wants nothing else.
    for event in &log {
        Auditor.handle(event).await.unwrap();
    }
}

#[tokio::test]
async fn a_corrupt_payload_is_a_decode_error_naming_its_position() {
    let log = recorded(Uuid::now_v7()).await;
    let mut corrupt = log[1].clone();
    corrupt.global_position = 42;
    corrupt.payload = Payload::from_json(r#"{"amount":"lots"}"#).unwrap();
    let handler = BalanceNotifier::default();

    let error = handler.handle(&corrupt).await.unwrap_err();
    match &error {
        HandlerError::Decode {
            position,
            stream_id,
            event_type,
            event_version,
            ..
        } => {
            assert_eq!(*position, 42);
            assert_eq!(stream_id.as_str(), "Account-1");
            assert_eq!((event_type.as_str(), *event_version), ("Deposited", 1));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert!(error.to_string().contains("position 42"), "{error}");
    assert!(error.source().is_some(), "serde's reason is the source");
    assert_eq!(handler.calls(), [], "the method was not called");
}

#[tokio::test]
async fn a_method_error_is_failed_with_the_users_error_as_source() {
    let log = recorded(Uuid::now_v7()).await;
    let mut refused = log[0].clone();
    refused.payload = AccountEvent::Opened {
        owner: "mallory".into(),
    }
    .encode()
    .unwrap();

    let error = BalanceNotifier::default()
        .handle(&refused)
        .await
        .unwrap_err();
    assert!(matches!(error, HandlerError::Failed(_)), "{error:?}");
    let source = error.source().expect("the method's error is the source");
    let notify = source
        .downcast_ref::<NotifyError>()
        .expect("the user's error type, intact");
    assert_eq!(notify.0, "mallory");
}

#[test]
fn the_registry_holds_each_handler_once() {
    let registered: Vec<&HandlerRegistration> =
        annals::__private::inventory::iter::<HandlerRegistration>
            .into_iter()
            .filter(|r| r.name == "balance-notifier" || r.name == "Auditor")
            .collect();
    assert_eq!(registered.len(), 2, "{registered:?}");
    let notifier = registered
        .iter()
        .find(|r| r.name == "balance-notifier")
        .unwrap();
    assert!(
        notifier
            .type_name
            .ends_with("event_handler::BalanceNotifier"),
        "{notifier:?}"
    );
    assert!(
        notifier.location.contains("event_handler.rs:"),
        "{notifier:?}"
    );
}
