//! The append path: one writer connection, concurrent appends coalesced.
//!
//! sqlx runs a SQLite connection on its own thread and every statement is a
//! round trip to it, so the cost of an append is the number of statements it
//! needs. Here an append is one statement that checks the expected version
//! and inserts in the same step (see `schema::append_sql`), committed on its
//! own. Appends that queue up while the connection is busy are written
//! together: one statement per round of distinct streams, where each append's
//! own guard decides its fate, so one conflicting append never fails its
//! neighbours. Callers hear back only after the statement has committed.
//!
//! With inline projections (`crate::projection::inline`) each round is one
//! transaction instead: every append in it is written behind a savepoint,
//! read back and projected, and rolled back to its savepoint alone if a
//! projection fails. A catch-up holds the connection, so no append runs
//! while a projection is being added or rebuilt.

use super::codec::{self, AppendFailure};
use super::schema::{MAX_EVENTS_PER_STATEMENT, Schema};
use crate::projection::inline::{self, Inline, InlineSet, LogPages};
use crate::{AppendResult, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamId};
use chrono::Utc;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Arguments as _, Connection as _, Executor as _, Row as _};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedMappedMutexGuard, OwnedMutexGuard, oneshot, watch};

/// The writer connection, held.
type Conn = OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>;

/// How often an append whose guard failed is retried when the stream turns
/// out to accept it after all (another process wrote in between).
const MAX_ATTEMPTS: u32 = 5;

pub(crate) struct Writer {
    queue: Mutex<Vec<Pending>>,
    /// `None` once the store is closed.
    conn: Arc<tokio::sync::Mutex<Option<SqliteConnection>>>,
    schema: Arc<Schema>,
    /// The database file, for the error of a closed store.
    path: PathBuf,
    /// The highest global position this process has committed.
    pub(crate) head: watch::Sender<u64>,
    next_id: AtomicU64,
    /// The projections each append runs in its transaction.
    inline: InlineSet<sqlx::Sqlite>,
}

