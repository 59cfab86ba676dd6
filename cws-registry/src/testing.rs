//! The conformance suite every [`Registry`] store must pass (feature `testing`).
//!
//! [`conformance`] runs one check after another, each against a fresh, empty store made by the
//! caller's factory, and panics on the first failure with the check's name, what was looked
//! at, and the observed and expected values:
//!
//! ```text
//! registry conformance check `rate_replaces_previous_rating` failed: average after bob re-rates 3: observed 4.0, expected 3.5
//! ```
//!
//! A store's test runs it with a factory that makes an empty store, e.g. for the embedded
//! store:
//!
//! ```no_run
//! # async fn run() {
//! cws_registry::testing::conformance(cws_registry::testing::temp_sqlite).await;
//! # }
//! ```
//!
//! The checks follow the documented semantics of [`Registry`] and [`crate::model`]:
//! publishing (revisions, immutable regions, who may publish), listings (semver order,
//! channels, suggestions for unknown ids), ratings and reviews, downloads, reports and
//! quarantine, revocation, signed versions and imports (revisions never go back), browse
//! (filters, sorts, limit) and visibility.
//!
//! [`token_conformance`] does the same for a [`TokenStore`]: scopes, issuing and
//! authenticating tokens, expiry, revocation and the token list.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use crate::model::*;
use crate::tokens::{IssuedToken, NewToken, Scope, TokenInfo, TokenStore};
use crate::{Registry, RegistryError, RegistryResult, SqliteRegistry};

/// Runs every conformance check, each against a fresh empty store from `fresh`, and panics
/// on the first failure, naming the check.
pub async fn conformance<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn Registry>>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $(
                {
                    let store = fresh().await;
                    $check(&Check(stringify!($check)), store.as_ref()).await;
                }
            )*
        };
    }
    run!(
        publish_creates_listing_and_version,
        publish_another_region_adds_a_revision,
        publish_same_image_again_changes_nothing,
        publish_other_image_for_a_region_is_region_taken,
        publish_for_another_publisher_is_forbidden,
        publish_updates_listing_metadata,
        versions_newest_first_in_semver_order,
        unknown_listing_suggests_close_ids,
        set_channel_by_publisher_or_admin,
        set_channel_by_others_is_forbidden,
        set_channel_latest_is_invalid,
        set_channel_unknown_version,
        rate_averages_one_rating_per_identity,
        rate_replaces_previous_rating,
        rate_refuses_stars_out_of_range,
        rate_refuses_overlong_review,
        reviews_newest_first,
        verified_use_needs_a_download_by_the_author,
        downloads_counted_per_version,
        security_reports_quarantine_at_three_distinct,
        admin_security_report_quarantines,
        quarantined_only_version_leaves_browse,
        clear_reports_is_admin_only,
        revoke_by_publisher_or_admin,
        refusals_list_revoked_and_quarantined_versions,
        browse_filters_by_category,
        browse_filters_by_text,
        browse_filters_by_community,
        browse_sorts_and_limits,
        browse_score_prior_without_ratings,
        private_listing_visible_to_publisher_only,
        institutional_listing_visible_to_members,
        find_image_finds_published_regions,
        revoke_bumps_the_revision,
        sign_version_by_publisher_at_current_revision,
        import_adds_listing_versions_and_regions,
        import_refuses_changed_regions_and_rollbacks,
        import_keeps_revocations,
    );
}

/// Runs every token check ([`TokenStore`]), each against a fresh store with no token from
/// `fresh`, and panics on the first failure, naming the check.
///
/// ```no_run
/// # async fn run() {
/// cws_registry::testing::token_conformance(cws_registry::testing::temp_sqlite_tokens).await;
/// # }
/// ```
pub async fn token_conformance<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn TokenStore>>,
{
    macro_rules! run {
        ($($check:ident),* $(,)?) => {
            $(
                {
                    let store = fresh().await;
                    $check(&Check(stringify!($check)), store.as_ref()).await;
                }
            )*
        };
    }
    run!(
        token_scopes_nest,
        token_create_then_authenticate,
        token_admin_scope_acts_as_admin,
        token_refuses_bad_input,
        token_wrong_or_malformed_secret_is_none,
        token_expired_is_none,
        token_revoked_is_none,
        token_list_newest_first,
    );
}

/// A fresh [`SqliteRegistry`] with no token, in its own temporary directory removed when the
/// store is dropped: the factory the embedded store's test passes to [`token_conformance`].
///
/// # Panics
///
/// When the directory cannot be made or the store cannot be opened.
pub async fn temp_sqlite_tokens() -> Box<dyn TokenStore> {
    let dir = tempfile::tempdir().expect("a temporary directory for the registry");
    let store = SqliteRegistry::open(&dir.path().join("registry.db"))
        .await
        .unwrap_or_else(|e| panic!("opening a SQLite registry in {}: {e}", dir.path().display()));
    Box::new(TempSqlite { store, _dir: dir })
}

/// A fresh [`SqliteRegistry`] in its own temporary directory, removed when the store is
/// dropped: the factory the embedded store's conformance test passes to [`conformance`].
///
/// # Panics
///
/// When the directory cannot be made or the store cannot be opened.
pub async fn temp_sqlite() -> Box<dyn Registry> {
    let dir = tempfile::tempdir().expect("a temporary directory for the registry");
    let store = SqliteRegistry::open(&dir.path().join("registry.db"))
        .await
        .unwrap_or_else(|e| panic!("opening a SQLite registry in {}: {e}", dir.path().display()));
    Box::new(TempSqlite { store, _dir: dir })
}

