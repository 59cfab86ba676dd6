//! The PostgreSQL store against a real server: the conformance suites (registry and tokens),
//! each check in a fresh schema, a schema of before tokens migrated forward, and two handles on one database writing at once (as two replicas of a server
//! would), so counts must be exact across processes.
//!
//! `CWS_TEST_DATABASE_URL` names the database (`.ci/run` starts a throwaway server and sets
//! it, e.g. `postgres://postgres@127.0.0.1:PORT/postgres`); its user must be allowed to create
//! schemas. Without it these tests say they skip, except under CI (`CI` set), where a missing
//! URL fails them: CI must really run them.

use std::sync::Arc;

use chrono::NaiveDate;
use cws_registry::testing::{self, PostgresScratch};
use cws_registry::*;

use crate::fixtures;

/// The test database's URL, or `None` (after saying so) to skip.
///
/// # Panics
///
/// Under CI (`CI` set) without `CWS_TEST_DATABASE_URL`.
fn database_url() -> Option<String> {
    match std::env::var("CWS_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !ci,
                "CWS_TEST_DATABASE_URL is not set under CI: the PostgreSQL store's tests must \
                 run there (.ci/run starts a server and sets it)"
            );
            println!("skipping: CWS_TEST_DATABASE_URL is not set");
            None
        }
    }
}

#[tokio::test]
async fn conformance_postgres() {
    let Some(url) = database_url() else { return };
    let scratch = PostgresScratch::new(&url).await;
    let s = &scratch;
    testing::conformance(move || async move { Box::new(s.fresh().await) as Box<dyn Registry> })
        .await;
    scratch.drop_all().await;
}

/// Tasks per handle.
const TASKS: usize = 50;

fn stars_shared(i: usize) -> u8 {
    (i % 5) as u8 + 1
}

fn stars_own(i: usize) -> u8 {
    ((i * 3) % 5) as u8 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_concurrent_writes_exactly() {
    let Some(url) = database_url() else { return };
    let scratch = PostgresScratch::new(&url).await;
    let url = scratch.schema_url().await;
    // Both replicas start at once on an empty schema: one migrates while the other waits on
    // the migration lock and then finds the tables (without the lock, one would fail creating
    // a table the other just made).
    let (a, b) = tokio::join!(
        PostgresRegistry::connect(&url),
        PostgresRegistry::connect(&url)
    );
    let a = Arc::new(a.unwrap_or_else(|e| panic!("replica a connects: {e:?}")));
    let b = Arc::new(b.unwrap_or_else(|e| panic!("replica b connects: {e:?}")));

    // Both publish a region of the same new version at once: one makes the listing and the
    // version, the other adds the second region (revision 2).
    let listing: ListingId = "alice/python-ml".parse().expect("listing id");
    let alice = fixtures::user("alice");
    let east = fixtures::publish("alice/python-ml", 1);
    let mut west = fixtures::publish("alice/python-ml", 2);
    west.region = "us-west-2".into();
    let (pa, pb) = tokio::join!(a.publish(&alice, &east), b.publish(&alice, &west));
    let (pa, pb) = (
        pa.unwrap_or_else(|e| panic!("a publishes us-east-1: {e:?}")),
        pb.unwrap_or_else(|e| panic!("b publishes us-west-2: {e:?}")),
    );
    let mut created = [pa.created_listing, pb.created_listing];
    created.sort();
    assert_eq!(
        created,
        [false, true],
        "exactly one publish made the listing"
    );
    let mut revisions = [pa.revision, pb.revision];
    revisions.sort();
    assert_eq!(
        revisions,
        [1, 2],
        "revisions of the two concurrent publishes"
    );

    let version = parse_version("1.0.0").expect("version");
    let day = NaiveDate::from_ymd_opt(2025, 3, 1).expect("day");
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        // Replica a: shared{i} rates and launches.
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
        // Replica b: the same identity rates the same stars at the same time (one rating must
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
        let v = d
            .version(&version)
            .unwrap_or_else(|| panic!("1.0.0 via {name}"));
        assert_eq!(v.downloads, count, "downloads of 1.0.0 via {name}");
        assert_eq!(v.revision, 2, "revision of 1.0.0 via {name}");
        let reviews = store
            .reviews(None, &listing)
            .await
            .unwrap_or_else(|e| panic!("reviews via {name}: {e:?}"));
        assert_eq!(reviews.len(), count as usize, "reviews via {name}");
        assert!(
            reviews.iter().all(|r| r.verified_use),
            "every rater launched, so every review is verified_use (via {name})"
        );
        let browsed = store
            .browse(None, &BrowseQuery::default())
            .await
            .unwrap_or_else(|e| panic!("browse via {name}: {e:?}"));
        assert_eq!(
            browsed
                .iter()
                .map(|s| (s.id.to_string(), s.rating.count, s.downloads))
                .collect::<Vec<_>>(),
            vec![("alice/python-ml".to_string(), count, count)],
            "browse (id, ratings, downloads) via {name}"
        );
    }
    drop((a, b));
    scratch.drop_all().await;
}

