//! Filtered reads of the global log: which events a reader wants, and one
//! page of them.

use super::RecordedEvent;
use std::borrow::Cow;

/// Which events of the global log a reader wants: by event type, by category
/// (the aggregate type: the part of the stream id before the first `-`, see
/// [`StreamId::category`](crate::StreamId::category)), or both, in which case
/// an event must match both lists. A list that is not set lets every event
/// through; a list that is set but empty lets none through. Default:
/// everything.
///
/// The order of a list and repeats in it do not matter (filters compare as
/// sets). A category is matched whole: `Acc` does not match the stream
/// `Account-1`, whose category is `Account`; a stream id without `-` has no
/// category and matches no category list.
///
/// ```
/// use annals::EventFilter;
/// # use annals::{RecordedEvent, StreamId, Payload};
/// # let event = |stream: &str, event_type: &'static str| RecordedEvent {
/// #     event_id: annals::Uuid::now_v7(), stream_id: StreamId::new(stream), stream_version: 1,
/// #     global_position: 1, event_type: event_type.into(), event_version: 1,
/// #     payload: Payload::from_json("{}").unwrap(), metadata: Default::default(),
/// #     recorded_at: chrono::Utc::now(),
/// # };
/// let deposits = EventFilter::all()
///     .event_types(["MoneyDeposited", "MoneyWithdrawn"])
///     .categories(["Account"]);
/// assert!(deposits.matches(&event("Account-7", "MoneyDeposited")));
/// assert!(!deposits.matches(&event("Account-7", "AccountOpened")));
/// assert!(!deposits.matches(&event("Acc-7", "MoneyDeposited")));
/// assert!(EventFilter::all().is_all());
/// assert_eq!(EventFilter::all().categories(["B", "A", "B"]), EventFilter::all().categories(["A", "B"]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Sorted, without repeats.
    event_types: Option<Vec<Cow<'static, str>>>,
    /// Sorted, without repeats.
    categories: Option<Vec<Cow<'static, str>>>,
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only events of these types (replacing a list set before).
    pub fn event_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Cow<'static, str>>,
    {
        self.event_types = Some(set(types));
        self
    }

    /// Only events of streams of these categories (replacing a list set before).
    pub fn categories<I, T>(mut self, categories: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Cow<'static, str>>,
    {
        self.categories = Some(set(categories));
        self
    }

    /// Whether every event passes (no list is set).
    pub fn is_all(&self) -> bool {
        self.event_types.is_none() && self.categories.is_none()
    }

    /// The event types wanted, sorted; `None`: any type.
    pub fn wanted_event_types(&self) -> Option<&[Cow<'static, str>]> {
        self.event_types.as_deref()
    }

    /// The categories wanted, sorted; `None`: any stream.
    pub fn wanted_categories(&self) -> Option<&[Cow<'static, str>]> {
        self.categories.as_deref()
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.matches_type_and_stream(&event.event_type, event.stream_id.as_str())
    }

    /// Whether an event of type `event_type` in stream `stream` passes the
    /// filter: for a store that decides before it builds a [`RecordedEvent`].
    pub fn matches_type_and_stream(&self, event_type: &str, stream: &str) -> bool {
        let has = |list: &[Cow<'static, str>], item: &str| {
            list.binary_search_by(|x| x.as_ref().cmp(item)).is_ok()
        };
        self.event_types
            .as_deref()
            .is_none_or(|types| has(types, event_type))
            && self.categories.as_deref().is_none_or(|categories| {
                stream
                    .split_once('-')
                    .is_some_and(|(category, _)| has(categories, category))
            })
    }

    /// The event types a SQL store asks for: those a stored event can have
    /// (a NUL never is in one); `None`: any type.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn storable_event_types(&self) -> Option<Vec<&str>> {
        let types = self.event_types.as_deref()?;
        Some(
            types
                .iter()
                .map(|t| t.as_ref())
                .filter(|t| !t.contains('\0'))
                .collect(),
        )
    }

    /// The categories a SQL store asks for: those a stored stream can have
    /// (never a `-`, which ends a category, or a NUL); `None`: any stream.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn storable_categories(&self) -> Option<Vec<&str>> {
        let categories = self.categories.as_deref()?;
        Some(
            categories
                .iter()
                .map(|c| c.as_ref())
                .filter(|c| !c.contains(['-', '\0']))
                .collect(),
        )
    }
}