/// A SQLite registry that owns the temporary directory it lives in.
struct TempSqlite {
    store: SqliteRegistry,
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Registry for TempSqlite {
    fn location(&self) -> String {
        self.store.location()
    }
    async fn publish(&self, actor: &Actor, p: &Publish) -> RegistryResult<Published> {
        self.store.publish(actor, p).await
    }
    async fn listing(
        &self,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<ListingDetail> {
        self.store.listing(viewer, id).await
    }
    async fn browse(
        &self,
        viewer: Option<&Actor>,
        query: &BrowseQuery,
    ) -> RegistryResult<Vec<ListingSummary>> {
        self.store.browse(viewer, query).await
    }
    async fn find_image(
        &self,
        viewer: Option<&Actor>,
        ami_id: &str,
    ) -> RegistryResult<Vec<ImageListing>> {
        self.store.find_image(viewer, ami_id).await
    }
    async fn set_channel(
        &self,
        actor: &Actor,
        id: &ListingId,
        channel: &str,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        self.store.set_channel(actor, id, channel, version).await
    }
    async fn rate(
        &self,
        actor: &Actor,
        id: &ListingId,
        stars: u8,
        review: Option<&str>,
    ) -> RegistryResult<RatingSummary> {
        self.store.rate(actor, id, stars, review).await
    }
    async fn reviews(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryResult<Vec<Review>> {
        self.store.reviews(viewer, id).await
    }
    async fn record_download(&self, d: &Download) -> RegistryResult<()> {
        self.store.record_download(d).await
    }
    async fn report(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: ReportReason,
        message: Option<&str>,
    ) -> RegistryResult<ReportOutcome> {
        self.store.report(actor, id, version, reason, message).await
    }
    async fn clear_reports(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<()> {
        self.store.clear_reports(actor, id, version).await
    }
    async fn refusals(&self) -> RegistryResult<Vec<Refusal>> {
        self.store.refusals().await
    }
    async fn sign_version(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        signed: &crate::trust::SignedDocument,
    ) -> RegistryResult<()> {
        self.store.sign_version(actor, id, version, signed).await
    }
    async fn import(&self, actor: &Actor, export: &ListingExport) -> RegistryResult<Imported> {
        self.store.import(actor, export).await
    }
    async fn revoke(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: &str,
    ) -> RegistryResult<Revocation> {
        self.store.revoke(actor, id, version, reason).await
    }
}

#[async_trait]
impl TokenStore for TempSqlite {
    async fn create_token(&self, t: &NewToken) -> RegistryResult<IssuedToken> {
        self.store.create_token(t).await
    }
    async fn list_tokens(&self) -> RegistryResult<Vec<TokenInfo>> {
        self.store.list_tokens().await
    }
    async fn revoke_token(&self, id: &str) -> RegistryResult<TokenInfo> {
        self.store.revoke_token(id).await
    }
    async fn authenticate(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> RegistryResult<Option<TokenInfo>> {
        self.store.authenticate(secret, now).await
    }
}

/// Opens a [`SqliteRegistry`] at `path` (for tests that need the path, e.g. to open it twice).
///
/// # Panics
///
/// When the store cannot be opened.
pub async fn open_sqlite(path: &Path) -> SqliteRegistry {
    SqliteRegistry::open(path)
        .await
        .unwrap_or_else(|e| panic!("opening a SQLite registry at {}: {e}", path.display()))
}

/// Fresh, empty PostgreSQL stores for the conformance suite (features `testing` and
/// `postgres`): each store [`PostgresScratch::fresh`] makes lives in a new schema of the
/// database at the URL (the connections' `search_path`), and [`PostgresScratch::drop_all`]
/// drops those schemas.
///
/// ```no_run
/// # async fn run(url: &str) {
/// use cws_registry::{Registry, testing};
/// let scratch = testing::PostgresScratch::new(url).await;
/// let s = &scratch;
/// testing::conformance(move || async move { Box::new(s.fresh().await) as Box<dyn Registry> })
///     .await;
/// scratch.drop_all().await;
/// # }
/// ```
#[cfg(feature = "postgres")]
pub struct PostgresScratch {
    url: String,
    admin: sqlx::PgPool,
    schemas: std::sync::Mutex<Vec<String>>,
}

#[cfg(feature = "postgres")]
impl PostgresScratch {
    /// Connects to the database at `url`, whose user must be allowed to create schemas.
    ///
    /// # Panics
    ///
    /// When it cannot connect.
    pub async fn new(url: &str) -> PostgresScratch {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the PostgreSQL test database: {e}"));
        PostgresScratch {
            url: url.to_string(),
            admin,
            schemas: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Makes a new, empty schema and returns a URL whose connections use it (and make their
    /// tables there): the URL given to [`PostgresScratch::new`] with
    /// `options=-c search_path=SCHEMA`.
    ///
    /// # Panics
    ///
    /// When the schema cannot be made.
    pub async fn schema_url(&self) -> String {
        use std::hash::BuildHasher;
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let random = std::collections::hash_map::RandomState::new().hash_one((
            std::process::id(),
            n,
            std::time::SystemTime::now(),
        ));
        let schema = format!("cws_test_{random:016x}");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("creating schema {schema}: {e}"));
        self.schemas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(schema.clone());
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{schema}", self.url)
    }

    /// A [`crate::PostgresRegistry`] in a new, empty schema.
    ///
    /// # Panics
    ///
    /// When the schema cannot be made or the store cannot connect and migrate.
    pub async fn fresh(&self) -> crate::PostgresRegistry {
        let url = self.schema_url().await;
        crate::PostgresRegistry::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("opening a PostgreSQL registry in a fresh schema: {e}"))
    }

    /// Drops every schema made so far, with what is in them.
    ///
    /// # Panics
    ///
    /// When a schema cannot be dropped.
    pub async fn drop_all(&self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap_or_else(|p| p.into_inner()));
        for schema in schemas {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("dropping schema {schema}: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions that name the check
// ---------------------------------------------------------------------------------------------

/// The check running: every failure names it.
struct Check(&'static str);

impl Check {
    fn fail(&self, message: impl fmt::Display) -> ! {
        panic!("registry conformance check `{}` failed: {message}", self.0)
    }

    /// The value of a call that must succeed.
    fn ok<T>(&self, r: RegistryResult<T>, what: &str) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.fail(format_args!("{what}: expected success, got error {e:?}")),
        }
    }

    fn eq<T: PartialEq + fmt::Debug>(&self, observed: T, expected: T, what: &str) {
        if observed != expected {
            self.fail(format_args!(
                "{what}: observed {observed:?}, expected {expected:?}"
            ));
        }
    }

    fn close(&self, observed: f64, expected: f64, what: &str) {
        if (observed - expected).abs() > 1e-9 {
            self.fail(format_args!(
                "{what}: observed {observed}, expected {expected}"
            ));
        }
    }

    fn holds(&self, condition: bool, what: impl fmt::Display) {
        if !condition {
            self.fail(what);
        }
    }
}

/// The error of a call that must fail with the given variant; fails the check otherwise.
macro_rules! expect_err {
    ($cx:expr, $result:expr, $variant:pat, $what:expr) => {
        match $result {
            Err(e @ $variant) => e,
            Err(other) => $cx.fail(format_args!(
                "{}: expected {}, got error {other:?}",
                $what,
                stringify!($variant)
            )),
            Ok(v) => $cx.fail(format_args!(
                "{}: expected {}, got Ok({v:?})",
                $what,
                stringify!($variant)
            )),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn identity(name: &str, local: &str) -> Identity {
    Identity::new(name, format!("{local}@example.edu"), None)
        .unwrap_or_else(|e| panic!("fixture identity {local}: {e}"))
}

/// The publisher of most fixtures (handle `alice`).
fn alice() -> Actor {
    Actor::user(identity("Alice Smith", "alice"))
}

fn bob() -> Actor {
    Actor::user(identity("Bob Jones", "bob"))
}

fn carol() -> Actor {
    Actor::user(identity("Carol White", "carol"))
}

fn dave() -> Actor {
    Actor::user(identity("Dave Brown", "dave"))
}

fn erin() -> Actor {
    Actor::user(identity("Erin Green", "erin"))
}

/// The registry's admin (handle `admin`).
fn admin() -> Actor {
    Actor::admin(identity("Registry Admin", "admin"))
}

/// Numbered raters `user0`, `user1`, ... for checks that need many identities.
fn user(i: usize) -> Actor {
    Actor::user(identity(&format!("User {i}"), &format!("user{i}")))
}

fn id(s: &str) -> ListingId {
    s.parse()
        .unwrap_or_else(|e| panic!("fixture listing id {s}: {e}"))
}

fn v(s: &str) -> semver::Version {
    parse_version(s).unwrap_or_else(|e| panic!("fixture version {s}: {e}"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, d).expect("fixture day")
}

fn download(listing: &str, version: &str, on: u32, by: Option<&str>) -> Download {
    Download {
        listing: id(listing),
        version: v(version),
        day: day(on),
        by: by.map(str::to_string),
    }
}

/// A stable 64-bit FNV-1a hash, to derive fixture image ids from what they are images of.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// An image id like EC2's (`ami-` and 17 hex digits) derived from a listing, version, region
/// and a salt.
fn ami(listing: &str, version: &str, region: &str, salt: &str) -> String {
    format!("ami-0{:016x}", fnv(&[listing, version, region, salt]))
}

/// Builds a [`Publish`]: `PublishBuilder::new("alice/python-ml", "1.0.0")` is a public
/// `machine-learning` listing's image in us-east-1; the setters change one field.
struct PublishBuilder(Publish);

impl PublishBuilder {
    fn new(listing: &str, version: &str) -> PublishBuilder {
        let lid = id(listing);
        let region = "us-east-1";
        let h = fnv(&[listing, version]);
        PublishBuilder(Publish {
            name: title_case(&lid.slug),
            description: format!("A workstation image for {}", lid.slug),
            category: "machine-learning".into(),
            template: lid.slug.clone(),
            visibility: Visibility::Public,
            version: v(version),
            template_digest: format!("sha256:{h:016x}{h:016x}{h:016x}{h:016x}"),
            region: region.into(),
            image: RegionImage {
                ami_id: ami(listing, version, region, ""),
                architecture: "x86_64".into(),
                snapshot_ids: vec![format!("snap-0{:016x}", fnv(&[listing, version, region]))],
                size_gib: Some(30),
            },
            notes: Some(format!("Release {version}")),
            speedup: Some(4.0),
            listing: lid,
        })
    }

    /// Another region (and the image id that goes with it).
    fn region(mut self, region: &str) -> PublishBuilder {
        let listing = self.0.listing.to_string();
        let version = self.0.version.to_string();
        self.0.region = region.into();
        self.0.image.ami_id = ami(&listing, &version, region, "");
        self
    }

    /// Another image id for the same region.
    fn other_image(mut self, salt: &str) -> PublishBuilder {
        let listing = self.0.listing.to_string();
        let version = self.0.version.to_string();
        self.0.image.ami_id = ami(&listing, &version, &self.0.region, salt);
        self
    }

    fn name(mut self, name: &str) -> PublishBuilder {
        self.0.name = name.into();
        self
    }

    fn description(mut self, description: &str) -> PublishBuilder {
        self.0.description = description.into();
        self
    }

    fn category(mut self, category: &str) -> PublishBuilder {
        self.0.category = category.into();
        self
    }

    fn visibility(mut self, visibility: Visibility) -> PublishBuilder {
        self.0.visibility = visibility;
        self
    }

    fn build(self) -> Publish {
        self.0
    }
}

fn title_case(slug: &str) -> String {
    slug.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Publishes as the listing's publisher (`alice` for `alice/...`), which must succeed.
async fn publish(cx: &Check, store: &dyn Registry, p: PublishBuilder) -> Published {
    let p = p.build();
    let actor = publisher_of(&p.listing);
    let what = format!(
        "publish {}@{} in {} as {}",
        p.listing, p.version, p.region, actor.identity.handle
    );
    cx.ok(store.publish(&actor, &p).await, &what)
}

/// The actor whose handle is the listing's publisher.
fn publisher_of(listing: &ListingId) -> Actor {
    Actor::user(identity(
        &title_case(&listing.publisher),
        &listing.publisher,
    ))
}

async fn detail(
    cx: &Check,
    store: &dyn Registry,
    viewer: Option<&Actor>,
    l: &str,
) -> ListingDetail {
    let who = viewer.map_or("anonymous".to_string(), |a| a.identity.handle.clone());
    cx.ok(
        store.listing(viewer, &id(l)).await,
        &format!("listing({l}) as {who}"),
    )
}

async fn rate(cx: &Check, store: &dyn Registry, who: &Actor, l: &str, stars: u8) -> RatingSummary {
    let what = format!("{} rates {l} {stars} stars", who.identity.handle);
    cx.ok(store.rate(who, &id(l), stars, None).await, &what)
}

async fn record(cx: &Check, store: &dyn Registry, d: Download) {
    let what = format!("record_download({}@{} by {:?})", d.listing, d.version, d.by);
    cx.ok(store.record_download(&d).await, &what)
}

async fn browse_ids(
    cx: &Check,
    store: &dyn Registry,
    viewer: Option<&Actor>,
    query: &BrowseQuery,
) -> Vec<String> {
    let what = format!("browse({query:?})");
    cx.ok(store.browse(viewer, query).await, &what)
        .into_iter()
        .map(|s| s.id.to_string())
        .collect()
}

fn version_list(d: &ListingDetail) -> Vec<String> {
    d.versions.iter().map(|x| x.version.clone()).collect()
}

fn version_info<'a>(cx: &Check, d: &'a ListingDetail, version: &str) -> &'a VersionInfo {
    d.version(&v(version)).unwrap_or_else(|| {
        cx.fail(format_args!(
            "listing {} has no version {version} in its versions {:?}",
            d.summary.id,
            version_list(d)
        ))
    })
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Publish
// ---------------------------------------------------------------------------------------------

async fn publish_creates_listing_and_version(cx: &Check, store: &dyn Registry) {
    let p = PublishBuilder::new("alice/python-ml", "1.0.0");
    let expected_ami = p.0.image.ami_id.clone();
    let out = publish(cx, store, p).await;
    cx.eq(
        out.listing.to_string(),
        "alice/python-ml".into(),
        "Published.listing",
    );
    cx.eq(out.version.as_str(), "1.0.0", "Published.version");
    cx.eq(out.revision, 1, "Published.revision of a new version");
    cx.eq(out.region.as_str(), "us-east-1", "Published.region");
    cx.eq(&out.ami_id, &expected_ami, "Published.ami_id");
    cx.eq(
        out.created_listing,
        true,
        "Published.created_listing of the first publish",
    );
    cx.eq(
        out.created_version,
        true,
        "Published.created_version of the first publish",
    );
    cx.eq(out.changed, true, "Published.changed of the first publish");
    cx.eq(&out.visibility, &Visibility::Public, "Published.visibility");

    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(d.summary.publisher.as_str(), "alice", "summary.publisher");
    cx.eq(d.summary.name.as_str(), "Python Ml", "summary.name");
    cx.eq(
        d.summary.category.as_str(),
        "machine-learning",
        "summary.category",
    );
    cx.eq(d.summary.template.as_str(), "python-ml", "summary.template");
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("1.0.0"),
        "summary.latest_version",
    );
    cx.eq(version_list(&d), strings(&["1.0.0"]), "versions");
    let info = version_info(cx, &d, "1.0.0");
    cx.eq(info.revision, 1, "VersionInfo.revision");
    cx.eq(
        info.regions.get("us-east-1").map(|r| r.ami_id.as_str()),
        Some(expected_ami.as_str()),
        "VersionInfo.regions[us-east-1].ami_id",
    );
    cx.eq(info.regions.len(), 1, "number of regions of 1.0.0");
    cx.eq(
        info.notes.as_deref(),
        Some("Release 1.0.0"),
        "VersionInfo.notes",
    );
    cx.eq(info.revoked.is_none(), true, "VersionInfo.revoked is None");
    cx.eq(
        info.quarantined.is_none(),
        true,
        "VersionInfo.quarantined is None",
    );
    cx.eq(
        info.refusal(),
        None,
        "VersionInfo.refusal() of a fresh version",
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("1.0.0"),
        "channels[latest]",
    );
}

async fn publish_another_region_adds_a_revision(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let out = publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0").region("us-west-2"),
    )
    .await;
    cx.eq(
        out.revision,
        2,
        "Published.revision after adding a second region",
    );
    cx.eq(
        out.created_listing,
        false,
        "Published.created_listing of a second region",
    );
    cx.eq(
        out.created_version,
        false,
        "Published.created_version of a second region",
    );
    cx.eq(out.changed, true, "Published.changed of a second region");

    let d = detail(cx, store, None, "alice/python-ml").await;
    let info = version_info(cx, &d, "1.0.0");
    cx.eq(
        info.revision,
        2,
        "VersionInfo.revision after a second region",
    );
    cx.eq(
        info.regions.keys().cloned().collect::<Vec<_>>(),
        strings(&["us-east-1", "us-west-2"]),
        "regions of 1.0.0",
    );
    cx.eq(
        version_list(&d),
        strings(&["1.0.0"]),
        "versions (a region is not a version)",
    );
}

async fn publish_same_image_again_changes_nothing(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let again = publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    cx.eq(
        again.changed,
        false,
        "Published.changed when the same image is published again",
    );
    cx.eq(
        again.revision,
        1,
        "Published.revision when the same image is published again",
    );
    cx.eq(
        again.created_listing,
        false,
        "Published.created_listing on a repeat",
    );
    cx.eq(
        again.created_version,
        false,
        "Published.created_version on a repeat",
    );

    publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0").region("eu-central-1"),
    )
    .await;
    let again = publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    cx.eq(
        again.changed,
        false,
        "Published.changed on a repeat of the first of two regions",
    );
    cx.eq(
        again.revision,
        2,
        "Published.revision on a repeat after a second region",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").revision,
        2,
        "VersionInfo.revision after the repeats",
    );
}

async fn publish_other_image_for_a_region_is_region_taken(cx: &Check, store: &dyn Registry) {
    let first = publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let p = PublishBuilder::new("alice/python-ml", "1.0.0")
        .other_image("rebuilt")
        .build();
    let err = expect_err!(
        cx,
        store.publish(&alice(), &p).await,
        RegistryError::RegionTaken { .. },
        "publishing another image for a published version and region"
    );
    if let RegistryError::RegionTaken {
        listing,
        version,
        region,
        existing,
    } = &err
    {
        cx.eq(listing.as_str(), "alice/python-ml", "RegionTaken.listing");
        cx.eq(version.as_str(), "1.0.0", "RegionTaken.version");
        cx.eq(region.as_str(), "us-east-1", "RegionTaken.region");
        cx.eq(existing, &first.ami_id, "RegionTaken.existing");
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    let info = version_info(cx, &d, "1.0.0");
    cx.eq(
        info.regions.get("us-east-1").map(|r| r.ami_id.clone()),
        Some(first.ami_id.clone()),
        "the region's image after a refused replacement",
    );
    cx.eq(
        info.revision,
        1,
        "VersionInfo.revision after a refused replacement",
    );
}

async fn publish_for_another_publisher_is_forbidden(cx: &Check, store: &dyn Registry) {
    let p = PublishBuilder::new("alice/python-ml", "1.0.0").build();
    expect_err!(
        cx,
        store.publish(&bob(), &p).await,
        RegistryError::Forbidden { .. },
        "bob publishing alice/python-ml"
    );
    expect_err!(
        cx,
        store.listing(None, &id("alice/python-ml")).await,
        RegistryError::UnknownListing { .. },
        "listing(alice/python-ml) after a forbidden publish"
    );
    // Once alice's listing exists, bob still may not add to it.
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let p = PublishBuilder::new("alice/python-ml", "2.0.0").build();
    expect_err!(
        cx,
        store.publish(&bob(), &p).await,
        RegistryError::Forbidden { .. },
        "bob publishing a version of alice's existing listing"
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_list(&d),
        strings(&["1.0.0"]),
        "versions after bob's forbidden publish",
    );
}

async fn publish_updates_listing_metadata(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.1.0")
            .name("Python ML Plus")
            .description("Now with JAX")
            .category("data-science"),
    )
    .await;
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.name.as_str(),
        "Python ML Plus",
        "summary.name after a later publish",
    );
    cx.eq(
        d.summary.description.as_str(),
        "Now with JAX",
        "summary.description after a later publish",
    );
    cx.eq(
        d.summary.category.as_str(),
        "data-science",
        "summary.category after a later publish",
    );
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

async fn versions_newest_first_in_semver_order(cx: &Check, store: &dyn Registry) {
    for version in ["1.9.0", "1.10.0", "1.2.0"] {
        publish(cx, store, PublishBuilder::new("alice/python-ml", version)).await;
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_list(&d),
        strings(&["1.10.0", "1.9.0", "1.2.0"]),
        "versions newest first (semver order)",
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("1.10.0"),
        "channels[latest]",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("1.10.0"),
        "summary.latest_version",
    );
}

async fn unknown_listing_suggests_close_ids(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("bob/genome-tools", "1.0.0")).await;
    let err = expect_err!(
        cx,
        store.listing(None, &id("alice/pyton-ml")).await,
        RegistryError::UnknownListing { .. },
        "listing(alice/pyton-ml)"
    );
    if let RegistryError::UnknownListing {
        id: asked,
        suggestions,
    } = &err
    {
        cx.eq(asked.as_str(), "alice/pyton-ml", "UnknownListing.id");
        cx.holds(
            suggestions.iter().any(|s| s == "alice/python-ml"),
            format_args!(
                "UnknownListing.suggestions for alice/pyton-ml: observed {suggestions:?}, \
                 expected them to contain \"alice/python-ml\""
            ),
        );
    }
    expect_err!(
        cx,
        store.reviews(None, &id("alice/pyton-ml")).await,
        RegistryError::UnknownListing { .. },
        "reviews(alice/pyton-ml)"
    );
    expect_err!(
        cx,
        store.rate(&bob(), &id("alice/pyton-ml"), 4, None).await,
        RegistryError::UnknownListing { .. },
        "rating alice/pyton-ml"
    );
}

// ---------------------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------------------

async fn set_channel_by_publisher_or_admin(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    let l = id("alice/python-ml");
    cx.ok(
        store.set_channel(&alice(), &l, "stable", &v("1.0.0")).await,
        "alice sets stable to 1.0.0",
    );
    cx.ok(
        store.set_channel(&admin(), &l, "beta", &v("2.0.0")).await,
        "the admin sets beta to 2.0.0",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.channels.get("stable").map(String::as_str),
        Some("1.0.0"),
        "channels[stable]",
    );
    cx.eq(
        d.channels.get("beta").map(String::as_str),
        Some("2.0.0"),
        "channels[beta]",
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("2.0.0"),
        "channels[latest]",
    );

    cx.ok(
        store.set_channel(&alice(), &l, "stable", &v("2.0.0")).await,
        "alice moves stable to 2.0.0",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.channels.get("stable").map(String::as_str),
        Some("2.0.0"),
        "channels[stable] after moving it",
    );
}

async fn set_channel_by_others_is_forbidden(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    expect_err!(
        cx,
        store
            .set_channel(&bob(), &id("alice/python-ml"), "stable", &v("1.0.0"))
            .await,
        RegistryError::Forbidden { .. },
        "bob sets stable on alice/python-ml"
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.channels.get("stable"),
        None,
        "channels[stable] after bob's forbidden set",
    );
}

async fn set_channel_latest_is_invalid(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    expect_err!(
        cx,
        store
            .set_channel(&alice(), &id("alice/python-ml"), "latest", &v("1.0.0"))
            .await,
        RegistryError::Invalid { .. },
        "alice sets the latest channel"
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("2.0.0"),
        "channels[latest] after a refused set",
    );
}

async fn set_channel_unknown_version(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let err = expect_err!(
        cx,
        store
            .set_channel(&alice(), &id("alice/python-ml"), "stable", &v("9.9.9"))
            .await,
        RegistryError::UnknownVersion { .. },
        "alice sets stable to unpublished 9.9.9"
    );
    if let RegistryError::UnknownVersion {
        listing,
        version,
        known,
    } = &err
    {
        cx.eq(
            listing.as_str(),
            "alice/python-ml",
            "UnknownVersion.listing",
        );
        cx.eq(version.as_str(), "9.9.9", "UnknownVersion.version");
        cx.eq(known, &strings(&["1.0.0"]), "UnknownVersion.known");
    }
}

// ---------------------------------------------------------------------------------------------
// Ratings and reviews
// ---------------------------------------------------------------------------------------------

async fn rate_averages_one_rating_per_identity(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let first = rate(cx, store, &bob(), "alice/python-ml", 5).await;
    cx.eq(
        first,
        RatingSummary {
            average: 5.0,
            count: 1,
        },
        "rate() result after bob's 5",
    );
    let second = rate(cx, store, &carol(), "alice/python-ml", 4).await;
    cx.eq(
        second,
        RatingSummary {
            average: 4.5,
            count: 2,
        },
        "rate() result after carol's 4",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.rating,
        RatingSummary {
            average: 4.5,
            count: 2,
        },
        "summary.rating after 5 and 4",
    );
}

async fn rate_replaces_previous_rating(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    rate(cx, store, &bob(), "alice/python-ml", 5).await;
    rate(cx, store, &carol(), "alice/python-ml", 4).await;
    let after = rate(cx, store, &bob(), "alice/python-ml", 3).await;
    cx.eq(after.average, 3.5, "average after bob re-rates 3");
    cx.eq(after.count, 2, "count after bob re-rates 3");
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.rating,
        RatingSummary {
            average: 3.5,
            count: 2,
        },
        "summary.rating after bob re-rates 3",
    );
    let reviews = cx.ok(
        store.reviews(None, &id("alice/python-ml")).await,
        "reviews(alice/python-ml)",
    );
    let bobs: Vec<u8> = reviews
        .iter()
        .filter(|r| r.author == "bob")
        .map(|r| r.stars)
        .collect();
    cx.eq(
        bobs,
        vec![3],
        "bob's ratings after his re-rate (one, replaced)",
    );
}

async fn rate_refuses_stars_out_of_range(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    for stars in [0u8, 6, 255] {
        let err = expect_err!(
            cx,
            store
                .rate(&bob(), &id("alice/python-ml"), stars, None)
                .await,
            RegistryError::Invalid { .. },
            format!("bob rates {stars} stars")
        );
        if let RegistryError::Invalid { field, .. } = &err {
            cx.eq(
                field.as_str(),
                "stars",
                "Invalid.field of out-of-range stars",
            );
        }
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.rating,
        RatingSummary {
            average: 0.0,
            count: 0,
        },
        "summary.rating after refused ratings",
    );
    for stars in 1..=5u8 {
        rate(cx, store, &user(stars as usize), "alice/python-ml", stars).await;
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.rating,
        RatingSummary {
            average: 3.0,
            count: 5,
        },
        "summary.rating after one each of 1 to 5 stars",
    );
}

async fn rate_refuses_overlong_review(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let l = id("alice/python-ml");
    // Characters, not bytes: 'é' is two bytes in UTF-8.
    let longest = "é".repeat(MAX_REVIEW_CHARS);
    let too_long = "é".repeat(MAX_REVIEW_CHARS + 1);
    expect_err!(
        cx,
        store.rate(&bob(), &l, 4, Some(&too_long)).await,
        RegistryError::Invalid { .. },
        format!("a review of {} characters", MAX_REVIEW_CHARS + 1)
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.rating.count,
        0,
        "rating count after a refused review (nothing written)",
    );
    let reviews = cx.ok(store.reviews(None, &l).await, "reviews()");
    cx.eq(reviews.len(), 0, "number of reviews after a refused review");

    cx.ok(
        store.rate(&bob(), &l, 4, Some(&longest)).await,
        &format!("a review of exactly {MAX_REVIEW_CHARS} two-byte characters"),
    );
    // A refused re-rate leaves the earlier rating as it was.
    expect_err!(
        cx,
        store.rate(&bob(), &l, 1, Some(&too_long)).await,
        RegistryError::Invalid { .. },
        "a re-rate with an overlong review"
    );
    let reviews = cx.ok(store.reviews(None, &l).await, "reviews()");
    cx.eq(
        reviews.len(),
        1,
        "number of reviews after a refused re-rate",
    );
    cx.eq(reviews[0].stars, 4, "stars kept after a refused re-rate");
    cx.eq(
        reviews[0].text.as_ref().map(|t| t.chars().count()),
        Some(MAX_REVIEW_CHARS),
        "length in characters of the kept review",
    );
}

async fn reviews_newest_first(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let l = id("alice/python-ml");
    cx.ok(
        store.rate(&bob(), &l, 5, Some("great")).await,
        "bob rates 5 'great'",
    );
    cx.ok(
        store.rate(&carol(), &l, 4, Some("good")).await,
        "carol rates 4 'good'",
    );
    cx.ok(
        store.rate(&dave(), &l, 3, None).await,
        "dave rates 3 without a review",
    );
    let reviews = cx.ok(store.reviews(None, &l).await, "reviews(alice/python-ml)");
    let seen: Vec<(String, u8, Option<String>)> = reviews
        .iter()
        .map(|r| (r.author.clone(), r.stars, r.text.clone()))
        .collect();
    cx.eq(
        seen,
        vec![
            ("dave".to_string(), 3, None),
            ("carol".to_string(), 4, Some("good".to_string())),
            ("bob".to_string(), 5, Some("great".to_string())),
        ],
        "reviews (author, stars, text), newest first",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.reviews
            .iter()
            .map(|r| r.author.as_str())
            .collect::<Vec<_>>(),
        vec!["dave", "carol", "bob"],
        "ListingDetail.reviews authors, newest first",
    );
}

async fn verified_use_needs_a_download_by_the_author(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/r-stats", "1.0.0")).await;
    // bob launched this listing; carol launched another one; an anonymous launch marks nobody.
    record(
        cx,
        store,
        download("alice/python-ml", "1.0.0", 1, Some("bob")),
    )
    .await;
    record(
        cx,
        store,
        download("alice/r-stats", "1.0.0", 1, Some("carol")),
    )
    .await;
    record(cx, store, download("alice/python-ml", "1.0.0", 2, None)).await;
    rate(cx, store, &bob(), "alice/python-ml", 5).await;
    rate(cx, store, &carol(), "alice/python-ml", 4).await;
    rate(cx, store, &dave(), "alice/python-ml", 3).await;
    // dave launches after rating: his rating is verified from then on.
    record(
        cx,
        store,
        download("alice/python-ml", "1.0.0", 3, Some("dave")),
    )
    .await;

    let reviews = cx.ok(
        store.reviews(None, &id("alice/python-ml")).await,
        "reviews(alice/python-ml)",
    );
    let verified = |who: &str| {
        reviews
            .iter()
            .find(|r| r.author == who)
            .map(|r| r.verified_use)
            .unwrap_or_else(|| cx.fail(format_args!("no review by {who} in {reviews:?}")))
    };
    cx.eq(
        verified("bob"),
        true,
        "verified_use of bob (downloaded this listing)",
    );
    cx.eq(
        verified("carol"),
        false,
        "verified_use of carol (downloaded another listing only)",
    );
    cx.eq(
        verified("dave"),
        true,
        "verified_use of dave (downloaded after rating)",
    );
}

// ---------------------------------------------------------------------------------------------
// Downloads
// ---------------------------------------------------------------------------------------------

async fn downloads_counted_per_version(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/r-stats", "1.0.0")).await;
    // Every call is one launch, even on the same day.
    record(cx, store, download("alice/python-ml", "1.0.0", 1, None)).await;
    record(cx, store, download("alice/python-ml", "1.0.0", 1, None)).await;
    record(
        cx,
        store,
        download("alice/python-ml", "1.0.0", 2, Some("bob")),
    )
    .await;
    record(
        cx,
        store,
        download("alice/python-ml", "2.0.0", 2, Some("bob")),
    )
    .await;
    record(
        cx,
        store,
        download("alice/python-ml", "2.0.0", 3, Some("carol")),
    )
    .await;
    record(
        cx,
        store,
        download("alice/r-stats", "1.0.0", 3, Some("carol")),
    )
    .await;

    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").downloads,
        3,
        "downloads of alice/python-ml@1.0.0",
    );
    cx.eq(
        version_info(cx, &d, "2.0.0").downloads,
        2,
        "downloads of alice/python-ml@2.0.0",
    );
    cx.eq(
        d.summary.downloads,
        5,
        "summary.downloads of alice/python-ml (all versions)",
    );
    let browsed = cx.ok(
        store.browse(None, &BrowseQuery::default()).await,
        "browse()",
    );
    let python = browsed
        .iter()
        .find(|s| s.id.to_string() == "alice/python-ml")
        .unwrap_or_else(|| cx.fail("browse() lacks alice/python-ml"));
    cx.eq(python.downloads, 5, "browse downloads of alice/python-ml");
    let r = detail(cx, store, None, "alice/r-stats").await;
    cx.eq(r.summary.downloads, 1, "summary.downloads of alice/r-stats");
}

// ---------------------------------------------------------------------------------------------
// Reports, quarantine, revocation
// ---------------------------------------------------------------------------------------------

async fn report_security(
    cx: &Check,
    store: &dyn Registry,
    who: &Actor,
    listing: &str,
    version: &str,
) -> ReportOutcome {
    let what = format!(
        "{} reports {listing}@{version} (security)",
        who.identity.handle
    );
    cx.ok(
        store
            .report(
                who,
                &id(listing),
                &v(version),
                ReportReason::Security,
                Some("mines coins"),
            )
            .await,
        &what,
    )
}

async fn security_reports_quarantine_at_three_distinct(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    let l = "alice/python-ml";

    let out = report_security(cx, store, &bob(), l, "2.0.0").await;
    cx.eq(
        (out.security_reports, out.quarantined),
        (1, false),
        "after bob's report",
    );
    let out = report_security(cx, store, &bob(), l, "2.0.0").await;
    cx.eq(
        (out.security_reports, out.quarantined),
        (1, false),
        "after bob reports again (one report per identity)",
    );
    let out = cx.ok(
        store
            .report(&erin(), &id(l), &v("2.0.0"), ReportReason::Broken, None)
            .await,
        "erin reports 2.0.0 broken",
    );
    cx.eq(
        (out.security_reports, out.quarantined),
        (1, false),
        "after erin's non-security report",
    );
    let out = report_security(cx, store, &carol(), l, "2.0.0").await;
    cx.eq(
        (out.security_reports, out.quarantined),
        (2, false),
        "after carol's report (2 distinct)",
    );
    let d = detail(cx, store, None, l).await;
    cx.eq(
        version_info(cx, &d, "2.0.0").quarantined.is_some(),
        false,
        "2.0.0 quarantined after 2 distinct security reports",
    );

    let out = report_security(cx, store, &dave(), l, "2.0.0").await;
    cx.eq(out.version.as_str(), "2.0.0", "ReportOutcome.version");
    cx.eq(
        (out.security_reports, out.quarantined),
        (3, true),
        "after dave's report (3 distinct)",
    );
    let d = detail(cx, store, None, l).await;
    let info = version_info(cx, &d, "2.0.0");
    cx.eq(
        info.quarantined.is_some(),
        true,
        "2.0.0 quarantined after 3 distinct reports",
    );
    cx.eq(
        info.refusal().is_some(),
        true,
        "refusal() of a quarantined version is Some",
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("1.0.0"),
        "channels[latest] with 2.0.0 quarantined",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("1.0.0"),
        "summary.latest_version with 2.0.0 quarantined",
    );
    cx.eq(
        d.summary.quarantined,
        true,
        "summary.quarantined (the newest version is)",
    );
    cx.eq(
        version_list(&d),
        strings(&["2.0.0", "1.0.0"]),
        "versions (quarantined still listed)",
    );
    let ids = browse_ids(cx, store, None, &BrowseQuery::default()).await;
    cx.eq(
        ids,
        strings(&[l]),
        "browse() while an older version is launchable",
    );

    expect_err!(
        cx,
        store
            .report(&bob(), &id(l), &v("3.0.0"), ReportReason::Security, None)
            .await,
        RegistryError::UnknownVersion { .. },
        "a report of unpublished 3.0.0"
    );
}

async fn admin_security_report_quarantines(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let out = report_security(cx, store, &admin(), "alice/python-ml", "1.0.0").await;
    cx.eq(
        out.quarantined,
        true,
        "ReportOutcome.quarantined after the admin's one report",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").quarantined.is_some(),
        true,
        "1.0.0 quarantined after the admin's report",
    );
}

async fn quarantined_only_version_leaves_browse(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/r-stats", "1.0.0")).await;
    report_security(cx, store, &admin(), "alice/python-ml", "1.0.0").await;
    let ids = browse_ids(cx, store, None, &BrowseQuery::default()).await;
    cx.eq(
        ids,
        strings(&["alice/r-stats"]),
        "browse() with alice/python-ml's only version quarantined",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.latest_version,
        None,
        "summary.latest_version with no launchable version",
    );
    cx.eq(
        d.channels.get("latest"),
        None,
        "channels[latest] with no launchable version",
    );
}

async fn clear_reports_is_admin_only(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    let l = "alice/python-ml";
    for who in [bob(), carol(), dave()] {
        report_security(cx, store, &who, l, "2.0.0").await;
    }
    for who in [bob(), alice()] {
        expect_err!(
            cx,
            store.clear_reports(&who, &id(l), &v("2.0.0")).await,
            RegistryError::Forbidden { .. },
            format!("{} (not an admin) clears the reports", who.identity.handle)
        );
    }
    let d = detail(cx, store, None, l).await;
    cx.eq(
        version_info(cx, &d, "2.0.0").quarantined.is_some(),
        true,
        "2.0.0 still quarantined after refused clears",
    );

    cx.ok(
        store.clear_reports(&admin(), &id(l), &v("2.0.0")).await,
        "the admin clears the reports",
    );
    let d = detail(cx, store, None, l).await;
    cx.eq(
        version_info(cx, &d, "2.0.0").quarantined.is_some(),
        false,
        "2.0.0 quarantined after the admin cleared it",
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("2.0.0"),
        "channels[latest] after the quarantine is cleared",
    );
    let out = report_security(cx, store, &bob(), l, "2.0.0").await;
    cx.eq(
        (out.security_reports, out.quarantined),
        (1, false),
        "bob's report after the clear (old reports no longer count)",
    );
}

async fn revoke_by_publisher_or_admin(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    let l = id("alice/python-ml");
    expect_err!(
        cx,
        store
            .revoke(&carol(), &l, &v("2.0.0"), "I don't like it")
            .await,
        RegistryError::Forbidden { .. },
        "carol revokes alice's 2.0.0"
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "2.0.0").revoked.is_some(),
        false,
        "2.0.0 revoked after carol's forbidden revoke",
    );

    let r = cx.ok(
        store
            .revoke(&alice(), &l, &v("2.0.0"), "leaks credentials")
            .await,
        "alice revokes 2.0.0",
    );
    cx.eq(r.reason.as_str(), "leaks credentials", "Revocation.reason");
    cx.eq(r.by.as_str(), "alice", "Revocation.by");
    let d = detail(cx, store, None, "alice/python-ml").await;
    let info = version_info(cx, &d, "2.0.0");
    cx.eq(
        info.revoked.as_ref().map(|r| r.reason.as_str()),
        Some("leaks credentials"),
        "VersionInfo.revoked reason",
    );
    cx.holds(
        info.refusal()
            .is_some_and(|why| why.contains("leaks credentials")),
        format_args!(
            "refusal() of revoked 2.0.0: observed {:?}, expected Some(..) naming the reason",
            info.refusal()
        ),
    );
    cx.eq(
        d.channels.get("latest").map(String::as_str),
        Some("1.0.0"),
        "channels[latest] after revoking 2.0.0",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("1.0.0"),
        "summary.latest_version after revoking 2.0.0",
    );
    cx.eq(
        d.summary.revoked,
        true,
        "summary.revoked (the newest version is)",
    );

    let again = cx.ok(
        store
            .revoke(&alice(), &l, &v("2.0.0"), "another reason")
            .await,
        "alice revokes 2.0.0 again",
    );
    cx.eq(
        (again.reason.as_str(), again.by.as_str()),
        ("leaks credentials", "alice"),
        "Revocation (reason, by) of a second revoke (the first is kept)",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "2.0.0")
            .revoked
            .as_ref()
            .map(|r| r.reason.as_str()),
        Some("leaks credentials"),
        "VersionInfo.revoked reason after a second revoke",
    );

    let by_admin = cx.ok(
        store.revoke(&admin(), &l, &v("1.0.0"), "policy").await,
        "the admin revokes 1.0.0",
    );
    cx.eq(
        by_admin.by.as_str(),
        "admin",
        "Revocation.by of the admin's revoke",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        d.summary.latest_version,
        None,
        "summary.latest_version with every version revoked",
    );
    let ids = browse_ids(cx, store, None, &BrowseQuery::default()).await;
    cx.eq(
        ids,
        Vec::<String>::new(),
        "browse() with every version revoked",
    );

    expect_err!(
        cx,
        store.revoke(&alice(), &l, &v("3.0.0"), "never was").await,
        RegistryError::UnknownVersion { .. },
        "alice revokes unpublished 3.0.0"
    );
}

/// `VersionInfo::refusal()` of a version as its publisher `alice` sees it.
async fn refusal_seen_by_alice(
    cx: &Check,
    store: &dyn Registry,
    listing: &str,
    version: &str,
) -> Option<String> {
    let d = detail(cx, store, Some(&alice()), listing).await;
    version_info(cx, &d, version).refusal()
}

async fn refusals_list_revoked_and_quarantined_versions(cx: &Check, store: &dyn Registry) {
    let none = cx.ok(
        store.refusals().await,
        "refusals() of a store without refusals",
    );
    cx.eq(none, vec![], "refusals() of a store without refusals");
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    publish(
        cx,
        store,
        PublishBuilder::new("alice/secret-lab", "1.0.0").visibility(Visibility::Private),
    )
    .await;
    cx.ok(
        store
            .revoke(
                &alice(),
                &id("alice/python-ml"),
                &v("2.0.0"),
                "leaks credentials",
            )
            .await,
        "alice revokes alice/python-ml@2.0.0",
    );
    // A private listing's refusal is listed too: a refusal is never hidden.
    report_security(cx, store, &admin(), "alice/secret-lab", "1.0.0").await;

    let expected = vec![
        (
            "alice/python-ml".to_string(),
            "2.0.0".to_string(),
            refusal_seen_by_alice(cx, store, "alice/python-ml", "2.0.0").await,
        ),
        (
            "alice/secret-lab".to_string(),
            "1.0.0".to_string(),
            refusal_seen_by_alice(cx, store, "alice/secret-lab", "1.0.0").await,
        ),
    ];
    let mut refusals: Vec<(String, String, Option<String>)> = cx
        .ok(store.refusals().await, "refusals()")
        .into_iter()
        .map(|r| (r.listing.to_string(), r.version, Some(r.reason)))
        .collect();
    refusals.sort();
    cx.eq(
        refusals,
        expected,
        "refusals() (listing, version, reason = VersionInfo::refusal())",
    );

    cx.ok(
        store
            .clear_reports(&admin(), &id("alice/secret-lab"), &v("1.0.0"))
            .await,
        "the admin clears alice/secret-lab@1.0.0",
    );
    let left: Vec<String> = cx
        .ok(store.refusals().await, "refusals() after a clear")
        .into_iter()
        .map(|r| format!("{}@{}", r.listing, r.version))
        .collect();
    cx.eq(
        left,
        strings(&["alice/python-ml@2.0.0"]),
        "refusals() after the quarantine is cleared",
    );
}

// ---------------------------------------------------------------------------------------------
// Signatures and imports
// ---------------------------------------------------------------------------------------------

/// A signed document of a version's revision as `d` serves it. The signature is a stand-in:
/// a store keeps what it is given (callers check signatures, see `trust`).
fn signed_doc(
    cx: &Check,
    d: &ListingDetail,
    version: &str,
    revision: u32,
) -> crate::trust::SignedDocument {
    let mut info = version_info(cx, d, version).clone();
    info.revision = revision;
    signed_doc_of(
        &d.summary.id,
        &d.summary.publisher_email,
        &d.summary.template,
        &info,
    )
}

fn signed_doc_of(
    listing: &ListingId,
    publisher_email: &str,
    template: &str,
    info: &VersionInfo,
) -> crate::trust::SignedDocument {
    let doc = crate::trust::version_document(listing, publisher_email, template, info);
    crate::trust::SignedDocument {
        revision: info.revision,
        document: crate::trust::canonical_document(&doc),
        signature: format!(
            "-----BEGIN SSH SIGNATURE-----\nfixture {listing}@{} r{}\n-----END SSH SIGNATURE-----\n",
            info.version, info.revision
        ),
    }
}

/// The (held, offered) revisions of a [`RegistryError::Rollback`].
fn rollback_revisions(e: &RegistryError) -> (u32, u32) {
    match e {
        RegistryError::Rollback { held, offered, .. } => (*held, *offered),
        _ => (0, 0),
    }
}

async fn sign_version_by_publisher_at_current_revision(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let l = id("alice/python-ml");
    let d = detail(cx, store, Some(&alice()), "alice/python-ml").await;
    let r1 = signed_doc(cx, &d, "1.0.0", 1);

    for (who, actor) in [("bob", bob()), ("the admin", admin())] {
        expect_err!(
            cx,
            store.sign_version(&actor, &l, &v("1.0.0"), &r1).await,
            RegistryError::Forbidden { .. },
            format!("{who} signs alice/python-ml@1.0.0 (only its publisher signs)")
        );
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").signed.clone(),
        None,
        "VersionInfo.signed after refused signatures",
    );

    let ahead = signed_doc(cx, &d, "1.0.0", 2);
    let err = expect_err!(
        cx,
        store.sign_version(&alice(), &l, &v("1.0.0"), &ahead).await,
        RegistryError::Rollback { .. },
        "alice signs revision 2 of 1.0.0 while it is at revision 1"
    );
    cx.eq(
        rollback_revisions(&err),
        (1, 2),
        "Rollback (held, offered) of a document for a revision the version is not at",
    );

    cx.ok(
        store.sign_version(&alice(), &l, &v("1.0.0"), &r1).await,
        "alice signs revision 1 of 1.0.0",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").signed.clone(),
        Some(r1.clone()),
        "VersionInfo.signed after alice signs revision 1",
    );
    cx.eq(
        d.summary.latest_signed.clone(),
        (1, Some(r1.clone())),
        "listing summary.latest_signed (revision of the latest version, its signed document)",
    );
    let browsed = cx.ok(
        store.browse(None, &BrowseQuery::default()).await,
        "browse()",
    );
    cx.eq(
        browsed
            .iter()
            .map(|s| (s.id.to_string(), s.latest_signed.clone()))
            .collect::<Vec<_>>(),
        vec![("alice/python-ml".to_string(), (1, Some(r1.clone())))],
        "browse() latest_signed",
    );

    // A second region makes revision 2: the signed revision 1 is no longer the current one.
    publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0").region("us-west-2"),
    )
    .await;
    let err = expect_err!(
        cx,
        store.sign_version(&alice(), &l, &v("1.0.0"), &r1).await,
        RegistryError::Rollback { .. },
        "alice signs revision 1 again while 1.0.0 is at revision 2"
    );
    cx.eq(
        rollback_revisions(&err),
        (2, 1),
        "Rollback (held, offered) of an old revision",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").signed.clone(),
        Some(r1.clone()),
        "VersionInfo.signed after a refused old revision (revision 1 still signed)",
    );
    let r2 = signed_doc(cx, &d, "1.0.0", 2);
    cx.ok(
        store.sign_version(&alice(), &l, &v("1.0.0"), &r2).await,
        "alice signs revision 2 of 1.0.0",
    );
    let err = expect_err!(
        cx,
        store.sign_version(&alice(), &l, &v("1.0.0"), &r1).await,
        RegistryError::Rollback { .. },
        "alice signs revision 1 after revision 2 is signed"
    );
    cx.eq(
        rollback_revisions(&err),
        (2, 1),
        "Rollback (held, offered) of a revision below the signed one",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").signed.clone(),
        Some(r2),
        "VersionInfo.signed after signing revision 2 and a refused rollback",
    );

    expect_err!(
        cx,
        store.sign_version(&alice(), &l, &v("3.0.0"), &r1).await,
        RegistryError::UnknownVersion { .. },
        "alice signs unpublished 3.0.0"
    );
    expect_err!(
        cx,
        store
            .sign_version(&alice(), &id("alice/python-mk"), &v("1.0.0"), &r1)
            .await,
        RegistryError::UnknownListing { .. },
        "alice signs a version of unknown alice/python-mk"
    );
}

async fn revoke_bumps_the_revision(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0").region("us-west-2"),
    )
    .await;
    let l = id("alice/python-ml");
    cx.ok(
        store
            .revoke(&alice(), &l, &v("1.0.0"), "leaks credentials")
            .await,
        "alice revokes 1.0.0 at revision 2",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").revision,
        3,
        "VersionInfo.revision after revoking a version at revision 2",
    );
    cx.eq(
        version_info(cx, &d, "1.0.0").regions.len(),
        2,
        "regions of 1.0.0 after the revocation",
    );
    cx.ok(
        store.revoke(&admin(), &l, &v("1.0.0"), "again").await,
        "the admin revokes 1.0.0 again",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").revision,
        3,
        "VersionInfo.revision after a second revoke (the first is kept)",
    );
    // The revocation is a revision of its own: the publisher signs it.
    let before = signed_doc(cx, &d, "1.0.0", 2);
    expect_err!(
        cx,
        store.sign_version(&alice(), &l, &v("1.0.0"), &before).await,
        RegistryError::Rollback { .. },
        "alice signs revision 2 of revoked 1.0.0 (at revision 3)"
    );
    let revoked = signed_doc(cx, &d, "1.0.0", 3);
    cx.ok(
        store
            .sign_version(&alice(), &l, &v("1.0.0"), &revoked)
            .await,
        "alice signs revision 3 (the revocation) of 1.0.0",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").signed.clone(),
        Some(revoked),
        "VersionInfo.signed after signing the revocation",
    );
}

/// When the export fixtures were first published.
fn export_time(hour: u32) -> chrono::DateTime<chrono::Utc> {
    day(1)
        .and_hms_opt(hour, 0, 0)
        .expect("fixture time")
        .and_utc()
}

/// One version of an export of `listing` with images in `regions` (`salt` varies the ids).
fn exported(
    listing: &str,
    version: &str,
    revision: u32,
    regions: &[&str],
    salt: &str,
) -> ExportedVersion {
    let h = fnv(&[listing, version, "export"]);
    ExportedVersion {
        version: version.into(),
        revision,
        regions: regions
            .iter()
            .map(|r| {
                (
                    r.to_string(),
                    RegionImage {
                        ami_id: ami(listing, version, r, salt),
                        architecture: "arm64".into(),
                        snapshot_ids: vec![
                            format!("snap-0{:016x}", fnv(&[listing, version, r, "a"])),
                            format!("snap-0{:016x}", fnv(&[listing, version, r, "b"])),
                        ],
                        size_gib: Some(64),
                    },
                )
            })
            .collect(),
        template_digest: format!("sha256:{h:016x}{h:016x}{h:016x}{h:016x}"),
        created_at: export_time(if version == "1.0.0" { 9 } else { 10 }),
        notes: Some(format!("Mirrored {version}")),
        speedup: Some(3.5),
        revoked: None,
        signed: None,
    }
}

/// The export of `alice/python-ml` another registry made: 1.0.0 at revision 2 (two regions,
/// signed) and 2.0.0 at revision 1 (one region, unsigned).
fn export_fixture() -> ListingExport {
    let listing = "alice/python-ml";
    let mut e = ListingExport {
        format: EXPORT_FORMAT.into(),
        id: id(listing),
        name: "Python ML (mirrored)".into(),
        description: "A workstation image for python-ml, from another registry".into(),
        category: "machine-learning".into(),
        template: "python-ml".into(),
        visibility: Visibility::Public,
        creator: "Alice Smith <alice@example.edu>".into(),
        publisher_email: "alice@example.edu".into(),
        versions: vec![
            exported(listing, "1.0.0", 2, &["us-east-1", "us-west-2"], "mirror"),
            exported(listing, "2.0.0", 1, &["us-east-1"], "mirror"),
        ],
    };
    let signed = export_signed(&e, 0);
    e.versions[0].signed = Some(signed);
    e
}

/// A signed document of the export's `index`th version at its revision.
fn export_signed(e: &ListingExport, index: usize) -> crate::trust::SignedDocument {
    let x = &e.versions[index];
    let info = VersionInfo {
        version: x.version.clone(),
        revision: x.revision,
        regions: x.regions.clone(),
        template_digest: x.template_digest.clone(),
        created_at: x.created_at,
        notes: x.notes.clone(),
        speedup: x.speedup,
        signature: SignatureInfo::unsigned(),
        revoked: x.revoked.clone(),
        quarantined: None,
        downloads: 0,
        signed: None,
    };
    signed_doc_of(&e.id, &e.publisher_email, &e.template, &info)
}

async fn import(cx: &Check, store: &dyn Registry, e: &ListingExport, what: &str) -> Imported {
    cx.ok(store.import(&admin(), e).await, what)
}

async fn import_adds_listing_versions_and_regions(cx: &Check, store: &dyn Registry) {
    let e = export_fixture();
    let mut bad = e.clone();
    bad.format = "cws-listing-export/0".into();
    expect_err!(
        cx,
        store.import(&admin(), &bad).await,
        RegistryError::Invalid { .. },
        "import of an export in another format"
    );

    let out = import(
        cx,
        store,
        &e,
        "import of alice/python-ml into an empty store",
    )
    .await;
    cx.eq(
        out.listing.to_string(),
        "alice/python-ml".into(),
        "Imported.listing",
    );
    cx.eq(
        out.added_versions.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["1.0.0", "2.0.0"]),
        "Imported.added_versions into an empty store",
    );

    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_list(&d),
        strings(&["2.0.0", "1.0.0"]),
        "versions after the import",
    );
    cx.eq(
        (
            d.summary.name.as_str(),
            d.summary.description.as_str(),
            d.summary.category.as_str(),
            d.summary.template.as_str(),
        ),
        (
            e.name.as_str(),
            e.description.as_str(),
            e.category.as_str(),
            e.template.as_str(),
        ),
        "summary (name, description, category, template) after the import",
    );
    cx.eq(
        &d.creator,
        &e.creator,
        "ListingDetail.creator after the import",
    );
    cx.eq(
        &d.summary.publisher_email,
        &e.publisher_email,
        "summary.publisher_email after the import",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("2.0.0"),
        "summary.latest_version after the import",
    );
    for x in &e.versions {
        let info = version_info(cx, &d, &x.version);
        let what = |field: &str| format!("{field} of imported {}", x.version);
        cx.eq(info.revision, x.revision, &what("VersionInfo.revision"));
        cx.eq(&info.regions, &x.regions, &what("VersionInfo.regions"));
        cx.eq(
            &info.template_digest,
            &x.template_digest,
            &what("VersionInfo.template_digest"),
        );
        cx.eq(
            info.created_at,
            x.created_at,
            &what("VersionInfo.created_at"),
        );
        cx.eq(&info.notes, &x.notes, &what("VersionInfo.notes"));
        cx.eq(info.speedup, x.speedup, &what("VersionInfo.speedup"));
        cx.eq(&info.signed, &x.signed, &what("VersionInfo.signed"));
        cx.eq(&info.revoked, &None, &what("VersionInfo.revoked"));
    }
    let west = &e.versions[0].regions["us-west-2"].ami_id;
    let found = cx.ok(
        store.find_image(None, west).await,
        "find_image(an imported image)",
    );
    cx.eq(
        found,
        vec![ImageListing {
            listing: id("alice/python-ml"),
            version: "1.0.0".into(),
            region: "us-west-2".into(),
        }],
        "find_image(an imported image)",
    );