#[tokio::test]
async fn token_conformance_postgres() {
    let Some(url) = database_url() else { return };
    let scratch = PostgresScratch::new(&url).await;
    let s = &scratch;
    testing::token_conformance(
        move || async move { Box::new(s.fresh().await) as Box<dyn TokenStore> },
    )
    .await;
    scratch.drop_all().await;
}

/// A schema as cws wrote it before tokens (migrations 1 and 2, with a listing) is migrated
/// forward by `connect`: tokens work and the data is kept.
#[tokio::test]
async fn a_database_before_tokens_migrates_forward() {
    let Some(url) = database_url() else { return };
    let scratch = PostgresScratch::new(&url).await;
    let url = scratch.schema_url().await;
    {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect to the scratch schema");
        sqlx::query(
            "CREATE TABLE schema_migrations (
                 version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("schema_migrations");
        for (version, name, sql) in [
            (
                1_i64,
                "registry",
                include_str!("../../migrations/postgres/0001_registry.sql"),
            ),
            (
                2,
                "signatures",
                include_str!("../../migrations/postgres/0002_signatures.sql"),
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("migration {version}: {e}"));
            sqlx::query(
                "INSERT INTO schema_migrations VALUES ($1, $2, '2025-03-01T00:00:00.000000Z')",
            )
            .bind(version)
            .bind(name)
            .execute(&pool)
            .await
            .expect("record the migration");
        }
        sqlx::query(
            "INSERT INTO listings (id, publisher, slug, name, description, category, template,
                 visibility, visibility_kind, creator, created_at, updated_at, search_text,
                 publisher_email)
             VALUES ('alice/python-ml', 'alice', 'python-ml', 'Python ML', 'old',
                 'machine-learning', 'python-ml', 'public', 'public',
                 'alice <alice@example.edu>', '2025-03-01T00:00:00.000000Z',
                 '2025-03-01T00:00:00.000000Z',
                 'alice/python-ml python ml old machine-learning', 'alice@example.edu')",
        )
        .execute(&pool)
        .await
        .expect("a listing");
        pool.close().await;
    }

    let store = PostgresRegistry::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect and migrate: {e:?}"));
    let made = store
        .create_token(&NewToken {
            identity: fixtures::user("alice").identity,
            orgs: vec!["Example University".into()],
            scope: Scope::Admin,
            expires_at: None,
        })
        .await
        .expect("create a token after migrating");
    let found = store
        .authenticate(&made.secret, chrono::Utc::now())
        .await
        .expect("authenticate");
    assert_eq!(found.as_ref(), Some(&made.info));
    assert!(made.info.actor().admin);
    let listing: ListingId = "alice/python-ml".parse().expect("listing id");
    let rated = store
        .rate(&fixtures::user("alice"), &listing, 4, None)
        .await
        .expect("rate the old listing");
    assert_eq!(rated.count, 1);
    drop(store);

    // Connecting again changes nothing and keeps the token.
    let store = PostgresRegistry::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connect again: {e:?}"));
    assert_eq!(
        store.list_tokens().await.expect("list tokens"),
        vec![made.info]
    );
    drop(store);
    scratch.drop_all().await;
}
