use std::collections::BTreeMap;
use std::time::Duration;

use cws_localcloud::LocalCloud;
use cws_provider::wrappers::*;
use cws_provider::*;
use cws_template::Architecture;

const REGION: &str = "us-east-1";

fn canonical() -> ImageQuery {
    ImageQuery::owned_by([cws_localcloud::CANONICAL_OWNER]).name("ubuntu/images/*")
}

fn tag(k: &str, v: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(k.to_string(), v.to_string())])
}

async fn own_image(p: &dyn CloudProvider, region: &str) -> Image {
    let base = p
        .describe_images(region, &canonical())
        .await
        .unwrap()
        .pop()
        .unwrap();
    p.copy_image(&CopyImageRequest {
        source_region: region.to_string(),
        source_image_id: base.id,
        target_region: region.to_string(),
        name: format!("own-{region}"),
        description: None,
        tags: BTreeMap::new(),
    })
    .await
    .unwrap()
}

#[test]
fn operations_round_trip_through_their_names() {
    for op in Operation::ALL {
        assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        assert_eq!(op.to_string(), op.as_str());
        assert!(op.iam_action().contains(':'));
    }
    let err = "describe_everything".parse::<Operation>().unwrap_err();
    assert!(err.to_string().contains("describe_images"), "{err}");
    assert!(Operation::DescribeImages.is_read_only());
    assert!(!Operation::CopyImage.is_read_only());
    assert!(!Operation::DeleteSnapshot.is_read_only());
    assert_eq!(
        Operation::ModifySnapshotPermission.iam_action(),
        "ec2:ModifySnapshotAttribute"
    );
    assert_eq!(Operation::DeleteSnapshot.iam_action(), "ec2:DeleteSnapshot");
    // ALL lists every variant once, in declaration order (the counters index by it).
    for (i, op) in Operation::ALL.iter().enumerate() {
        assert_eq!(*op as usize, i, "{op}");
    }
}

#[tokio::test]
async fn wrappers_keep_the_inner_identity() {
    let expected = LocalCloud::empty().info();
    let stacked = CachingProvider::new(
        FaultProvider::new(LatencyProvider::new(
            CountingProvider::new(LocalCloud::empty()),
            Duration::ZERO,
        )),
        Duration::from_secs(60),
    );
    assert_eq!(stacked.info(), expected);
    // And they stay usable as trait objects.
    let dynamic: &dyn CloudProvider = &stacked;
    assert!(
        dynamic
            .describe_regions()
            .await
            .unwrap()
            .contains(&REGION.to_string())
    );
}

#[tokio::test]
async fn counting_counts_each_operation() {
    let p = CountingProvider::new(LocalCloud::in_memory());
    assert_eq!(p.total(), 0);
    assert_eq!(p.calls().len(), Operation::ALL.len());
    p.describe_images(REGION, &canonical()).await.unwrap();
    p.describe_images(REGION, &canonical()).await.unwrap();
    p.describe_regions().await.unwrap();
    // Failed calls count too: they were round trips.
    p.describe_images(REGION, &ImageQuery::default())
        .await
        .unwrap_err();
    let calls = p.calls();
    assert_eq!(calls["describe_images"], 3);
    assert_eq!(calls["describe_regions"], 1);
    assert_eq!(calls["copy_image"], 0);
    assert_eq!(p.count(Operation::DescribeImages), 3);
    assert_eq!(p.total(), 4);
    p.reset();
    assert_eq!(p.total(), 0);
}

#[tokio::test]
async fn counting_is_exact_under_concurrency() {
    let p = std::sync::Arc::new(CountingProvider::new(LocalCloud::in_memory()));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    p.describe_regions().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(p.count(Operation::DescribeRegions), 160);
}

