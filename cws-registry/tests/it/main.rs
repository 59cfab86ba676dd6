//! Integration tests of the registry stores: the conformance suite on the embedded SQLite
//! store, a model-based test of ratings against an independent oracle, and two handles on one
//! database file used at the same time (as two `cws` processes would); with feature
//! `postgres`, the conformance suite and two replicas on a PostgreSQL server
//! (`CWS_TEST_DATABASE_URL`).

mod audit;
mod concurrency;
mod conformance;
mod fixtures;
#[cfg(feature = "postgres")]
mod postgres;
mod rating_model;
mod suite_catches;