    // The same export again adds nothing.
    let again = import(cx, store, &e, "the same import again").await;
    cx.eq(
        (again.added_versions.clone(), again.added_regions),
        (Vec::new(), 0),
        "Imported (added_versions, added_regions) of the same export again",
    );

    // A newer export: 1.0.0 gained a region (revision 3).
    let mut newer = e.clone();
    newer.versions[0] = exported(
        "alice/python-ml",
        "1.0.0",
        3,
        &["us-east-1", "us-west-2", "eu-central-1"],
        "mirror",
    );
    newer.versions[0].signed = e.versions[0].signed.clone();
    let out = import(cx, store, &newer, "import of 1.0.0 with a third region").await;
    cx.eq(
        (out.added_versions.clone(), out.added_regions),
        (Vec::new(), 1),
        "Imported (added_versions, added_regions) of a region added to a held version",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    let info = version_info(cx, &d, "1.0.0");
    cx.eq(
        info.revision,
        3,
        "VersionInfo.revision of 1.0.0 after an export at revision 3",
    );
    cx.eq(
        info.regions.keys().cloned().collect::<Vec<_>>(),
        strings(&["eu-central-1", "us-east-1", "us-west-2"]),
        "regions of 1.0.0 after an export with a third region",
    );
    cx.eq(
        info.signed.clone(),
        e.versions[0].signed.clone(),
        "VersionInfo.signed of 1.0.0 (revision 2 still the signed one)",
    );

    // Then 3.0.0 is new.
    newer.versions.push(exported(
        "alice/python-ml",
        "3.0.0",
        1,
        &["us-east-1"],
        "mirror",
    ));
    let out = import(cx, store, &newer, "import of an export with 3.0.0").await;
    cx.eq(
        out.added_versions.clone(),
        strings(&["3.0.0"]),
        "Imported.added_versions of an export with a new version",
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_list(&d),
        strings(&["3.0.0", "2.0.0", "1.0.0"]),
        "versions after importing 3.0.0",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("3.0.0"),
        "summary.latest_version after importing 3.0.0",
    );
}

async fn import_refuses_changed_regions_and_rollbacks(cx: &Check, store: &dyn Registry) {
    let e = export_fixture();
    import(cx, store, &e, "import of alice/python-ml").await;
    let held_east = e.versions[0].regions["us-east-1"].ami_id.clone();

    // 2.0.0 gains a region, then 1.0.0's us-east-1 holds another image: refused whole.
    let mut changed = e.clone();
    changed.versions = vec![
        exported(
            "alice/python-ml",
            "2.0.0",
            2,
            &["us-east-1", "eu-central-1"],
            "mirror",
        ),
        e.versions[0].clone(),
    ];
    changed.versions[1].revision = 3;
    changed.versions[1]
        .regions
        .get_mut("us-east-1")
        .expect("fixture region")
        .ami_id = ami("alice/python-ml", "1.0.0", "us-east-1", "substituted");
    let err = expect_err!(
        cx,
        store.import(&admin(), &changed).await,
        RegistryError::RegionTaken { .. },
        "import with another image for 1.0.0 in us-east-1"
    );
    if let RegistryError::RegionTaken {
        version,
        region,
        existing,
        ..
    } = &err
    {
        cx.eq(
            (version.as_str(), region.as_str(), existing.as_str()),
            ("1.0.0", "us-east-1", held_east.as_str()),
            "RegionTaken (version, region, existing) of the import",
        );
    }
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "1.0.0").regions["us-east-1"]
            .ami_id
            .clone(),
        held_east.clone(),
        "1.0.0's us-east-1 image after the refused import",
    );
    cx.eq(
        (
            version_info(cx, &d, "2.0.0").revision,
            version_info(cx, &d, "2.0.0").regions.len(),
        ),
        (1, 1),
        "2.0.0 (revision, regions) after the refused import (nothing of it is kept)",
    );

    // 1.0.0 at revision 1 where revision 2 is held.
    let mut older = e.clone();
    older.versions[0].revision = 1;
    older.versions[0].signed = None;
    let err = expect_err!(
        cx,
        store.import(&admin(), &older).await,
        RegistryError::Rollback { .. },
        "import of 1.0.0 at revision 1 where revision 2 is held"
    );
    cx.eq(
        rollback_revisions(&err),
        (2, 1),
        "Rollback (held, offered) of an older revision",
    );

    // 1.0.0 at its revision, signed at a lower revision than the one held.
    let mut unsigned_back = e.clone();
    let mut r1 = export_signed(&e, 0);
    r1.revision = 1;
    unsigned_back.versions[0].signed = Some(r1);
    let err = expect_err!(
        cx,
        store.import(&admin(), &unsigned_back).await,
        RegistryError::Rollback { .. },
        "import of 1.0.0 signed at revision 1 where signed revision 2 is held"
    );
    cx.eq(
        rollback_revisions(&err),
        (2, 1),
        "Rollback (held, offered) of an older signed revision",
    );

    // 1.0.0 without its signature: the signed revision would go back to none.
    let mut stripped = e.clone();
    stripped.versions[0].signed = None;
    expect_err!(
        cx,
        store.import(&admin(), &stripped).await,
        RegistryError::Rollback { .. },
        "import of 1.0.0 without the signature of the held revision 2"
    );
    let d = detail(cx, store, None, "alice/python-ml").await;
    let info = version_info(cx, &d, "1.0.0");
    cx.eq(
        (info.revision, info.signed.clone()),
        (2, e.versions[0].signed.clone()),
        "1.0.0 (revision, signed) after refused rollbacks",
    );
}