struct Pending {
    id: u64,
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    recorded_at: String,
    attempts: u32,
    /// Write in a round of its own (to find which of several appends failed).
    alone: bool,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// What became of one append in a round.
enum Outcome {
    Done(AppendResult),
    /// Its guard refused the write.
    Refused,
    /// The statement failed because of some append in the round; retry each alone.
    Isolate,
    Failed(StoreError),
}

impl Writer {
    pub(crate) fn new(
        conn: SqliteConnection,
        schema: Arc<Schema>,
        path: PathBuf,
        head: u64,
    ) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            conn: Arc::new(tokio::sync::Mutex::new(Some(conn))),
            schema,
            path,
            head: watch::channel(head).0,
            next_id: AtomicU64::new(0),
            inline: InlineSet::default(),
        }
    }

    /// The writer connection, between appends; an error once the store is closed.
    pub(crate) async fn conn(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>, StoreError> {
        tokio::sync::MutexGuard::try_map(self.conn.lock().await, Option::as_mut)
            .map_err(|_| super::closed(&self.path))
    }

    /// Waits for the appends being written, folds the WAL into the database
    /// file and closes the connection; appends after it fail. A no-op when
    /// already closed.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.lock().await.take() else {
            return Ok(());
        };
        // Appends that queued behind the ones just written are answered by
        // their own callers, who find the connection gone.
        let folded = checkpoint(&mut conn).await;
        let closed = conn.close().await.map_err(codec::backend);
        // Subscriptions waiting for appends look again, and find the store closed.
        self.head.send_modify(|_| {});
        folded.and(closed)
    }

    pub(crate) async fn append(
        self: &Arc<Self>,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend {
                stream: stream.clone(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.queue.lock().push(Pending {
            id,
            stream: stream.clone(),
            expected,
            events,
            recorded_at: codec::timestamp(Utc::now()),
            attempts: 0,
            alone: false,
            reply,
        });
        let mut answer = answer;
        // A free connection is taken at once, without listening for the
        // answer: a listener registers this task's waker, which our own reply
        // would then fire, rescheduling the task and waking an idle worker
        // thread for nothing (a futex or eventfd write and an epoll round per
        // append, measured).
        let conn = match self.conn.clone().try_lock_owned() {
            Ok(conn) => conn,
            Err(_) => tokio::select! {
                biased;
                // Another caller's writer took our append and has answered.
                done = &mut answer => return flatten(done),
                conn = self.conn.clone().lock_owned() => conn,
            },
        };
        let batch = std::mem::take(&mut *self.queue.lock());
        let Ok(conn) = OwnedMutexGuard::try_map(conn, Option::as_mut) else {
            self.refuse_closed(batch);
            return flatten(answer.await);
        };
        if let [own] = batch.as_slice()
            && own.id == id
            && own.events.len() <= MAX_EVENTS_PER_STATEMENT
            && self.inline.current().is_empty()
        {
            // Only our own append, one autocommitted statement: write it on
            // this task, no hand-off. If the caller is cancelled meanwhile, only
            // its own answer is lost. (A large append, or any append with
            // inline projections, opens a transaction, which a cancellation
            // must not leave open: it goes to a task.)
            let mut conn = conn;
            self.write(&mut conn, batch).await;
            if !self.queue.lock().is_empty() {
                tokio::spawn(self.clone().drain(conn, Vec::new()));
            }
        } else if !batch.is_empty() {
            // Other callers' appends too: finish them whatever happens to us.
            tokio::spawn(self.clone().drain(conn, batch));
        }
        flatten(answer.await)
    }

    /// Writes `batch`, then whatever queued meanwhile, until the queue is
    /// empty; waiting callers are answered without taking the lock themselves.
    async fn drain(self: Arc<Self>, mut conn: Conn, mut batch: Vec<Pending>) {
        loop {
            if !batch.is_empty() {
                self.write(&mut conn, batch).await;
            }
            batch = std::mem::take(&mut *self.queue.lock());
            if batch.is_empty() {
                return;
            }
        }
    }

    /// Answers appends that found the store closed.
    fn refuse_closed(&self, batch: Vec<Pending>) {
        for p in batch {
            let _ = p.reply.send(Err(super::closed(&self.path)));
        }
    }

    async fn write(&self, conn: &mut SqliteConnection, batch: Vec<Pending>) {
        // Appends whose callers gave up before their turn are not written.
        let mut batch = batch;
        batch.retain(|p| !p.reply.is_closed());
        let mut queue = VecDeque::from(batch);
        while !queue.is_empty() {
            let round = next_round(&mut queue);
            // The rare paths (large appends, refusals, duplicates) are boxed:
            // inline, their state made every append's boxed future 1,176
            // bytes, past the allocator's cached sizes (872 without them).
            let projections = self.inline.current();
            let outcomes = if !projections.is_empty() {
                Box::pin(self.write_projected(conn, &round, &projections)).await
            } else if round[0].events.len() > MAX_EVENTS_PER_STATEMENT {
                vec![Box::pin(self.write_large(conn, &round[0])).await]
            } else {
                self.write_round(conn, &round).await
            };
            let mut retry = Vec::new();
            for (mut p, outcome) in round.into_iter().zip(outcomes) {
                let result = match outcome {
                    Outcome::Done(done) => Ok(done),
                    Outcome::Failed(e) => Err(e),
                    Outcome::Isolate => {
                        p.alone = true;
                        retry.push(p);
                        continue;
                    }
                    Outcome::Refused => match Box::pin(self.refusal(conn, &p)).await {
                        Ok(()) => {
                            p.attempts += 1;
                            retry.push(p);
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                };
                if let Ok(done) = &result {
                    self.head.send_if_modified(|h| {
                        let moved = done.last_position > *h;
                        *h = (*h).max(done.last_position);
                        moved
                    });
                }
                let _ = p.reply.send(result);
            }
            for p in retry.into_iter().rev() {
                queue.push_front(p);
            }
        }
    }

    /// Why an append's guard refused it: the typed conflict, or `Ok` when the
    /// stream accepts it now (another process wrote meanwhile) and it should
    /// be tried again.
    async fn refusal(&self, conn: &mut SqliteConnection, p: &Pending) -> Result<(), StoreError> {
        let actual = stream_version(conn, &self.schema, &p.stream).await?;
        if p.expected.accepts(actual) && p.attempts + 1 < MAX_ATTEMPTS {
            return Ok(());
        }
        Err(StoreError::WrongExpectedVersion {
            stream: p.stream.clone(),
            expected: p.expected,
            actual,
        })
    }

    /// Writes appends to distinct streams in one autocommitted statement.
    async fn write_round(&self, conn: &mut SqliteConnection, round: &[Pending]) -> Vec<Outcome> {
        let parts: Vec<Part<'_>> = round
            .iter()
            .map(|p| Part {
                stream: &p.stream,
                expected: p.expected,
                events: &p.events,
                recorded_at: &p.recorded_at,
            })
            .collect();
        match insert(conn, &self.schema, &parts).await {
            Ok(written) => parts
                .iter()
                .map(|part| written.outcome(part.stream))
                .collect(),
            Err(e) => match codec::classify_append_error(e) {
                _ if round.len() > 1 => {
                    // Rare: learn which append was at fault by writing each alone.
                    round.iter().map(|_| Outcome::Isolate).collect()
                }
                AppendFailure::DuplicateEventId => {
                    vec![Outcome::Failed(
                        Box::pin(self.duplicate(conn, &round[0].stream, &round[0].events)).await,
                    )]
                }
                AppendFailure::StreamMoved => vec![Outcome::Refused],
                AppendFailure::Other(e) => vec![Outcome::Failed(codec::backend(e))],
            },
        }
    }

    /// Writes an append too large for one statement in one transaction of
    /// several statements; the first checks the expectation, the others
    /// continue from the version the previous one reached.
    async fn write_large(&self, conn: &mut SqliteConnection, p: &Pending) -> Outcome {
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            return Outcome::Failed(codec::backend(e));
        }
        let outcome = self.write_large_in_tx(conn, p).await;
        let end = if matches!(outcome, Outcome::Done(_)) {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        match (conn.execute(end).await, outcome) {
            (Ok(_), outcome) => outcome,
            (Err(e), Outcome::Done(_)) => {
                // COMMIT failed: make sure nothing stays half-open, and report.
                let _ = conn.execute("ROLLBACK").await;
                Outcome::Failed(codec::backend(e))
            }
            (Err(_), outcome) => outcome,
        }
    }

    async fn write_large_in_tx(&self, conn: &mut SqliteConnection, p: &Pending) -> Outcome {
        let mut expected = p.expected;
        let mut result: Option<AppendResult> = None;
        for chunk in p.events.chunks(MAX_EVENTS_PER_STATEMENT) {
            let part = Part {
                stream: &p.stream,
                expected,
                events: chunk,
                recorded_at: &p.recorded_at,
            };
            let done = match insert(conn, &self.schema, &[part]).await {
                Ok(written) => match written.outcome(&p.stream) {
                    Outcome::Done(done) => done,
                    other => return other,
                },
                Err(e) => {
                    return match codec::classify_append_error(e) {
                        AppendFailure::DuplicateEventId => {
                            Outcome::Failed(self.duplicate(conn, &p.stream, &p.events).await)
                        }
                        AppendFailure::StreamMoved => Outcome::Refused,
                        AppendFailure::Other(e) => Outcome::Failed(codec::backend(e)),
                    };
                }
            };
            expected = ExpectedVersion::Exact(done.stream_version);
            result = Some(match result {
                None => done,
                Some(prev) => AppendResult {
                    first_position: prev.first_position,
                    ..done
                },
            });
        }
        // `chunks` of a non-empty vector yields at least one chunk.
        Outcome::Done(result.expect("a non-empty append has at least one chunk"))
    }

    /// Writes `round` in one transaction with its inline projections: each
    /// append behind a savepoint, rolled back alone if its projection fails.
    async fn write_projected(
        &self,
        conn: &mut SqliteConnection,
        round: &[Pending],
        projections: &[Arc<dyn Inline<sqlx::Sqlite>>],
    ) -> Vec<Outcome> {
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            return fail_round(e, round.len());
        }
        let mut outcomes = Vec::with_capacity(round.len());
        for p in round {
            match self.write_projected_one(conn, p, projections).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    return fail_round(e, round.len());
                }
            }
        }
        if let Err(e) = conn.execute("COMMIT").await {
            let _ = conn.execute("ROLLBACK").await;
            return fail_round(e, round.len());
        }
        outcomes
    }

    /// One append of a projected round, behind its savepoint. `Err` when
    /// the transaction itself failed (every append of the round fails).
    async fn write_projected_one(
        &self,
        conn: &mut SqliteConnection,
        p: &Pending,
        projections: &[Arc<dyn Inline<sqlx::Sqlite>>],
    ) -> Result<Outcome, sqlx::Error> {
        conn.execute("SAVEPOINT annals_append").await?;
        let outcome = match self.write_large_in_tx(conn, p).await {
            Outcome::Done(done) => match self.project(conn, &done, projections).await {
                Ok(()) => Outcome::Done(done),
                Err(e) => Outcome::Failed(e),
            },
            other => other,
        };
        if !matches!(outcome, Outcome::Done(_)) {
            conn.execute("ROLLBACK TO annals_append").await?;
        }
        conn.execute("RELEASE annals_append").await?;
        Ok(outcome)
    }

    /// Reads back the events `done` wrote and runs the projections on them.
    async fn project(
        &self,
        conn: &mut SqliteConnection,
        done: &AppendResult,
        projections: &[Arc<dyn Inline<sqlx::Sqlite>>],
    ) -> Result<(), StoreError> {
        let count = done.last_position + 1 - done.first_position;
        let rows = sqlx::query(self.schema.read_all.q())
            .bind(done.first_position as i64)
            .bind(count as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(codec::backend)?;
        let events = rows
            .iter()
            .map(codec::event)
            .collect::<Result<Vec<_>, _>>()?;
        inline::project(projections, conn, &events).await
    }

    /// Adds an inline projection once it has caught up with the stored
    /// events (or is found live), with appends held meanwhile.
    pub(crate) async fn add_inline(
        self: &Arc<Self>,
        projection: Arc<dyn Inline<sqlx::Sqlite>>,
    ) -> Result<u64, StoreError> {
        let this = self.clone();
        // On a task of its own: a caller that gives up must not leave the
        // transaction open.
        flatten_task(
            tokio::spawn(async move {
                let mut conn = this.conn().await?;
                if this.inline.get(projection.name()).is_some() {
                    return Err(inline::duplicate(projection.name()));
                }
                let projected = this.catch_up(&mut conn, &*projection, false).await?;
                this.inline.add(projection)?;
                Ok(projected)
            })
            .await,
        )
    }

    /// Empties an inline projection and projects every stored event again,
    /// with appends held meanwhile.
    pub(crate) async fn rebuild_inline(self: &Arc<Self>, name: &str) -> Result<u64, StoreError> {
        let projection = self.inline.get(name).ok_or_else(|| inline::unknown(name))?;
        let this = self.clone();
        flatten_task(
            tokio::spawn(async move {
                let mut conn = this.conn().await?;
                this.catch_up(&mut conn, &*projection, true).await
            })
            .await,
        )
    }

    /// Runs a catch-up in a transaction that holds the database's write lock.
    async fn catch_up(
        &self,
        conn: &mut SqliteConnection,
        projection: &dyn Inline<sqlx::Sqlite>,
        rebuild: bool,
    ) -> Result<u64, StoreError> {
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(codec::backend)?;
        let pages = Pages(&self.schema);
        match inline::catch_up(projection, conn, rebuild, &pages).await {
            Ok(projected) => match conn.execute("COMMIT").await {
                Ok(_) => Ok(projected),
                Err(e) => {
                    let _ = conn.execute("ROLLBACK").await;
                    Err(codec::backend(e))
                }
            },
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    /// The typed error for an append the unique event-id index refused.
    async fn duplicate(
        &self,
        conn: &mut SqliteConnection,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> StoreError {
        let mut seen = HashSet::new();
        for e in events {
            if !seen.insert(e.event_id) {
                return StoreError::DuplicateEventId {
                    stream: stream.clone(),
                    event_id: e.event_id,
                };
            }
        }
        for e in events {
            let found = sqlx::query(self.schema.event_id_exists.q())
                .bind(codec::uuid_text(e.event_id))
                .fetch_optional(&mut *conn)
                .await;
            match found {
                Ok(Some(_)) => {
                    return StoreError::DuplicateEventId {
                        stream: stream.clone(),
                        event_id: e.event_id,
                    };
                }
                Ok(None) => {}
                Err(err) => return codec::backend(err),
            }
        }
        StoreError::Backend(
            format!(
                "an append to `{stream}` hit the unique event-id index but no id is recorded twice"
            )
            .into(),
        )
    }
}

/// The log as a catch-up reads it, on the writer's connection.
struct Pages<'s>(&'s Schema);

impl LogPages<sqlx::Sqlite> for Pages<'_> {
    fn page<'a>(
        &'a self,
        conn: &'a mut SqliteConnection,
        from: u64,
    ) -> BoxFuture<'a, Result<Vec<RecordedEvent>, StoreError>> {
        Box::pin(async move {
            let rows = sqlx::query(self.0.read_all.q())
                .bind(i64::try_from(from).unwrap_or(i64::MAX))
                .bind(inline::CATCH_UP_PAGE as i64)
                .fetch_all(&mut *conn)
                .await
                .map_err(codec::backend)?;
            rows.iter().map(codec::event).collect()
        })
    }

    fn error(&self, error: sqlx::Error) -> StoreError {
        codec::backend(error)
    }
}

