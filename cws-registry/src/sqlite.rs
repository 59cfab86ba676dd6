//! The embedded store: SQLite at `$CWS_HOME/registry.db`.
//!
//! Safe with concurrent `cws` processes and crashes: the database is in WAL mode with
//! `synchronous = FULL` (a committed write survives a crash or power loss), every change is one
//! `BEGIN IMMEDIATE` transaction (a writer waits for another, up to [`BUSY_TIMEOUT`], instead
//! of failing on a lock upgrade), and the counters browse reads (ratings, downloads, latest
//! version) are kept in the same transaction as the rows they summarize.
//!
//! Migrations are plain SQL files under `migrations/`, applied in order, each once, in one
//! write transaction, and recorded in `schema_migrations`. A database from a newer cws (a
//! migration this build does not know) is refused rather than misread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::model::*;
use crate::tokens::{self, IssuedToken, NewToken, TokenInfo, TokenStore};
use crate::{Registry, RegistryError, RegistryResult, check_stars, check_text};

/// Which listings a viewer may see: parameters ?1 handle (or NULL), ?2 admin, ?3 JSON array
/// of the viewer's organizations.
macro_rules! visible_sql {
    () => {
        "(l.visibility_kind IN ('public', 'community') \
          OR (?1 IS NOT NULL AND l.publisher = ?1) \
          OR ?2 = 1 \
          OR (l.visibility_kind = 'institutional' \
              AND l.visibility_name IN (SELECT value FROM json_each(?3))))"
    };
}

/// How long a writer waits for another process's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// The migrations, in order: (number, name, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "registry",
        include_str!("../migrations/0001_registry.sql"),
    ),
    (
        2,
        "signatures",
        include_str!("../migrations/0002_signatures.sql"),
    ),
    (3, "tokens", include_str!("../migrations/0003_tokens.sql")),
];

