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
//! distinct streams in one statement and one commit. A slot that has just
//! answered the callers of one statement yields to them once before it takes
//! the queue, so that those who append again at once join the next statement
//! (group commit) rather than each waiting for a commit of its own. Each append's own version
//! check decides its fate inside that statement, so one conflicting append
//! never fails its neighbours; a statement that fails as a whole (a unique
//! index caught a race or a recorded event id) is split in halves until the
//! culprit is alone. Callers hear back only after the commit.
//!
//! With inline projections (`crate::projection::inline`), an append's
//! statement runs in a transaction that also reads back the events it wrote
//! and runs the projections on them; several appends written together share
//! the transaction, each behind a savepoint, so a failing projection (or a
//! unique index, which then sends the append on alone) rolls back only its
//! own append. Appends hold the writer's inline gate shared from the moment
//! they look at the projections until their commit; adding or rebuilding a
//! projection holds it exclusively and locks the `events` table against
//! every other process's appends while it projects the stored events.
//!
//! The writer's connections run with `plan_cache_mode = force_generic_plan`:
//! each statement is planned once per connection, never again for the
//! lengths of a coalesced statement's arrays (see [`connect_options`]).

use super::Shared;
use super::error::{ConnectError, ErrorClass, cause, classify_error, map_err};
use crate::projection::inline::{self, Inline, InlineSet, LogPages};
use crate::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection as _, Executor as _, Row as _};
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
/// metadata (NULL for none), then `$11` the stream's advisory lock key half
/// (NULL: do not yield) and `$12` the schema's. Returns its position and
/// version, or no row when the expectation does not hold or another session
/// holds the stream's advisory lock (see [`Request::yield_to`]).
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
AND ($11::int4 IS NULL OR pg_try_advisory_xact_lock_shared($12::int4, $11::int4))
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
/// `$3`..`$9`, and the advisory lock key halves as `$11` and `$12` of
/// [`APPEND_ONE_SQL`], here `$10` and `$11`. The transaction takes its id in
/// the sub-select, before the position is drawn.
pub(crate) const APPEND_AFTER_SEEN_SQL: &str = "\
INSERT INTO events (position, stream_id, stream_version, event_id, event_type, event_version,
                    payload, correlation_id, causation_id, metadata, transaction_id)
SELECT nextval('events_position_seq'), $1, $2::int8 + 1, $3, $4, $5, $6::jsonb, $7, $8,
       coalesce($9::jsonb, '{}'::jsonb), v.tx
FROM (SELECT pg_current_xact_id() AS tx OFFSET 0) AS v
WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.stream_id = $1 AND e.stream_version = $2::int8)
  AND ($10::int4 IS NULL OR pg_try_advisory_xact_lock_shared($11::int4, $10::int4))
RETURNING position, stream_version";

