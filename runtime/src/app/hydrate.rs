//! Loading an aggregate: its snapshot (if it has one and it holds), then the
//! events after it; and taking snapshots.

use super::cache::Loaded;
use super::{App, LoadError};
use crate::aggregate::Aggregate;
use crate::store::{DEFAULT_READ_BATCH, Snapshot, StreamId};

impl App {
    /// [`App::catch_up`] behind a box. Dispatch needs it rarely (first load,
    /// conflicts, stale refusals); awaited inline, its state would make every
    /// dispatch future larger, and that future is moved on every command.
    pub(super) fn catch_up_boxed<'a, A: Aggregate>(
        &'a self,
        stream: &'a StreamId,
        loaded: &'a mut Loaded<A>,
    ) -> futures::future::BoxFuture<'a, Result<(), LoadError>> {
        Box::pin(self.catch_up(stream, loaded))
    }

    /// Brings a cached aggregate up to the stream's current version; one that
    /// is not `fresh` is loaded again from its snapshot and stream.
    pub(super) async fn catch_up<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<(), LoadError> {
        // The version a restored snapshot claims, until the stream confirms it.
        let mut unconfirmed = None;
        if !loaded.fresh {
            loaded.reset();
            if A::SNAPSHOT_EVERY.is_some() && self.restore_snapshot(stream, loaded).await? {
                unconfirmed = Some(loaded.version);
            }
        }
        loop {
            // A restored snapshot's own version is read again: the stream must have it.
            let from = unconfirmed.unwrap_or(loaded.version + 1);
            let batch = self
                .inner
                .store
                .read_stream(stream, from, DEFAULT_READ_BATCH)
                .await?;
            let full = batch.len() == DEFAULT_READ_BATCH;
            let mut batch = batch.into_iter().peekable();
            if let Some(claimed) = unconfirmed.take()
                && batch
                    .next_if(|first| first.stream_version == claimed)
                    .is_none()
            {
                tracing::warn!(
                    %stream,
                    snapshot_version = claimed,
                    "ignoring a snapshot ahead of its stream; replaying the stream"
                );
                loaded.reset();
                continue;
            }
            for recorded in batch {
                if recorded.stream_version != loaded.version + 1 {
                    return Err(LoadError::Gap {
                        stream: stream.clone(),
                        expected: loaded.version + 1,
                        found: recorded.stream_version,
                    });
                }
                let events =
                    crate::upcast::decode_recorded::<A::Event>(&recorded).map_err(|source| {
                        LoadError::Decode {
                            stream: stream.clone(),
                            version: recorded.stream_version,
                            position: recorded.global_position,
                            event_type: recorded.event_type.clone().into_owned(),
                            event_version: recorded.event_version,
                            source,
                        }
                    })?;
                for event in events {
                    loaded.state.apply(&event);
                }
                loaded.version = recorded.stream_version;
                loaded.since_snapshot += 1;
            }
            if !full {
                break;
            }
        }
        loaded.fresh = true;
        Ok(())
    }

    /// Restores the state from the stream's snapshot, if it has one of the
    /// aggregate's snapshot version that decodes; `true` if it did.
    async fn restore_snapshot<A: Aggregate>(
        &self,
        stream: &StreamId,
        loaded: &mut Loaded<A>,
    ) -> Result<bool, LoadError> {
        let Some(snapshot) = self.inner.store.load_snapshot(stream).await? else {
            return Ok(false);
        };
        if snapshot.snapshot_version != A::SNAPSHOT_VERSION {
            tracing::debug!(
                %stream,
                found = snapshot.snapshot_version,
                wanted = A::SNAPSHOT_VERSION,
                "ignoring snapshot of another version"
            );
            return Ok(false);
        }
        if snapshot.stream_version == 0 {
            return Ok(false);
        }
        match A::restore(&snapshot.state) {
            Some(Ok(state)) => {
                loaded.state = state;
                loaded.version = snapshot.stream_version;
                Ok(true)
            }
            Some(Err(error)) => {
                tracing::warn!(%stream, %error, "ignoring a snapshot that does not decode; replaying the stream");
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Saves a snapshot of `loaded` (called when one is due).
    pub(super) async fn snapshot<A: Aggregate>(&self, stream: &StreamId, loaded: &mut Loaded<A>) {
        let state = match loaded.state.snapshot() {
            Some(Ok(state)) => state,
            Some(Err(error)) => {
                tracing::warn!(%stream, %error, "could not serialise a snapshot");
                return;
            }
            None => return,
        };
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            stream_version: loaded.version,
            snapshot_version: A::SNAPSHOT_VERSION,
            state,
            taken_at: chrono::Utc::now(),
        };
        // A snapshot is an optimisation: failing to save one must not fail the command.
        match self.inner.store.save_snapshot(snapshot).await {
            Ok(()) => loaded.since_snapshot = 0,
            Err(error) => tracing::warn!(%stream, %error, "could not save a snapshot"),
        }
    }
}
