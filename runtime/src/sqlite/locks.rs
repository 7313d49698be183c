//! The stream locks of a SQLite file: first among this process's lockers
//! ([`LocalLocks`]), then among processes, with an open-file-description
//! (OFD) lock on one byte of a sidecar file, `<database>-locks`.
//!
//! Each stream hashes (with the table prefix) to one of [`BUCKETS`] bytes;
//! two streams on one byte only wait for each other, since the lock decides
//! turns and never what is recorded (the expected version does). Each held
//! lock has a file description of its own, so colliding streams of one
//! process exclude each other too, and releasing one never releases another.
//! The kernel drops a process's OFD locks when it dies, so a killed holder
//! frees its streams at once.
//!
//! OFD locks are Linux's; elsewhere the file part is absent and the locks
//! exclude lockers in this process only.

use crate::store::{LocalLocks, StoreError, StreamId, StreamLock};
use std::path::Path;
use std::sync::Arc;

/// How many bytes of the sidecar file streams hash to.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const BUCKETS: u64 = 1 << 16;

/// The stream locks of one file and table prefix, shared by every
/// `SqliteStore` of this process on it.
pub(crate) struct SqliteLocks {
    local: Arc<LocalLocks>,
    prefix: String,
    #[cfg(target_os = "linux")]
    file: linux::FileLocks,
}

/// What a [`StreamLock`] of a `SqliteStore` holds: the file's byte (released
/// first, on drop), then the stream in this process.
struct SqliteGuard {
    #[cfg(target_os = "linux")]
    _file: linux::Held,
    _local: StreamLock,
    locks: Arc<SqliteLocks>,
    stream: StreamId,
}

impl SqliteLocks {
    /// The locks of the database at `path` (canonical), for tables with `prefix`.
    pub(crate) fn new(path: &Path, prefix: &str) -> Self {
        #[cfg(not(target_os = "linux"))]
        let _ = path;
        Self {
            local: Arc::new(LocalLocks::default()),
            prefix: prefix.to_owned(),
            #[cfg(target_os = "linux")]
            file: linux::FileLocks::new(path),
        }
    }

    /// Waits until this caller holds `stream` among this process's lockers,
    /// then among other processes'.
    pub(crate) async fn lock(
        self: &Arc<Self>,
        stream: &StreamId,
    ) -> Result<StreamLock, StoreError> {
        let local = self.local.lock(stream).await;
        #[cfg(target_os = "linux")]
        let file = self.file.lock(self.bucket(stream)).await?;
        Ok(StreamLock::new(SqliteGuard {
            #[cfg(target_os = "linux")]
            _file: file,
            _local: local,
            locks: self.clone(),
            stream: stream.clone(),
        }))
    }

    /// Whether an append to `stream` by a caller holding `lock` (if any)
    /// must yield: another caller, in this process or another, holds the
    /// stream (or one on the same byte of the sidecar file).
    pub(crate) fn must_yield(
        self: &Arc<Self>,
        stream: &StreamId,
        lock: Option<&StreamLock>,
    ) -> bool {
        let own = lock
            .and_then(|l| l.guard::<SqliteGuard>())
            .is_some_and(|g| Arc::ptr_eq(&g.locks, self) && g.stream == *stream);
        if own {
            return false;
        }
        if self.local.must_yield(stream, None) {
            return true;
        }
        #[cfg(target_os = "linux")]
        if self.file.is_held(self.bucket(stream)) {
            return true;
        }
        false
    }

    /// The byte of the sidecar file that `stream` locks: FNV-1a of the
    /// prefix and the stream id, fixed so every process (and every build)
    /// agrees.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn bucket(&self, stream: &StreamId) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = self
            .prefix
            .bytes()
            .chain([0])
            .chain(stream.as_str().bytes());
        for byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % BUCKETS
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use crate::store::StoreError;
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The longest pause between two tries for a byte another process holds.
    const MAX_POLL: Duration = Duration::from_millis(16);

    /// OFD locks on the bytes of one sidecar file.
    pub(super) struct FileLocks {
        path: PathBuf,
        /// A description that never locks, to look at others' locks; `None`
        /// when the file could not be opened (then `lock` reports why).
        probe: Option<File>,
    }