/// Every append of a round whose transaction failed fails with it.
fn fail_round(error: sqlx::Error, appends: usize) -> Vec<Outcome> {
    let shared = (appends > 1).then(|| error.to_string());
    let mut outcomes = vec![Outcome::Failed(codec::backend(error))];
    outcomes.extend((1..appends).map(|_| {
        Outcome::Failed(StoreError::Backend(
            format!(
                "the transaction writing this append and {} others failed: {}",
                appends - 1,
                shared.as_deref().unwrap_or_default()
            )
            .into(),
        ))
    }));
    outcomes
}

/// The result of a writer task.
fn flatten_task(
    joined: Result<Result<u64, StoreError>, tokio::task::JoinError>,
) -> Result<u64, StoreError> {
    joined.unwrap_or_else(|e| {
        Err(StoreError::Backend(
            format!("the SQLite writer task failed: {e}").into(),
        ))
    })
}

/// Takes the next round off the queue: appends to distinct streams, up to the
/// statement's event limit, keeping each stream's appends in queue order. An
/// append marked `alone`, or too large for one statement, goes in a round of
/// its own.
fn flatten(
    answer: Result<Result<AppendResult, StoreError>, oneshot::error::RecvError>,
) -> Result<AppendResult, StoreError> {
    answer.unwrap_or_else(|_| {
        Err(StoreError::Backend(
            "the SQLite writer stopped before reporting whether the append was recorded".into(),
        ))
    })
}

