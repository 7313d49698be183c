//! The store's session: one connection per store that holds every turn
//! ([`EventStore::lock_turn`](crate::EventStore::lock_turn)) this process
//! has, and that looks at the log's head for the store's readers
//! ([`EventStore::watch_log`](crate::EventStore::watch_log)).
//!
//! A turn is a session-level advisory lock (the same key as
//! [`lock_stream`](crate::EventStore::lock_stream) gives the stream), taken
//! with `pg_try_advisory_lock` on this one connection: a turn another process
//! holds is tried again every 0.25-0.5 s, all waiting turns in one statement.
//! When the connection ends, PostgreSQL ends every turn on it; the session
//! notices on its next statement (at most a second later while it holds
//! turns), moves its generation on, which every holder sees through
//! [`StreamLock::still_held`] and [`StreamLock::lost`], and connects again
//! when next needed.
//!
//! The same connection reads `pg_sequence_last_value` at the store's poll
//! interval while anyone watches the log (no transaction id, no table), and
//! wakes the watchers when the head moved or a reader was held back below
//! it: readers need not poll each, and read nothing while nothing moved.

use super::{Shared, error, lock};
use crate::{StoreError, StreamId, StreamLock};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest a lost connection goes unnoticed while it holds turns.
const TURN_CHECK: Duration = Duration::from_secs(1);

/// A turn another process holds is tried again after this, plus up to as
/// much again at random (so that waiting processes do not ask in step).
const RETRY: Duration = Duration::from_millis(250);

