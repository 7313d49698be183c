//! The store conformance suite against PostgreSQL, one fresh schema per test.
//! Server: `ANNALS_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).
annals_tests::conformance_suite!(annals_tests::postgres::PostgresFactory);
