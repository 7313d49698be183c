//! A live feed of the global log: every event, a category's or one
//! stream's, from a position on, as they are appended.
//!
//! Each [`App`](crate::App) has one [`LiveFeed`] ([`App::live_feed`](crate::App::live_feed)).
//! Its first subscription starts one task that follows the store's log
//! (read pages of [`EventStore::read_all_filtered`](crate::EventStore::read_all_filtered), woken by
//! [`EventStore::watch_log`](crate::EventStore::watch_log)) and broadcasts each page to every
//! subscription: ten thousand subscriptions cost ten thousand small
//! buffers, not ten thousand readers of the database.
//!
//! A [`LiveSubscription`] first catches up from the store (paged, filtered
//! reads from its position), then takes the broadcast pages. Every page
//! says where in the log it starts and ends, so the handoff is exact: a
//! page (or the part of it) the catch-up already covered is skipped, and a
//! page that starts past what the subscription has covered (it fell behind
//! the broadcast, whose buffer is bounded, or the follower started after
//! it) sends it back to catching up from the store. Events arrive in
//! position order, each once, with no gap.
//!
//! ```
//! use annals::feed::FeedSelector;
//! use annals::prelude::*;
//! # use annals::{EventStore, ExpectedVersion, NewEvent, Payload, StreamId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App::builder().store(MemoryStore::new()).build()?;
//! let event = || NewEvent::new("Opened", 1, Payload::from_json("{}").unwrap());
//! app.store().append(&StreamId::new("Account-1"), ExpectedVersion::Any, vec![event()]).await?;
//!
//! let mut accounts = app.live_feed().subscribe(FeedSelector::Category("Account".into()), 0);
//! // Caught up from the store...
//! assert_eq!(accounts.next().await?.unwrap().global_position, 1);
//! // ...then live.
//! app.store().append(&StreamId::new("Loan-1"), ExpectedVersion::Any, vec![event()]).await?;
//! app.store().append(&StreamId::new("Account-2"), ExpectedVersion::Any, vec![event()]).await?;
//! let live = accounts.next().await?.unwrap();
//! assert_eq!((live.stream_id.as_str(), live.global_position), ("Account-2", 3));
//! # Ok(())
//! # }
//! ```

use crate::store::{AnyStore, EventFilter, RecordedEvent, StoreError, StreamId};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How many pages the broadcast keeps for subscriptions that have not
/// taken them yet; one that falls further behind catches up from the store.
pub const BROADCAST_PAGES: usize = 256;

/// The most events one page of the follower, or of a catch-up read, holds.
pub const PAGE_SIZE: usize = 256;

const HELD_BACK_FIRST: Duration = Duration::from_millis(2);
const HELD_BACK_MAX: Duration = Duration::from_millis(250);
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Which events a [`LiveSubscription`] wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedSelector {
    /// Every event.
    All,
    /// The events of one stream.
    Stream(StreamId),
    /// The events of every stream of a category (`Account` for
    /// `Account-42`, see [`StreamId::category`]).
    Category(String),
}

impl FeedSelector {
    /// The store-side filter of the catch-up reads. A stream is read
    /// through its category (or the whole log, for a stream id without
    /// one) and picked out here, so that every selector takes the one
    /// read path whose pages say how far they covered the log.
    fn filter(&self) -> EventFilter {
        match self {
            FeedSelector::All => EventFilter::all(),
            FeedSelector::Category(category) => EventFilter::all().categories([category.clone()]),
            FeedSelector::Stream(stream) => match stream.category() {
                Some(category) => EventFilter::all().categories([category.to_owned()]),
                None => EventFilter::all(),
            },
        }
    }

    /// Whether `event` is wanted.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        match self {
            FeedSelector::All => true,
            FeedSelector::Stream(stream) => event.stream_id == *stream,
            FeedSelector::Category(category) => {
                event.stream_id.category() == Some(category.as_str())
            }
        }
    }
}

/// One page of the log as the follower read it: every event with a position
/// in `from..next`.
#[derive(Debug)]
struct Page {
    from: u64,
    next: u64,
    events: Vec<RecordedEvent>,
}

/// The live feed of an [`App`](crate::App)'s store: see the [module docs](self).
#[derive(Clone)]
pub struct LiveFeed {
    shared: Arc<Shared>,
}

