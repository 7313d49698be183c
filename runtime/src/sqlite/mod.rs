//! The SQLite event store (feature `sqlite`).
