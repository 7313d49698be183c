//! The append path: one SQL statement per append, concurrent appends coalesced.
//!
//! An append is a single autocommitted statement ([`APPEND_ONE_SQL`] for one
//! event, [`APPEND_AFTER_SEEN_SQL`] for one event after a version the caller
//! has seen, [`APPEND_MANY_SQL`] for more or for several appends) that takes
//! the transaction's id, checks each append's expected version against the
//! stream's newest event (except after a seen version), draws global
//! positions and inserts the events. No row is locked or updated: the unique
//! `(stream_id, stream_version)` index is what turns a concurrent write to the
//! same stream into a conflict.
//!
//! Up to `max_concurrent` appends run at once, each on a connection of the
//! writer's own (not the pool's). A caller that finds a free slot writes its own append on its
//! own task, with no hand-off. Appends that arrive while every slot is busy
//! queue up, and the next slot to come free writes them together, appends to
//! distinct streams in one statement and one commit. Each append's own version
//! check decides its fate inside that statement, so one conflicting append
//! never fails its neighbours; a statement that fails as a whole (a unique
//! index caught a race or a recorded event id) is split in halves until the
//! culprit is alone. Callers hear back only after the commit.

use super::{Shared, map_err};
use crate::{AppendResult, ExpectedVersion, NewEvent, StoreError, StreamId};
use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection as _, Row as _};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use uuid::Uuid;

/// At most this many appends share one statement.
const MAX_APPENDS_PER_STATEMENT: usize = 64;
/// Appends are added to a shared statement while it holds fewer events than this.
const MAX_EVENTS_PER_STATEMENT: usize = 2_000;
/// After this many lost races, an `Any` append pauses briefly before each
/// retry, so writers hammering one stream spread out. It never gives up on a
/// race: `Any` accepts every version, so it is never a conflict.
const ANY_PAUSE_AFTER: u32 = 3;

/// Appends one event (the common case: one command, one event).
///
/// Parameters: `$1` stream id, `$2` expectation kind (0 any, 1 no stream,
/// 2 stream exists, 3 exactly `$3`), `$3` expected version, then the event's
/// id, type, type version, payload, correlation and causation ids and user
/// metadata (NULL for none). Returns its position and version, or no row when
/// the expectation does not hold.
///
/// Why the order of the steps matters (the global read horizon, see `Fence`
/// in the parent module): the transaction takes its id in the sub-select
/// before the outer target list draws the position; `OFFSET 0` keeps the
/// planner from folding the sub-select into it.
pub(crate) const APPEND_ONE_SQL: &str = "\
INSERT INTO events (position, stream_id, stream_version, event_id, event_type, event_version,
                    payload, correlation_id, causation_id, metadata, transaction_id)
SELECT nextval('events_position_seq'), $1, coalesce(v.cur, 0) + 1, $4, $5, $6, $7::jsonb, $8, $9,
       coalesce($10::jsonb, '{}'::jsonb), v.tx
FROM (SELECT pg_current_xact_id() AS tx,
             (SELECT max(e.stream_version) FROM events AS e WHERE e.stream_id = $1) AS cur
      OFFSET 0) AS v
WHERE CASE $2::int2
    WHEN 0 THEN true
    WHEN 1 THEN v.cur IS NULL
    WHEN 2 THEN v.cur IS NOT NULL
    ELSE v.cur IS NOT DISTINCT FROM $3::int8
END
RETURNING position, stream_version";

/// Appends one event after a version the caller has seen recorded
/// (`EventStore::append_after_seen`): instead of reading the stream's head,
/// it checks that version `$2` is recorded (one probe of the unique index)
/// and inserts version `$2 + 1`, which the unique `(stream_id,
/// stream_version)` index refuses if the stream has moved past `$2`. So a
/// stale or wrong `seen` (never recorded, or a snapshot ahead of its stream)
/// writes nothing and returns no row, never a gap.
///
/// Parameters: `$1` stream id, `$2` the seen version (1 to `i64::MAX - 1`),
/// then the event's fields as `$4`..`$10` of [`APPEND_ONE_SQL`], here
/// `$3`..`$9`. The transaction takes its id in the sub-select, before the
/// position is drawn.
pub(crate) const APPEND_AFTER_SEEN_SQL: &str = "\
INSERT INTO events (position, stream_id, stream_version, event_id, event_type, event_version,
                    payload, correlation_id, causation_id, metadata, transaction_id)
