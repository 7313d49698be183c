-- Listings of streams (`EventStore::streams`) page through the streams in
-- byte-wise order of their ids, the order every store lists them in,
-- whatever the database's collation: this index reads a page, or a
-- category's range of ids, without sorting the table. It is written once
-- per stream, with the stream's first event.
CREATE INDEX streams_stream_id_bytes ON streams (stream_id COLLATE "C");
