-- Appends become one plain SQL statement (see `APPEND_SQL` in
-- runtime/src/postgres/writer.rs) instead of the plpgsql function:
-- - the unique (stream_id, stream_version) index alone makes concurrent
--   appends to one stream conflict, so no stream row is locked or updated per
--   append, and the stream's version is its newest event's; a stream's row
--   is written once, with its first event;
-- - the read horizon moves from a per-event column, which needed a
--   subtransaction per append, to the reader: it reads the position sequence,
--   then takes a transaction id, and trusts positions up to what it read once
--   every older transaction has ended. Writers take their transaction id
--   before drawing positions, which the statement guarantees.

DROP FUNCTION append_events(text, smallint, bigint, uuid[], text[], integer[], text[], uuid[], uuid[], text[]);

ALTER TABLE events DROP COLUMN horizon;

-- One row per stream, written with its first event by the trigger below (so
-- also for rows written by hand): when the stream was created.
ALTER TABLE streams DROP COLUMN version;
ALTER TABLE streams ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION record_stream() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO streams (stream_id) VALUES (NEW.stream_id) ON CONFLICT (stream_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_record_stream
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.stream_version = 1) EXECUTE FUNCTION record_stream();