SELECT nextval('events_position_seq'), $1, $2::int8 + 1, $3, $4, $5, $6::jsonb, $7, $8,
       coalesce($9::jsonb, '{}'::jsonb), v.tx
FROM (SELECT pg_current_xact_id() AS tx OFFSET 0) AS v
WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.stream_id = $1 AND e.stream_version = $2::int8)
RETURNING position, stream_version";

/// Appends several appends to distinct streams (or one append of several
/// events), atomically per append.
///
/// Parameters, one array element per append: `$1` stream ids, `$2`
/// expectation kinds, `$3` expected versions (as for [`APPEND_ONE_SQL`]). One
/// element per event, events of one append together and in order: `$4` the
/// append's 1-based index, `$5` the event's 1-based index in its append, then
/// id, type, type version, payload, correlation and causation ids, user
/// metadata. Returns one row per append, in order: its index, the stream's
/// version before (NULL: no stream) and, when written, its first and last
/// positions and new version.
///
/// The transaction takes its id (`tx`) before the `INSERT` draws any
/// position: `nextval` sits in the target list, which PostgreSQL evaluates
/// after the `ORDER BY` sort, so after every input row, `tx` included, has
/// been produced, and in event order.
pub(crate) const APPEND_MANY_SQL: &str = "\
WITH tx AS MATERIALIZED (
    SELECT pg_current_xact_id() AS id
),
a AS MATERIALIZED (
    SELECT a.i, a.stream, a.kind, a.expected,
           (SELECT max(e.stream_version) FROM events AS e WHERE e.stream_id = a.stream) AS cur
    FROM tx, unnest($1::text[], $2::int2[], $3::int8[]) WITH ORDINALITY AS a (stream, kind, expected, i)
),
ok AS MATERIALIZED (
    SELECT a.i, a.stream, a.cur FROM a
    WHERE CASE a.kind
        WHEN 0 THEN true
        WHEN 1 THEN a.cur IS NULL
        WHEN 2 THEN a.cur IS NOT NULL
        ELSE a.cur IS NOT DISTINCT FROM a.expected
    END
),
ins AS (
    INSERT INTO events (position, stream_id, stream_version, event_id, event_type, event_version,
                        payload, correlation_id, causation_id, metadata, transaction_id)
    SELECT nextval('events_position_seq'), ok.stream, coalesce(ok.cur, 0) + ev.k, ev.id, ev.ty,
           ev.ver, ev.payload::jsonb, ev.corr, ev.caus, coalesce(ev.meta::jsonb, '{}'::jsonb), tx.id
    FROM tx,
         unnest($4::int8[], $5::int8[], $6::uuid[], $7::text[], $8::int4[], $9::text[],
                $10::uuid[], $11::uuid[], $12::text[])
             WITH ORDINALITY AS ev (ai, k, id, ty, ver, payload, corr, caus, meta, n)
         JOIN ok ON ok.i = ev.ai
    ORDER BY ev.n
    RETURNING stream_id, position, stream_version
)
SELECT a.i, a.cur, min(ins.position) AS first, max(ins.position) AS last,
       max(ins.stream_version) AS version
FROM a LEFT JOIN ins ON ins.stream_id = a.stream
GROUP BY a.i, a.cur
ORDER BY a.i";

/// One append, as queued.
pub(crate) struct Request {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<NewEvent>,
    /// `expected` is `Exact(n)`, n >= 1, and the caller has seen version n
    /// recorded (`EventStore::append_after_seen`).
    pub(crate) seen: bool,
}