/// The running session of a store.
pub(super) struct Handle {
    requests: mpsc::UnboundedSender<Request>,
    generation: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Handle {
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

type Key = (i32, i32);

enum Request {
    Take {
        key: Key,
        reply: oneshot::Sender<Result<Given, StoreError>>,
    },
    Give {
        key: Key,
        generation: u64,
    },
}

/// A turn the session took; dropping it gives the turn back. Dropped unread
/// (its taker gave up meanwhile), it gives it back too.
struct Given {
    key: Key,
    generation: u64,
    requests: mpsc::UnboundedSender<Request>,
}

impl Drop for Given {
    fn drop(&mut self) {
        let _ = self.requests.send(Request::Give {
            key: self.key,
            generation: self.generation,
        });
    }
}

/// A held turn. Fields drop in order: the turn is given back before the
/// in-process lock, so the next taker in this process asks after it.
struct Turn {
    _given: Given,
    _local: StreamLock,
}

/// The session's connection ended (or a statement on it failed): every turn
/// it held is gone.
#[derive(Debug, thiserror::Error)]
#[error("the connection holding the store's turns failed")]
pub(super) struct SessionLost {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Starts the store's session if it has none (it needs a Tokio runtime):
/// where to ask for turns, and its generation.
fn ensure(shared: &Arc<Shared>) -> Option<(mpsc::UnboundedSender<Request>, watch::Receiver<u64>)> {
    let mut slot = shared.session.lock();
    if let Some(handle) = &*slot {
        return Some((handle.requests.clone(), handle.generation.clone()));
    }
    // A closed store opens nothing again.
    if shared.pool.is_closed() {
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (requests, received) = mpsc::unbounded_channel();
    let (generation, watched) = watch::channel(0);
    let task = Task {
        shared: Arc::downgrade(shared),
        options: shared.session_options.clone(),
        address: shared.address.clone(),
        connect_timeout: shared.acquire_timeout,
        tick: shared.poll_interval.min(TURN_CHECK),
        conn: None,
        generation,
        held: HashMap::new(),
        waiting: Vec::new(),
        head: None,
        requests: received,
        give_back: requests.clone(),
    };
    let task = runtime.spawn(task.run());
    *slot = Some(Handle {
        requests: requests.clone(),
        generation: watched.clone(),
        task,
    });
    Some((requests, watched))
}

/// Starts the head watch for `watch_log`; `false` without a Tokio runtime.
pub(super) fn watch(shared: &Arc<Shared>) -> bool {
    ensure(shared).is_some()
}

/// Waits for the turn `stream`: first within this process, then across
/// processes on the session.
pub(super) async fn take(
    shared: &Arc<Shared>,
    stream: &StreamId,
) -> Result<StreamLock, StoreError> {
    let closed = || StoreError::Closed {
        store: super::store_name(&shared.schema),
    };
    if shared.pool.is_closed() {
        return Err(closed());
    }
    let local = shared.locks.lock(stream).await;
    let Some((requests, generation)) = ensure(shared) else {
        if shared.pool.is_closed() {
            return Err(closed());
        }
        return Err(StoreError::Backend(
            "taking a turn needs a Tokio runtime".into(),
        ));
    };
    let (reply, answer) = oneshot::channel();
    let key = lock::key(&shared.schema, stream);
    requests
        .send(Request::Take { key, reply })
        .map_err(|_| closed())?;
    let given = answer.await.map_err(|_| closed())??;
    let taken = given.generation;
    Ok(StreamLock::new(Turn {
        _given: given,
        _local: local,
    })
    .with_session(generation, taken))
}

struct Waiter {
    key: Key,
    reply: oneshot::Sender<Result<Given, StoreError>>,
}

struct Task {
    shared: Weak<Shared>,
    options: PgConnectOptions,
    address: String,
    connect_timeout: Duration,
    /// How often the head is read (and the connection so checked).
    tick: Duration,
    conn: Option<PgConnection>,
    /// Moves on whenever the connection is lost: the turns of the old
    /// generation are gone.
    generation: watch::Sender<u64>,
    /// Turns held on `conn`, with how many takers hold each key (two turn
    /// names whose keys collide share it).
    held: HashMap<Key, u32>,
    waiting: Vec<Waiter>,
    /// The head the watchers were last woken for; `None` before the first
    /// look and after a failed one.
    head: Option<u64>,
    requests: mpsc::UnboundedReceiver<Request>,
    give_back: mpsc::UnboundedSender<Request>,
}

impl Task {
    async fn run(mut self) {
        let mut next_look = Instant::now();
        let mut next_try = Instant::now();
        loop {
            tokio::select! {
                request = self.requests.recv() => {
                    let Some(request) = request else { return };
                    let mut taken = false;
                    let mut next = Some(request);
                    // Everything asked meanwhile, in one go.
                    while let Some(request) = next {
                        match request {
                            Request::Take { key, reply } => {
                                self.waiting.push(Waiter { key, reply });
                                taken = true;
                            }
                            Request::Give { key, generation } => self.give(key, generation).await,
                        }
                        next = self.requests.try_recv().ok();
                    }
                    if taken {
                        self.try_waiting().await;
                        next_try = Instant::now() + retry_pause();
                    }
                }
                () = tokio::time::sleep_until(next_look) => {
                    if !self.look().await {
                        return;
                    }
                    next_look = Instant::now() + self.tick;
                }
                () = tokio::time::sleep_until(next_try), if !self.waiting.is_empty() => {
                    self.try_waiting().await;
                    next_try = Instant::now() + retry_pause();
                }
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut PgConnection, error::ConnectError> {
        if self.conn.is_none() {
            let conn = error::connect(&self.options, &self.address, self.connect_timeout).await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// The connection failed: its turns are gone.
    fn lost(&mut self) {
        self.conn = None;
        self.head = None;
        if !self.held.is_empty() {
            tracing::warn!(
                turns = self.held.len(),
                "the connection holding the store's turns was lost; their holders stop"
            );
        }
        self.held.clear();
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Tries every waiting turn in one statement; answers those taken.
    async fn try_waiting(&mut self) {
        self.waiting.retain(|w| !w.reply.is_closed());
        if self.waiting.is_empty() {
            return;
        }
        let (a, b): (Vec<i32>, Vec<i32>) = self.waiting.iter().map(|w| w.key).unzip();
        let conn = match self.connection().await {
            Ok(conn) => conn,
            Err(e) => {
                for waiter in self.waiting.drain(..) {
                    let _ = waiter.reply.send(Err(e.to_store_error()));
                }
                return;
            }
        };
        let tried: Result<Vec<bool>, _> = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(t.a, t.b) FROM unnest($1::int4[], $2::int4[]) \
             WITH ORDINALITY AS t(a, b, i) ORDER BY t.i",
        )
        .bind(a)
        .bind(b)
        .fetch_all(conn)
        .await;
        let got = match tried {
            Ok(got) if got.len() == self.waiting.len() => got,
            other => {
                let message = match other {
                    Err(e) => e.to_string(),
                    Ok(got) => format!("{} answers for {} turns", got.len(), self.waiting.len()),
                };
                self.lost();
                for waiter in self.waiting.drain(..) {
                    let lost = SessionLost {
                        source: message.clone().into(),
                    };
                    let _ = waiter
                        .reply
                        .send(Err(StoreError::Unavailable(Box::new(lost))));
                }
                return;
            }
        };
        let generation = *self.generation.borrow();
        let waiting = std::mem::take(&mut self.waiting);
        for (waiter, got) in waiting.into_iter().zip(got) {
            if !got {
                self.waiting.push(waiter);
                continue;
            }
            *self.held.entry(waiter.key).or_default() += 1;
            let given = Given {
                key: waiter.key,
                generation,
                requests: self.give_back.clone(),
            };
            // Not received (the taker is gone): dropping it gives it back.
            let _ = waiter.reply.send(Ok(given));
        }
    }

    /// Gives a turn back, unless it ended with an earlier connection.
    async fn give(&mut self, key: Key, generation: u64) {
        if generation != *self.generation.borrow() {
            return;
        }
        let Some(count) = self.held.get_mut(&key) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.held.remove(&key);
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let unlocked: Result<bool, _> = sqlx::query_scalar("SELECT pg_advisory_unlock($1, $2)")
            .bind(key.0)
            .bind(key.1)
            .fetch_one(conn)
            .await;
        if unlocked.is_err() {
            self.lost();
        }
    }

    /// Reads the head, which also proves the connection alive, and wakes the
    /// log's watchers if there may be something new for them. `false` once
    /// the store is gone.
    async fn look(&mut self) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let watched = shared.wake.receiver_count() > 0;
        if self.held.is_empty() && !watched {
            if self.waiting.is_empty() {
                // Nothing to hold or watch: the connection goes until needed.
                self.conn = None;
                self.head = None;
            }
            return true;
        }
        let Ok(conn) = self.connection().await else {
            // Readers find the failure themselves when they read.
            self.head = None;
            return true;
        };
        let head: Result<i64, _> =
            sqlx::query_scalar("SELECT coalesce(pg_sequence_last_value('events_position_seq'), 0)")
                .fetch_one(conn)
                .await;
        let Ok(head) = head else {
            self.lost();
            return true;
        };
        let head = u64::try_from(head).unwrap_or(0);
        // A reader held back below the head (a lower position still being
        // written) reads again at the next look, and at every look until
        // the horizon is settled.
        let held_back = shared.horizon.lock().take_held_back();
        if watched && (self.head != Some(head) || held_back) {
            shared.wake.send_modify(|w| *w = w.wrapping_add(1));
        }
        self.head = Some(head);
        true
    }
}

fn retry_pause() -> Duration {
    let spread = RETRY.as_millis() as u64;
    RETRY + Duration::from_millis(crate::app::ids::random() % (spread + 1))
}