/// Appends several appends to distinct streams (or one append of several
/// events), atomically per append.
///
/// Parameters, one array element per append: `$1` stream ids, `$2`
/// expectation kinds, `$3` expected versions (as for [`APPEND_ONE_SQL`]). One
/// element per event, events of one append together and in order: `$4` the
/// append's 1-based index, `$5` the event's 1-based index in its append, then
/// id, type, type version, payload, correlation and causation ids, user
/// metadata. `$13` has one element per append again, its stream's advisory
/// lock key half (NULL: do not yield, see [`Request::yield_to`]), and `$14` is
/// the schema's half. Returns one row per written append (`stream`, its `first` and
/// `last` positions and new `version`), and one row whose `heads` are every
/// append's stream version before the statement (NULL: no stream), in order,
/// which is what refused the appends that have no row.
///
/// `h` (one row) takes the transaction id and reads every append's head once
/// (the `OFFSET 0` keeps the planner from copying the head probe into each
/// place that uses it); each event then only indexes into its arrays: no
/// join, no per-event probe. Why the order of the steps holds: `nextval` sits
/// in the insert's target list, which PostgreSQL computes on the rows of `h`
/// joined with the events (above the `ORDER BY` sort, when it needs one:
/// `unnest ... WITH ORDINALITY` already yields that order), so only once `h`
/// has been computed: the transaction has its id before any position is
/// drawn, and positions are drawn in event order.
pub(crate) const APPEND_MANY_SQL: &str = "\
WITH h AS MATERIALIZED (
    SELECT pg_current_xact_id() AS tx, $1::text[] AS streams,
           array_agg(a.cur ORDER BY a.i) AS heads,
           array_agg(CASE WHEN CASE a.kind
                                   WHEN 0 THEN true
                                   WHEN 1 THEN a.cur IS NULL
                                   WHEN 2 THEN a.cur IS NOT NULL
                                   ELSE a.cur IS NOT DISTINCT FROM a.expected
                               END
                               AND (a.lockkey IS NULL
                                    OR pg_try_advisory_xact_lock_shared($14::int4, a.lockkey))
                          THEN coalesce(a.cur, 0) END ORDER BY a.i) AS bases
    FROM (SELECT s.i, s.kind, s.expected, s.lockkey,
                 (SELECT max(e.stream_version) FROM events AS e WHERE e.stream_id = s.stream) AS cur
          FROM unnest($1::text[], $2::int2[], $3::int8[], $13::int4[])
               WITH ORDINALITY AS s (stream, kind, expected, lockkey, i)
          OFFSET 0) AS a
),
ins AS (
    INSERT INTO events (position, stream_id, stream_version, event_id, event_type, event_version,
                        payload, correlation_id, causation_id, metadata, transaction_id)
    SELECT nextval('events_position_seq'), h.streams[ev.ai], h.bases[ev.ai] + ev.k, ev.id, ev.ty,
           ev.ver, ev.payload::jsonb, ev.corr, ev.caus, coalesce(ev.meta::jsonb, '{}'::jsonb), h.tx
    FROM h,
         unnest($4::int8[], $5::int8[], $6::uuid[], $7::text[], $8::int4[], $9::text[],
                $10::uuid[], $11::uuid[], $12::text[])
             WITH ORDINALITY AS ev (ai, k, id, ty, ver, payload, corr, caus, meta, n)
    WHERE h.bases[ev.ai] IS NOT NULL
    ORDER BY ev.n
    RETURNING stream_id, position, stream_version
)
SELECT NULL::text AS stream, NULL::int8 AS first, NULL::int8 AS last, NULL::int8 AS version,
       h.heads
FROM h
UNION ALL
SELECT stream_id, min(position), max(position), max(stream_version), NULL
FROM ins
GROUP BY stream_id";

/// One append, as queued.
pub(crate) struct Request {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<NewEvent>,
    /// `expected` is `Exact(n)`, n >= 1, and the caller has seen version n
    /// recorded (`EventStore::append_after_seen`).
    pub(crate) seen: bool,
    /// The stream's advisory lock key (schema half, stream half) when the
    /// append yields to its holder (`append_after_seen` by a caller that does
    /// not hold it): the statement then takes the lock shared for its
    /// transaction, which fails while another session holds it, and writes
    /// nothing. A holder taking the lock meanwhile waits for the commit.
    pub(crate) yield_to: Option<(i32, i32)>,
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
    /// The server, as connect errors name it.
    address: String,
    /// The store, as `StoreError::Closed` names it.
    store: String,
    connect_timeout: Duration,
    /// Set by `PostgresStore::close`.
    closed: AtomicBool,
    /// The projections each append runs in its transaction.
    inline: InlineSet<sqlx::Postgres>,
    /// Held shared by an append from reading `inline` until its commit, and
    /// exclusively while a projection catches up.
    inline_gate: tokio::sync::RwLock<()>,
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

/// The writer's connections: the pool's settings, and generic plans for the
/// append statements. PostgreSQL otherwise re-plans a statement whose array
/// parameters vary in length whenever it estimates a custom plan cheaper,
/// which for a coalesced append costs about as much server time as running it.
pub(crate) fn connect_options(pool: &PgConnectOptions) -> PgConnectOptions {
    pool.clone()
        .options([("plan_cache_mode", "force_generic_plan")])
}

impl Writer {
    /// A writer with `first` as its first idle connection.
    pub(crate) fn new(
        max_concurrent: usize,
        options: PgConnectOptions,
        address: String,
        store: String,
        connect_timeout: Duration,
        first: PgConnection,
    ) -> Self {
        let max_concurrent = max_concurrent.max(1);
        let mut idle = Vec::with_capacity(max_concurrent);
        idle.push((first, Instant::now()));
        Self {
            state: Mutex::new(State {
                running: 0,
                queue: VecDeque::new(),
            }),
            max_concurrent,
            idle: Mutex::new(idle),
            options,
            address,
            store,
            connect_timeout,
            closed: AtomicBool::new(false),
            inline: InlineSet::default(),
            inline_gate: tokio::sync::RwLock::new(()),
        }
    }