#[tokio::test]
async fn cache_hit_makes_zero_inner_calls() {
    let p = CachingProvider::new(
        CountingProvider::new(LocalCloud::in_memory()),
        Duration::from_secs(60),
    );
    let first = p.describe_images(REGION, &canonical()).await.unwrap();
    let second = p.describe_images(REGION, &canonical()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(p.inner().total(), 1, "the repeat was served from the cache");
    assert_eq!((p.hits(), p.misses()), (1, 1));

    // Different arguments or regions are different entries.
    p.describe_images(REGION, &canonical().architectures([Architecture::Arm64]))
        .await
        .unwrap();
    p.describe_images("us-west-2", &canonical()).await.unwrap();
    assert_eq!(p.inner().total(), 3);

    // Every cached read-only operation.
    let id = first[0].id.clone();
    for _ in 0..2 {
        p.describe_images_by_id(REGION, std::slice::from_ref(&id))
            .await
            .unwrap();
        p.describe_snapshots(REGION, &first[0].snapshot_ids)
            .await
            .unwrap();
        p.describe_regions().await.unwrap();
        p.find_marketplace_products(&MarketplaceQuery::default())
            .await
            .unwrap();
    }
    assert_eq!(p.inner().total(), 7);
    assert_eq!(p.len(), 7);

    // Instances are never cached.
    for _ in 0..2 {
        p.describe_instances(REGION, &InstanceFilter::default())
            .await
            .unwrap();
    }
    assert_eq!(p.inner().count(Operation::DescribeInstances), 2);

    p.clear();
    assert!(p.is_empty());
    p.describe_images(REGION, &canonical()).await.unwrap();
    assert_eq!(p.inner().count(Operation::DescribeImages), 4);
}

#[tokio::test(start_paused = true)]
async fn cache_entries_expire_after_the_ttl() {
    let ttl = Duration::from_secs(30);
    let p = CachingProvider::new(CountingProvider::new(LocalCloud::in_memory()), ttl);
    p.describe_regions().await.unwrap();
    tokio::time::advance(ttl - Duration::from_millis(1)).await;
    p.describe_regions().await.unwrap();
    assert_eq!(p.inner().total(), 1, "still fresh just before the TTL");
    tokio::time::advance(Duration::from_millis(1)).await;
    p.describe_regions().await.unwrap();
    assert_eq!(p.inner().total(), 2, "expired at the TTL");
}

#[tokio::test]
async fn zero_ttl_caches_nothing() {
    let p = CachingProvider::new(
        CountingProvider::new(LocalCloud::in_memory()),
        Duration::ZERO,
    );
    p.describe_regions().await.unwrap();
    p.describe_regions().await.unwrap();
    assert_eq!(p.inner().total(), 2);
}

#[tokio::test]
async fn mutations_invalidate_their_region_only() {
    let p = CachingProvider::new(
        CountingProvider::new(LocalCloud::in_memory()),
        Duration::from_secs(60),
    );
    let mine = own_image(&p, REGION).await;
    let query = ImageQuery::owned_by(["self"]).tag("team", "genomics");
    assert!(p.describe_images(REGION, &query).await.unwrap().is_empty());
    p.describe_images("eu-west-1", &query).await.unwrap();
    p.describe_regions().await.unwrap();
    let before = p.inner().count(Operation::DescribeImages);

    p.create_tags(REGION, &mine.id, &tag("team", "genomics"))
        .await
        .unwrap();
    // Without invalidation this would be the stale empty answer.
    let found = p.describe_images(REGION, &query).await.unwrap();
    assert_eq!(found.len(), 1);
    // Other regions and global answers are still cached.
    p.describe_images("eu-west-1", &query).await.unwrap();
    p.describe_regions().await.unwrap();
    assert_eq!(p.inner().count(Operation::DescribeImages), before + 1);
    assert_eq!(p.inner().count(Operation::DescribeRegions), 1);

    // Launch permissions are invalidated by modify.
    assert!(
        p.describe_launch_permissions(REGION, &mine.id)
            .await
            .unwrap()
            .is_empty()
    );
    p.modify_launch_permission(REGION, &mine.id, &LaunchPermission::Public, true)
        .await
        .unwrap();
    assert_eq!(
        p.describe_launch_permissions(REGION, &mine.id)
            .await
            .unwrap(),
        vec![LaunchPermission::Public]
    );

    // A copy invalidates its target region.
    let target_query = ImageQuery::owned_by(["self"]).name("copied");
    assert!(
        p.describe_images("us-west-2", &target_query)
            .await
            .unwrap()
            .is_empty()
    );
    p.copy_image(&CopyImageRequest {
        source_region: REGION.to_string(),
        source_image_id: mine.id.clone(),
        target_region: "us-west-2".to_string(),
        name: "copied".to_string(),
        description: None,
        tags: BTreeMap::new(),
    })
    .await
    .unwrap();
    assert_eq!(
        p.describe_images("us-west-2", &target_query)
            .await
            .unwrap()
            .len(),
        1
    );

    // Deregistering invalidates too.
    let by_id = [mine.id.clone()];
    assert_eq!(
        p.describe_images_by_id(REGION, &by_id).await.unwrap().len(),
        1
    );
    p.deregister_image(REGION, &mine.id).await.unwrap();
    assert!(
        p.describe_images_by_id(REGION, &by_id)
            .await
            .unwrap()
            .is_empty()
    );

    // So do snapshot permission changes and deletions: a deleted snapshot must not be
    // served from the cache.
    let snaps = mine.snapshot_ids.clone();
    assert_eq!(p.describe_snapshots(REGION, &snaps).await.unwrap().len(), 1);
    p.describe_snapshots(REGION, &snaps).await.unwrap();
    let before = p.inner().count(Operation::DescribeSnapshots);
    p.modify_snapshot_permission(REGION, &snaps[0], &LaunchPermission::Public, true)
        .await
        .unwrap();
    p.describe_snapshots(REGION, &snaps).await.unwrap();
    assert_eq!(p.inner().count(Operation::DescribeSnapshots), before + 1);
    p.delete_snapshot(REGION, &snaps[0]).await.unwrap();
    assert!(
        p.describe_snapshots(REGION, &snaps)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(p.inner().count(Operation::ModifySnapshotPermission), 1);
    assert_eq!(p.inner().count(Operation::DeleteSnapshot), 1);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let p = CachingProvider::new(
        FaultProvider::new(CountingProvider::new(LocalCloud::in_memory())),
        Duration::from_secs(60),
    );
    p.inner().fail(
        FaultRule::new(FaultKind::Unavailable)
            .operation(Operation::DescribeRegions)
            .times(1),
    );
    assert_eq!(
        p.describe_regions().await.unwrap_err().kind(),
        "unavailable"
    );
    assert!(
        p.describe_regions().await.is_ok(),
        "the failure was not remembered"
    );
    assert!(p.describe_regions().await.is_ok());
    assert_eq!(p.inner().inner().count(Operation::DescribeRegions), 1);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_call_and_overlaps_when_concurrent() {
    let latency = Duration::from_millis(250);
    let p = LatencyProvider::new(LocalCloud::in_memory(), latency);
    assert_eq!(p.latency(), latency);
    let start = tokio::time::Instant::now();
    p.describe_regions().await.unwrap();
    assert_eq!(start.elapsed(), latency);

    let (query, products) = (canonical(), MarketplaceQuery::default());
    let start = tokio::time::Instant::now();
    let (a, b, c) = tokio::join!(
        p.describe_regions(),
        p.describe_images(REGION, &query),
        p.find_marketplace_products(&products),
    );
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(
        start.elapsed(),
        latency,
        "three concurrent calls cost one round trip"
    );

    let start = tokio::time::Instant::now();
    p.describe_regions().await.unwrap();
    p.describe_regions().await.unwrap();
    assert_eq!(start.elapsed(), latency * 2, "sequential calls add up");
}

#[tokio::test]
async fn faults_fire_for_the_next_n_matching_calls() {
    let p = FaultProvider::new(CountingProvider::new(LocalCloud::in_memory()));
    p.fail(
        FaultRule::new(FaultKind::Throttled)
            .operation(Operation::DescribeImages)
            .region(REGION)
            .times(2),
    );
    for _ in 0..2 {
        let err = p.describe_images(REGION, &canonical()).await.unwrap_err();
        assert_eq!(err.kind(), "throttled");
        assert!(err.is_transient());
        assert!(
            err.to_string().contains("describe_images in us-east-1"),
            "{err}"
        );
    }
    assert_eq!(
        p.inner().total(),
        0,
        "failed calls never reach the provider"
    );
    // Other regions and operations were never affected.
    p.describe_images("us-west-2", &canonical()).await.unwrap();
    p.describe_regions().await.unwrap();
    // The rule is spent.
    p.describe_images(REGION, &canonical()).await.unwrap();
    assert_eq!(p.injected(), 2);
}

#[tokio::test]
async fn fault_kinds_and_always_rules() {
    let p = FaultProvider::new(LocalCloud::in_memory());
    p.fail(
        FaultRule::new(FaultKind::PermissionDenied)
            .operation(Operation::CopyImage)
            .always(),
    );
    p.fail(FaultRule::new(FaultKind::Generic).region("eu-west-1"));
    let copy = CopyImageRequest {
        source_region: REGION.to_string(),
        source_image_id: "ami-0123456789abcdef0".to_string(),
        target_region: "us-west-2".to_string(),
        name: "x-copy".to_string(),
        description: None,
        tags: BTreeMap::new(),
    };
    for _ in 0..3 {
        match p.copy_image(&copy).await.unwrap_err() {
            ProviderError::PermissionDenied { action, .. } => {
                assert_eq!(action, "ec2:CopyImage")
            }
            other => panic!("unexpected {other}"),
        }
    }
    let err = p
        .describe_instances("eu-west-1", &InstanceFilter::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "generic");
    assert!(err.to_string().starts_with("local error"), "{err}");
    // A region rule never matches the region-less calls.
    p.describe_regions().await.unwrap();
    // First matching rule wins, in insertion order.
    p.fail(FaultRule::new(FaultKind::Unavailable));
    assert_eq!(
        p.describe_regions().await.unwrap_err().kind(),
        "unavailable"
    );
    assert_eq!(
        p.describe_instances("eu-west-1", &InstanceFilter::default())
            .await
            .unwrap_err()
            .kind(),
        "generic"
    );
    p.clear();
    p.describe_regions().await.unwrap();
    assert_eq!(p.injected(), 6);
}

/// Identical queries in flight at once share one call: eight concurrent misses behind a slow
/// provider reach it once, all get the same answer, and seven count as hits.
#[tokio::test(start_paused = true)]
async fn identical_misses_in_flight_share_one_call() {
    let p = CachingProvider::new(
        LatencyProvider::new(
            CountingProvider::new(LocalCloud::in_memory()),
            Duration::from_millis(200),
        ),
        Duration::from_secs(60),
    );
    let q = canonical();
    let answers = futures::future::join_all((0..8).map(|_| p.describe_images(REGION, &q))).await;
    let first = answers[0].as_ref().unwrap();
    assert!(!first.is_empty());
    for a in &answers {
        assert_eq!(a.as_ref().unwrap(), first);
    }
    assert_eq!(
        p.inner().inner().total(),
        1,
        "one call for eight identical queries"
    );
    assert_eq!((p.hits(), p.misses()), (7, 1));

    // Different queries in flight are not held behind each other's gates.
    let (a, b) = futures::join!(
        p.describe_images("us-west-2", &q),
        p.describe_images("eu-west-1", &q)
    );
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(p.inner().inner().total(), 3);

    // An error is not shared as an answer: a failed call leaves the next one to try.
    let faulty = CachingProvider::new(
        FaultProvider::new(CountingProvider::new(LocalCloud::in_memory())),
        Duration::from_secs(60),
    );
    faulty.inner().fail(
        FaultRule::new(FaultKind::Unavailable)
            .operation(Operation::DescribeImages)
            .times(1),
    );
    let (x, y) = futures::join!(
        faulty.describe_images(REGION, &q),
        faulty.describe_images(REGION, &q)
    );
    assert!(
        x.is_err() != y.is_err(),
        "one failed, the other asked again: {x:?} {y:?}"
    );
}
