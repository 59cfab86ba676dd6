//! Two handles on one database file, as two `cws` processes would hold, rating and recording
//! downloads at the same time: nothing is lost and no rating is doubled.

use std::sync::Arc;

use chrono::NaiveDate;
use cws_registry::*;

use crate::fixtures;

/// Tasks per handle.
const TASKS: usize = 50;

fn stars_shared(i: usize) -> u8 {
    (i % 5) as u8 + 1
}

fn stars_own(i: usize) -> u8 {
    ((i * 3) % 5) as u8 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_lose_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("registry.db");
    // Both "processes" start at once: both open (and migrate) the same new file.
    let (a, b) = tokio::join!(
        cws_registry::testing::open_sqlite(&path),
        cws_registry::testing::open_sqlite(&path)
    );
    let (a, b) = (Arc::new(a), Arc::new(b));
    let listing: ListingId = "alice/python-ml".parse().expect("listing id");
    a.publish(
        &fixtures::user("alice"),
        &fixtures::publish("alice/python-ml", 1),
    )
    .await
    .expect("publish alice/python-ml");
    let version = parse_version("1.0.0").expect("version");
    let day = NaiveDate::from_ymd_opt(2025, 3, 1).expect("day");

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        // Handle a: shared{i} rates and launches.
        let (store, l, v) = (a.clone(), listing.clone(), version.clone());
        tasks.push(tokio::spawn(async move {
            let who = fixtures::user(&format!("shared{i}"));
            store
                .rate(&who, &l, stars_shared(i), Some("from a"))
                .await
                .map_err(|e| format!("a: shared{i} rates: {e:?}"))?;
            store
                .record_download(&Download {
                    listing: l,
                    version: v,
                    day,
                    by: Some(who.identity.handle.clone()),
                })
                .await
                .map_err(|e| format!("a: shared{i} download: {e:?}"))
        }));
        // Handle b: the same identity rates the same stars at the same time (one rating must
        // remain), another identity rates, and launches.
        let (store, l2, v2) = (b.clone(), listing.clone(), version.clone());
        tasks.push(tokio::spawn(async move {
            let shared = fixtures::user(&format!("shared{i}"));
            let own = fixtures::user(&format!("own{i}"));
            store
                .rate(&shared, &l2, stars_shared(i), Some("from b"))
                .await
                .map_err(|e| format!("b: shared{i} rates: {e:?}"))?;
            store
                .rate(&own, &l2, stars_own(i), None)
                .await
                .map_err(|e| format!("b: own{i} rates: {e:?}"))?;
            store
                .record_download(&Download {
                    listing: l2,
                    version: v2,
                    day,
                    by: Some(own.identity.handle.clone()),
                })
                .await
                .map_err(|e| format!("b: own{i} download: {e:?}"))
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("task panicked") {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "concurrent writes failed: {failures:#?}"
    );

    let sum: u64 = (0..TASKS)
        .map(|i| u64::from(stars_shared(i)) + u64::from(stars_own(i)))
        .sum();
    let count = 2 * TASKS as u64;
    let average = (sum as f64 * 10.0 / count as f64).round() / 10.0;
    for (name, store) in [("a", &a), ("b", &b)] {
        let d = store
            .listing(None, &listing)
            .await
            .unwrap_or_else(|e| panic!("listing via {name}: {e:?}"));
        assert_eq!(d.summary.rating.count, count, "rating count via {name}");
        assert!(
            (d.summary.rating.average - average).abs() < 1e-9,
            "average via {name}: {} != {average}",
            d.summary.rating.average
        );
        assert_eq!(d.summary.downloads, count, "downloads via {name}");
        assert_eq!(
            d.version(&version).map(|v| v.downloads),
            Some(count),
            "downloads of 1.0.0 via {name}"
        );
        let reviews = store
            .reviews(None, &listing)
            .await
            .unwrap_or_else(|e| panic!("reviews via {name}: {e:?}"));
        assert_eq!(reviews.len(), count as usize, "reviews via {name}");
        assert!(
            reviews.iter().all(|r| r.verified_use),
            "every rater launched, so every review is verified_use (via {name})"
        );
    }
}

/// Many `cws` processes starting at once on a registry file nobody has created yet: every one
/// opens it (switching it to WAL and migrating it races between them), and the schema is
/// applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_handles_opening_one_new_file_all_succeed() {
    const HANDLES: usize = 8;
    for round in 0..10 {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("registry.db");
        let opens = (0..HANDLES).map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteRegistry::open(&path).await })
        });
        let mut opened = Vec::new();
        for open in opens.collect::<Vec<_>>() {
            match open.await.expect("the opening task") {
                Ok(registry) => opened.push(registry),
                Err(e) => panic!("round {round}: opening {}: {e}", path.display()),
            }
        }
        assert_eq!(opened.len(), HANDLES);
        // Each handle sees the one migrated schema: a write through one is read by another.
        opened[0]
            .publish(
                &fixtures::user("alice"),
                &fixtures::publish("alice/python-ml", 1),
            )
            .await
            .expect("publish through the first handle");
        let listing: ListingId = "alice/python-ml".parse().expect("listing id");
        let seen = opened[HANDLES - 1]
            .listing(Some(&fixtures::user("alice")), &listing)
            .await
            .expect("the listing through the last handle");
        assert_eq!(seen.summary.id, listing);
    }
}