fn set<I, T>(items: I) -> Vec<Cow<'static, str>>
where
    I: IntoIterator<Item = T>,
    T: Into<Cow<'static, str>>,
{
    let mut items: Vec<Cow<'static, str>> = items.into_iter().map(Into::into).collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// One page of a filtered read of the global log
/// ([`EventStore::read_all_filtered`](crate::EventStore::read_all_filtered)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilteredPage {
    /// The matching events, in position order.
    pub events: Vec<RecordedEvent>,
    /// Where the next read continues: every matching event below it has been
    /// returned, by this page or an earlier one.
    pub next_position: u64,
    /// Whether the read stopped short of positions that a transaction still
    /// running may yet fill (PostgreSQL's read horizon, see the `postgres`
    /// module): events at `next_position` may become
    /// readable within moments *without* another append, so a follower that
    /// got nothing should look again soon rather than wait for a wake-up.
    /// Always `false` on stores without a read horizon (SQLite, memory).
    pub held_back: bool,
}

/// How many positions one filtered read scans at least, whatever it finds:
/// a read for a rare event type costs a bounded amount and still moves
/// `next_position` on through the events it does not want.
pub(crate) const SCAN_WINDOW: u64 = 4096;

/// The last position a filtered read of up to `max_count` events from
/// `from` scans: [`SCAN_WINDOW`] positions, or `max_count` if more, so a
/// reader asking for large pages can get full ones.
pub(crate) fn window_end(from: u64, max_count: usize) -> u64 {
    let window = SCAN_WINDOW.max(u64::try_from(max_count).unwrap_or(u64::MAX));
    from.saturating_add(window - 1)
}

/// Assembles a filtered page from `rows`: the matching rows with positions
/// in `from..`, in position order, as one query returned them with at most
/// `max_count` rows (so when it returned `max_count`, matching rows past the
/// last may exist). Every matching row up to `safe` is known to be among
/// them or past the last; none beyond `safe` may be returned or passed.
///
/// The good events before an undecodable one come first, with
/// `next_position` at the bad one; the read that starts at it fails with its
/// error, as [`read_all`](crate::EventStore::read_all) does.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn page_of<R>(
    from: u64,
    max_count: usize,
    rows: &[R],
    safe: u64,
    position: impl Fn(&R) -> u64,
    decode: impl Fn(&R) -> Result<RecordedEvent, super::StoreError>,
) -> Result<FilteredPage, super::StoreError> {
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let at = position(row);
        if at > safe {
            break;
        }
        match decode(row) {
            Ok(event) => events.push(event),
            Err(e) if events.is_empty() => return Err(e),
            Err(_) => {
                return Ok(FilteredPage {
                    events,
                    next_position: at,
                    held_back: false,
                });
            }
        }
    }
    let covered = match rows.last() {
        Some(last) if rows.len() >= max_count => safe.min(position(last)),
        _ => safe,
    };
    Ok(FilteredPage {
        events,
        next_position: covered.saturating_add(1).max(from),
        held_back: false,
    })
}

/// [`EventStore::read_all_filtered`](crate::EventStore::read_all_filtered)
/// for a store that only has `read_all`: one `read_all` of at least
/// `max_count` events, filtered here.
pub(crate) fn filter_page(
    from: u64,
    max_count: usize,
    read: Vec<RecordedEvent>,
    filter: &EventFilter,
) -> FilteredPage {
    let Some(last_read) = read.last().map(|e| e.global_position) else {
        return FilteredPage {
            events: Vec::new(),
            next_position: from,
            held_back: false,
        };
    };
    let mut events: Vec<RecordedEvent> = read.into_iter().filter(|e| filter.matches(e)).collect();
    let next_position = if events.len() >= max_count {
        events.truncate(max_count);
        events.last().map_or(from, |e| e.global_position + 1)
    } else {
        last_read + 1
    };
    FilteredPage {
        events,
        next_position,
        held_back: false,
    }
}