async fn import_keeps_revocations(cx: &Check, store: &dyn Registry) {
    let mut e = export_fixture();
    let revocation = Revocation {
        reason: "leaks credentials".into(),
        by: "alice".into(),
        at: export_time(11),
    };
    e.versions[1].revision = 2;
    e.versions[1].revoked = Some(revocation.clone());
    import(cx, store, &e, "import with 2.0.0 revoked").await;
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "2.0.0").revoked.clone(),
        Some(revocation.clone()),
        "VersionInfo.revoked of imported revoked 2.0.0",
    );
    cx.eq(
        d.summary.latest_version.as_deref(),
        Some("1.0.0"),
        "summary.latest_version with imported 2.0.0 revoked",
    );
    cx.eq(
        d.summary.revoked,
        true,
        "summary.revoked (the newest version is)",
    );
    let refusals: Vec<(String, String, String)> = cx
        .ok(store.refusals().await, "refusals()")
        .into_iter()
        .map(|r| (r.listing.to_string(), r.version, r.reason))
        .collect();
    cx.eq(
        refusals,
        vec![(
            "alice/python-ml".to_string(),
            "2.0.0".to_string(),
            "revoked by alice: leaks credentials".to_string(),
        )],
        "refusals() after importing a revocation",
    );

    // An export that lacks the revocation does not lift it.
    let mut lifted = e.clone();
    lifted.versions[1].revoked = None;
    import(cx, store, &lifted, "import of 2.0.0 without its revocation").await;
    let d = detail(cx, store, None, "alice/python-ml").await;
    cx.eq(
        version_info(cx, &d, "2.0.0").revoked.clone(),
        Some(revocation),
        "VersionInfo.revoked of 2.0.0 after an export without the revocation",
    );
}

