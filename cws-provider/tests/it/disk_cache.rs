//! The on-disk read cache: a repeat in another process asks nothing within the TTL, asks
//! again after it, never shares answers across backends or credentials, forgets on any
//! change, keeps no errors, and treats a damaged or foreign entry as a miss.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cws_localcloud::LocalCloud;
use cws_provider::disk_cache::{Clock, DiskCache};
use cws_provider::wrappers::{CountingProvider, Operation};
use cws_provider::*;

/// A clock the test moves by hand.
fn manual_clock() -> (Clock, Arc<Mutex<SystemTime>>) {
    let t = Arc::new(Mutex::new(SystemTime::now()));
    let c = t.clone();
    (Arc::new(move || *c.lock().unwrap()), t)
}

fn cache(dir: &std::path::Path, namespace: &str) -> DiskCache<CountingProvider<LocalCloud>> {
    DiskCache::new(
        CountingProvider::new(LocalCloud::in_memory()),
        dir,
        namespace,
        Duration::from_secs(60),
    )
}

#[tokio::test]
async fn a_repeat_within_the_ttl_asks_nothing_and_after_it_asks_again() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, t) = manual_clock();
    let first_process = cache(dir.path(), "test").with_clock(clock.clone());
    let q = ImageQuery::owned_by(["099720109477"]).name("ubuntu/images/*");
    let first = first_process
        .describe_images("us-east-1", &q)
        .await
        .unwrap();
    assert!(!first.is_empty());
    assert_eq!(first_process.inner().count(Operation::DescribeImages), 1);
    // Another process: a new wrapper over the same directory.
    let again = cache(dir.path(), "test").with_clock(clock);
    assert_eq!(again.describe_images("us-east-1", &q).await.unwrap(), first);
    let best = again
        .describe_best_image(
            "us-east-1",
            &q,
            &[cws_template::Architecture::X86_64],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        again.inner().count(Operation::DescribeImages),
        1,
        "the pick is asked once"
    );
    let best_again = again
        .describe_best_image(
            "us-east-1",
            &q,
            &[cws_template::Architecture::X86_64],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(best, best_again);
    assert_eq!(
        again.inner().count(Operation::DescribeImages),
        1,
        "then kept"
    );
    assert_eq!(
        again.account_id().await.unwrap(),
        again.account_id().await.unwrap()
    );
    assert_eq!(again.inner().count(Operation::AccountId), 1);
    // Other credentials or another endpoint never share answers.
    let other = cache(dir.path(), "other");
    other.describe_images("us-east-1", &q).await.unwrap();
    assert_eq!(other.inner().count(Operation::DescribeImages), 1);
    // Past the TTL the answer is asked again.
    *t.lock().unwrap() += Duration::from_secs(61);
    again.describe_images("us-east-1", &q).await.unwrap();
    assert_eq!(again.inner().count(Operation::DescribeImages), 2);
}

#[tokio::test]
async fn changing_images_empties_the_cache_and_errors_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), "test");
    let q = ImageQuery::owned_by(["self"]);
    c.describe_images("us-east-1", &q).await.unwrap();
    c.describe_images("us-east-1", &q).await.unwrap();
    assert_eq!(c.inner().count(Operation::DescribeImages), 1);
    let _ = c
        .deregister_image("us-east-1", "ami-0123456789abcdef0")
        .await;
    c.describe_images("us-east-1", &q).await.unwrap();
    assert_eq!(
        c.inner().count(Operation::DescribeImages),
        2,
        "a change (even a failed one) forgets"
    );
    // A bad request's error is not kept: it is asked each time.
    let bad = ImageQuery::default();
    assert!(c.describe_images("us-east-1", &bad).await.is_err());
    assert!(c.describe_images("us-east-1", &bad).await.is_err());
    assert_eq!(c.inner().count(Operation::DescribeImages), 4);
}

#[tokio::test]
async fn an_answer_already_on_its_way_when_images_change_is_not_kept_as_current() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, t) = manual_clock();
    let c = cache(dir.path(), "test").with_clock(clock);
    let q = ImageQuery::owned_by(["self"]);
    c.describe_images("us-east-1", &q).await.unwrap();
    // The entry as a slower reader (another process) would write it: its call started
    // before the change below.
    let entry = std::fs::read_dir(c.dir())
        .unwrap()
        .flatten()
        .find(|e| e.file_name() != "emptied-at")
        .unwrap();
    let (path, bytes) = (entry.path(), std::fs::read(entry.path()).unwrap());
    *t.lock().unwrap() += Duration::from_secs(1);
    c.clear();
    std::fs::write(&path, bytes).unwrap();
    c.describe_images("us-east-1", &q).await.unwrap();
    assert_eq!(
        c.inner().count(Operation::DescribeImages),
        2,
        "an answer from before the change is asked again"
    );
}

#[tokio::test]
async fn a_zero_ttl_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = DiskCache::new(
        CountingProvider::new(LocalCloud::in_memory()),
        dir.path(),
        "test",
        Duration::ZERO,
    );
    c.describe_regions().await.unwrap();
    c.describe_regions().await.unwrap();
    assert_eq!(c.inner().count(Operation::DescribeRegions), 2);
    assert!(!c.dir().exists());
}

#[tokio::test]
async fn a_damaged_or_foreign_entry_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), "test");
    c.describe_regions().await.unwrap();
    let files: Vec<_> = std::fs::read_dir(c.dir()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let file = files[0].path();
    std::fs::write(&file, b"{not json").unwrap();
    c.describe_regions().await.unwrap();
    assert_eq!(c.inner().count(Operation::DescribeRegions), 2);
    // The same file name holding another question (a hash collision): a miss, not a
    // wrong answer.
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut foreign = stored.clone();
    foreign["key"] = "something else".into();
    foreign["value"] = serde_json::json!(["xx-nowhere-1"]);
    std::fs::write(&file, serde_json::to_vec(&foreign).unwrap()).unwrap();
    let regions = c.describe_regions().await.unwrap();
    assert!(!regions.contains(&"xx-nowhere-1".to_string()));
    assert_eq!(c.inner().count(Operation::DescribeRegions), 3);
}
