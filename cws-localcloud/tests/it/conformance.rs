//! The provider conformance suite against LocalCloud, in memory and persisted on disk.
use cws_localcloud::LocalCloud;
use cws_provider::testing;

#[tokio::test]
async fn in_memory_local_cloud_conforms() {
    let cloud = LocalCloud::in_memory();
    testing::run_all(&cloud, &cws_localcloud::conformance_fixture()).await;
    testing::intent_tokens_are_idempotent(&cloud, &cws_localcloud::conformance_fixture()).await;
}

#[tokio::test]
async fn persisted_local_cloud_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::open(dir.path()).unwrap();
    testing::run_all(&cloud, &cws_localcloud::conformance_fixture()).await;
    testing::intent_tokens_are_idempotent(&cloud, &cws_localcloud::conformance_fixture()).await;
}

/// Re-running the suite on the same persisted state must not collide with the first run's
/// leftovers (unique names per run), and a re-opened cloud continues where it left off.
#[tokio::test]
async fn suite_reruns_on_shared_state() {
    let dir = tempfile::tempdir().unwrap();
    testing::run_all(
        &LocalCloud::open(dir.path()).unwrap(),
        &cws_localcloud::conformance_fixture(),
    )
    .await;
    testing::run_all(
        &LocalCloud::open(dir.path()).unwrap(),
        &cws_localcloud::conformance_fixture(),
    )
    .await;
}

/// The suite also runs through trait objects and wrappers, as the resolver uses providers.
#[tokio::test]
async fn wrapped_local_cloud_conforms() {
    use cws_provider::wrappers::{CachingProvider, CountingProvider};
    use std::sync::Arc;
    use std::time::Duration;
    let cloud = Arc::new(CachingProvider::new(
        CountingProvider::new(LocalCloud::in_memory()),
        Duration::from_secs(300),
    ));
    testing::run_all(cloud.as_ref(), &cws_localcloud::conformance_fixture()).await;
    assert!(cloud.inner().total() > 0);
}