// ---------------------------------------------------------------------------------------------
// Browse
// ---------------------------------------------------------------------------------------------

async fn browse_filters_by_category(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/torch-gpu", "1.0.0")).await;
    publish(
        cx,
        store,
        PublishBuilder::new("bob/genome-tools", "1.0.0").category("genomics"),
    )
    .await;
    let q = |c: &str| BrowseQuery {
        category: Some(c.to_string()),
        ..BrowseQuery::default()
    };
    let ml: BTreeSet<String> = browse_ids(cx, store, None, &q("machine-learning"))
        .await
        .into_iter()
        .collect();
    cx.eq(
        ml,
        set(&["alice/python-ml", "alice/torch-gpu"]),
        "browse(category machine-learning)",
    );
    let genomics = browse_ids(cx, store, None, &q("genomics")).await;
    cx.eq(
        genomics,
        strings(&["bob/genome-tools"]),
        "browse(category genomics)",
    );
    let none = browse_ids(cx, store, None, &q("astronomy")).await;
    cx.eq(none, Vec::<String>::new(), "browse(category astronomy)");
    let all = browse_ids(cx, store, None, &BrowseQuery::default()).await;
    cx.eq(
        all.len(),
        3,
        "number of listings in browse() without a filter",
    );
}

async fn browse_filters_by_text(cx: &Check, store: &dyn Registry) {
    publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0")
            .name("Python ML")
            .description("PyTorch with CUDA GPU drivers"),
    )
    .await;
    publish(
        cx,
        store,
        PublishBuilder::new("alice/cpu-lab", "1.0.0")
            .name("CPU Lab")
            .description("PyTorch, CPU only"),
    )
    .await;
    publish(
        cx,
        store,
        PublishBuilder::new("bob/genome-tools", "1.0.0")
            .name("Genome Tools")
            .description("Aligners and variant callers")
            .category("genomics"),
    )
    .await;
    let q = |t: &str| BrowseQuery {
        text: Some(t.to_string()),
        ..BrowseQuery::default()
    };
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "pytorch",
            &["alice/cpu-lab", "alice/python-ml"],
            "description, lowercase",
        ),
        (
            "PYTORCH",
            &["alice/cpu-lab", "alice/python-ml"],
            "description, uppercase",
        ),
        ("genome-TOOLS", &["bob/genome-tools"], "id"),
        ("cpu lab", &["alice/cpu-lab"], "name"),
        ("GENOMICS", &["bob/genome-tools"], "category"),
        (
            "pytorch gpu",
            &["alice/python-ml"],
            "two words, both required",
        ),
    ];
    for (text, expected, what) in cases {
        let got: BTreeSet<String> = browse_ids(cx, store, None, &q(text))
            .await
            .into_iter()
            .collect();
        cx.eq(
            got,
            set(expected),
            &format!("browse(text {text:?}) ({what})"),
        );
    }
    let none = browse_ids(cx, store, None, &q("fortran")).await;
    cx.eq(none, Vec::<String>::new(), "browse(text \"fortran\")");
}