struct Pending {
    request: Request,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The coalescing state: how many appends run, and who waits; and the
/// writer's own connections, one per running append.
pub(crate) struct Writer {
    state: Mutex<State>,
    max_concurrent: usize,
    /// Connections between appends, with when they were last used.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
    options: PgConnectOptions,
    connect_timeout: Duration,
    /// Set by `PostgresStore::close`.
    closed: AtomicBool,
}

struct State {
    running: usize,
    /// Non-empty only while all `max_concurrent` slots are taken.
    queue: VecDeque<Pending>,
}

/// A connection idle for longer than this is pinged before it carries an
/// append, so that one the server dropped meanwhile (a restart, a killed
/// backend) is replaced instead of failing the append. Under load a
/// connection is never idle that long, and pays no ping.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(1);

impl Writer {
    pub(crate) fn new(
        max_concurrent: usize,
        options: PgConnectOptions,
        connect_timeout: Duration,
    ) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            state: Mutex::new(State {
                running: 0,
                queue: VecDeque::new(),
            }),
            max_concurrent,
            idle: Mutex::new(Vec::with_capacity(max_concurrent)),
            options,
            connect_timeout,
            closed: AtomicBool::new(false),
        }
    }

    /// A connection for one statement: a live idle one, or a new one.
    ///
    /// Appends use connections of their own rather than the pool's: checking
    /// one out of the pool and back costs more client time than the append's
    /// statement itself at one caller.
    async fn connection(&self) -> Result<PgConnection, sqlx::Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(sqlx::Error::PoolClosed);
        }
        loop {
            let idle = self.idle.lock().pop();
            let Some((mut conn, since)) = idle else { break };
            if since.elapsed() < PING_IF_IDLE_FOR || conn.ping().await.is_ok() {
                return Ok(conn);
            }
        }
        tokio::time::timeout(
            self.connect_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// Closes the idle connections; appends from now on fail.
    pub(crate) async fn close(&self) {
        let idle = {
            let mut idle = self.idle.lock();
            self.closed.store(true, Ordering::Relaxed);
            std::mem::take(&mut *idle)
        };
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }

    /// Returns `conn` after its statement, unless the statement failed
    /// because of the connection (it is closed instead).
    fn release<T>(&self, conn: PgConnection, result: &Result<T, sqlx::Error>) {
        let broken = matches!(
            result.as_ref().map_err(super::classify_error),
            Err(super::ErrorClass::Unavailable)
        );
        let mut idle = self.idle.lock();
        if !broken && !self.closed.load(Ordering::Relaxed) {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Appends `request`, alone on this task when a slot is free, else with
/// whatever else queued by the time a slot frees up.
pub(crate) async fn append(
    shared: &Arc<Shared>,
    request: Request,
) -> Result<AppendResult, StoreError> {
    validate(&request)?;
    let waiting = {
        let mut state = shared.writer.state.lock();
        if state.running < shared.writer.max_concurrent {
            state.running += 1;
            Err(request)
        } else {
            let (reply, answer) = oneshot::channel();
            state.queue.push_back(Pending { request, reply });
            Ok(answer)
        }
    };
    let answer = match waiting {
        Ok(answer) => answer,
        Err(request) => {
            // The slot is released (or handed to the queue) even if the
            // caller gives up half-way: only its own answer is lost then.
            let _slot = Slot(shared.clone());
            return append_alone(shared, &request).await;
        }
    };
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Backend(
            "the PostgreSQL writer stopped before reporting whether the append was recorded".into(),
        ))
    })
}

/// A taken slot; dropping it frees the slot, or hands it to a task that
/// writes the queue when appends are waiting.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.0.writer.state.lock();
            if state.queue.is_empty() {
                state.running -= 1;
                false
            } else {
                true
            }
        };
        if waiting {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(drain(self.0.clone()));
                }
                Err(_) => fail_queue(&self.0),
            }
        }
    }
}

/// Without a runtime the queue cannot be written: answer every waiting caller.
fn fail_queue(shared: &Shared) {
    let queue = {
        let mut state = shared.writer.state.lock();
        state.running -= 1;
        std::mem::take(&mut state.queue)
    };
    for p in queue {
        let _ = p.reply.send(Err(StoreError::Backend(
            "the PostgreSQL writer lost its runtime; the append was not written".into(),
        )));
    }
}

/// Holds a slot and writes queued appends until the queue is empty.
async fn drain(shared: Arc<Shared>) {
    loop {
        let batch = {
            let mut state = shared.writer.state.lock();
            // Appends whose callers gave up before their turn are not written.
            state.queue.retain(|p| !p.reply.is_closed());
            if state.queue.is_empty() {
                state.running -= 1;
                return;
            }
            next_batch(&mut state.queue)
        };
        write_batch(&shared, batch).await;
    }
}

