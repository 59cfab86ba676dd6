//! Tokens in the embedded store's file: the secret is never written in clear (neither in the
//! database nor in its write-ahead log), and a database of the schema before tokens (migration
//! 2) is migrated forward with its data kept.

use chrono::Utc;
use cws_registry::testing;
use cws_registry::*;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::fixtures;

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the database file and of its WAL and shared-memory files, if any.
fn files_of(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm", "-journal"]
        .into_iter()
        .filter_map(|suffix| {
            let p = format!("{}{suffix}", path.display());
            std::fs::read(&p).ok().map(|bytes| (p, bytes))
        })
        .collect()
}

#[tokio::test]
async fn sqlite_keeps_only_the_hash_of_a_secret() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("registry.db");
    let store = testing::open_sqlite(&path).await;
    let made = store
        .create_token(&NewToken {
            identity: fixtures::user("alice").identity,
            orgs: vec!["Example University".into()],
            scope: Scope::Publish,
            expires_at: None,
        })
        .await
        .expect("create a token");
    let key = made
        .secret
        .rsplit('_')
        .next()
        .expect("the secret's key part")
        .to_string();
    assert_eq!(key.len(), 64, "{}", made.secret);

    // Read the rows as any reader of the file would.
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .expect("open the database file");
    let rows = sqlx::query("SELECT * FROM tokens")
        .fetch_all(&raw)
        .await
        .expect("read the tokens table");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let hash: String = row.get("secret_sha256");
    assert_eq!(hash, testing::sha256_hex(&made.secret), "the stored hash");
    let id: String = row.get("id");
    assert_eq!(id, made.info.id);
    for (i, column) in row.columns().iter().enumerate() {
        use sqlx::Column;
        if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
            assert!(
                !text.contains(&key) && !text.contains(&made.secret),
                "column {} holds the secret: {text}",
                column.name()
            );
        }
    }
    raw.close().await;

    // Nor anywhere in the files, committed or still in the write-ahead log.
    let files = files_of(&path);
    assert!(!files.is_empty(), "no database file at {}", path.display());
    for (name, bytes) in &files {
        assert!(
            !contains(bytes, key.as_bytes()),
            "{name} holds the secret's key in clear"
        );
    }
    assert!(
        files
            .iter()
            .any(|(_, bytes)| contains(bytes, hash.as_bytes())),
        "the hash is in the database files"
    );

    // And the secret still authenticates: the hash is what it is found by.
    let found = store
        .authenticate(&made.secret, Utc::now())
        .await
        .expect("authenticate");
    assert_eq!(found, Some(made.info));
}

/// A database as cws wrote it before tokens: migrations 1 and 2 applied and recorded.
async fn previous_schema(path: &std::path::Path) {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .expect("create the database file");
    sqlx::query(
        "CREATE TABLE schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("schema_migrations");
    for (version, name, sql) in [
        (
            1,
            "registry",
            include_str!("../../migrations/0001_registry.sql"),
        ),
        (
            2,
            "signatures",
            include_str!("../../migrations/0002_signatures.sql"),
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("migration {version}: {e}"));
        sqlx::query("INSERT INTO schema_migrations VALUES (?1, ?2, '2025-03-01T00:00:00.000000Z')")
            .bind(version)
            .bind(name)
            .execute(&pool)
            .await
            .expect("record the migration");
    }
    // A listing, as a cws of that schema would have published it.
    sqlx::query(
        "INSERT INTO listings (id, publisher, slug, name, description, category, template,
             visibility, visibility_kind, creator, created_at, updated_at, search_text,
             publisher_email)
         VALUES ('alice/python-ml', 'alice', 'python-ml', 'Python ML', 'old', 'machine-learning',
             'python-ml', 'public', 'public', 'alice <alice@example.edu>',
             '2025-03-01T00:00:00.000000Z', '2025-03-01T00:00:00.000000Z',
             'alice/python-ml python ml old machine-learning', 'alice@example.edu')",
    )
    .execute(&pool)
    .await
    .expect("a listing");
    pool.close().await;
}

#[tokio::test]
async fn a_database_before_tokens_migrates_forward() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("registry.db");
    previous_schema(&path).await;

    let store = testing::open_sqlite(&path).await;
    let made = store
        .create_token(&NewToken {
            identity: fixtures::user("alice").identity,
            orgs: vec![],
            scope: Scope::Read,
            expires_at: None,
        })
        .await
        .expect("create a token after migrating");
    assert_eq!(
        store
            .authenticate(&made.secret, Utc::now())
            .await
            .expect("authenticate"),
        Some(made.info.clone())
    );
    // The data of the old schema is kept, and the registry still writes.
    let alice = fixtures::user("alice");
    let listing: ListingId = "alice/python-ml".parse().expect("listing id");
    let rated = store
        .rate(&alice, &listing, 4, None)
        .await
        .expect("rate the old listing");
    assert_eq!(rated.count, 1);
    drop(store);

    // Migration 3 is recorded once; opening again changes nothing and keeps the token.
    let store = testing::open_sqlite(&path).await;
    assert_eq!(
        store.list_tokens().await.expect("list tokens"),
        vec![made.info]
    );
    drop(store);
    let raw = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .expect("open the database file");
    let versions: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, name FROM schema_migrations ORDER BY version")
            .fetch_all(&raw)
            .await
            .expect("schema_migrations");
    assert_eq!(
        versions,
        vec![
            (1, "registry".to_string()),
            (2, "signatures".to_string()),
            (3, "tokens".to_string())
        ]
    );
}