    /// A connection for one statement: a live idle one, or a new one.
    ///
    /// Appends use connections of their own rather than the pool's: checking
    /// one out of the pool and back costs more client time than the append's
    /// statement itself at one caller.
    pub(crate) async fn connection(&self) -> Result<PgConnection, Failure> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Failure::Closed(self.store.clone()));
        }
        loop {
            let idle = self.idle.lock().pop();
            let Some((mut conn, since)) = idle else { break };
            if since.elapsed() < PING_IF_IDLE_FOR || conn.ping().await.is_ok() {
                return Ok(conn);
            }
        }
        super::error::connect(&self.options, &self.address, self.connect_timeout)
            .await
            .map_err(Failure::Connect)
    }

    /// Keeps `conn`, open but unused, for a later statement.
    pub(crate) fn keep(&self, conn: PgConnection) {
        let mut idle = self.idle.lock();
        if !self.closed.load(Ordering::Relaxed) {
            idle.push((conn, Instant::now()));
        }
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
            result.as_ref().map_err(classify_error),
            Err(ErrorClass::Unavailable)
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
        // The callers just answered usually append again at once: letting
        // them run first puts their appends in the next statement, instead of
        // leaving all but the quickest for the one after (a commit each).
        tokio::task::yield_now().await;
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
                    if let Outcome::Alone = outcome {
                        work.push(vec![p]);
                        continue;
                    }
                    let result = finish(shared, &p.request, outcome);
                    let _ = p.reply.send(result);
                }
            }
            Err(Failure::Statement(e)) if is_unique_violation(&e) => {
                // A race or a recorded id in one of them: halve the statement
                // until the culprit is alone (a few statements, not one each).
                let second = batch.split_off(batch.len() / 2);
                work.push(second);
                work.push(batch);
            }
            Err(failure) => {
                let others = batch.len() - 1;
                let failure = failure.shared_by(others);
                for p in batch {
                    let _ = p.reply.send(Err(failure.to_store_error()));
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
            Err(Failure::Statement(e)) => match classify(&e) {
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
            Err(failure) => return Err(failure.into_store_error()),
        }
    }
}

/// What the statement did with one append.
enum Outcome {
    Done(AppendResult),
    /// Its expectation did not hold; the stream's version then.
    Refused(Option<u64>),
    /// It yielded to the holder of the stream's lock.
    Locked,
    /// It was rolled back alone: an inline projection failed, or it could
    /// not be read back.
    Failed(StoreError),
    /// A unique index refused it in a transaction shared with other appends
    /// (inline projections): it is written again on its own.
    Alone,
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
        Outcome::Locked => Err(StoreError::StreamLocked {
            stream: request.stream.clone(),
        }),
        Outcome::Failed(e) => Err(e),
        // Only a shared transaction sends an append on alone.
        Outcome::Alone => Err(StoreError::Backend(
            "the PostgreSQL writer lost an append it meant to write again alone".into(),
        )),
    }
}

/// Writes `requests` (distinct streams, each non-empty and checked by
/// `validate`) in one statement, on one of the writer's connections.
///
/// If the caller gives up half-way, the connection is dropped (closed), not
/// reused: its state is unknown.
async fn execute(shared: &Shared, requests: &[&Request]) -> Result<Vec<Outcome>, Failure> {
    // Held until the commit: a projection being added waits for this append.
    let _gate = shared.writer.inline_gate.read().await;
    let projections = shared.writer.inline.current();
    let mut conn = shared.writer.connection().await?;
    let result = if !projections.is_empty() {
        execute_projected(&mut conn, requests, &projections).await
    } else if let [one] = requests
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
    result.map_err(Failure::Statement)
}