/// The embedded registry store.
#[derive(Debug, Clone)]
pub struct SqliteRegistry {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteRegistry {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> RegistryResult<SqliteRegistry> {
        let store = path.display().to_string();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| RegistryError::Store {
                store: store.clone(),
                message: format!("creating {}: {e}", dir.display()),
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Two `cws` processes opening the same new file at once can meet SQLite answers that
        // do not wait on the busy handler: switching the file to WAL needs an exclusive lock,
        // and a reader can arrive while the other is recovering the WAL index. Those are
        // retried, with backoff, for as long as a writer would wait.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            match SqliteRegistry::open_once(path, options.clone()).await {
                Ok(registry) => return Ok(registry),
                Err(OpenFailure::Busy(e)) if started.elapsed() < BUSY_TIMEOUT => {
                    tracing::debug!(store = %store, error = %e, "registry busy while opening; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(OpenFailure::Busy(e)) => return Err(store_error(&store, e)),
                Err(OpenFailure::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn open_once(
        path: &Path,
        options: SqliteConnectOptions,
    ) -> Result<SqliteRegistry, OpenFailure> {
        let store = path.display().to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| OpenFailure::from_sqlx(&store, e))?;
        let registry = SqliteRegistry {
            pool,
            path: path.to_path_buf(),
        };
        registry.migrate().await?;
        Ok(registry)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_err(&self, e: sqlx::Error) -> OpenFailure {
        OpenFailure::from_sqlx(&self.path.display().to_string(), e)
    }

    fn err(&self, e: sqlx::Error) -> RegistryError {
        store_error(&self.path.display().to_string(), e)
    }

    async fn write(&self) -> RegistryResult<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))
    }

    async fn migrate(&self) -> Result<(), OpenFailure> {
        // The common case, an up-to-date database, is a plain read: no write lock is taken,
        // so concurrent `cws` processes that only read do not queue behind each other.
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM schema_migrations
             WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
        )
        .fetch_optional(&self.pool)
        .await
        .ok()
        .flatten();
        if current == Some(known) {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.open_err(e))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| self.open_err(e))?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.open_err(e))?;
        let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
        if let Some(newer) = applied.iter().copied().find(|v| *v > known) {
            return Err(OpenFailure::Fatal(RegistryError::Store {
                store: self.path.display().to_string(),
                message: format!(
                    "the database has schema migration {newer}, newer than this build knows \
                     ({known}); it was written by a newer cws"
                ),
            }));
        }
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.open_err(e))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            )
            .bind(version)
            .bind(name)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.open_err(e))?;
        }
        tx.commit().await.map_err(|e| self.open_err(e))
    }

    /// The listing row if the viewer may see it; otherwise `UnknownListing` with suggestions.
    async fn visible_row<'e, E>(
        &self,
        exec: E,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<SqliteRow>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        let (handle, admin, orgs) = viewer_params(viewer);
        let row = sqlx::query(concat!(
            "SELECT * FROM listings l WHERE l.id = ?4 AND ",
            visible_sql!()
        ))
        .bind(handle)
        .bind(admin)
        .bind(orgs)
        .bind(id.to_string())
        .fetch_optional(exec)
        .await
        .map_err(|e| self.err(e))?;
        match row {
            Some(r) => Ok(r),
            None => Err(self.unknown(viewer, id).await),
        }
    }

    async fn unknown(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryError {
        let (handle, admin, orgs) = viewer_params(viewer);
        let ids: Vec<String> = sqlx::query_scalar(concat!(
            "SELECT l.id FROM listings l WHERE ",
            visible_sql!()
        ))
        .bind(handle)
        .bind(admin)
        .bind(orgs)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let wanted = id.to_string();
        let mut suggestions =
            cws_util::suggest::close_matches(&wanted, ids.iter().map(String::as_str), 3);
        // The same slug under another publisher is the likeliest mistake.
        for other in ids.iter().filter(|i| i.ends_with(&format!("/{}", id.slug))) {
            if !suggestions.contains(other) && suggestions.len() < 3 {
                suggestions.push(other.clone());
            }
        }
        RegistryError::UnknownListing {
            id: wanted,
            suggestions,
        }
    }

    async fn versions_of(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &str,
    ) -> RegistryResult<Vec<VersionInfo>> {
        let rows = sqlx::query("SELECT * FROM versions WHERE listing_id = ?1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let region_rows =
            sqlx::query("SELECT * FROM version_regions WHERE listing_id = ?1 ORDER BY region")
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let mut regions: BTreeMap<String, BTreeMap<String, RegionImage>> = BTreeMap::new();
        for r in region_rows {
            let snapshots: String = r.get("snapshot_ids");
            regions.entry(r.get("version")).or_default().insert(
                r.get("region"),
                RegionImage {
                    ami_id: r.get("ami_id"),
                    architecture: r.get("architecture"),
                    snapshot_ids: serde_json::from_str(&snapshots).unwrap_or_default(),
                    size_gib: r.get::<Option<i64>, _>("size_gib").map(|s| s as u32),
                },
            );
        }
        let mut out: Vec<VersionInfo> = rows
            .into_iter()
            .map(|r| {
                let version: String = r.get("version");
                VersionInfo {
                    regions: regions.remove(&version).unwrap_or_default(),
                    revision: r.get::<i64, _>("revision") as u32,
                    template_digest: r.get("template_digest"),
                    created_at: parse_time(r.get("created_at")),
                    notes: r.get("notes"),
                    speedup: r.get("speedup"),
                    signature: SignatureInfo::unsigned(),
                    revoked: r.get::<Option<String>, _>("revoked_reason").map(|reason| {
                        Revocation {
                            reason,
                            by: r.get::<Option<String>, _>("revoked_by").unwrap_or_default(),
                            at: parse_time(
                                r.get::<Option<String>, _>("revoked_at").unwrap_or_default(),
                            ),
                        }
                    }),
                    quarantined: r
                        .get::<Option<String>, _>("quarantine_reason")
                        .map(|reason| Quarantine {
                            reason,
                            at: parse_time(
                                r.get::<Option<String>, _>("quarantined_at")
                                    .unwrap_or_default(),
                            ),
                        }),
                    downloads: r.get::<i64, _>("downloads") as u64,
                    signed: signed_of(&r),
                    version,
                }
            })
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.semver()));
        Ok(out)
    }

    /// Recomputes the listing's latest version and flags from its versions.
    async fn refresh_latest(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &str,
    ) -> RegistryResult<()> {
        let versions = self.versions_of(tx, id).await?;
        let newest = versions.first();
        let latest = versions.iter().find(|v| v.refusal().is_none());
        sqlx::query(
            "UPDATE listings SET latest_version = ?2, latest_revoked = ?3,
                 latest_quarantined = ?4 WHERE id = ?1",
        )
        .bind(id)
        .bind(latest.map(|v| v.version.clone()))
        .bind(newest.is_some_and(|v| v.revoked.is_some()))
        .bind(newest.is_some_and(|v| v.quarantined.is_some()))
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Checks that the actor publishes this listing or administers the registry.
    fn may_manage(
        actor: &Actor,
        row: &SqliteRow,
        action: &str,
        id: &ListingId,
    ) -> RegistryResult<()> {
        let publisher: String = row.get("publisher");
        if actor.admin || actor.identity.handle == publisher {
            Ok(())
        } else {
            Err(RegistryError::Forbidden {
                actor: actor.identity.handle.clone(),
                action: action.to_string(),
                listing: id.to_string(),
                why: format!("only its publisher ({publisher}) or an admin may"),
            })
        }
    }

    async fn version_row(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<SqliteRow> {
        let row = sqlx::query("SELECT * FROM versions WHERE listing_id = ?1 AND version = ?2")
            .bind(id.to_string())
            .bind(version.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(r) => Ok(r),
            None => {
                let known = self
                    .versions_of(tx, &id.to_string())
                    .await?
                    .into_iter()
                    .map(|v| v.version)
                    .collect();
                Err(RegistryError::UnknownVersion {
                    listing: id.to_string(),
                    version: version.to_string(),
                    known,
                })
            }
        }
    }

    async fn summary_of(&self, row: &SqliteRow, prior: f64) -> ListingSummary {
        summary(row, prior)
    }

    async fn prior_mean<'e, E>(&self, exec: E) -> RegistryResult<f64>
    where
        E: sqlx::Executor<'e, Database = Sqlite>,
    {
        sqlx::query_scalar(PRIOR_SQL)
            .fetch_one(exec)
            .await
            .map_err(|e| self.err(e))
    }
}

/// The global mean rating (the prior of the Bayesian average).
const PRIOR_SQL: &str = "SELECT CASE WHEN SUM(rating_count) > 0 \
     THEN CAST(SUM(rating_sum) AS REAL) / SUM(rating_count) ELSE 3.0 END FROM listings";

fn viewer_params(viewer: Option<&Actor>) -> (Option<String>, bool, String) {
    match viewer {
        Some(a) => (
            Some(a.identity.handle.clone()),
            a.admin,
            serde_json::to_string(&a.orgs).unwrap_or_else(|_| "[]".into()),
        ),
        None => (None, false, "[]".into()),
    }
}

/// Why one attempt at opening the database failed: SQLite was busy (worth another try) or
/// anything else.
enum OpenFailure {
    Busy(sqlx::Error),
    Fatal(RegistryError),
}

impl OpenFailure {
    fn from_sqlx(store: &str, e: sqlx::Error) -> OpenFailure {
        if is_busy(&e) {
            OpenFailure::Busy(e)
        } else {
            OpenFailure::Fatal(store_error(store, e))
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code (BUSY_RECOVERY, BUSY_SNAPSHOT, ...).
fn is_busy(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

pub(crate) fn store_error(store: &str, e: sqlx::Error) -> RegistryError {
    RegistryError::Store {
        store: store.to_string(),
        message: e.to_string(),
    }
}

pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(s: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn summary(row: &SqliteRow, prior: f64) -> ListingSummary {
    let sum = row.get::<i64, _>("rating_sum").max(0) as u64;
    let count = row.get::<i64, _>("rating_count").max(0) as u64;
    let visibility: String = row.get("visibility");
    ListingSummary {
        id: ListingId {
            publisher: row.get("publisher"),
            slug: row.get("slug"),
        },
        name: row.get("name"),
        publisher: row.get("publisher"),
        category: row.get("category"),
        description: row.get("description"),
        template: row.get("template"),
        visibility: Visibility::from_str(&visibility).unwrap_or(Visibility::Private),
        latest_version: row.get("latest_version"),
        rating: RatingSummary::from_sum(sum, count),
        score: bayesian_score(sum, count, prior),
        downloads: row.get::<i64, _>("downloads").max(0) as u64,
        signature: SignatureInfo::unsigned(),
        revoked: row.get("latest_revoked"),
        quarantined: row.get("latest_quarantined"),
        publisher_email: row.try_get("publisher_email").unwrap_or_default(),
        // Present when the query joined the latest version (browse); `listing` fills it from
        // the versions.
        latest_signed: (
            row.try_get::<Option<i64>, _>("latest_rev")
                .ok()
                .flatten()
                .unwrap_or(0) as u32,
            signed_of(row),
        ),
    }
}

/// The signed document columns of a versions row (or a join that selected them).
fn signed_of(row: &SqliteRow) -> Option<crate::trust::SignedDocument> {
    let revision = row
        .try_get::<Option<i64>, _>("signed_revision")
        .ok()
        .flatten()?;
    Some(crate::trust::SignedDocument {
        revision: revision as u32,
        document: row
            .try_get::<Option<String>, _>("signed_document")
            .ok()
            .flatten()?,
        signature: row
            .try_get::<Option<String>, _>("signature")
            .ok()
            .flatten()?,
    })
}

/// Who may import a listing (its publisher, or an admin: a mirror's operator), and every
/// region and text in it checked as a publish would be.
pub(crate) fn check_import(actor: &Actor, export: &ListingExport) -> RegistryResult<()> {
    if !actor.admin && actor.identity.handle != export.id.publisher {
        return Err(RegistryError::Forbidden {
            actor: actor.identity.handle.clone(),
            action: "import".into(),
            listing: export.id.to_string(),
            why: "only its publisher or an admin of this registry may".into(),
        });
    }
    for v in &export.versions {
        let version = parse_version(&v.version)?;
        for (region, image) in &v.regions {
            check_publish(&Publish {
                listing: export.id.clone(),
                name: export.name.clone(),
                description: export.description.clone(),
                category: export.category.clone(),
                template: export.template.clone(),
                visibility: export.visibility.clone(),
                version: version.clone(),
                template_digest: v.template_digest.clone(),
                region: region.clone(),
                image: image.clone(),
                notes: v.notes.clone(),
                speedup: v.speedup,
            })?;
        }
    }
    Ok(())
}

/// Refuses an import that would rebind a listing's publisher email.
pub(crate) fn check_email_binding(
    listing: &str,
    held: Option<&str>,
    offered: &str,
) -> RegistryResult<()> {
    match held {
        Some(h) if !h.is_empty() && h != offered => Err(RegistryError::invalid(
            "publisher_email",
            offered,
            &format!("the email {listing} was first published with ({h})"),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_publish(p: &Publish) -> RegistryResult<()> {
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > MAX_SHORT_TEXT_CHARS {
        return Err(RegistryError::invalid(
            "name",
            name,
            "a listing name of 1 to 200 characters",
        ));
    }
    check_text("description", &p.description, MAX_DESCRIPTION_CHARS)?;
    check_category(&p.category)?;
    if let Some(n) = &p.notes {
        check_text("notes", n, MAX_DESCRIPTION_CHARS)?;
    }
    let ami_ok = p.image.ami_id.len() <= 64
        && p.image.ami_id.starts_with("ami-")
        && p.image.ami_id[4..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
        && p.image.ami_id.len() > 4;
    if !ami_ok {
        return Err(RegistryError::invalid(
            "ami_id",
            &p.image.ami_id,
            "an image id like ami-0123456789abcdef0",
        ));
    }
    if !matches!(p.image.architecture.as_str(), "x86_64" | "arm64") {
        return Err(RegistryError::invalid(
            "architecture",
            &p.image.architecture,
            "x86_64 or arm64",
        ));
    }
    let region_ok = !p.region.is_empty()
        && p.region.len() <= 32
        && p.region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !region_ok {
        return Err(RegistryError::invalid(
            "region",
            &p.region,
            "a region code like us-east-1",
        ));
    }
    if let Some(s) = p.speedup
        && !(s.is_finite() && s > 0.0)
    {
        return Err(RegistryError::invalid(
            "speedup",
            &s.to_string(),
            "a positive number",
        ));
    }
    Ok(())
}

/// Checks a category: lowercase words joined by `-`.
pub fn check_category(c: &str) -> RegistryResult<()> {
    let ok = !c.is_empty()
        && c.len() <= 64
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            "category",
            c,
            "lowercase letters, digits and `-`, e.g. machine-learning",
        ))
    }
}

pub(crate) fn visibility_parts(v: &Visibility) -> (&'static str, Option<String>) {
    match v {
        Visibility::Public => ("public", None),
        Visibility::Community(c) => ("community", Some(c.clone())),
        Visibility::Institutional(o) => ("institutional", Some(o.clone())),
        Visibility::Private => ("private", None),
    }
}

pub(crate) fn like_pattern(word: &str) -> String {
    let mut p = String::from("%");
    for c in word.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

#[async_trait]
impl Registry for SqliteRegistry {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn publish(&self, actor: &Actor, p: &Publish) -> RegistryResult<Published> {
        if actor.identity.handle != p.listing.publisher {
            return Err(RegistryError::Forbidden {
                actor: actor.identity.handle.clone(),
                action: "publish".into(),
                listing: p.listing.to_string(),
                why: format!(
                    "a listing is published under its publisher's handle ({}/{})",
                    actor.identity.handle, p.listing.slug
                ),
            });
        }
        check_publish(p)?;
        let id = p.listing.to_string();
        let version = p.version.to_string();
        let now = now_text();
        let (kind, vname) = visibility_parts(&p.visibility);
        let search =
            format!("{} {} {} {}", id, p.name.trim(), p.description, p.category).to_lowercase();
        let mut tx = self.write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT id FROM listings WHERE id = ?1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let created_listing = exists.is_none();
        if created_listing {
            sqlx::query(
                "INSERT INTO listings (id, publisher, slug, name, description, category,
                     template, visibility, visibility_kind, visibility_name, creator,
                     created_at, updated_at, search_text, publisher_email)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)",
            )
            .bind(&id)
            .bind(&p.listing.publisher)
            .bind(&p.listing.slug)
            .bind(p.name.trim())
            .bind(&p.description)
            .bind(&p.category)
            .bind(&p.template)
            .bind(p.visibility.to_string())
            .bind(kind)
            .bind(&vname)
            .bind(actor.identity.to_string())
            .bind(&now)
            .bind(&search)
            .bind(&actor.identity.email)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        } else {
            sqlx::query(
                "UPDATE listings SET name = ?2, description = ?3, category = ?4,
                     visibility = ?5, visibility_kind = ?6, visibility_name = ?7,
                     updated_at = ?8, search_text = ?9 WHERE id = ?1",
            )
            .bind(&id)
            .bind(p.name.trim())
            .bind(&p.description)
            .bind(&p.category)
            .bind(p.visibility.to_string())
            .bind(kind)
            .bind(&vname)
            .bind(&now)
            .bind(&search)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        let revision: Option<i64> = sqlx::query_scalar(
            "SELECT revision FROM versions WHERE listing_id = ?1 AND version = ?2",
        )
        .bind(&id)
        .bind(&version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let created_version = revision.is_none();
        let mut revision = revision.unwrap_or(0);
        if created_version {
            sqlx::query(
                "INSERT INTO versions (listing_id, version, revision, template_digest, notes,
                     speedup, created_at) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)",
            )
            .bind(&id)
            .bind(&version)
            .bind(&p.template_digest)
            .bind(&p.notes)
            .bind(p.speedup)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT ami_id FROM version_regions
             WHERE listing_id = ?1 AND version = ?2 AND region = ?3",
        )
        .bind(&id)
        .bind(&version)
        .bind(&p.region)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let changed = match existing {
            Some(ami) if ami == p.image.ami_id => false,
            Some(ami) => {
                return Err(RegistryError::RegionTaken {
                    listing: id,
                    version,
                    region: p.region.clone(),
                    existing: ami,
                });
            }
            None => {
                revision += 1;
                sqlx::query(
                    "INSERT INTO version_regions (listing_id, version, region, ami_id,
                         architecture, snapshot_ids, size_gib, revision, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .bind(&id)
                .bind(&version)
                .bind(&p.region)
                .bind(&p.image.ami_id)
                .bind(&p.image.architecture)
                .bind(serde_json::to_string(&p.image.snapshot_ids).unwrap_or_default())
                .bind(p.image.size_gib.map(i64::from))
                .bind(revision)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                sqlx::query(
                    "UPDATE versions SET revision = ?3 WHERE listing_id = ?1 AND version = ?2",
                )
                .bind(&id)
                .bind(&version)
                .bind(revision)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                true
            }
        };
        self.refresh_latest(&mut tx, &id).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Published {
            listing: p.listing.clone(),
            version,
            revision: revision as u32,
            region: p.region.clone(),
            ami_id: p.image.ami_id.clone(),
            created_listing,
            created_version,
            changed,
            visibility: p.visibility.clone(),
        })
    }

    async fn listing(
        &self,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<ListingDetail> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        let row = self.visible_row(&mut *conn, viewer, id).await?;
        let prior = self.prior_mean(&mut *conn).await?;
        let summary = self.summary_of(&row, prior).await;
        let key = id.to_string();
        let versions = self.versions_of(&mut conn, &key).await?;
        let mut channels: BTreeMap<String, String> = BTreeMap::new();
        for r in sqlx::query("SELECT name, version FROM channels WHERE listing_id = ?1")
            .bind(&key)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?
        {
            channels.insert(r.get("name"), r.get("version"));
        }
        if let Some(l) = &summary.latest_version {
            channels.insert("latest".into(), l.clone());
        }
        let reviews = reviews_of(&mut conn, &key).await.map_err(|e| self.err(e))?;
        let mut summary = summary;
        if let Some(latest) = versions
            .iter()
            .find(|v| Some(&v.version) == summary.latest_version.as_ref())
        {
            summary.latest_signed = (latest.revision, latest.signed.clone());
        }
        Ok(ListingDetail {
            creator: row.get("creator"),
            summary,
            channels,
            versions,
            reviews,
        })
    }

    async fn browse(
        &self,
        viewer: Option<&Actor>,
        query: &BrowseQuery,
    ) -> RegistryResult<Vec<ListingSummary>> {
        let words: Vec<String> = query
            .text
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let sql = match query.sort {
            Sort::Score => concat!(
                "SELECT l.id, l.publisher, l.slug, l.name, l.description, l.category, l.template, l.visibility, l.latest_version, l.latest_revoked, l.latest_quarantined, l.rating_sum, l.rating_count, l.downloads, l.publisher_email, lv.revision AS latest_rev, lv.signed_revision, lv.signed_document, lv.signature, (5.0 * p.m + l.rating_sum) / (5.0 + l.rating_count) AS score ",
                "FROM listings l LEFT JOIN versions lv ON lv.listing_id = l.id ",
                "AND lv.version = l.latest_version, (",
                "SELECT CASE WHEN SUM(rating_count) > 0 ",
                "THEN CAST(SUM(rating_sum) AS REAL) / SUM(rating_count) ELSE 3.0 END AS m ",
                "FROM listings) p WHERE l.latest_version IS NOT NULL ",
                "AND (?4 IS NULL OR l.category = ?4) ",
                "AND (?5 IS NULL OR (l.visibility_kind = 'community' AND l.visibility_name = ?5)) ",
                "AND (?6 IS NULL OR l.search_text LIKE ?6 ESCAPE '\\') AND ",
                visible_sql!(),
                " ORDER BY score DESC, l.downloads DESC, l.id LIMIT ?7"
            ),
            Sort::Rating => concat!(
                "SELECT l.id, l.publisher, l.slug, l.name, l.description, l.category, l.template, l.visibility, l.latest_version, l.latest_revoked, l.latest_quarantined, l.rating_sum, l.rating_count, l.downloads, l.publisher_email, lv.revision AS latest_rev, lv.signed_revision, lv.signed_document, lv.signature FROM listings l LEFT JOIN versions lv ON lv.listing_id = l.id ",
                "AND lv.version = l.latest_version WHERE l.latest_version IS NOT NULL ",
                "AND (?4 IS NULL OR l.category = ?4) ",
                "AND (?5 IS NULL OR (l.visibility_kind = 'community' AND l.visibility_name = ?5)) ",
                "AND (?6 IS NULL OR l.search_text LIKE ?6 ESCAPE '\\') AND ",
                visible_sql!(),
                " ORDER BY l.rating_count > 0 DESC, ",
                "CAST(l.rating_sum AS REAL) / MAX(l.rating_count, 1) DESC, ",
                "l.rating_count DESC, l.id LIMIT ?7"
            ),
            Sort::Downloads => concat!(
                "SELECT l.id, l.publisher, l.slug, l.name, l.description, l.category, l.template, l.visibility, l.latest_version, l.latest_revoked, l.latest_quarantined, l.rating_sum, l.rating_count, l.downloads, l.publisher_email, lv.revision AS latest_rev, lv.signed_revision, lv.signed_document, lv.signature FROM listings l LEFT JOIN versions lv ON lv.listing_id = l.id ",
                "AND lv.version = l.latest_version WHERE l.latest_version IS NOT NULL ",
                "AND (?4 IS NULL OR l.category = ?4) ",
                "AND (?5 IS NULL OR (l.visibility_kind = 'community' AND l.visibility_name = ?5)) ",
                "AND (?6 IS NULL OR l.search_text LIKE ?6 ESCAPE '\\') AND ",
                visible_sql!(),
                " ORDER BY l.downloads DESC, l.id LIMIT ?7"
            ),
            Sort::Recent => concat!(
                "SELECT l.id, l.publisher, l.slug, l.name, l.description, l.category, l.template, l.visibility, l.latest_version, l.latest_revoked, l.latest_quarantined, l.rating_sum, l.rating_count, l.downloads, l.publisher_email, lv.revision AS latest_rev, lv.signed_revision, lv.signed_document, lv.signature FROM listings l LEFT JOIN versions lv ON lv.listing_id = l.id ",
                "AND lv.version = l.latest_version WHERE l.latest_version IS NOT NULL ",
                "AND (?4 IS NULL OR l.category = ?4) ",
                "AND (?5 IS NULL OR (l.visibility_kind = 'community' AND l.visibility_name = ?5)) ",
                "AND (?6 IS NULL OR l.search_text LIKE ?6 ESCAPE '\\') AND ",
                visible_sql!(),
                " ORDER BY l.updated_at DESC, l.rowid DESC LIMIT ?7"
            ),
        };
        // Further words are checked below, so the SQL limit holds only for one word or none.
        let sql_limit: i64 = if query.limit == 0 || words.len() > 1 {
            -1
        } else {
            query.limit as i64
        };
        let (handle, admin, orgs) = viewer_params(viewer);
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        let prior = self.prior_mean(&mut *conn).await?;
        let rows = sqlx::query(sql)
            .bind(handle)
            .bind(admin)
            .bind(orgs)
            .bind(&query.category)
            .bind(&query.community)
            .bind(words.first().map(|w| like_pattern(w)))
            .bind(sql_limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if words.len() > 1 {
                let text = format!(
                    "{} {} {} {}",
                    row.get::<&str, _>("id"),
                    row.get::<&str, _>("name"),
                    row.get::<&str, _>("description"),
                    row.get::<&str, _>("category")
                )
                .to_lowercase();
                if !words.iter().all(|w| text.contains(w.as_str())) {
                    continue;
                }
            }
            out.push(summary(row, prior));
            if query.limit != 0 && out.len() == query.limit {
                break;
            }
        }
        Ok(out)
    }

    async fn find_image(
        &self,
        viewer: Option<&Actor>,
        ami_id: &str,
    ) -> RegistryResult<Vec<ImageListing>> {
        let (handle, admin, orgs) = viewer_params(viewer);
        let rows = sqlx::query(concat!(
            "SELECT r.listing_id, r.version, r.region FROM version_regions r ",
            "JOIN listings l ON l.id = r.listing_id WHERE r.ami_id = ?4 AND ",
            visible_sql!(),
            " ORDER BY r.listing_id, r.version, r.region"
        ))
        .bind(handle)
        .bind(admin)
        .bind(orgs)
        .bind(ami_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.get("listing_id");
            if let Ok(listing) = id.parse() {
                out.push(ImageListing {
                    listing,
                    version: r.get("version"),
                    region: r.get("region"),
                });
            }
        }
        Ok(out)
    }

    async fn set_channel(
        &self,
        actor: &Actor,
        id: &ListingId,
        channel: &str,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        if channel == "latest" {
            return Err(RegistryError::invalid(
                "channel",
                channel,
                "another name: `latest` always points at the newest launchable version",
            ));
        }
        let ok = !channel.is_empty()
            && channel.len() <= 32
            && channel
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(RegistryError::invalid(
                "channel",
                channel,
                "1 to 32 lowercase letters, digits and `-`, e.g. stable",
            ));
        }
        let mut tx = self.write().await?;
        let row = self.visible_row(&mut *tx, Some(actor), id).await?;
        Self::may_manage(actor, &row, "move a channel of", id)?;
        self.version_row(&mut tx, id, version).await?;
        sqlx::query(
            "INSERT INTO channels (listing_id, name, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (listing_id, name) DO UPDATE SET version = excluded.version",
        )
        .bind(id.to_string())
        .bind(channel)
        .bind(version.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn rate(
        &self,
        actor: &Actor,
        id: &ListingId,
        stars: u8,
        review: Option<&str>,
    ) -> RegistryResult<RatingSummary> {
        check_stars(i64::from(stars))?;
        if let Some(r) = review {
            check_text("review", r, MAX_REVIEW_CHARS)?;
        }
        let review = review.map(str::trim).filter(|r| !r.is_empty());
        let key = id.to_string();
        let now = now_text();
        let mut tx = self.write().await?;
        self.visible_row(&mut *tx, Some(actor), id).await?;
        let old: Option<i64> =
            sqlx::query_scalar("SELECT stars FROM ratings WHERE listing_id = ?1 AND author = ?2")
                .bind(&key)
                .bind(&actor.identity.handle)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO ratings (listing_id, author, stars, review, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (listing_id, author) DO UPDATE SET stars = excluded.stars,
                 review = excluded.review, updated_at = excluded.updated_at",
        )
        .bind(&key)
        .bind(&actor.identity.handle)
        .bind(i64::from(stars))
        .bind(review)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let (dsum, dcount) = match old {
            Some(o) => (i64::from(stars) - o, 0),
            None => (i64::from(stars), 1),
        };
        let row = sqlx::query(
            "UPDATE listings SET rating_sum = rating_sum + ?2, rating_count = rating_count + ?3
             WHERE id = ?1 RETURNING rating_sum, rating_count",
        )
        .bind(&key)
        .bind(dsum)
        .bind(dcount)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(RatingSummary::from_sum(
            row.get::<i64, _>("rating_sum") as u64,
            row.get::<i64, _>("rating_count") as u64,
        ))
    }

    async fn reviews(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryResult<Vec<Review>> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        self.visible_row(&mut *conn, viewer, id).await?;
        reviews_of(&mut conn, &id.to_string())
            .await
            .map_err(|e| self.err(e))
    }

    async fn record_download(&self, d: &Download) -> RegistryResult<()> {
        let key = d.listing.to_string();
        let version = d.version.to_string();
        let mut tx = self.write().await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM versions WHERE listing_id = ?1 AND version = ?2")
                .bind(&key)
                .bind(&version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        if known.is_none() {
            drop(tx);
            let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM listings WHERE id = ?1")
                .bind(&key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.err(e))?;
            if exists.is_none() {
                return Err(RegistryError::UnknownListing {
                    id: key,
                    suggestions: Vec::new(),
                });
            }
            return Err(self
                .version_row(&mut conn, &d.listing, &d.version)
                .await
                .err()
                .unwrap_or(RegistryError::UnknownVersion {
                    listing: key,
                    version,
                    known: Vec::new(),
                }));
        }
        sqlx::query(
            "INSERT INTO downloads (listing_id, version, day, count) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (listing_id, version, day) DO UPDATE SET count = count + 1",
        )
        .bind(&key)
        .bind(&version)
        .bind(d.day.format("%Y-%m-%d").to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "UPDATE versions SET downloads = downloads + 1 WHERE listing_id = ?1 AND version = ?2",
        )
        .bind(&key)
        .bind(&version)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query("UPDATE listings SET downloads = downloads + 1 WHERE id = ?1")
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if let Some(by) = &d.by {
            sqlx::query("INSERT OR IGNORE INTO uses (listing_id, handle) VALUES (?1, ?2)")
                .bind(&key)
                .bind(by)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn report(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: ReportReason,
        message: Option<&str>,
    ) -> RegistryResult<ReportOutcome> {
        if let Some(m) = message {
            check_text("message", m, MAX_REPORT_MESSAGE_CHARS)?;
        }
        let key = id.to_string();
        let v = version.to_string();
        let now = now_text();
        let mut tx = self.write().await?;
        self.visible_row(&mut *tx, Some(actor), id).await?;
        let vrow = self.version_row(&mut tx, id, version).await?;
        sqlx::query(
            "INSERT INTO reports (listing_id, version, reporter, reason, message, by_admin,
                 cleared, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)
             ON CONFLICT (listing_id, version, reporter, reason) DO UPDATE SET
                 message = excluded.message, by_admin = excluded.by_admin, cleared = 0,
                 created_at = excluded.created_at",
        )
        .bind(&key)
        .bind(&v)
        .bind(&actor.identity.handle)
        .bind(reason.as_str())
        .bind(message)
        .bind(actor.admin)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT reporter) AS n, COALESCE(MAX(by_admin), 0) AS admin
             FROM reports WHERE listing_id = ?1 AND version = ?2 AND reason = 'security'
                 AND cleared = 0",
        )
        .bind(&key)
        .bind(&v)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let n = row.get::<i64, _>("n") as u32;
        let by_admin: i64 = row.get("admin");
        let already = vrow.get::<Option<String>, _>("quarantine_reason").is_some();
        let quarantine = n >= QUARANTINE_REPORTS || by_admin != 0;
        if quarantine && !already {
            let why = if by_admin != 0 {
                "a security report from an admin".to_string()
            } else {
                format!("security reports from {n} people")
            };
            sqlx::query(
                "UPDATE versions SET quarantine_reason = ?3, quarantined_at = ?4
                 WHERE listing_id = ?1 AND version = ?2",
            )
            .bind(&key)
            .bind(&v)
            .bind(why)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            self.refresh_latest(&mut tx, &key).await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(ReportOutcome {
            listing: id.clone(),
            version: v,
            security_reports: n,
            quarantined: quarantine || already,
        })
    }

    async fn clear_reports(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        if !actor.admin {
            return Err(RegistryError::Forbidden {
                actor: actor.identity.handle.clone(),
                action: "clear the reports of".into(),
                listing: format!("{id}@{version}"),
                why: "only an admin of the registry may".into(),
            });
        }
        let key = id.to_string();
        let v = version.to_string();
        let mut tx = self.write().await?;
        self.visible_row(&mut *tx, Some(actor), id).await?;
        self.version_row(&mut tx, id, version).await?;
        sqlx::query(
            "UPDATE reports SET cleared = 1 WHERE listing_id = ?1 AND version = ?2
                 AND reason = 'security'",
        )
        .bind(&key)
        .bind(&v)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "UPDATE versions SET quarantine_reason = NULL, quarantined_at = NULL
             WHERE listing_id = ?1 AND version = ?2",
        )
        .bind(&key)
        .bind(&v)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        self.refresh_latest(&mut tx, &key).await?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn sign_version(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        signed: &crate::trust::SignedDocument,
    ) -> RegistryResult<()> {
        let mut tx = self.write().await?;
        let row = self.visible_row(&mut *tx, Some(actor), id).await?;
        let publisher: String = row.get("publisher");
        if actor.identity.handle != publisher {
            return Err(RegistryError::Forbidden {
                actor: actor.identity.handle.clone(),
                action: "sign a version of".into(),
                listing: id.to_string(),
                why: format!("only its publisher ({publisher}) signs its versions"),
            });
        }
        let vrow = self.version_row(&mut tx, id, version).await?;
        let current = vrow.get::<i64, _>("revision") as u32;
        let held = vrow
            .get::<Option<i64>, _>("signed_revision")
            .map(|r| r as u32)
            .unwrap_or(0);
        if signed.revision != current || signed.revision < held {
            return Err(RegistryError::Rollback {
                listing: id.to_string(),
                version: version.to_string(),
                held: current.max(held),
                offered: signed.revision,
            });
        }
        sqlx::query(
            "UPDATE versions SET signed_revision = ?3, signed_document = ?4, signature = ?5
             WHERE listing_id = ?1 AND version = ?2",
        )
        .bind(id.to_string())
        .bind(version.to_string())
        .bind(i64::from(signed.revision))
        .bind(&signed.document)
        .bind(&signed.signature)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    async fn import(&self, actor: &Actor, export: &ListingExport) -> RegistryResult<Imported> {
        check_import(actor, export)?;
        if export.format != EXPORT_FORMAT {
            return Err(RegistryError::invalid(
                "format",
                &export.format,
                EXPORT_FORMAT,
            ));
        }
        check_category(&export.category)?;
        let key = export.id.to_string();
        let now = now_text();
        let (kind, vname) = visibility_parts(&export.visibility);
        let search = format!(
            "{} {} {} {}",
            key, export.name, export.description, export.category
        )
        .to_lowercase();
        let mut tx = self.write().await?;
        // A listing's publisher email (the principal its signatures are checked against) is
        // fixed at first publish: an export cannot rebind it.
        let held: Option<String> =
            sqlx::query_scalar("SELECT publisher_email FROM listings WHERE id = ?1")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        check_email_binding(&key, held.as_deref(), &export.publisher_email)?;
        sqlx::query(
            "INSERT INTO listings (id, publisher, slug, name, description, category, template,
                 visibility, visibility_kind, visibility_name, creator, created_at, updated_at,
                 search_text, publisher_email)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name,
                 description = excluded.description, category = excluded.category,
                 updated_at = excluded.updated_at, search_text = excluded.search_text",
        )
        .bind(&key)
        .bind(&export.id.publisher)
        .bind(&export.id.slug)
        .bind(&export.name)
        .bind(&export.description)
        .bind(&export.category)
        .bind(&export.template)
        .bind(export.visibility.to_string())
        .bind(kind)
        .bind(&vname)
        .bind(&export.creator)
        .bind(&now)
        .bind(&search)
        .bind(&export.publisher_email)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let mut added_versions = Vec::new();
        let mut added_regions = 0;
        for v in &export.versions {
            let version = parse_version(&v.version)?;
            let vs = version.to_string();
            let existing = sqlx::query(
                "SELECT revision, signed_revision FROM versions
                 WHERE listing_id = ?1 AND version = ?2",
            )
            .bind(&key)
            .bind(&vs)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            let (held_rev, held_signed) = match &existing {
                Some(r) => (
                    r.get::<i64, _>("revision") as u32,
                    r.get::<Option<i64>, _>("signed_revision").map(|x| x as u32),
                ),
                None => (0, None),
            };
            let offered_signed = v.signed.as_ref().map(|s| s.revision);
            if v.revision < held_rev || offered_signed.unwrap_or(0) < held_signed.unwrap_or(0) {
                return Err(RegistryError::Rollback {
                    listing: key.clone(),
                    version: vs,
                    held: held_rev.max(held_signed.unwrap_or(0)),
                    offered: v.revision.min(offered_signed.unwrap_or(v.revision)),
                });
            }
            if existing.is_none() {
                sqlx::query(
                    "INSERT INTO versions (listing_id, version, revision, template_digest,
                         notes, speedup, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .bind(&key)
                .bind(&vs)
                .bind(i64::from(v.revision))
                .bind(&v.template_digest)
                .bind(&v.notes)
                .bind(v.speedup)
                .bind(
                    v.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                )
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                added_versions.push(vs.clone());
            }
            for (region, image) in &v.regions {
                let have: Option<String> = sqlx::query_scalar(
                    "SELECT ami_id FROM version_regions
                     WHERE listing_id = ?1 AND version = ?2 AND region = ?3",
                )
                .bind(&key)
                .bind(&vs)
                .bind(region)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
                match have {
                    Some(ami) if ami == image.ami_id => {}
                    Some(ami) => {
                        return Err(RegistryError::RegionTaken {
                            listing: key,
                            version: vs,
                            region: region.clone(),
                            existing: ami,
                        });
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO version_regions (listing_id, version, region, ami_id,
                                 architecture, snapshot_ids, size_gib, revision, created_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        )
                        .bind(&key)
                        .bind(&vs)
                        .bind(region)
                        .bind(&image.ami_id)
                        .bind(&image.architecture)
                        .bind(serde_json::to_string(&image.snapshot_ids).unwrap_or_default())
                        .bind(image.size_gib.map(i64::from))
                        .bind(i64::from(v.revision))
                        .bind(&now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                        added_regions += 1;
                    }
                }
            }
            sqlx::query("UPDATE versions SET revision = ?3 WHERE listing_id = ?1 AND version = ?2")
                .bind(&key)
                .bind(&vs)
                .bind(i64::from(v.revision))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            if let Some(s) = &v.signed {
                sqlx::query(
                    "UPDATE versions SET signed_revision = ?3, signed_document = ?4,
                         signature = ?5 WHERE listing_id = ?1 AND version = ?2",
                )
                .bind(&key)
                .bind(&vs)
                .bind(i64::from(s.revision))
                .bind(&s.document)
                .bind(&s.signature)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            if let Some(r) = &v.revoked {
                sqlx::query(
                    "UPDATE versions SET revoked_reason = ?3, revoked_by = ?4, revoked_at = ?5
                     WHERE listing_id = ?1 AND version = ?2 AND revoked_reason IS NULL",
                )
                .bind(&key)
                .bind(&vs)
                .bind(&r.reason)
                .bind(&r.by)
                .bind(r.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
        }
        self.refresh_latest(&mut tx, &key).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Imported {
            listing: export.id.clone(),
            added_versions,
            added_regions,
        })
    }

    async fn refusals(&self) -> RegistryResult<Vec<Refusal>> {
        let rows = sqlx::query(
            "SELECT listing_id, version, revoked_by, revoked_reason, quarantine_reason
             FROM versions WHERE revoked_reason IS NOT NULL OR quarantine_reason IS NOT NULL
             ORDER BY listing_id, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.get("listing_id");
            let Ok(listing) = id.parse() else { continue };
            let reason = match r.get::<Option<String>, _>("revoked_reason") {
                Some(why) => format!(
                    "revoked by {}: {why}",
                    r.get::<Option<String>, _>("revoked_by").unwrap_or_default()
                ),
                None => format!(
                    "quarantined: {}",
                    r.get::<Option<String>, _>("quarantine_reason")
                        .unwrap_or_default()
                ),
            };
            out.push(Refusal {
                listing,
                version: r.get("version"),
                reason,
            });
        }
        Ok(out)
    }

    async fn revoke(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: &str,
    ) -> RegistryResult<Revocation> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_SHORT_TEXT_CHARS {
            return Err(RegistryError::invalid(
                "reason",
                reason,
                "a reason of 1 to 200 characters, e.g. \"CVE-2026-1234 in the CUDA driver\"",
            ));
        }
        let key = id.to_string();
        let v = version.to_string();
        let mut tx = self.write().await?;
        let row = self.visible_row(&mut *tx, Some(actor), id).await?;
        Self::may_manage(actor, &row, "revoke a version of", id)?;
        let vrow = self.version_row(&mut tx, id, version).await?;
        if let Some(existing) = vrow.get::<Option<String>, _>("revoked_reason") {
            return Ok(Revocation {
                reason: existing,
                by: vrow
                    .get::<Option<String>, _>("revoked_by")
                    .unwrap_or_default(),
                at: parse_time(
                    vrow.get::<Option<String>, _>("revoked_at")
                        .unwrap_or_default(),
                ),
            });
        }
        let now = now_text();
        sqlx::query(
            "UPDATE versions SET revoked_reason = ?3, revoked_by = ?4, revoked_at = ?5,
                 revision = revision + 1
             WHERE listing_id = ?1 AND version = ?2",
        )
        .bind(&key)
        .bind(&v)
        .bind(reason)
        .bind(&actor.identity.handle)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        self.refresh_latest(&mut tx, &key).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(Revocation {
            reason: reason.to_string(),
            by: actor.identity.handle.clone(),
            at: parse_time(now),
        })
    }
}

async fn reviews_of(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<Vec<Review>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.*, EXISTS (SELECT 1 FROM uses u WHERE u.listing_id = r.listing_id
             AND u.handle = r.author) AS verified
         FROM ratings r WHERE r.listing_id = ?1 ORDER BY r.updated_at DESC, r.rowid DESC",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Review {
            author: r.get("author"),
            stars: r.get::<i64, _>("stars") as u8,
            text: r.get("review"),
            verified_use: r.get("verified"),
            created_at: parse_time(r.get("created_at")),
            updated_at: parse_time(r.get("updated_at")),
        })
        .collect())
}

/// A tokens row as a [`TokenInfo`].
fn token_of(store: &str, r: &SqliteRow) -> RegistryResult<TokenInfo> {
    let id: String = r.get("id");
    let orgs: String = r.get("orgs");
    let orgs = serde_json::from_str(&orgs).map_err(|e| RegistryError::Store {
        store: store.to_string(),
        message: format!("token {id} has organizations `{orgs}` that are not a JSON array: {e}"),
    })?;
    Ok(TokenInfo {
        scope: tokens::stored_scope(store, &id, &r.get::<String, _>("scope"))?,
        identity: Identity {
            name: r.get("name"),
            email: r.get("email"),
            handle: r.get("handle"),
        },
        orgs,
        created_at: parse_time(r.get("created_at")),
        expires_at: r.get::<Option<String>, _>("expires_at").map(parse_time),
        revoked_at: r.get::<Option<String>, _>("revoked_at").map(parse_time),
        id,
    })
}

#[async_trait]
impl TokenStore for SqliteRegistry {
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken> {
        let mut info = tokens::check_new_token(t, Utc::now())?;
        let store = self.location();
        let orgs = serde_json::to_string(&info.orgs).map_err(|e| RegistryError::Store {
            store: store.clone(),
            message: format!("writing organizations as JSON: {e}"),
        })?;
        for _ in 0..tokens::CREATE_ATTEMPTS {
            let (id, secret) = tokens::generate(&store)?;
            let mut tx = self.write().await?;
            // An id (or, never in practice, a hash) already taken inserts nothing: draw again.
            let inserted = sqlx::query(
                "INSERT INTO tokens (id, secret_sha256, name, email, handle, orgs, scope,
                     created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(tokens::secret_hash(&secret))
            .bind(&info.identity.name)
            .bind(&info.identity.email)
            .bind(&info.identity.handle)
            .bind(&orgs)
            .bind(info.scope.as_str())
            .bind(tokens::time_text(info.created_at))
            .bind(info.expires_at.map(tokens::time_text))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
            tx.commit().await.map_err(|e| self.err(e))?;
            if inserted == 1 {
                info.id = id;
                return Ok(IssuedToken { info, secret });
            }
        }
        Err(RegistryError::Store {
            store,
            message: format!(
                "no free token id after {} random draws",
                tokens::CREATE_ATTEMPTS
            ),
        })
    }

    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>> {
        let store = self.location();
        sqlx::query("SELECT * FROM tokens ORDER BY created_at DESC, rowid DESC")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| token_of(&store, r))
            .collect()
    }

    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo> {
        let mut tx = self.write().await?;
        // Revoking again keeps the first time.
        sqlx::query("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now_text())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let row = sqlx::query("SELECT * FROM tokens WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Err(tokens::unknown_token(id));
        };
        let info = token_of(&self.location(), &row)?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(info)
    }

    async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> RegistryResult<Option<TokenInfo>> {
        let Some((id, hash)) = tokens::secret_lookup(secret) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT * FROM tokens WHERE secret_sha256 = ?1 AND id = ?2")
            .bind(&hash)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(r) => {
                let info = token_of(&self.location(), &r)?;
                Ok(info.usable(now).then_some(info))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every file under `migrations/` is in [`super::MIGRATIONS`], numbered as its name says.
    #[test]
    fn every_migration_file_is_applied() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("the migrations directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = super::MIGRATIONS
            .iter()
            .map(|(n, name, _)| format!("{n:04}_{name}.sql"))
            .collect();
        assert_eq!(files, listed);
    }
}