async fn browse_filters_by_community(cx: &Check, store: &dyn Registry) {
    publish(
        cx,
        store,
        PublishBuilder::new("alice/sky-survey", "1.0.0")
            .visibility(Visibility::Community("astro".into())),
    )
    .await;
    publish(
        cx,
        store,
        PublishBuilder::new("bob/genome-tools", "1.0.0")
            .visibility(Visibility::Community("bio".into())),
    )
    .await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let q = |c: &str| BrowseQuery {
        community: Some(c.to_string()),
        ..BrowseQuery::default()
    };
    let astro = browse_ids(cx, store, None, &q("astro")).await;
    cx.eq(
        astro,
        strings(&["alice/sky-survey"]),
        "browse(community astro), anonymous",
    );
    let bio = browse_ids(cx, store, Some(&carol()), &q("bio")).await;
    cx.eq(
        bio,
        strings(&["bob/genome-tools"]),
        "browse(community bio) as carol",
    );
    let all: BTreeSet<String> = browse_ids(cx, store, None, &BrowseQuery::default())
        .await
        .into_iter()
        .collect();
    cx.eq(
        all,
        set(&["alice/python-ml", "alice/sky-survey", "bob/genome-tools"]),
        "browse() anonymous (community listings are public)",
    );
    let d = detail(cx, store, None, "alice/sky-survey").await;
    cx.eq(
        d.summary.visibility,
        Visibility::Community("astro".into()),
        "summary.visibility of a community listing",
    );
}

/// Six listings with known ratings and downloads (see [`browse_sorts_and_limits`]).
async fn seed_ranking(cx: &Check, store: &dyn Registry) {
    for slug in [
        "solo-five",
        "many-good",
        "poor",
        "unrated-few",
        "unrated-more",
        "three-fives",
    ] {
        publish(
            cx,
            store,
            PublishBuilder::new(&format!("alice/{slug}"), "1.0.0"),
        )
        .await;
    }
    // solo-five: one 5.
    rate(cx, store, &user(0), "alice/solo-five", 5).await;
    // many-good: eight 5s and two 4s (4.8 from ten).
    for i in 0..10 {
        rate(
            cx,
            store,
            &user(i),
            "alice/many-good",
            if i < 8 { 5 } else { 4 },
        )
        .await;
    }
    // poor: ten 2s.
    for i in 0..10 {
        rate(cx, store, &user(i), "alice/poor", 2).await;
    }
    // three-fives: three 5s.
    for i in 0..3 {
        rate(cx, store, &user(i), "alice/three-fives", 5).await;
    }
    let downloads = [
        ("three-fives", 6),
        ("poor", 5),
        ("solo-five", 3),
        ("unrated-more", 2),
        ("unrated-few", 1),
    ];
    for (slug, n) in downloads {
        for k in 0..n {
            record(
                cx,
                store,
                download(&format!("alice/{slug}"), "1.0.0", 1 + k, None),
            )
            .await;
        }
    }
}