/// The statement for one append.
async fn execute_request(
    conn: &mut PgConnection,
    request: &Request,
) -> Result<Outcome, sqlx::Error> {
    match request.events.as_slice() {
        [event] if request.seen => execute_after_seen(conn, request, event).await,
        [event] => execute_one(conn, request, event).await,
        _ => Ok(execute_many(conn, &[request])
            .await?
            .pop()
            .unwrap_or(Outcome::Refused(None))),
    }
}

/// Writes `requests` in one transaction with the inline projections: each
/// append behind a savepoint when there are several, so that one that fails
/// is rolled back alone.
async fn execute_projected(
    conn: &mut PgConnection,
    requests: &[&Request],
    projections: &[Arc<dyn Inline<sqlx::Postgres>>],
) -> Result<Vec<Outcome>, sqlx::Error> {
    conn.execute("BEGIN").await?;
    match project_in_transaction(conn, requests, projections).await {
        Ok(outcomes) => {
            let wrote = outcomes.iter().any(|o| matches!(o, Outcome::Done(_)));
            conn.execute(if wrote { "COMMIT" } else { "ROLLBACK" })
                .await?;
            Ok(outcomes)
        }
        Err(e) => {
            // The connection is closed instead of reused if this fails too.
            let _ = conn.execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn project_in_transaction(
    conn: &mut PgConnection,
    requests: &[&Request],
    projections: &[Arc<dyn Inline<sqlx::Postgres>>],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let shared = requests.len() > 1;
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        if shared {
            conn.execute("SAVEPOINT annals_append").await?;
        }
        let outcome = match execute_request(conn, request).await {
            Ok(Outcome::Done(done)) => match project(conn, request, &done, projections).await {
                Ok(()) => Outcome::Done(done),
                Err(e) => Outcome::Failed(e),
            },
            Ok(other) => other,
            Err(e) if shared && is_unique_violation(&e) => Outcome::Alone,
            Err(e) => return Err(e),
        };
        let done = matches!(outcome, Outcome::Done(_));
        if shared {
            if !done {
                conn.execute("ROLLBACK TO SAVEPOINT annals_append").await?;
            }
            conn.execute("RELEASE SAVEPOINT annals_append").await?;
        } else if let Outcome::Failed(_) = outcome {
            // The caller rolls the transaction back: nothing else is in it.
            return Ok(vec![outcome]);
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The columns of an event, as `decode_event` reads them.
macro_rules! event_columns {
    () => {
        "position, stream_id, stream_version, event_id, event_type, event_version, \
         payload::text AS payload, correlation_id, causation_id, metadata::text AS metadata, \
         recorded_at"
    };
}

/// The events one append wrote: `$1` first and `$2` last position, `$3` its stream.
const READ_BACK_SQL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE position >= $1 AND position <= $2 AND stream_id = $3 ORDER BY position"
);

/// A catch-up's page: `$2` events from position `$1` on.
const CATCH_UP_SQL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
);

/// Reads back the events `done` wrote (in this transaction) and runs the
/// projections on them.
async fn project(
    conn: &mut PgConnection,
    request: &Request,
    done: &AppendResult,
    projections: &[Arc<dyn Inline<sqlx::Postgres>>],
) -> Result<(), StoreError> {
    let rows = sqlx::query(READ_BACK_SQL)
        .bind(done.first_position as i64)
        .bind(done.last_position as i64)
        .bind(request.stream.as_str())
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    let events = rows
        .iter()
        .map(super::decode_event)
        .collect::<Result<Vec<_>, _>>()?;
    inline::project(projections, conn, &events).await
}

/// The log as a catch-up reads it: every stored event, since the catch-up
/// holds the table against appends.
struct Pages;

impl LogPages<sqlx::Postgres> for Pages {
    fn page<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        from: u64,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(CATCH_UP_SQL)
                .bind(i64::try_from(from).unwrap_or(i64::MAX))
                .bind(inline::CATCH_UP_PAGE as i64)
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?;
            rows.iter().map(super::decode_event).collect()
        })
    }

    fn error(&self, error: sqlx::Error) -> StoreError {
        map_err(error)
    }
}

