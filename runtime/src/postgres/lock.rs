//! Stream locks across processes: PostgreSQL session-level advisory locks.
//!
//! The key is two 32-bit integers: a hash of `annals:<schema>` and a hash of
//! the stream id, both FNV-1a, computed here so that every process running
//! this code (whatever its PostgreSQL version or locale) agrees on them. Two
//! streams whose hashes collide share a lock, which only makes them take
//! turns.

use super::{Shared, map_err};
use crate::{StoreError, StreamId, StreamLock};
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;

/// Waits for `stream` within this process, then across processes, for at
/// most the store's lock timeout in all.
pub(super) async fn acquire(shared: &Shared, stream: &StreamId) -> Result<StreamLock, StoreError> {
    let timeout = shared.lock_timeout;
    let waited_too_long = || {
        StoreError::Backend(
            format!(
                "waited more than {timeout:?} for another holder of stream `{stream}` to release it"
            )
            .into(),
        )
    };
    let started = std::time::Instant::now();
    let local = tokio::time::timeout(timeout, shared.locks.lock(stream))
        .await
        .map_err(|_| waited_too_long())?;
    let left = timeout.saturating_sub(started.elapsed());
    let key = key(&shared.schema, stream);
    let conn = shared
        .pooled_in(&shared.lock_pool, shared.lock_pool.acquire())
        .await?;
    // Until the lock is ours, a cancelled wait must not hand back a connection
    // whose pending `pg_advisory_lock` could still succeed: it is closed instead.
    let mut held = Held {
        conn: Some(conn),
        key,
        locked: false,
    };
    // `lock_timeout` applies to advisory locks too; SET LOCAL keeps it to this
    // transaction (which writes nothing, so takes no transaction id), while the
    // session-level lock outlives it. Only integers are interpolated.
    let sql = format!(
        "BEGIN; SET LOCAL lock_timeout = {}; SELECT pg_advisory_lock({}, {}); COMMIT;",
        left.as_millis().clamp(1, i32::MAX as u128),
        key.0,
        key.1
    );
    let conn = held.conn.as_mut().expect("held until dropped");
    if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut **conn)
        .await
    {
        let timed_out = error
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code == "55P03");
        // The failed transaction is rolled back when the connection is closed.
        return Err(if timed_out {
            waited_too_long()
        } else {
            map_err(error)
        });
    }
    held.locked = true;
    let pid: i32 = match sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **conn)
        .await
    {
        Ok(pid) => pid,
        Err(error) => return Err(map_err(error)),
    };
    // Asked on another connection: the lock's own may be gone, and with it
    // the lock (PostgreSQL ends a session's locks with the session).
    let pool = shared.pool.clone();
    let check = move || -> futures::future::BoxFuture<'static, bool> {
        let pool = pool.clone();
        Box::pin(async move {
            let found: Result<bool, _> = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND granted AND pid = $1 AND classid = $2::bigint::oid \
                 AND objid = $3::bigint::oid AND objsubid = 2)",
            )
            .bind(pid)
            .bind(i64::from(key.0 as u32))
            .bind(i64::from(key.1 as u32))
            .fetch_one(&pool)
            .await;
            // A failed check (the database unreachable) says lost: whoever
            // holds the stream cannot be known, so the caller stops and waits
            // for its turn again.
            found.unwrap_or(false)
        })
    };
    Ok(StreamLock::new(Both {
        advisory: held,
        local,
    })
    .with_check(check))
}

/// The advisory lock key of `stream` in the store's `schema`.
pub(super) fn key(schema: &str, stream: &StreamId) -> (i32, i32) {
    (fnv1a(&format!("annals:{schema}")), fnv1a(stream.as_str()))
}

/// Whether `lock` is an advisory lock this store gave for `key`: its holder
/// appends without yielding.
pub(super) fn holds(lock: Option<&StreamLock>, key: (i32, i32)) -> bool {
    lock.and_then(|l| l.guard::<Both>())
        .is_some_and(|both| both.advisory.key == key)
}

/// A stream held in this process and across processes. Fields drop in
/// order: the advisory lock is given up before the local one.
struct Both {
    /// Its `Drop` gives the advisory lock up.
    advisory: Held,
    local: StreamLock,
}

/// The in-process part of a lock this store gave, to tell the local locks
/// that its holder is the caller.
pub(super) fn local_part(lock: &StreamLock) -> Option<&StreamLock> {
    lock.guard::<Both>().map(|both| &both.local)
}

/// A connection holding (or waiting for) an advisory lock.
struct Held {
    conn: Option<PoolConnection<Postgres>>,
    key: (i32, i32),
    locked: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if self.locked => {
                let key = self.key;
                runtime.spawn(async move {
                    let mut conn = conn;
                    let unlocked: Result<bool, _> =
                        sqlx::query_scalar("SELECT pg_advisory_unlock($1, $2)")
                            .bind(key.0)
                            .bind(key.1)
                            .fetch_one(&mut *conn)
                            .await;
                    if !matches!(unlocked, Ok(true)) {
                        // Ending the session is what releases it then.
                        drop(conn.detach());
                    }
                });
            }
            // Not locked yet (a cancelled or failed wait), or no runtime to
            // unlock on: ending the session releases whatever it holds.
            _ => drop(conn.detach()),
        }
    }
}

/// 32-bit FNV-1a, as a signed key half.
fn fnv1a(text: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_stable() {
        // Every process must compute the same key: pin the hash.
        assert_eq!(super::fnv1a(""), 0x811c_9dc5_u32 as i32);
        assert_eq!(super::fnv1a("a"), 0xe40c_292c_u32 as i32);
        assert_eq!(super::fnv1a("foobar"), 0xbf9c_f968_u32 as i32);
    }
}
