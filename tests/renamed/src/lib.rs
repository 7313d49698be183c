//! Every macro with `crate = ".."` under a renamed `annals` dependency and
//! `#![deny(warnings)]`: no generated path may assume the name `annals`, and
//! the expansion may not warn. The test dispatches a command end to end and
//! hands the recorded events to an event handler.

#![deny(warnings, missing_docs)]

use renamed_annals::{EventMeta, aggregate, command, event, event_handler, upcaster};

/// Where a parcel has been.
#[event(crate = "renamed_annals")]
pub enum ParcelEvent {
    /// Picked up from the sender.
    PickedUp {
        /// The depot it went to.
        depot: String,
    },
    /// Handed to the addressee.
    #[event(rename = "parcel.delivered", version = 2)]
    Delivered,
    /// A note was attached.
    Noted(Note),
}

/// `parcel.delivered` version 1 named the courier; version 2 dropped it.
#[derive(serde::Deserialize)]
struct DeliveredV1 {
    #[serde(rename = "courier")]
    _courier: String,
}

/// `parcel.delivered` version 2: no fields.
#[derive(serde::Serialize)]
struct DeliveredV2 {}

#[upcaster(crate = "renamed_annals", from = "parcel.delivered", version = 1)]
fn delivered_drops_the_courier(_old: DeliveredV1) -> DeliveredV2 {
    DeliveredV2 {}
}

/// A free-text note, as a newtype event payload.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Note(pub String);

/// A parcel on its way.
#[aggregate(crate = "renamed_annals", events = ParcelEvent, name = "parcel")]
#[derive(Debug, Clone, Default)]
pub struct Parcel {
    depot: Option<String>,
    delivered: bool,
    notes: usize,
}

/// Pick up parcel `id`.
#[command(crate = "renamed_annals", aggregate = Parcel)]
pub struct PickUp {
    /// The parcel.
    #[id]
    pub id: u64,
    /// Where it goes.
    pub depot: String,
}

/// Deliver parcel `id`.
#[command(crate = "renamed_annals", aggregate = Parcel, name = "parcel.deliver")]
pub struct Deliver(#[id] pub u64);

/// Why a parcel command was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ParcelError {
    /// Delivery before pick-up.
    NotPickedUp,
}

impl std::fmt::Display for ParcelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the parcel has not been picked up")
    }
}

impl std::error::Error for ParcelError {}

/// The depots' opening hours, as a service.
#[derive(Debug, Default)]
pub struct Depots {
    /// Whether depots are open.
    pub open: bool,
}

#[aggregate(crate = "renamed_annals")]
impl Parcel {
    #[handle]
    async fn pick_up(&self, cmd: PickUp, depots: &Depots) -> Vec<ParcelEvent> {
        let mut events = vec![ParcelEvent::PickedUp { depot: cmd.depot }];
        if !depots.open {
            events.push(ParcelEvent::Noted(Note("depot closed; kept in van".into())));
        }
        events
    }

    #[handle]
    fn deliver(&self, _cmd: Deliver) -> Result<ParcelEvent, ParcelError> {
        match self.depot {
            Some(_) => Ok(ParcelEvent::Delivered),
            None => Err(ParcelError::NotPickedUp),
        }
    }

    #[apply]
    fn apply(&mut self, event: &ParcelEvent) {
        match event {
            ParcelEvent::PickedUp { depot } => self.depot = Some(depot.clone()),
            ParcelEvent::Delivered => self.delivered = true,
            ParcelEvent::Noted(_) => self.notes += 1,
        }
    }

    /// Whether the parcel has arrived.
    pub fn delivered(&self) -> bool {
        self.delivered
    }
}

/// Counts delivered parcels, and how many depots it has heard of.
#[derive(Debug, Default)]
pub struct DeliveryCounter {
    delivered: std::sync::atomic::AtomicU64,
}

#[event_handler(crate = "renamed_annals", name = "delivery-counter", start_from = now)]
impl DeliveryCounter {
    async fn on_parcel(
        &self,
        event: &ParcelEvent,
        meta: &EventMeta<'_>,
    ) -> Result<(), ParcelError> {
        if matches!(event, ParcelEvent::Delivered) && meta.stream_version() > 1 {
            self.delivered
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use renamed_annals::{
        App, EventHandler, EventStore, ExpectedVersion, MemoryStore, NewEvent, Payload, StreamId,
    };

    #[tokio::test]
    async fn dispatches_through_the_renamed_crate() {
        let store = MemoryStore::new();
        let app = App::builder()
            .store(store.clone())
            .service(Depots { open: false })
            .build()
            .expect("one handler per command");

        let refused = app.dispatch(Deliver(7)).await.unwrap_err();
        assert_eq!(refused.domain(), Some(&ParcelError::NotPickedUp));

        let picked = app
            .dispatch(PickUp {
                id: 7,
                depot: "north".into(),
            })
            .await
            .unwrap();
        assert_eq!(picked.version, 2);
        assert_eq!(picked.stream_id.as_str(), "parcel-7");
        app.dispatch(Deliver(7)).await.unwrap();

        let (parcel, version) = app.load::<Parcel>(7).await.unwrap();
        assert!(parcel.delivered());
        assert_eq!((parcel.notes, version), (1, 3));

        let counter = DeliveryCounter::default();
        for event in store.read_all(1, 100).await.unwrap() {
            counter.handle(&event).await.unwrap();
        }
        assert_eq!(
            counter.delivered.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(DeliveryCounter::NAME, "delivery-counter");

        // A parcel delivered under version 1 loads through the upcaster.
        let old = [
            ("PickedUp", r#"{"depot":"south"}"#),
            ("parcel.delivered", r#"{"courier":"Ida"}"#),
        ];
        let events = old
            .iter()
            .map(|(name, json)| NewEvent::new(*name, 1, Payload::from_json(*json).unwrap()))
            .collect();
        store
            .append(
                &StreamId::new("parcel-9"),
                ExpectedVersion::NoStream,
                events,
            )
            .await
            .unwrap();
        let (parcel, version) = app.load::<Parcel>(9).await.unwrap();
        assert!(parcel.delivered());
        assert_eq!(version, 2);

        let json = app
            .dispatch_json("parcel.deliver", serde_json::json!(8), Default::default())
            .await;
        assert!(json.is_err(), "parcel 8 was never picked up");
    }
}