/// Adds an inline projection once it has caught up with the stored events
/// (or is found live). On a task of its own, so that a caller that gives up
/// cannot leave it recorded as live but not added.
pub(crate) async fn add_inline(
    shared: &Arc<Shared>,
    projection: Arc<dyn Inline<sqlx::Postgres>>,
) -> Result<u64, StoreError> {
    let shared = shared.clone();
    joined(
        tokio::spawn(async move {
            let writer = &shared.writer;
            let _gate = writer.inline_gate.write().await;
            if writer.inline.get(projection.name()).is_some() {
                return Err(inline::duplicate(projection.name()));
            }
            let projected = catch_up(&shared, &*projection, false).await?;
            writer.inline.add(projection)?;
            Ok(projected)
        })
        .await,
    )
}

/// Empties an inline projection and projects every stored event again.
pub(crate) async fn rebuild_inline(shared: &Arc<Shared>, name: &str) -> Result<u64, StoreError> {
    let projection = shared
        .writer
        .inline
        .get(name)
        .ok_or_else(|| inline::unknown(name))?;
    let shared = shared.clone();
    joined(
        tokio::spawn(async move {
            let _gate = shared.writer.inline_gate.write().await;
            catch_up(&shared, &*projection, true).await
        })
        .await,
    )
}

