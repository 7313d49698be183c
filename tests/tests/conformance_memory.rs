//! The store conformance suite against the in-memory store.
annals_tests::conformance_suite!(annals_tests::conformance::MemoryFactory);