async fn browse_sorts_and_limits(cx: &Check, store: &dyn Registry) {
    seed_ranking(cx, store).await;
    let q = |sort: Sort, limit: usize| BrowseQuery {
        sort,
        limit,
        ..BrowseQuery::default()
    };
    let a =
        |slugs: &[&str]| -> Vec<String> { slugs.iter().map(|s| format!("alice/{s}")).collect() };

    // Global mean of all 24 ratings: (5 + 48 + 20 + 15) / 24 = 88 / 24.
    let m = 88.0 / 24.0;
    let summaries = cx.ok(
        store.browse(None, &q(Sort::Score, 0)).await,
        "browse(sort score)",
    );
    let expected_scores = [
        ("many-good", bayesian_score(48, 10, m)),
        ("three-fives", bayesian_score(15, 3, m)),
        ("solo-five", bayesian_score(5, 1, m)),
        ("unrated-more", bayesian_score(0, 0, m)),
        ("unrated-few", bayesian_score(0, 0, m)),
        ("poor", bayesian_score(20, 10, m)),
    ];
    cx.eq(
        summaries
            .iter()
            .map(|s| s.id.to_string())
            .collect::<Vec<_>>(),
        a(&expected_scores.map(|(s, _)| s)),
        "browse(sort score) order (Bayesian average at the global mean, then downloads): one \
         5-star rating ranks below ten averaging 4.8",
    );
    for (s, (slug, score)) in summaries.iter().zip(expected_scores) {
        cx.close(
            s.score,
            score,
            &format!("score of alice/{slug} (prior mean {m})"),
        );
    }
    let many = &summaries[0];
    cx.eq(
        many.rating,
        RatingSummary {
            average: 4.8,
            count: 10,
        },
        "rating of alice/many-good",
    );
    cx.eq(many.downloads, 0, "downloads of alice/many-good");

    let by_rating = browse_ids(cx, store, None, &q(Sort::Rating, 0)).await;
    cx.eq(
        by_rating[..4].to_vec(),
        a(&["three-fives", "solo-five", "many-good", "poor"]),
        "browse(sort rating) first four (average, then count)",
    );
    cx.eq(
        by_rating[4..].iter().cloned().collect::<BTreeSet<_>>(),
        a(&["unrated-few", "unrated-more"]).into_iter().collect(),
        "browse(sort rating) last two (unrated)",
    );

    let by_downloads = browse_ids(cx, store, None, &q(Sort::Downloads, 0)).await;
    cx.eq(
        by_downloads,
        a(&[
            "three-fives",
            "poor",
            "solo-five",
            "unrated-more",
            "unrated-few",
            "many-good",
        ]),
        "browse(sort downloads) order",
    );

    let recent = browse_ids(cx, store, None, &q(Sort::Recent, 0)).await;
    cx.eq(
        recent,
        a(&[
            "three-fives",
            "unrated-more",
            "unrated-few",
            "poor",
            "many-good",
            "solo-five",
        ]),
        "browse(sort recent) order (published in the order solo-five, many-good, poor, \
         unrated-few, unrated-more, three-fives)",
    );
    publish(cx, store, PublishBuilder::new("alice/poor", "1.1.0")).await;
    let recent = browse_ids(cx, store, None, &q(Sort::Recent, 0)).await;
    cx.eq(
        recent.first().map(String::as_str),
        Some("alice/poor"),
        "first of browse(sort recent) after a new version of alice/poor (newest publish first)",
    );

    let top3 = browse_ids(cx, store, None, &q(Sort::Score, 3)).await;
    cx.eq(
        top3,
        a(&["many-good", "three-fives", "solo-five"]),
        "browse(sort score, limit 3)",
    );
    let top1 = browse_ids(cx, store, None, &q(Sort::Downloads, 1)).await;
    cx.eq(top1, a(&["three-fives"]), "browse(sort downloads, limit 1)");
}

