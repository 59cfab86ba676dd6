//! The conformance suite on the embedded store, each check on a fresh database in its own
//! temporary directory.

use cws_registry::testing;

#[tokio::test]
async fn conformance_sqlite() {
    testing::conformance(testing::temp_sqlite).await;
}
