//! The cws community registry: listings of images others built, their versions and channels,
//! ratings and reviews, downloads, reports and revocations, and the `community` resolution
//! tier that launches from them.
//!
//! [`Registry`] is the one interface, with two stores:
//!
//! - [`SqliteRegistry`], the embedded store (`$CWS_HOME/registry.db`), always built;
//! - `PostgresRegistry`, a PostgreSQL database shared by many users and by any number of
//!   server replicas, behind the cargo feature `postgres` (`PostgresRegistry::connect(url)`
//!   migrates the database; its tests run when `CWS_TEST_DATABASE_URL` names a server).
//!
//! Both hold the same data with the same meanings and errors: every store passes the same
//! conformance suite ([`testing::conformance`], feature `testing`). A client implements it too:
//! `HttpRegistry` (cargo feature `http`) reaches a registry served by `cws serve` over its REST
//! API, and gives the server's store's answers and errors as they were (the server sends them
//! serialized).
//!
//! The same stores keep the API tokens of `cws serve` ([`TokenStore`], module [`tokens`]):
//! only a hash of each token's secret is stored.
//!
//! The registry holds data; it prints nothing and words no command. Errors carry the field, the
//! value and what is accepted ([`RegistryError`]).

#![deny(missing_docs)]

pub mod audit;
pub mod community;
#[cfg(feature = "http")]
pub mod http;
pub mod model;
pub mod policy;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
pub mod tokens;
pub mod trust;
pub use sqlite::check_category;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;

pub use community::{CommunityPlan, CommunityTier, TIER_ID};
#[cfg(feature = "http")]
pub use http::{Credentials, HttpRegistry, StaticToken};
pub use model::*;
#[cfg(feature = "postgres")]
pub use postgres::PostgresRegistry;
pub use sqlite::SqliteRegistry;
pub use tokens::{IssuedToken, NewToken, Scope, TokenInfo, TokenStore};

/// What can go wrong in the registry.
///
/// It serializes with its kind in `kind` (snake_case, as [`RegistryError::code`] names it) and
/// its fields beside, so a registry server sends the exact error and an HTTP client rebuilds
/// it.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistryError {
    /// A value is not acceptable: `field` `value`, and what is.
    #[error("{field} `{value}` is not valid: use {expected}")]
    Invalid {
        /// What was given (`stars`, `version`, ...).
        field: String,
        /// The value (escaped by whoever shows it).
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// No such listing (or not visible to the actor); `suggestions` are close ids.
    #[error("no listing `{id}`")]
    UnknownListing {
        /// The id asked for.
        id: String,
        /// Close ids the actor may have meant.
        suggestions: Vec<String>,
    },
    /// The listing has no such version (or channel).
    #[error("listing `{listing}` has no version `{version}`")]
    UnknownVersion {
        /// The listing.
        listing: String,
        /// The version or channel asked for.
        version: String,
        /// Versions it has.
        known: Vec<String>,
    },
    /// No listing holds this image.
    #[error("no listing holds image {ami_id}")]
    UnlistedImage {
        /// The image.
        ami_id: String,
    },
    /// A published region entry never changes.
    #[error(
        "{listing}@{version} already has {existing} in {region}; a published region never \
         changes"
    )]
    RegionTaken {
        /// The listing.
        listing: String,
        /// The version.
        version: String,
        /// The region.
        region: String,
        /// The image already published there.
        existing: String,
    },
    /// The actor may not do this (not the publisher, not an admin).
    #[error("{actor} may not {action} `{listing}`: {why}")]
    Forbidden {
        /// Who tried.
        actor: String,
        /// What.
        action: String,
        /// The listing.
        listing: String,
        /// Why not.
        why: String,
    },
    /// A version would go back to an older revision (or signed revision) than the one held.
    #[error(
        "{listing}@{version}: revision {offered} offered where revision {held} is held; a \
         version never goes back (a rollback)"
    )]
    Rollback {
        /// The listing.
        listing: String,
        /// The version.
        version: String,
        /// The revision held.
        held: u32,
        /// The revision offered.
        offered: u32,
    },
    /// The store failed (disk, database, connection).
    #[error("registry store {store}: {message}")]
    Store {
        /// Which store (a path or URL).
        store: String,
        /// What failed.
        message: String,
    },
    /// A registry server refused the request: no valid token, an expired one, or one without
    /// the scope the request needs.
    #[error("the registry at {registry} refused the request: {message}")]
    Unauthorized {
        /// The registry (its URL).
        registry: String,
        /// Why, as the registry said.
        message: String,
    },
}

impl RegistryError {
    /// An [`RegistryError::Invalid`].
    pub fn invalid(field: &str, value: &str, expected: &str) -> RegistryError {
        RegistryError::Invalid {
            field: field.to_string(),
            value: value.chars().take(200).collect(),
            expected: expected.to_string(),
        }
    }

    /// Whether this is the caller's input at fault (as opposed to the store, or a document
    /// that fails a trust check). [`RegistryError::Unauthorized`] is: the caller fixes it with
    /// a token.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            RegistryError::Store { .. } | RegistryError::Rollback { .. }
        )
    }

    /// The error's kind, snake_case, as it is serialized in `kind` (`invalid`,
    /// `unknown_listing`, `unknown_version`, `unlisted_image`, `region_taken`, `forbidden`,
    /// `rollback`, `store`, `unauthorized`).
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::Invalid { .. } => "invalid",
            RegistryError::UnknownListing { .. } => "unknown_listing",
            RegistryError::UnknownVersion { .. } => "unknown_version",
            RegistryError::UnlistedImage { .. } => "unlisted_image",
            RegistryError::RegionTaken { .. } => "region_taken",
            RegistryError::Forbidden { .. } => "forbidden",
            RegistryError::Rollback { .. } => "rollback",
            RegistryError::Store { .. } => "store",
            RegistryError::Unauthorized { .. } => "unauthorized",
        }
    }
}