fn next_round(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let first = queue
        .pop_front()
        .expect("next_round is called on a non-empty queue");
    if first.alone || first.events.len() > MAX_EVENTS_PER_STATEMENT || queue.is_empty() {
        return vec![first];
    }
    let mut events = first.events.len();
    let mut streams: HashSet<StreamId> = HashSet::from([first.stream.clone()]);
    let mut blocked: HashSet<StreamId> = HashSet::new();
    let mut round = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    for p in queue.drain(..) {
        let fits = !p.alone
            && events + p.events.len() <= MAX_EVENTS_PER_STATEMENT
            && !streams.contains(&p.stream)
            && !blocked.contains(&p.stream);
        if fits {
            events += p.events.len();
            streams.insert(p.stream.clone());
            round.push(p);
        } else {
            blocked.insert(p.stream.clone());
            rest.push_back(p);
        }
    }
    *queue = rest;
    round
}

/// One append as the insert statement sees it.
struct Part<'a> {
    stream: &'a StreamId,
    expected: ExpectedVersion,
    events: &'a [NewEvent],
    recorded_at: &'a str,
}

/// What one insert statement wrote, per stream.
enum Written {
    /// The one append of a statement that holds no other.
    Alone(AppendResult),
    ByStream(HashMap<String, AppendResult>),
}