struct Shared {
    store: AnyStore,
    /// `None` once stopped: every subscription then ends.
    sender: Mutex<Option<broadcast::Sender<Arc<Page>>>>,
    started: std::sync::Once,
    /// The least position the subscriptions that took the broadcast before
    /// the follower chose where to start have covered up to; `None` once it
    /// has chosen.
    floor: Mutex<Option<u64>>,
    /// Dropped (with `Shared`) or set to `true` to stop the follower.
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("subscriptions", &self.subscriptions())
            .finish_non_exhaustive()
    }
}

impl LiveFeed {
    pub(crate) fn new(store: AnyStore) -> Self {
        Self::with_capacity(store, BROADCAST_PAGES)
    }

    /// A feed whose broadcast keeps `pages` pages.
    pub(crate) fn with_capacity(store: AnyStore, pages: usize) -> Self {
        let (sender, _) = broadcast::channel(pages.max(1));
        Self {
            shared: Arc::new(Shared {
                store,
                sender: Mutex::new(Some(sender)),
                started: std::sync::Once::new(),
                floor: Mutex::new(Some(u64::MAX)),
                stop: watch::channel(false).0,
            }),
        }
    }

    /// A subscription to the events `selector` wants whose position is
    /// greater than `after` (0: from the beginning), in position order.
    /// Take them with [`LiveSubscription::next`].
    pub fn subscribe(&self, selector: FeedSelector, after: u64) -> LiveSubscription {
        LiveSubscription {
            feed: self.shared.clone(),
            filter: selector.filter(),
            selector,
            next: after.saturating_add(1),
            last: after,
            pending: VecDeque::new(),
            live: None,
            catching_up: true,
            catch_ups: 0,
        }
    }

    /// How many subscriptions are taking the broadcast now (those catching
    /// up count once they have started).
    pub fn subscriptions(&self) -> usize {
        self.shared
            .sender
            .lock()
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Stops the follower; every subscription ends
    /// ([`LiveSubscription::next`] returns `None`).
    /// [`App::shutdown`](crate::App::shutdown) calls it.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
        self.shared.sender.lock().take();
    }
}

impl Shared {
    /// A receiver of the broadcast for a subscription that has covered the
    /// log below `next`, starting the follower the first time; `None` once
    /// stopped.
    fn receiver(self: &Arc<Self>, next: u64) -> Option<broadcast::Receiver<Arc<Page>>> {
        let sender = self.sender.lock().as_ref()?.clone();
        let receiver = sender.subscribe();
        if let Some(floor) = self.floor.lock().as_mut() {
            *floor = (*floor).min(next);
        }
        self.started.call_once(|| {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let follower = follow(
                        Arc::downgrade(self),
                        self.clone(),
                        self.store.clone(),
                        sender,
                        self.stop.subscribe(),
                    );
                    runtime.spawn(tracing::Instrument::instrument(
                        follower,
                        tracing::debug_span!("annals.feed"),
                    ));
                }
                // `next` is async: there is always a runtime there.
                Err(_) => tracing::error!("the live feed needs a Tokio runtime"),
            }
        });
        Some(receiver)
    }
}