    /// A byte locked through a file description of its own: closing it
    /// (on drop) releases the byte.
    pub(super) struct Held(#[allow(dead_code)] File);

    impl FileLocks {
        pub(super) fn new(database: &Path) -> Self {
            let mut path = database.as_os_str().to_owned();
            path.push("-locks");
            let path = PathBuf::from(path);
            let probe = match open(&path) {
                Ok(file) => Some(file),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot open the stream lock file; appends will not yield to other processes' locks");
                    None
                }
            };
            Self { path, probe }
        }

        /// Waits, polling with a jittered growing pause, until `byte` is
        /// this caller's; dropping the future gives up.
        pub(super) async fn lock(&self, byte: u64) -> Result<Held, StoreError> {
            let file = open(&self.path).map_err(|e| self.failed(e))?;
            let mut ceiling = Duration::from_millis(1);
            loop {
                match set_lock(&file, byte, libc::F_WRLCK as libc::c_short) {
                    Ok(true) => return Ok(Held(file)),
                    Ok(false) => {}
                    Err(e) => return Err(self.failed(e)),
                }
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                let pause =
                    Duration::from_nanos(nanos / 2 + crate::app::ids::random() % (nanos / 2 + 1));
                tokio::time::sleep(pause).await;
                ceiling = (ceiling * 2).min(MAX_POLL);
            }
        }

        /// Whether a file description (of any process) holds `byte`.
        pub(super) fn is_held(&self, byte: u64) -> bool {
            let Some(probe) = &self.probe else {
                return false;
            };
            let mut lock = region(byte, libc::F_RDLCK as libc::c_short);
            // SAFETY: a valid descriptor and a valid `flock` for F_OFD_GETLK,
            // which only writes into it.
            let done = unsafe { libc::fcntl(probe.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
            // A failure to look is not a reason to refuse an append: the
            // expected version keeps the stream consistent.
            done == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
        }

        fn failed(&self, e: io::Error) -> StoreError {
            StoreError::Unavailable(Box::new(LockFileError {
                path: self.path.clone(),
                source: e,
            }))
        }
    }

    fn open(path: &Path) -> io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    fn region(byte: u64, kind: libc::c_short) -> libc::flock {
        // SAFETY: `flock` is plain data; all zeroes is a valid value (and
        // `l_pid` must be 0 for OFD locks).
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = byte as libc::off_t;
        lock.l_len = 1;
        lock
    }

    /// Takes `byte` without waiting: `Ok(false)` when someone else holds it.
    fn set_lock(file: &File, byte: u64, kind: libc::c_short) -> io::Result<bool> {
        let lock = region(byte, kind);
        // SAFETY: a valid descriptor and a valid `flock` for F_OFD_SETLK.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EACCES) => Ok(false),
            Some(libc::EINTR) => Ok(false),
            _ => Err(e),
        }
    }

    /// The stream lock file of a SQLite database could not be used.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot lock a stream in `{}`", path.display())]
    struct LockFileError {
        path: PathBuf,
        #[source]
        source: io::Error,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn another_description_waits_and_sees_the_holder() {
        let dir = tempfile_dir();
        let db = dir.join("x.db");
        // Two registries standing for two processes: each has its own
        // descriptions of the sidecar file, as another process would.
        let (a, b) = (
            Arc::new(SqliteLocks::new(&db, "annals_")),
            Arc::new(SqliteLocks::new(&db, "annals_")),
        );
        let s = StreamId::new("hot-1");
        let held = a.lock(&s).await.unwrap();
        assert!(b.must_yield(&s, None), "the other side's appends yield");
        assert!(!a.must_yield(&s, Some(&held)), "the holder's do not");
        let waiter = tokio::spawn({
            let (b, s) = (b.clone(), s.clone());
            async move { b.lock(&s).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the other side waits");
        drop(held);
        let theirs = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter gets the stream once it is released")
            .unwrap()
            .unwrap();
        assert!(a.must_yield(&s, None));
        drop(theirs);
        assert!(!a.must_yield(&s, None) && !b.must_yield(&s, None));
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("annals-locks-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