async fn browse_score_prior_without_ratings(cx: &Check, store: &dyn Registry) {
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    publish(cx, store, PublishBuilder::new("alice/r-stats", "1.0.0")).await;
    let summaries = cx.ok(
        store.browse(None, &BrowseQuery::default()).await,
        "browse()",
    );
    cx.eq(summaries.len(), 2, "number of listings in browse()");
    for s in &summaries {
        cx.close(
            s.score,
            DEFAULT_PRIOR_MEAN,
            &format!("score of unrated {} in a store without ratings", s.id),
        );
        cx.eq(
            s.rating,
            RatingSummary {
                average: 0.0,
                count: 0,
            },
            "rating of an unrated listing",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Visibility
// ---------------------------------------------------------------------------------------------

async fn private_listing_visible_to_publisher_only(cx: &Check, store: &dyn Registry) {
    let secret = PublishBuilder::new("alice/secret-lab", "1.0.0").visibility(Visibility::Private);
    let secret_ami = secret.0.image.ami_id.clone();
    publish(cx, store, secret).await;
    publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let l = id("alice/secret-lab");

    for (who, viewer) in [("anonymous", None), ("bob", Some(bob()))] {
        expect_err!(
            cx,
            store.listing(viewer.as_ref(), &l).await,
            RegistryError::UnknownListing { .. },
            format!("listing(alice/secret-lab) as {who}")
        );
        expect_err!(
            cx,
            store.reviews(viewer.as_ref(), &l).await,
            RegistryError::UnknownListing { .. },
            format!("reviews(alice/secret-lab) as {who}")
        );
        let ids = browse_ids(cx, store, viewer.as_ref(), &BrowseQuery::default()).await;
        cx.eq(
            ids,
            strings(&["alice/python-ml"]),
            &format!("browse() as {who}"),
        );
        let found = cx.ok(
            store.find_image(viewer.as_ref(), &secret_ami).await,
            &format!("find_image(private image) as {who}"),
        );
        cx.eq(
            found,
            vec![],
            &format!("find_image(private image) as {who}"),
        );
        // A near miss must not leak the private id through suggestions.
        let err = expect_err!(
            cx,
            store
                .listing(viewer.as_ref(), &id("alice/secret-lib"))
                .await,
            RegistryError::UnknownListing { .. },
            format!("listing(alice/secret-lib) as {who}")
        );
        if let RegistryError::UnknownListing { suggestions, .. } = &err {
            cx.holds(
                !suggestions.iter().any(|s| s == "alice/secret-lab"),
                format_args!(
                    "suggestions for alice/secret-lib as {who} reveal the private listing: \
                     {suggestions:?}"
                ),
            );
        }
    }
    expect_err!(
        cx,
        store.rate(&bob(), &l, 5, None).await,
        RegistryError::UnknownListing { .. },
        "bob rates the private alice/secret-lab"
    );

    let d = detail(cx, store, Some(&alice()), "alice/secret-lab").await;
    cx.eq(
        d.summary.visibility,
        Visibility::Private,
        "summary.visibility seen by alice",
    );
    let mine: BTreeSet<String> = browse_ids(cx, store, Some(&alice()), &BrowseQuery::default())
        .await
        .into_iter()
        .collect();
    cx.eq(
        mine,
        set(&["alice/python-ml", "alice/secret-lab"]),
        "browse() as alice",
    );
}

async fn institutional_listing_visible_to_members(cx: &Check, store: &dyn Registry) {
    publish(
        cx,
        store,
        PublishBuilder::new("alice/lab-image", "1.0.0")
            .visibility(Visibility::Institutional("uni-example".into())),
    )
    .await;
    let l = id("alice/lab-image");
    let mut member = carol();
    member.orgs = vec!["other-org".into(), "uni-example".into()];
    let mut outsider = bob();
    outsider.orgs = vec!["other-org".into()];

    for (who, viewer) in [
        ("anonymous", None),
        ("bob (other-org only)", Some(outsider)),
    ] {
        expect_err!(
            cx,
            store.listing(viewer.as_ref(), &l).await,
            RegistryError::UnknownListing { .. },
            format!("listing(alice/lab-image) as {who}")
        );
        let ids = browse_ids(cx, store, viewer.as_ref(), &BrowseQuery::default()).await;
        cx.eq(ids, Vec::<String>::new(), &format!("browse() as {who}"));
    }
    for (who, viewer) in [
        ("carol (member of uni-example)", member),
        ("alice (publisher)", alice()),
    ] {
        let d = cx.ok(
            store.listing(Some(&viewer), &l).await,
            &format!("listing(alice/lab-image) as {who}"),
        );
        cx.eq(
            d.summary.visibility,
            Visibility::Institutional("uni-example".into()),
            &format!("summary.visibility seen by {who}"),
        );
        let ids = browse_ids(cx, store, Some(&viewer), &BrowseQuery::default()).await;
        cx.eq(
            ids,
            strings(&["alice/lab-image"]),
            &format!("browse() as {who}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// find_image
// ---------------------------------------------------------------------------------------------

async fn find_image_finds_published_regions(cx: &Check, store: &dyn Registry) {
    let east = publish(cx, store, PublishBuilder::new("alice/python-ml", "1.0.0")).await;
    let west = publish(
        cx,
        store,
        PublishBuilder::new("alice/python-ml", "1.0.0").region("us-west-2"),
    )
    .await;
    let newer = publish(cx, store, PublishBuilder::new("alice/python-ml", "2.0.0")).await;
    let cases = [
        (&east.ami_id, "1.0.0", "us-east-1"),
        (&west.ami_id, "1.0.0", "us-west-2"),
        (&newer.ami_id, "2.0.0", "us-east-1"),
    ];
    for (ami_id, version, region) in cases {
        let found = cx.ok(
            store.find_image(None, ami_id).await,
            &format!("find_image({ami_id})"),
        );
        cx.eq(
            found,
            vec![ImageListing {
                listing: id("alice/python-ml"),
                version: version.into(),
                region: region.into(),
            }],
            &format!("find_image({ami_id})"),
        );
    }
    let none = cx.ok(
        store.find_image(None, "ami-0000000000000dead").await,
        "find_image(unpublished image)",
    );
    cx.eq(none, vec![], "find_image(unpublished image)");
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

fn new_token(who: &Actor, orgs: &[&str], scope: Scope) -> NewToken {
    NewToken {
        identity: who.identity.clone(),
        orgs: strings(orgs),
        scope,
        expires_at: None,
    }
}

async fn issue(cx: &Check, store: &dyn TokenStore, t: &NewToken, what: &str) -> IssuedToken {
    cx.ok(store.create_token(t).await, what)
}

async fn authenticated(
    cx: &Check,
    store: &dyn TokenStore,
    secret: &str,
    now: DateTime<Utc>,
    what: &str,
) -> Option<TokenInfo> {
    cx.ok(store.authenticate(secret, now).await, what)
}

/// The lowercase hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The field of an [`RegistryError::Invalid`].
fn invalid_field(e: &RegistryError) -> &str {
    match e {
        RegistryError::Invalid { field, .. } => field,
        _ => "",
    }
}

async fn token_scopes_nest(cx: &Check, _store: &dyn TokenStore) {
    let order = [Scope::Read, Scope::Rate, Scope::Publish, Scope::Admin];
    for (i, has) in order.iter().enumerate() {
        for (j, needed) in order.iter().enumerate() {
            cx.eq(
                has.allows(*needed),
                i >= j,
                &format!("{has}.allows({needed})"),
            );
        }
    }
    cx.holds(Scope::Admin.allows(Scope::Read), "admin allows read");
    cx.holds(!Scope::Read.allows(Scope::Rate), "read does not allow rate");
    cx.holds(
        !Scope::Publish.allows(Scope::Admin),
        "publish does not allow admin",
    );
    for (scope, name) in order.iter().zip(["read", "rate", "publish", "admin"]) {
        cx.eq(scope.as_str(), name, "Scope::as_str");
        cx.eq(scope.to_string(), name.to_string(), "Scope's Display");
        cx.eq(
            cx.ok(name.parse::<Scope>(), &format!("parsing scope {name}")),
            *scope,
            &format!("parsing scope {name}"),
        );
        cx.eq(
            serde_json::to_string(scope).unwrap_or_default(),
            format!("\"{name}\""),
            &format!("{name} as JSON"),
        );
    }
    let e = expect_err!(
        cx,
        "write".parse::<Scope>(),
        RegistryError::Invalid { .. },
        "parsing scope `write`"
    );
    cx.eq(
        invalid_field(&e),
        "scope",
        "field of the error for scope `write`",
    );
    cx.holds(
        e.to_string().contains("read, rate, publish or admin"),
        format_args!("the error for scope `write` says what is accepted: {e}"),
    );
}

async fn token_create_then_authenticate(cx: &Check, store: &dyn TokenStore) {
    let who = alice();
    let before = Utc::now() - TimeDelta::seconds(1);
    let made = issue(
        cx,
        store,
        &new_token(&who, &["Example University", "lab-x"], Scope::Publish),
        "creating a publish token for alice",
    )
    .await;
    let info = &made.info;
    cx.eq(&info.identity, &who.identity, "identity of the new token");
    cx.eq(
        info.orgs.clone(),
        strings(&["Example University", "lab-x"]),
        "organizations of the new token",
    );
    cx.eq(info.scope, Scope::Publish, "scope of the new token");
    cx.eq(info.expires_at, None, "expiry of a token made without one");
    cx.eq(info.revoked_at, None, "revocation of a new token");
    cx.holds(
        info.created_at >= before && info.created_at <= Utc::now() + TimeDelta::seconds(1),
        format_args!("created_at {} is about now", info.created_at),
    );
    let id_ok = info.id.len() == 11
        && info.id.starts_with('t')
        && info.id[1..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    cx.holds(
        id_ok,
        format_args!("token id `{}` is t and 10 lowercase hex digits", info.id),
    );
    let prefix = format!("cws_{}_", info.id);
    let key = made.secret.strip_prefix(&prefix).unwrap_or_default();
    cx.holds(
        key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        format_args!(
            "the secret is `{prefix}` and 64 lowercase hex digits (got {} characters)",
            made.secret.len()
        ),
    );

    let found = authenticated(cx, store, &made.secret, Utc::now(), "authenticating").await;
    cx.eq(found.as_ref(), Some(info), "authenticate(secret)");
    let actor = info.actor();
    cx.eq(
        actor,
        Actor {
            identity: who.identity.clone(),
            admin: false,
            orgs: strings(&["Example University", "lab-x"]),
        },
        "actor of a publish token",
    );

    // A second token is another id and another secret; each finds its own.
    let other = issue(
        cx,
        store,
        &new_token(&bob(), &[], Scope::Read),
        "creating a read token for bob",
    )
    .await;
    cx.holds(
        other.info.id != info.id && other.secret != made.secret,
        "two tokens have different ids and secrets",
    );
    let found = authenticated(cx, store, &other.secret, Utc::now(), "authenticating bob").await;
    cx.eq(
        found.map(|i| i.identity.handle),
        Some("bob".to_string()),
        "authenticate(bob's secret)",
    );
    let found = authenticated(cx, store, &made.secret, Utc::now(), "authenticating alice").await;
    cx.eq(
        found.map(|i| i.identity.handle),
        Some("alice".to_string()),
        "authenticate(alice's secret) after bob's token",
    );
}

async fn token_admin_scope_acts_as_admin(cx: &Check, store: &dyn TokenStore) {
    let who = carol();
    let made = issue(
        cx,
        store,
        &new_token(&who, &["Example University"], Scope::Admin),
        "creating an admin token",
    )
    .await;
    let found = authenticated(cx, store, &made.secret, Utc::now(), "authenticating").await;
    cx.eq(
        found.as_ref(),
        Some(&made.info),
        "authenticate(admin secret)",
    );
    let actor = found.map(|i| i.actor());
    cx.eq(
        actor,
        Some(Actor {
            identity: who.identity.clone(),
            admin: true,
            orgs: strings(&["Example University"]),
        }),
        "actor of an admin token",
    );
    for scope in [Scope::Read, Scope::Rate, Scope::Publish] {
        let made = issue(
            cx,
            store,
            &new_token(&who, &[], scope),
            &format!("creating a {scope} token"),
        )
        .await;
        cx.eq(
            made.info.actor().admin,
            false,
            &format!("a {scope} token's actor is an admin"),
        );
    }
}

async fn token_refuses_bad_input(cx: &Check, store: &dyn TokenStore) {
    let who = alice();
    let long = "o".repeat(129);
    for (org, what) in [
        ("", "an empty organization"),
        (long.as_str(), "a 129-byte organization"),
        ("Example\nUniversity", "an organization with a newline"),
        ("Example\u{1b}[31m", "an organization with an escape"),
    ] {
        let e = expect_err!(
            cx,
            store
                .create_token(&new_token(&who, &["lab-x", org], Scope::Read))
                .await,
            RegistryError::Invalid { .. },
            &format!("creating a token with {what}")
        );
        cx.eq(
            invalid_field(&e),
            "org",
            &format!("field of the error for {what}"),
        );
    }
    let ok = "o".repeat(128);
    issue(
        cx,
        store,
        &new_token(&who, &[&ok], Scope::Read),
        "creating a token with a 128-byte organization",
    )
    .await;

    let mut bad_email = new_token(&who, &[], Scope::Read);
    bad_email.identity.email = "not an address".into();
    let e = expect_err!(
        cx,
        store.create_token(&bad_email).await,
        RegistryError::Invalid { .. },
        "creating a token for a bad email"
    );
    cx.eq(
        invalid_field(&e),
        "user.email",
        "field of the error for a bad email",
    );

    let mut past = new_token(&who, &[], Scope::Read);
    past.expires_at = Some(Utc::now() - TimeDelta::seconds(60));
    let e = expect_err!(
        cx,
        store.create_token(&past).await,
        RegistryError::Invalid { .. },
        "creating a token that expired a minute ago"
    );
    cx.eq(
        invalid_field(&e),
        "expires_at",
        "field of the error for a past expiry",
    );

    let listed = cx.ok(store.list_tokens().await, "listing tokens");
    cx.eq(
        listed.len(),
        1,
        "tokens after the refused ones (only the good one)",
    );
}

async fn token_wrong_or_malformed_secret_is_none(cx: &Check, store: &dyn TokenStore) {
    let made = issue(
        cx,
        store,
        &new_token(&alice(), &[], Scope::Rate),
        "creating a token",
    )
    .await;
    let secret = made.secret.clone();
    let now = Utc::now();
    // The same id with another key (the last digit changed).
    let mut wrong_key = secret.clone();
    let last = wrong_key.pop().unwrap_or('0');
    wrong_key.push(if last == '0' { '1' } else { '0' });
    // Another token's form, unknown id.
    let unknown = format!("cws_t0000000000_{}", "0".repeat(64));
    // The right key under another id.
    let key = secret.rsplit('_').next().unwrap_or_default();
    let other_id = format!("cws_t0000000000_{key}");
    let cases = [
        (wrong_key, "the right id with a wrong key"),
        (unknown, "an unknown token"),
        (other_id, "the right key under another id"),
        (String::new(), "an empty secret"),
        ("cws_".into(), "`cws_`"),
        (made.info.id.clone(), "the token's id"),
        (secret.to_uppercase(), "the secret in uppercase"),
        (format!("{secret}0"), "the secret with a digit more"),
        (
            secret[..secret.len() - 1].to_string(),
            "the secret with a digit less",
        ),
        (format!(" {secret}"), "the secret after a space"),
        (format!("Bearer {secret}"), "the secret after `Bearer `"),
        (sha256_hex(&secret), "the secret's hash"),
        ("cws_'; DROP TABLE tokens; --_x".into(), "SQL in the secret"),
    ];
    for (bad, what) in cases {
        let found = authenticated(cx, store, &bad, now, &format!("authenticating {what}")).await;
        cx.eq(found, None, &format!("authenticate({what})"));
    }
    let found = authenticated(cx, store, &secret, now, "authenticating the secret").await;
    cx.eq(
        found.map(|i| i.id),
        Some(made.info.id.clone()),
        "authenticate(the secret) after the wrong ones",
    );
}

async fn token_expired_is_none(cx: &Check, store: &dyn TokenStore) {
    let now = Utc::now();
    let mut t = new_token(&alice(), &["lab-x"], Scope::Read);
    t.expires_at = Some(now + TimeDelta::seconds(1));
    let made = issue(cx, store, &t, "creating a token that expires in 1 s").await;
    cx.holds(
        made.info.expires_at.is_some_and(|at| {
            (at - (now + TimeDelta::seconds(1))).abs() < TimeDelta::milliseconds(1)
        }),
        format_args!(
            "expires_at of the new token: {:?}, expected about {}",
            made.info.expires_at,
            now + TimeDelta::seconds(1)
        ),
    );
    let found = authenticated(cx, store, &made.secret, now, "authenticating before expiry").await;
    cx.eq(
        found.as_ref(),
        Some(&made.info),
        "authenticate before expiry",
    );
    cx.holds(made.info.usable(now), "usable(now) before expiry");
    let later = now + TimeDelta::seconds(2);
    let found = authenticated(cx, store, &made.secret, later, "authenticating 2 s later").await;
    cx.eq(found, None, "authenticate 2 s later (expired)");
    cx.holds(
        !made.info.usable(later),
        "usable(2 s later) of an expired token",
    );
    let found = authenticated(
        cx,
        store,
        &made.secret,
        made.info.expires_at.unwrap_or(later),
        "authenticating at the expiry",
    )
    .await;
    cx.eq(found, None, "authenticate at exactly expires_at");
    // An expired token stays listed.
    let listed = cx.ok(store.list_tokens().await, "listing tokens");
    cx.eq(listed, vec![made.info.clone()], "tokens after expiry");
    // A token without expiry works however late.
    let forever = issue(
        cx,
        store,
        &new_token(&bob(), &[], Scope::Read),
        "creating a token without expiry",
    )
    .await;
    let found = authenticated(
        cx,
        store,
        &forever.secret,
        now + TimeDelta::days(3650),
        "authenticating ten years later",
    )
    .await;
    cx.eq(
        found.map(|i| i.id),
        Some(forever.info.id.clone()),
        "authenticate ten years later (no expiry)",
    );
}

async fn token_revoked_is_none(cx: &Check, store: &dyn TokenStore) {
    let made = issue(
        cx,
        store,
        &new_token(&alice(), &[], Scope::Publish),
        "creating a token",
    )
    .await;
    let kept = issue(
        cx,
        store,
        &new_token(&bob(), &[], Scope::Publish),
        "creating another token",
    )
    .await;
    let before = Utc::now() - TimeDelta::seconds(1);
    let revoked = cx.ok(
        store.revoke_token(&made.info.id).await,
        "revoking the token",
    );
    cx.eq(&revoked.id, &made.info.id, "id of the revoked token");
    let Some(at) = revoked.revoked_at else {
        cx.fail("revoke_token returned a token without revoked_at");
    };
    cx.holds(
        at >= before && at <= Utc::now() + TimeDelta::seconds(1),
        format_args!("revoked_at {at} is about now"),
    );
    cx.eq(
        TokenInfo {
            revoked_at: None,
            ..revoked.clone()
        },
        made.info.clone(),
        "the revoked token, but for revoked_at",
    );
    let found = authenticated(cx, store, &made.secret, Utc::now(), "authenticating").await;
    cx.eq(found, None, "authenticate(revoked token)");
    cx.holds(!revoked.usable(Utc::now()), "usable() of a revoked token");
    let again = cx.ok(
        store.revoke_token(&made.info.id).await,
        "revoking the token again",
    );
    cx.eq(
        again.revoked_at,
        Some(at),
        "revoked_at after revoking again (the first time)",
    );
    let found = authenticated(cx, store, &kept.secret, Utc::now(), "authenticating").await;
    cx.eq(
        found.as_ref(),
        Some(&kept.info),
        "authenticate(another token) after a revocation",
    );
    for unknown in ["t0000000000", "", "alice", made.secret.as_str()] {
        let e = expect_err!(
            cx,
            store.revoke_token(unknown).await,
            RegistryError::Invalid { .. },
            &format!("revoking unknown token {unknown:?}")
        );
        cx.eq(
            invalid_field(&e),
            "token",
            &format!("field of the error for unknown token {unknown:?}"),
        );
        if unknown == made.secret {
            let key = made.secret.rsplit('_').next().unwrap_or_default();
            cx.holds(
                !e.to_string().contains(key),
                format_args!("the error for a secret given as an id shows the secret: {e}"),
            );
        }
    }
}

async fn token_list_newest_first(cx: &Check, store: &dyn TokenStore) {
    let empty = cx.ok(
        store.list_tokens().await,
        "listing tokens of an empty store",
    );
    cx.eq(empty, vec![], "tokens of an empty store");
    let mut made = Vec::new();
    for (who, scope) in [
        (alice(), Scope::Read),
        (bob(), Scope::Rate),
        (carol(), Scope::Publish),
        (dave(), Scope::Admin),
    ] {
        let t = issue(
            cx,
            store,
            &new_token(&who, &["lab-x"], scope),
            &format!("creating a token for {}", who.identity.handle),
        )
        .await;
        made.push(t.info);
    }
    let revoked = cx.ok(
        store.revoke_token(&made[1].id).await,
        "revoking bob's token",
    );
    made[1] = revoked;
    let listed = cx.ok(store.list_tokens().await, "listing tokens");
    let expected: Vec<TokenInfo> = made.iter().rev().cloned().collect();
    cx.eq(
        listed
            .iter()
            .map(|t| t.identity.handle.as_str())
            .collect::<Vec<_>>(),
        vec!["dave", "carol", "bob", "alice"],
        "token list order (newest first)",
    );
    cx.eq(listed, expected, "token list");
}
