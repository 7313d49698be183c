//! The PostgreSQL event store (feature `postgres`).