/// The next appends to write together: distinct streams, in queue order, up
/// to the statement's limits. A stream's later appends keep their place.
///
/// The batch is sorted by stream, so every statement inserts its rows (and
/// waits on other transactions' uncommitted index entries) in one global
/// order of `(stream, version)`: two statements can then never wait on each
/// other in a cycle, so coalesced appends never deadlock.
fn next_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut events = 0;
    let mut streams: HashSet<StreamId> = HashSet::new();
    let mut rest = VecDeque::with_capacity(queue.len());
    for p in queue.drain(..) {
        let fits = batch.is_empty()
            || (batch.len() < MAX_APPENDS_PER_STATEMENT
                && events + p.request.events.len() <= MAX_EVENTS_PER_STATEMENT);
        if fits && streams.insert(p.request.stream.clone()) {
            events += p.request.events.len();
            batch.push(p);
        } else {
            // Blocks the stream's later appends too, keeping their order.
            streams.insert(p.request.stream.clone());
            rest.push_back(p);
        }
    }
    *queue = rest;
    batch.sort_by(|a, b| a.request.stream.cmp(&b.request.stream));
    batch
}

async fn write_batch(shared: &Shared, batch: Vec<Pending>) {
    // Statements to write, the next one last.
    let mut work = vec![batch];
    while let Some(mut batch) = work.pop() {
        if batch.len() == 1 {
            let p = batch.pop().expect("one append");
            let result = append_alone(shared, &p.request).await;
            let _ = p.reply.send(result);
            continue;
        }
        let requests: Vec<&Request> = batch.iter().map(|p| &p.request).collect();
        match execute(shared, &requests).await {
            Ok(outcomes) => {
                for (p, outcome) in batch.into_iter().zip(outcomes) {
                    let result = finish(shared, &p.request, outcome);
                    let _ = p.reply.send(result);
                }
            }
            Err(e) if is_unique_violation(&e) => {
                // A race or a recorded id in one of them: halve the statement
                // until the culprit is alone (a few statements, not one each).
                let second = batch.split_off(batch.len() / 2);
                work.push(second);
                work.push(batch);
            }
            Err(e) => {
                let shared_error = Arc::new(e);
                for p in batch {
                    let _ = p.reply.send(Err(batch_error(&shared_error)));
                }
            }
        }
    }
}

/// Writes one append in a statement of its own, retrying `Any` after a lost race.
async fn append_alone(shared: &Shared, request: &Request) -> Result<AppendResult, StoreError> {
    if let Some(refused) = beyond_any_stream(shared, request).await {
        return refused;
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        match execute(shared, &[request]).await {
            Ok(mut outcomes) => {
                let outcome = outcomes.pop().unwrap_or(Outcome::Refused(None));
                return finish(shared, request, outcome);
            }
            Err(e) => match classify(&e) {
                Unique::StreamVersion if request.expected == ExpectedVersion::Any => {
                    // Another writer took the version first: `Any` takes the next one.
                    if attempts >= ANY_PAUSE_AFTER {
                        let jitter = crate::app::ids::random() % 2_000;
                        tokio::time::sleep(Duration::from_micros(jitter)).await;
                    }
                    continue;
                }
                Unique::StreamVersion => {
                    // Another writer got there first; report what it left.
                    return Err(
                        match super::stream_version_of(shared, &request.stream).await {
                            Ok(actual) => StoreError::WrongExpectedVersion {
                                stream: request.stream.clone(),
                                expected: request.expected,
                                actual,
                            },
                            Err(e) => e,
                        },
                    );
                }
                Unique::EventId(id) => {
                    return Err(StoreError::DuplicateEventId {
                        stream: request.stream.clone(),
                        event_id: id
                            .or_else(|| request.events.first().map(|e| e.event_id))
                            .unwrap_or_default(),
                    });
                }
                Unique::No => return Err(map_err(e)),
            },
        }
    }
}

/// What the statement did with one append.
enum Outcome {
    Done(AppendResult),
    /// Its expectation did not hold; the stream's version then.
    Refused(Option<u64>),
}

fn finish(
    shared: &Shared,
    request: &Request,
    outcome: Outcome,
) -> Result<AppendResult, StoreError> {
    match outcome {
        Outcome::Done(done) => {
            shared.appended();
            Ok(done)
        }
        Outcome::Refused(actual) => Err(StoreError::WrongExpectedVersion {
            stream: request.stream.clone(),
            expected: request.expected,
            actual,
        }),
    }
}