/// Result alias.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// One interface over every registry store (embedded SQLite; PostgreSQL and an HTTP client
/// of `cws serve`, `HttpRegistry` with feature `http`, implement the same).
///
/// Visibility is enforced here, in the store's queries: a listing the viewer may not see is
/// reported as unknown. `viewer` is `None` for an anonymous reader (public and community
/// listings only).
#[async_trait]
pub trait Registry: Send + Sync {
    /// A label for the store (a path or a URL), for output that names the registry.
    fn location(&self) -> String;

    /// Publishes one region's image of a version: makes the listing (the actor is its
    /// publisher: `listing.publisher` must be the actor's handle) or the version if they do
    /// not exist, and adds the region (a new revision). The same image again changes nothing;
    /// another image for a published region is [`RegistryError::RegionTaken`]. Name,
    /// description, category and visibility of an existing listing are updated.
    async fn publish(&self, actor: &Actor, p: &Publish) -> RegistryResult<Published>;

    /// A listing with its versions, channels and reviews.
    async fn listing(
        &self,
        viewer: Option<&Actor>,
        id: &ListingId,
    ) -> RegistryResult<ListingDetail>;

    /// Listings matching a query, ordered by `query.sort`. Listings with no launchable version
    /// (all revoked or quarantined) are left out.
    async fn browse(
        &self,
        viewer: Option<&Actor>,
        query: &BrowseQuery,
    ) -> RegistryResult<Vec<ListingSummary>>;

    /// Where an image id is published (any region, any version).
    async fn find_image(
        &self,
        viewer: Option<&Actor>,
        ami_id: &str,
    ) -> RegistryResult<Vec<ImageListing>>;

    /// Points a named channel at a version (publisher or admin). `latest` moves by itself and
    /// cannot be set.
    async fn set_channel(
        &self,
        actor: &Actor,
        id: &ListingId,
        channel: &str,
        version: &semver::Version,
    ) -> RegistryResult<()>;

    /// Rates a listing 1–5 with an optional review (at most
    /// [`MAX_REVIEW_CHARS`](model::MAX_REVIEW_CHARS)); one rating per identity, a re-rate
    /// replaces. Returns the listing's ratings after.
    async fn rate(
        &self,
        actor: &Actor,
        id: &ListingId,
        stars: u8,
        review: Option<&str>,
    ) -> RegistryResult<RatingSummary>;

    /// A listing's reviews, newest first.
    async fn reviews(&self, viewer: Option<&Actor>, id: &ListingId) -> RegistryResult<Vec<Review>>;

    /// Counts one launch from a listing version on a day.
    async fn record_download(&self, d: &Download) -> RegistryResult<()>;

    /// Reports a version. A security report from [`QUARANTINE_REPORTS`](model::QUARANTINE_REPORTS)
    /// distinct identities, or from an admin, quarantines it. One report per identity per
    /// version per reason: reporting again replaces the message.
    async fn report(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: ReportReason,
        message: Option<&str>,
    ) -> RegistryResult<ReportOutcome>;

    /// Clears a version's quarantine and its security reports (admin only).
    async fn clear_reports(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
    ) -> RegistryResult<()>;

    /// Stores the signed document of a version's current revision (publisher only). A signed
    /// revision never goes back: a document for a revision other than the version's current
    /// one, or below one already signed, is refused.
    async fn sign_version(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        signed: &trust::SignedDocument,
    ) -> RegistryResult<()>;

    /// Adds a listing exported from another registry (a mirror, an air-gapped site). Region
    /// entries that exist must hold the same images; a version's revision and its signed
    /// revision never go back ([`RegistryError::Rollback`]); a revocation in the export is
    /// kept. Callers verify the signatures first (see `trust`): the store keeps what it is
    /// given.
    async fn import(&self, actor: &Actor, export: &ListingExport) -> RegistryResult<Imported>;

    /// Every revoked or quarantined version (any visibility: a refusal is never hidden), so a
    /// launch refuses copies made from them.
    async fn refusals(&self) -> RegistryResult<Vec<Refusal>>;

    /// Revokes a version with a reason (publisher or admin). The revocation is a new revision
    /// of the version (so the publisher can sign it, and a signed one cannot be stripped).
    /// Revoking again keeps the first revocation.
    async fn revoke(
        &self,
        actor: &Actor,
        id: &ListingId,
        version: &semver::Version,
        reason: &str,
    ) -> RegistryResult<Revocation>;
}

/// Checks stars: 1 to 5.
pub fn check_stars(stars: i64) -> RegistryResult<u8> {
    if (1..=5).contains(&stars) {
        Ok(stars as u8)
    } else {
        Err(RegistryError::invalid(
            "stars",
            &stars.to_string(),
            "a whole number of stars from 1 to 5",
        ))
    }
}

/// Checks an optional free text: at most `max` characters.
pub fn check_text(field: &str, text: &str, max: usize) -> RegistryResult<()> {
    let n = text.chars().count();
    if n > max {
        return Err(RegistryError::Invalid {
            field: field.to_string(),
            value: format!(
                "{}… ({n} characters)",
                text.chars().take(40).collect::<String>()
            ),
            expected: format!("at most {max} characters"),
        });
    }
    Ok(())
}
