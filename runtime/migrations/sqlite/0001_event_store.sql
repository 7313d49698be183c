-- The Annals event store schema for SQLite.
--
-- `{prefix}` stands for the store's table prefix (default `annals_`). The
-- store validates the prefix as an identifier and substitutes it before
-- running this file, so apply it through `SqliteStore::migrate` (or just open
-- the store), not with the sqlx CLI.

-- One row per stream: its current version. Kept by a trigger on the events
-- table, so it is the truth the append guard checks against.
CREATE TABLE {prefix}streams (
    stream_id  TEXT    NOT NULL PRIMARY KEY,
    version    INTEGER NOT NULL CHECK (version > 0)
) WITHOUT ROWID;

-- The log. `position` aliases the rowid: SQLite has one writer at a time and
-- assigns it inside the write transaction, so positions commit in order and
-- readers never see a gap. Rows are never deleted (see the triggers below),
-- so a position is never reused.
CREATE TABLE {prefix}events (
    position        INTEGER PRIMARY KEY,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version > 0),
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    -- user metadata as a JSON object; NULL when there is none
    metadata        TEXT,
    correlation_id  TEXT,
    causation_id    TEXT,
    recorded_at     TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX {prefix}events_correlation_id ON {prefix}events (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX {prefix}events_causation_id ON {prefix}events (causation_id)
    WHERE causation_id IS NOT NULL;

-- Streams grow one version at a time, whoever writes the row.
CREATE TRIGGER {prefix}events_contiguous BEFORE INSERT ON {prefix}events
BEGIN
    SELECT RAISE(ABORT, 'annals: stream version out of sequence')
    WHERE NEW.stream_version <> coalesce(
        (SELECT version FROM {prefix}streams WHERE stream_id = NEW.stream_id), 0) + 1;
END;

CREATE TRIGGER {prefix}events_track_stream AFTER INSERT ON {prefix}events
BEGIN
    INSERT INTO {prefix}streams (stream_id, version) VALUES (NEW.stream_id, NEW.stream_version)
    ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version;
END;

-- Recorded events are immutable. An administrator who really must rewrite
-- history drops these triggers for the duration of that operation.
CREATE TRIGGER {prefix}events_no_update BEFORE UPDATE ON {prefix}events
BEGIN
    SELECT RAISE(ABORT, 'annals: recorded events are immutable');
END;

CREATE TRIGGER {prefix}events_no_delete BEFORE DELETE ON {prefix}events
BEGIN
    SELECT RAISE(ABORT, 'annals: recorded events are immutable');
END;

-- The newest snapshot of each stream.
CREATE TABLE {prefix}snapshots (
    stream_id         TEXT    NOT NULL PRIMARY KEY,
    stream_version    INTEGER NOT NULL,
    snapshot_version  INTEGER NOT NULL,
    state             TEXT    NOT NULL,
    taken_at          TEXT    NOT NULL
) WITHOUT ROWID;

-- Durable subscriptions: the last global position each one has handled.
CREATE TABLE {prefix}checkpoints (
    name        TEXT    NOT NULL PRIMARY KEY,
    position    INTEGER NOT NULL CHECK (position >= 0),
    updated_at  TEXT    NOT NULL
) WITHOUT ROWID;