/// Writes `requests` (distinct streams, each non-empty and checked by
/// `validate`) in one statement, on one of the writer's connections.
///
/// If the caller gives up half-way, the connection is dropped (closed), not
/// reused: its state is unknown.
async fn execute(shared: &Shared, requests: &[&Request]) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut conn = shared.writer.connection().await?;
    let result = if let [one] = requests
        && let [event] = one.events.as_slice()
    {
        if one.seen {
            execute_after_seen(&mut conn, one, event)
                .await
                .map(|o| vec![o])
        } else {
            execute_one(&mut conn, one, event).await.map(|o| vec![o])
        }
    } else {
        execute_many(&mut conn, requests).await
    };
    shared.writer.release(conn, &result);
    result
}

/// [`APPEND_MANY_SQL`] for `requests`.
async fn execute_many(
    conn: &mut PgConnection,
    requests: &[&Request],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let events: usize = requests.iter().map(|r| r.events.len()).sum();
    let mut streams = Vec::with_capacity(requests.len());
    let mut kinds = Vec::with_capacity(requests.len());
    let mut expected = Vec::with_capacity(requests.len());
    let mut append_index = Vec::with_capacity(events);
    let mut index_in_append = Vec::with_capacity(events);
    let mut ids = Vec::with_capacity(events);
    let mut types = Vec::with_capacity(events);
    let mut versions = Vec::with_capacity(events);
    let mut payloads = Vec::with_capacity(events);
    let mut correlation = Vec::with_capacity(events);
    let mut causation = Vec::with_capacity(events);
    let mut metadata = Vec::with_capacity(events);
    for (i, r) in requests.iter().enumerate() {
        let (kind, n) = expectation(r.expected);
        streams.push(r.stream.as_str());
        kinds.push(kind);
        expected.push(n);
        for (k, e) in r.events.iter().enumerate() {
            append_index.push(i as i64 + 1);
            index_in_append.push(k as i64 + 1);
            ids.push(e.event_id);
            types.push(e.event_type.as_ref());
            // `validate` checked that it fits.
            versions.push(i32::try_from(e.event_version).unwrap_or(i32::MAX));
            payloads.push(e.payload.as_str());
            correlation.push(e.metadata.correlation_id);
            causation.push(e.metadata.causation_id);
            metadata.push(custom_metadata(e));
        }
    }
    let rows = sqlx::query(APPEND_MANY_SQL)
        .bind(&streams)
        .bind(&kinds)
        .bind(&expected)
        .bind(&append_index)
        .bind(&index_in_append)
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&correlation)
        .bind(&causation)
        .bind(&metadata)
        .fetch_all(&mut *conn)
        .await?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for row in &rows {
        let cur: Option<i64> = row.try_get("cur")?;
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        let version: Option<i64> = row.try_get("version")?;
        outcomes.push(match (first, last, version) {
            (Some(first), Some(last), Some(version)) => {
                Outcome::Done(AppendResult::new(version as u64, first as u64, last as u64))
            }
            _ => Outcome::Refused(cur.map(|v| v as u64)),
        });
    }
    if outcomes.len() != requests.len() {
        return Err(sqlx::Error::Protocol(format!(
            "the append statement answered for {} of {} appends",
            outcomes.len(),
            requests.len()
        )));
    }
    Ok(outcomes)
}

/// [`APPEND_ONE_SQL`] for one event.
async fn execute_one(
    conn: &mut PgConnection,
    request: &Request,
    event: &NewEvent,
) -> Result<Outcome, sqlx::Error> {
    let (kind, n) = expectation(request.expected);
    let query = sqlx::query(APPEND_ONE_SQL)
        .bind(request.stream.as_str())
        .bind(kind)
        .bind(n);
    match bind_event(query, event).fetch_optional(&mut *conn).await? {
        Some(row) => written_one(&row),
        // Refused: report the version that refused it.
        None => refused(conn, &request.stream).await,
    }
}

/// [`APPEND_AFTER_SEEN_SQL`] for one event. A stream that moved past the
/// seen version fails on the unique index, as a race does; one that never
/// reached it writes nothing and is refused with its actual version.
async fn execute_after_seen(
    conn: &mut PgConnection,
    request: &Request,
    event: &NewEvent,
) -> Result<Outcome, sqlx::Error> {
    let (_, seen) = expectation(request.expected);
    let query = sqlx::query(APPEND_AFTER_SEEN_SQL)
        .bind(request.stream.as_str())
        .bind(seen);
    match bind_event(query, event).fetch_optional(&mut *conn).await? {
        Some(row) => written_one(&row),
        None => refused(conn, &request.stream).await,
    }
}