impl Written {
    fn outcome(&self, stream: &StreamId) -> Outcome {
        let done = match self {
            Self::Alone(done) => Some(done),
            Self::ByStream(written) => written.get(stream.as_str()),
        };
        match done {
            Some(done) => Outcome::Done(*done),
            None => Outcome::Refused,
        }
    }
}

/// The stream version an append builds on, when its expectation fixes it.
fn known_base(expected: ExpectedVersion) -> Option<u64> {
    match expected {
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(n) => Some(n),
        ExpectedVersion::Any | ExpectedVersion::StreamExists => None,
    }
}

async fn insert(
    conn: &mut SqliteConnection,
    schema: &Schema,
    parts: &[Part<'_>],
) -> Result<Written, sqlx::Error> {
    if let [part] = parts
        && let Some(base) = known_base(part.expected).filter(|&b| b < u64::MAX / 4)
    {
        return insert_alone(conn, schema, part, base).await;
    }
    let counts: Vec<usize> = parts.iter().map(|p| p.events.len()).collect();
    // Without a known base, only the rows themselves say which versions were written.
    let returning = parts.iter().any(|p| known_base(p.expected).is_none());
    let sql = schema.append(&counts, returning);
    let values = 4 * parts.len() + 7 * counts.iter().sum::<usize>();
    let mut query = sqlx::query_with(sql.q(), arguments(values));
    for p in parts {
        let (kind, expected) = match p.expected {
            ExpectedVersion::Any => (0, 0),
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => (1, 0),
            ExpectedVersion::StreamExists => (2, 0),
            // A version past i64::MAX can never match: make the guard fail.
            ExpectedVersion::Exact(n) => (3, i64::try_from(n).unwrap_or(-1)),
        };
        query = query
            .bind(codec::text(p.stream.as_str()))
            .bind(kind)
            .bind(expected)
            .bind(codec::text(p.recorded_at));
    }
    for p in parts {
        for e in p.events {
            query = query
                .bind(codec::uuid_text(e.event_id))
                .bind(codec::text(&e.event_type))
                .bind(i64::from(e.event_version))
                .bind(codec::text(e.payload.as_str()))
                .bind(codec::custom_metadata(&e.metadata))
                .bind(e.metadata.correlation_id.map(codec::uuid_text))
                .bind(e.metadata.causation_id.map(codec::uuid_text));
        }
    }
    if returning {
        let rows = query.fetch_all(&mut *conn).await?;
        return Written::from_rows(rows);
    }
    let done = query.execute(&mut *conn).await?;
    let total: u64 = counts.iter().map(|&n| n as u64).sum();
    let (written, last) = (done.rows_affected(), done.last_insert_rowid() as u64);
    if written == 0 {
        return Ok(Written::ByStream(HashMap::new()));
    }
    // One statement of the only writer: its rows hold consecutive positions.
    let first = last + 1 - written;
    if written < total {
        // Some guards refused: ask which appends the range holds.
        let rows = sqlx::query(schema.written_between.q())
            .bind(first as i64)
            .bind(last as i64)
            .fetch_all(&mut *conn)
            .await?;
        return Written::from_rows(rows);
    }
    let mut position = first;
    let mut map = HashMap::with_capacity(parts.len());
    for p in parts {
        let n = p.events.len() as u64;
        // `returning` is false, so every base is known.
        let base = known_base(p.expected).unwrap_or_default();
        map.insert(
            p.stream.as_str().to_owned(),
            AppendResult::new(base + n, position, position + n - 1),
        );
        position += n;
    }
    Ok(Written::ByStream(map))
}

/// Arguments with room for `count` values: bound one by one into an empty
/// vector, an append's values would grow it several times.
fn arguments(count: usize) -> SqliteArguments {
    let mut arguments = SqliteArguments::default();
    arguments.reserve(count, 0);
    arguments
}

/// Appends one append whose versions are known with a plain insert; the
/// schema's contiguity trigger refuses it unless the stream is at `base`.
async fn insert_alone(
    conn: &mut SqliteConnection,
    schema: &Schema,
    part: &Part<'_>,
    base: u64,
) -> Result<Written, sqlx::Error> {
    let sql = schema.insert(part.events.len());
    let mut query = sqlx::query_with(sql.q(), arguments(10 * part.events.len()));
    for (version, e) in (base + 1..).zip(part.events) {
        query = query
            .bind(codec::text(part.stream.as_str()))
            .bind(version as i64)
            .bind(codec::uuid_text(e.event_id))
            .bind(codec::text(&e.event_type))
            .bind(i64::from(e.event_version))
            .bind(codec::text(e.payload.as_str()))
            .bind(codec::custom_metadata(&e.metadata))
            .bind(e.metadata.correlation_id.map(codec::uuid_text))
            .bind(e.metadata.causation_id.map(codec::uuid_text))
            .bind(codec::text(part.recorded_at));
    }
    let done = query.execute(&mut *conn).await?;
    let n = part.events.len() as u64;
    let last = done.last_insert_rowid() as u64;
    Ok(Written::Alone(AppendResult::new(
        base + n,
        last + 1 - n,
        last,
    )))
}

impl Written {
    /// From rows of `(stream_id, stream_version, position)` or of
    /// `(stream_id, max version, min position, max position)`.
    fn from_rows(rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Self, sqlx::Error> {
        let mut written: HashMap<String, AppendResult> = HashMap::new();
        for row in rows {
            let stream: String = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            let low: i64 = row.try_get(2)?;
            let high: i64 = if row.len() > 3 { row.try_get(3)? } else { low };
            // Versions and positions are positive (CHECKed by the schema, rowids from 1).
            let (version, low, high) = (version as u64, low as u64, high as u64);
            written
                .entry(stream)
                .and_modify(|r| {
                    r.stream_version = r.stream_version.max(version);
                    r.first_position = r.first_position.min(low);
                    r.last_position = r.last_position.max(high);
                })
                .or_insert(AppendResult::new(version, low, high));
        }
        Ok(Self::ByStream(written))
    }
}

/// Folds the WAL into the database file and empties it. Another
/// connection reading at that moment keeps part of it from being folded:
/// that is said, not failed, since what the WAL holds is committed and the
/// next checkpoint (or the last connection to close) folds it.
async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let (busy, frames, folded): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await
        .map_err(codec::backend)?;
    if busy != 0 {
        tracing::warn!(
            frames,
            folded,
            "another connection is using the SQLite database: the WAL could not be folded into \
             the database file completely; it will be when that connection closes"
        );
    }
    Ok(())
}

pub(crate) async fn stream_version(
    conn: &mut SqliteConnection,
    schema: &Schema,
    stream: &StreamId,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(schema.stream_version.q())
        .bind(stream.as_str())
        .fetch_one(conn)
        .await
        .map_err(codec::backend)?;
    Ok(version.map(|v| v as u64))
}