/// Runs a catch-up in a transaction that holds the `events` table against
/// appends (this process's wait at the gate, other processes' at the lock).
async fn catch_up(
    shared: &Shared,
    projection: &dyn Inline<sqlx::Postgres>,
    rebuild: bool,
) -> Result<u64, StoreError> {
    let mut conn = shared
        .writer
        .connection()
        .await
        .map_err(Failure::into_store_error)?;
    let result = async {
        conn.execute("BEGIN").await.map_err(map_err)?;
        // Conflicts with appends (ROW EXCLUSIVE) and with another catch-up,
        // not with reads.
        conn.execute("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(map_err)?;
        let projected = inline::catch_up(projection, &mut conn, rebuild, &Pages).await?;
        conn.execute("COMMIT").await.map_err(map_err)?;
        Ok(projected)
    }
    .await;
    match result {
        Ok(projected) => {
            shared.writer.keep(conn);
            Ok(projected)
        }
        Err(e) => {
            // Rolls back whatever is open; a broken connection is closed.
            if conn.execute("ROLLBACK").await.is_ok() {
                shared.writer.keep(conn);
            }
            Err(e)
        }
    }
}

fn joined(
    result: Result<Result<u64, StoreError>, tokio::task::JoinError>,
) -> Result<u64, StoreError> {
    result.unwrap_or_else(|e| {
        Err(StoreError::Backend(
            format!("the PostgreSQL writer task failed: {e}").into(),
        ))
    })
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
    let mut lock_keys = Vec::with_capacity(requests.len());
    let mut schema_key = 0;
    for (i, r) in requests.iter().enumerate() {
        let (kind, n) = expectation(r.expected);
        streams.push(r.stream.as_str());
        kinds.push(kind);
        expected.push(n);
        lock_keys.push(r.yield_to.map(|(schema, stream)| {
            schema_key = schema;
            stream
        }));
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
        .bind(&lock_keys)
        .bind(schema_key)
        .fetch_all(&mut *conn)
        .await?;
    let mut heads: Option<Vec<Option<i64>>> = None;
    let mut written = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        match row.try_get::<Option<String>, _>("stream")? {
            Some(stream) => {
                let first: i64 = row.try_get("first")?;
                let last: i64 = row.try_get("last")?;
                let version: i64 = row.try_get("version")?;
                written.insert(
                    stream,
                    AppendResult::new(version as u64, first as u64, last as u64),
                );
            }
            None => heads = row.try_get("heads")?,
        }
    }
    let heads = heads.filter(|h| h.len() == requests.len()).ok_or_else(|| {
        sqlx::Error::Protocol("the append statement did not return the streams' heads".into())
    })?;
    Ok(requests
        .iter()
        .zip(heads)
        .map(|(r, head)| match written.remove(r.stream.as_str()) {
            Some(done) => Outcome::Done(done),
            None => not_written(r, head.map(|v| v as u64)),
        })
        .collect())
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
    let query = bind_lock_key(bind_event(query, event), request);
    match query.fetch_optional(&mut *conn).await? {
        Some(row) => written_one(&row),
        // Refused: report the version that refused it.
        None => refused(conn, request).await,
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
    let query = bind_lock_key(bind_event(query, event), request);
    match query.fetch_optional(&mut *conn).await? {
        Some(row) => written_one(&row),
        None => refused(conn, request).await,
    }
}

/// The outcome of a one-event append that wrote nothing, from the stream's
/// version read now.
async fn refused(conn: &mut PgConnection, request: &Request) -> Result<Outcome, sqlx::Error> {
    let actual: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_id = $1")
            .bind(request.stream.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(not_written(request, actual.map(|v| v as u64)))
}

/// Why `request` wrote nothing, given the stream's version `head`: an
/// expectation that `head` meets refused nothing, so the append yielded to
/// the holder of the stream's lock.
fn not_written(request: &Request, head: Option<u64>) -> Outcome {
    let met = match request.expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => head.is_none(),
        ExpectedVersion::StreamExists => head.is_some(),
        ExpectedVersion::Exact(n) => head == Some(n),
    };
    if met && request.yield_to.is_some() {
        Outcome::Locked
    } else {
        Outcome::Refused(head)
    }
}

/// Binds the advisory lock key halves a one-event statement takes last: the
/// stream's (NULL: do not yield) and the schema's.
fn bind_lock_key<'q>(query: PgQuery<'q>, request: &Request) -> PgQuery<'q> {
    query
        .bind(request.yield_to.map(|(_, stream)| stream))
        .bind(request.yield_to.map_or(0, |(schema, _)| schema))
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

/// Why a statement could not be written.
pub(crate) enum Failure {
    /// The store was closed; which store.
    Closed(String),
    /// No connection could be opened.
    Connect(ConnectError),
    /// The statement failed.
    Statement(sqlx::Error),
}

/// A failure reported to every append of one statement.
enum SharedFailure {
    Closed(String),
    Connect(ConnectError),
    Statement(Arc<StatementFailed>, ErrorClass),
}

impl Failure {
    /// This failure, for the one append it concerns.
    pub(crate) fn into_store_error(self) -> StoreError {
        self.shared_by(0).to_store_error()
    }

    /// This failure, as each of the `1 + others` appends of its statement reports it.
    fn shared_by(self, others: usize) -> SharedFailure {
        match self {
            Failure::Closed(store) => SharedFailure::Closed(store),
            Failure::Connect(e) => SharedFailure::Connect(e),
            Failure::Statement(e) => {
                let class = classify_error(&e);
                let failed = StatementFailed {
                    others,
                    cause: cause(e).into(),
                };
                SharedFailure::Statement(Arc::new(failed), class)
            }
        }
    }
}

impl SharedFailure {
    fn to_store_error(&self) -> StoreError {
        match self {
            SharedFailure::Closed(store) => StoreError::Closed {
                store: store.clone(),
            },
            SharedFailure::Connect(e) => e.to_store_error(),
            SharedFailure::Statement(failed, class) => {
                let failed: Box<dyn std::error::Error + Send + Sync> = if failed.others == 0 {
                    Box::new(Cause(failed.cause.clone()))
                } else {
                    Box::new(SharedStatement(failed.clone()))
                };
                match class {
                    ErrorClass::Unavailable => StoreError::Unavailable(failed),
                    ErrorClass::Config => StoreError::Config(failed.to_string()),
                    ErrorClass::Backend => StoreError::Backend(failed),
                }
            }
        }
    }
}

/// A statement's failure: the cause, and how many other appends it carried.
#[derive(Debug)]
struct StatementFailed {
    others: usize,
    cause: Arc<dyn std::error::Error + Send + Sync>,
}

/// The failure of a statement that carried several appends, as each reports it.
#[derive(Debug)]
struct SharedStatement(Arc<StatementFailed>);

impl std::fmt::Display for SharedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the statement writing this append and {} other appends failed",
            self.0.others
        )
    }
}

impl std::error::Error for SharedStatement {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0.cause)
    }
}

/// A shared cause, reported as itself.
#[derive(Debug)]
struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