/// The outcome of an append its expectation refused: the stream's version.
async fn refused(conn: &mut PgConnection, stream: &StreamId) -> Result<Outcome, sqlx::Error> {
    let actual: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
            .bind(stream.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(Outcome::Refused(actual.map(|v| v as u64)))
}

/// An expected version no stream can reach (past `i64::MAX - 1`, where the
/// next version would not fit a `bigint`) is refused before any statement,
/// with the stream's actual version.
async fn beyond_any_stream(
    shared: &Shared,
    request: &Request,
) -> Option<Result<AppendResult, StoreError>> {
    match request.expected {
        ExpectedVersion::Exact(n) if n >= i64::MAX as u64 => {
            Some(
                match super::stream_version_of(shared, &request.stream).await {
                    Ok(actual) => Err(StoreError::WrongExpectedVersion {
                        stream: request.stream.clone(),
                        expected: request.expected,
                        actual,
                    }),
                    Err(e) => Err(e),
                },
            )
        }
        _ => None,
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds one event's columns, in the order both one-event statements take them.
fn bind_event<'q>(query: PgQuery<'q>, event: &'q NewEvent) -> PgQuery<'q> {
    query
        .bind(event.event_id)
        .bind(event.event_type.as_ref())
        // `validate` checked that it fits.
        .bind(i32::try_from(event.event_version).unwrap_or(i32::MAX))
        .bind(event.payload.as_str())
        .bind(event.metadata.correlation_id)
        .bind(event.metadata.causation_id)
        .bind(custom_metadata(event))
}

/// The result of a one-event statement's `RETURNING position, stream_version`.
fn written_one(row: &sqlx::postgres::PgRow) -> Result<Outcome, sqlx::Error> {
    let position: i64 = row.try_get("position")?;
    let version: i64 = row.try_get("stream_version")?;
    Ok(Outcome::Done(AppendResult::new(
        version as u64,
        position as u64,
        position as u64,
    )))
}

/// User metadata as the statements take it: JSON text, or NULL for none.
fn custom_metadata(event: &NewEvent) -> Option<String> {
    if event.metadata.custom.is_empty() {
        None
    } else {
        // A map of strings to JSON values always serialises.
        serde_json::to_string(&event.metadata.custom).ok()
    }
}

/// The expectation as the statements' `kind` and `expected` parameters.
fn expectation(expected: ExpectedVersion) -> (i16, i64) {
    match expected {
        ExpectedVersion::Any => (0, 0),
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => (1, 0),
        ExpectedVersion::StreamExists => (2, 0),
        // No stream reaches i64::MAX, so a larger expectation simply fails.
        ExpectedVersion::Exact(n) => (3, i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

/// Refuses what the statement cannot take, before anything is queued: what
/// every store refuses.
fn validate(request: &Request) -> Result<(), StoreError> {
    crate::store::validate_append(&request.stream, &request.events)
}

/// Which unique index refused a statement.
enum Unique {
    StreamVersion,
    EventId(Option<Uuid>),
    No,
}

fn classify(error: &sqlx::Error) -> Unique {
    let Some(db) = error.as_database_error() else {
        return Unique::No;
    };
    if db.code().as_deref() != Some("23505") {
        return Unique::No;
    }
    match db.constraint() {
        Some("events_event_id_key") => Unique::EventId(
            db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .and_then(|d| d.split_once("=("))
                .and_then(|(_, rest)| rest.split_once(')'))
                .and_then(|(id, _)| Uuid::parse_str(id).ok()),
        ),
        Some("events_stream_version_key") => Unique::StreamVersion,
        _ => Unique::No,
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    !matches!(classify(error), Unique::No)
}

/// One statement's failure, reported to each of the appends it carried.
#[derive(Debug)]
struct BatchFailure(Arc<sqlx::Error>);

impl std::fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (in a statement shared with other appends)", self.0)
    }
}

impl std::error::Error for BatchFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

fn batch_error(error: &Arc<sqlx::Error>) -> StoreError {
    let failure = Box::new(BatchFailure(error.clone()));
    match super::classify_error(error) {
        super::ErrorClass::Unavailable => StoreError::Unavailable(failure),
        super::ErrorClass::Config => StoreError::Config(failure.to_string()),
        super::ErrorClass::Backend => StoreError::Backend(failure),
    }
}
