//! The conformance suites (registry and tokens) on the embedded store, each check on a fresh
//! database in its own temporary directory.

use cws_registry::testing;

#[tokio::test]
async fn conformance_sqlite() {
    testing::conformance(testing::temp_sqlite).await;
}

#[tokio::test]
async fn token_conformance_sqlite() {
    testing::token_conformance(testing::temp_sqlite_tokens).await;
}
