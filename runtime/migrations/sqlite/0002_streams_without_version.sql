-- Appends stop writing the streams table (issue 7).
--
-- Every append used to update its stream's row in `{prefix}streams` (an
-- AFTER INSERT trigger): one more B-tree page written, and one more 4 KB
-- frame appended to the WAL, by every commit. A stream's version is its
-- newest event's, which the unique (stream_id, stream_version) index finds
-- in one seek, so the row's version is dropped; as in the PostgreSQL store,
-- a stream's row is written once, with its first event, and says when the
-- stream was created.

DROP TRIGGER {prefix}events_track_stream;
DROP TRIGGER {prefix}events_contiguous;

CREATE TABLE {prefix}streams_new (
    stream_id   TEXT NOT NULL PRIMARY KEY,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO {prefix}streams_new (stream_id, created_at)
    SELECT stream_id, recorded_at FROM {prefix}events WHERE stream_version = 1;

DROP TABLE {prefix}streams;
ALTER TABLE {prefix}streams_new RENAME TO {prefix}streams;

-- Streams grow one version at a time, whoever writes the row: the new
-- version must follow the newest one recorded (one seek in the unique index,
-- whose page the insert writes anyway).
CREATE TRIGGER {prefix}events_contiguous BEFORE INSERT ON {prefix}events
BEGIN
    SELECT RAISE(ABORT, 'annals: stream version out of sequence')
    WHERE NEW.stream_version <> coalesce(
        (SELECT max(stream_version) FROM {prefix}events WHERE stream_id = NEW.stream_id), 0) + 1;
END;

CREATE TRIGGER {prefix}events_record_stream AFTER INSERT ON {prefix}events
WHEN NEW.stream_version = 1
BEGIN
    INSERT INTO {prefix}streams (stream_id, created_at) VALUES (NEW.stream_id, NEW.recorded_at)
    ON CONFLICT (stream_id) DO NOTHING;
END;