/// The one follower of the log: reads every page after the head as of its
/// start and broadcasts it.
async fn follow(
    feed: Weak<Shared>,
    starting: Arc<Shared>,
    store: AnyStore,
    sender: broadcast::Sender<Arc<Page>>,
    mut stop: watch::Receiver<bool>,
) {
    // Past the head as of now, unless a subscription that took the
    // broadcast already has covered less: each page starts where the last
    // ended, so that a subscription sees a page start past what it covered
    // only when it fell behind (and then reads the rest from the store).
    let head = store.head_position().await.map_or(1, |head| head + 1);
    let mut cursor = starting
        .floor
        .lock()
        .take()
        .map_or(head, |floor| floor.min(head));
    drop(starting);
    let all = EventFilter::all();
    let mut watch = store.watch_log();
    let mut held_back = HELD_BACK_FIRST;
    let mut retry = RETRY_FIRST;
    let stopped = |stop: &watch::Receiver<bool>| *stop.borrow();
    loop {
        if stopped(&stop) || feed.strong_count() == 0 {
            return;
        }
        watch.mark();
        let read = tokio::select! {
            read = store.read_all_filtered(cursor, PAGE_SIZE, &all) => read,
            _ = stop.changed() => return,
        };
        let page = match read {
            Ok(page) => page,
            Err(error) => {
                if let Some(at) = error.corrupt_position() {
                    // Passed over, as a handler that skips it would be.
                    tracing::warn!(position = at, error = %error, "live feed: an unreadable event is not sent");
                    let next = at.max(cursor) + 1;
                    let _ = sender.send(Arc::new(Page {
                        from: cursor,
                        next,
                        events: Vec::new(),
                    }));
                    cursor = next;
                    continue;
                }
                tracing::warn!(error = %error, "live feed: reading the log failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = stop.changed() => return,
                }
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        retry = RETRY_FIRST;
        if !page.events.is_empty() || page.next_position > cursor {
            held_back = HELD_BACK_FIRST;
            let next = page.next_position.max(cursor);
            // No receiver is not a failure: nobody is listening now.
            let _ = sender.send(Arc::new(Page {
                from: cursor,
                next,
                events: page.events,
            }));
            cursor = next;
            continue;
        }
        if page.held_back {
            // What a running transaction writes becomes readable when it
            // ends, with no append to wake us.
            let pause = held_back;
            held_back = (held_back * 2).min(HELD_BACK_MAX);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = watch.changed() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        held_back = HELD_BACK_FIRST;
        tokio::select! {
            _ = watch.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// The events of a [`FeedSelector`] after a position, caught up from the
/// store and then live: see the [module docs](self). Dropping it ends it.
pub struct LiveSubscription {
    feed: Arc<Shared>,
    selector: FeedSelector,
    filter: EventFilter,
    /// Every wanted event below it has been queued (or was at most `after`).
    next: u64,
    /// The position of the last event returned (or `after`).
    last: u64,
    pending: VecDeque<RecordedEvent>,
    live: Option<broadcast::Receiver<Arc<Page>>>,
    catching_up: bool,
    catch_ups: u64,
}

impl std::fmt::Debug for LiveSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSubscription")
            .field("selector", &self.selector)
            .field("last", &self.last)
            .field("catching_up", &self.catching_up)
            .finish_non_exhaustive()
    }
}

impl LiveSubscription {
    /// The next wanted event, waiting for one to be appended when there is
    /// none yet; `None` when the feed was [stopped](LiveFeed::stop). A
    /// failed catch-up read is returned as its error: the subscription may
    /// be asked again, and reads from where it was.
    ///
    /// Cancel safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<RecordedEvent>, StoreError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last = event.global_position;
                return Ok(Some(event));
            }
            if self.catching_up {
                self.catch_up_once().await?;
                continue;
            }
            let Some(live) = &mut self.live else {
                // Only once the feed is stopped.
                return Ok(None);
            };
            match live.recv().await {
                Ok(page) => self.take(&page),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fallen behind the broadcast: read the rest from the
                    // store, with a fresh receiver.
                    self.live = None;
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }

    /// The position of the last event [`next`](Self::next) returned (or
    /// the `after` it was subscribed with): where a new subscription
    /// continues.
    pub fn last_position(&self) -> u64 {
        self.last
    }

    /// How many times it has read from the store: once to start with, and
    /// once more each time it fell behind the broadcast.
    pub fn catch_ups(&self) -> u64 {
        self.catch_ups
    }

    /// What it wants.
    pub fn selector(&self) -> &FeedSelector {
        &self.selector
    }

    /// One catch-up read; switches to the broadcast once a read finds
    /// nothing more.
    async fn catch_up_once(&mut self) -> Result<(), StoreError> {
        if self.live.is_none() {
            self.catch_ups += 1;
            // Taken before reading: every page broadcast from now on is
            // either in the store for this read, or in this receiver.
            match self.feed.receiver(self.next) {
                Some(receiver) => self.live = Some(receiver),
                None => {
                    // Stopped: `next` ends.
                    self.catching_up = false;
                    return Ok(());
                }
            }
        }
        let store = &self.feed.store;
        let page = match store
            .read_all_filtered(self.next, PAGE_SIZE, &self.filter)
            .await
        {
            Ok(page) => page,
            Err(error) => match error.corrupt_position() {
                Some(at) => {
                    tracing::warn!(position = at, error = %error, "live feed: an unreadable event is not sent");
                    self.next = at.max(self.next) + 1;
                    return Ok(());
                }
                None => return Err(error),
            },
        };
        let progressed = !page.events.is_empty() || page.next_position > self.next;
        let from = self.next;
        self.pending.extend(
            page.events
                .into_iter()
                .filter(|e| e.global_position >= from && self.selector.matches(e)),
        );
        self.next = page.next_position.max(self.next);
        if !progressed {
            self.catching_up = false;
        }
        Ok(())
    }

    /// Takes what a broadcast page has past what is covered.
    fn take(&mut self, page: &Page) {
        if page.next <= self.next {
            return;
        }
        if page.from > self.next {
            // Events between what is covered and this page were broadcast
            // before this receiver existed, or not at all: read them.
            self.catching_up = true;
            self.catch_ups += 1;
            return;
        }
        let from = self.next;
        self.pending.extend(
            page.events
                .iter()
                .filter(|e| e.global_position >= from && self.selector.matches(e))
                .cloned(),
        );
        self.next = page.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ExpectedVersion, MemoryStore, NewEvent, Payload};
    use futures::FutureExt;

    fn event(n: u64) -> NewEvent {
        NewEvent::new(
            "Counted",
            1,
            Payload::from_json(format!("{{\"n\":{n}}}")).unwrap(),
        )
    }

    async fn append(store: &AnyStore, stream: &str, n: u64) {
        store
            .append(&StreamId::new(stream), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }

    /// A subscription that falls behind the broadcast (two pages kept,
    /// many sent while it does not look) reads the rest from the store:
    /// every event once, in order; and a stream's and a category's
    /// subscriptions get theirs only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_behind_the_broadcast_catches_up_from_the_store() {
        let store = AnyStore::new(MemoryStore::new());
        let feed = LiveFeed::with_capacity(store.clone(), 2);
        append(&store, "Counter-1", 0).await;
        let mut slow = feed.subscribe(FeedSelector::All, 0);
        let mut pacer = feed.subscribe(FeedSelector::All, 0);
        let mut one = feed.subscribe(FeedSelector::Stream(StreamId::new("Counter-2")), 0);
        let mut counters = feed.subscribe(FeedSelector::Category("Counter".into()), 0);
        assert_eq!(slow.next().await.unwrap().unwrap().global_position, 1);
        assert_eq!(pacer.next().await.unwrap().unwrap().global_position, 1);
        // Caught up (the in-memory store reads at once): now on the broadcast.
        assert!(slow.next().now_or_never().is_none());
        assert!(pacer.next().now_or_never().is_none());
        // One page per event: each is seen by the pacer before the next.
        for n in 1..=20u64 {
            let stream = if n % 2 == 0 { "Counter-2" } else { "Other-1" };
            append(&store, stream, n).await;
            let seen = pacer.next().await.unwrap().unwrap();
            assert_eq!(seen.global_position, n + 1);
        }
        for position in 2..=21 {
            let next = slow.next().await.unwrap().unwrap();
            assert_eq!(next.global_position, position);
        }
        assert!(
            slow.catch_ups() >= 2,
            "it fell behind: {}",
            slow.catch_ups()
        );
        assert_eq!(slow.last_position(), 21);
        let mut stream = Vec::new();
        for _ in 0..10 {
            stream.push(one.next().await.unwrap().unwrap().global_position);
        }
        assert_eq!(stream, (1..=10).map(|k| 2 * k + 1).collect::<Vec<_>>());
        let mut category = Vec::new();
        for _ in 0..11 {
            category.push(counters.next().await.unwrap().unwrap().global_position);
        }
        let wanted: Vec<u64> = std::iter::once(1)
            .chain((1..=10).map(|k| 2 * k + 1))
            .collect();
        assert_eq!(category, wanted);
        // Stopped: every subscription ends.
        feed.stop();
        assert!(slow.next().await.unwrap().is_none());
        assert!(
            feed.subscribe(FeedSelector::All, 21)
                .next()
                .await
                .unwrap()
                .is_none()
        );
    }
}
