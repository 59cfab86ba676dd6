//! Integration tests of the registry stores: the conformance suites (registry and tokens) on
//! the embedded SQLite store, token secrets kept hashed and a database of the schema before
//! tokens migrated forward, a model-based test of ratings against an independent oracle, and
//! two handles on one database file used at the same time (as two `cws` processes would); with
//! feature `postgres`, the conformance suites, a migration from the schema before tokens and
//! two replicas on a PostgreSQL server (`CWS_TEST_DATABASE_URL`); and the HTTP client store
//! against a scripted server.

mod audit;
mod concurrency;
mod conformance;
mod fixtures;
mod http;
#[cfg(feature = "postgres")]
mod postgres;
mod rating_model;
mod suite_catches;
mod tokens;
