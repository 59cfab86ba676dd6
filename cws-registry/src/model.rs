//! The registry's data: identities, listing ids, visibility, versions, ratings, reports.
//!
//! Every type here serializes to the registry JSON the CLI prints and the REST API serves, and
//! the types the API answers with or accepts deserialize from it as they were (the HTTP client
//! store reads them back losslessly).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The longest review text accepted, in characters.
pub const MAX_REVIEW_CHARS: usize = 4000;
/// The longest report message accepted, in characters.
pub const MAX_REPORT_MESSAGE_CHARS: usize = 4000;
/// The longest listing description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// The longest listing name, category, or reason accepted, in characters.
pub const MAX_SHORT_TEXT_CHARS: usize = 200;
/// Security reports from this many distinct identities quarantine a version.
pub const QUARANTINE_REPORTS: u32 = 3;
/// Prior votes of the Bayesian average (at the global mean).
pub const PRIOR_VOTES: f64 = 5.0;
/// The mean assumed for the prior when the registry holds no rating at all.
pub const DEFAULT_PRIOR_MEAN: f64 = 3.0;

/// Who is acting: `name <email>` and the handle that names them as a publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Display name.
    pub name: String,
    /// Email address (the principal signatures are checked against).
    pub email: String,
    /// Publisher handle: lowercase letters, digits and `-`.
    pub handle: String,
}

impl Identity {
    /// An identity from a name and an email; the handle defaults to the email's local part
    /// (lowercased, other characters turned into `-`).
    pub fn new(
        name: impl Into<String>,
        email: impl Into<String>,
        handle: Option<String>,
    ) -> Result<Identity, RegistryError> {
        let name = name.into().trim().to_string();
        let email = email.into().trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_SHORT_TEXT_CHARS {
            return Err(RegistryError::invalid(
                "user.name",
                &name,
                "a name of 1 to 200 characters",
            ));
        }
        if cws_util::text::first_unsafe_to_show(&name).is_some() {
            return Err(RegistryError::invalid(
                "user.name",
                &name,
                "a name without control characters",
            ));
        }
        let valid_email = email.len() <= 254
            && email.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            })
            && !email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        if !valid_email {
            return Err(RegistryError::invalid(
                "user.email",
                &email,
                "an address like alice@example.edu",
            ));
        }
        let handle = match handle {
            Some(h) => h,
            None => {
                let local = email.split('@').next().unwrap_or_default();
                let mut h: String = local
                    .chars()
                    .map(|c| {
                        let c = c.to_ascii_lowercase();
                        if c.is_ascii_alphanumeric() { c } else { '-' }
                    })
                    .collect();
                h = h.trim_matches('-').to_string();
                h
            }
        };
        check_handle(&handle)?;
        Ok(Identity {
            name,
            email,
            handle,
        })
    }

    /// Parses `NAME <EMAIL>` (the `CWS_USER` form).
    pub fn parse(text: &str, handle: Option<String>) -> Result<Identity, RegistryError> {
        let text = text.trim();
        let Some((name, rest)) = text.split_once('<') else {
            return Err(RegistryError::invalid(
                "CWS_USER",
                text,
                "`NAME <EMAIL>`, e.g. `Alice Smith <alice@example.edu>`",
            ));
        };
        let Some(email) = rest.strip_suffix('>') else {
            return Err(RegistryError::invalid(
                "CWS_USER",
                text,
                "`NAME <EMAIL>`, e.g. `Alice Smith <alice@example.edu>`",
            ));
        };
        Identity::new(name.trim(), email.trim(), handle)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// Who acts on the registry: an identity, and whether it administers this registry (the local
/// user administers the embedded one; behind a server, the token's scope says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The identity.
    pub identity: Identity,
    /// Admin of the registry: may clear quarantines and revoke any version.
    pub admin: bool,
    /// Organizations the actor belongs to (sees their institutional listings).
    pub orgs: Vec<String>,
}

impl Actor {
    /// A non-admin actor with no organizations.
    pub fn user(identity: Identity) -> Actor {
        Actor {
            identity,
            admin: false,
            orgs: Vec::new(),
        }
    }

    /// The admin of this registry.
    pub fn admin(identity: Identity) -> Actor {
        Actor {
            identity,
            admin: true,
            orgs: Vec::new(),
        }
    }
}

fn check_slug_like(field: &'static str, value: &str) -> Result<(), RegistryError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(
            field,
            value,
            "1 to 64 lowercase letters, digits and `-`, starting with a letter or digit",
        ))
    }
}

/// Checks a publisher handle.
pub fn check_handle(handle: &str) -> Result<(), RegistryError> {
    check_slug_like("user.handle", handle)
}

/// A listing's id: `publisher/slug`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListingId {
    /// The publisher's handle.
    pub publisher: String,
    /// The listing's slug (the template slug by default).
    pub slug: String,
}

impl ListingId {
    /// A checked id.
    pub fn new(publisher: &str, slug: &str) -> Result<ListingId, RegistryError> {
        check_slug_like("publisher", publisher)?;
        check_slug_like("listing slug", slug)?;
        Ok(ListingId {
            publisher: publisher.to_string(),
            slug: slug.to_string(),
        })
    }
}

impl fmt::Display for ListingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.publisher, self.slug)
    }
}

impl FromStr for ListingId {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<ListingId, RegistryError> {
        match s.split_once('/') {
            Some((p, slug)) => ListingId::new(p, slug),
            None => Err(RegistryError::invalid(
                "listing",
                s,
                "PUBLISHER/SLUG, e.g. alice/python-ml",
            )),
        }
    }
}

impl Serialize for ListingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListingId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ListingId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `LISTING[@VERSION]` as users write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingRef {
    /// The listing.
    pub id: ListingId,
    /// A version, if one was named.
    pub version: Option<semver::Version>,
}

impl FromStr for ListingRef {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<ListingRef, RegistryError> {
        let (id, version) = match s.split_once('@') {
            Some((id, v)) => (id, Some(parse_version(v)?)),
            None => (s, None),
        };
        Ok(ListingRef {
            id: id.parse()?,
            version,
        })
    }
}

impl fmt::Display for ListingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// Parses a semver version (`2.1.0`), naming the value when it is not one.
pub fn parse_version(v: &str) -> Result<semver::Version, RegistryError> {
    semver::Version::parse(v.trim())
        .map_err(|_| RegistryError::invalid("version", v, "a semantic version like 2.1.0"))
}

/// The longest organization name accepted, in bytes.
pub(crate) const MAX_ORG_NAME_BYTES: usize = 128;

/// Whether `o` is an acceptable organization name (of `institutional:ORG`, or of an actor or
/// token): 1 to [`MAX_ORG_NAME_BYTES`] bytes, nothing unsafe to show (control, bidi or
/// invisible format characters).
pub(crate) fn is_org_name(o: &str) -> bool {
    !o.is_empty()
        && o.len() <= MAX_ORG_NAME_BYTES
        && cws_util::text::first_unsafe_to_show(o).is_none()
}

/// Who may see and launch a listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Everyone.
    Public,
    /// A named research community (public images, listed under the community's name).
    Community(String),
    /// Members of an institution (organization).
    Institutional(String),
    /// The publisher only.
    Private,
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Visibility::Public => f.write_str("public"),
            Visibility::Community(c) => write!(f, "community:{c}"),
            Visibility::Institutional(o) => write!(f, "institutional:{o}"),
            Visibility::Private => f.write_str("private"),
        }
    }
}

impl FromStr for Visibility {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Visibility, RegistryError> {
        let bad = || {
            RegistryError::invalid(
                "visibility",
                s,
                "public, community:NAME, institutional:ORG or private",
            )
        };
        Ok(match s.split_once(':') {
            None if s == "public" => Visibility::Public,
            None if s == "private" => Visibility::Private,
            Some(("community", n)) => {
                check_slug_like("community", n)?;
                Visibility::Community(n.to_string())
            }
            Some(("institutional", o)) if is_org_name(o) => {
                Visibility::Institutional(o.to_string())
            }
            _ => return Err(bad()),
        })
    }
}

impl Serialize for Visibility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Visibility {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Visibility, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One region's image of a version. Never changes once published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionImage {
    /// The image id in that region.
    pub ami_id: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// The image's snapshots.
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    /// Size of the root snapshot in GiB, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gib: Option<u32>,
}

/// What a publisher publishes: one region's image of one version of a listing. The first
/// publish makes the listing; a later one adds a version or a region to a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    /// The listing.
    pub listing: ListingId,
    /// Listing name (shown in browse), e.g. "Python ML".
    pub name: String,
    /// Description.
    pub description: String,
    /// Category, e.g. `machine-learning`.
    pub category: String,
    /// The template slug the images serve.
    pub template: String,
    /// Visibility of the listing.
    pub visibility: Visibility,
    /// The version.
    pub version: semver::Version,
    /// A digest of the template the images were built from.
    pub template_digest: String,
    /// Region code.
    pub region: String,
    /// The image there.
    pub image: RegionImage,
    /// Release notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// How many times faster than script provisioning a launch from the image is.
    #[serde(default)]
    pub speedup: Option<f64>,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// The listing.
    pub listing: ListingId,
    /// The version.
    pub version: String,
    /// The version's revision after this publish (1 for a new version; +1 per added region).
    pub revision: u32,
    /// The region published.
    pub region: String,
    /// The image.
    pub ami_id: String,
    /// Whether this made the listing.
    pub created_listing: bool,
    /// Whether this made the version.
    pub created_version: bool,
    /// False when the same image was already published for this version and region (nothing
    /// changed).
    pub changed: bool,
    /// The visibility now in force.
    pub visibility: Visibility,
}

/// Average and count of a listing's ratings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingSummary {
    /// Average stars, one decimal (0 when there are none).
    pub average: f64,
    /// Number of ratings.
    pub count: u64,
}

impl RatingSummary {
    /// From a sum of stars and a count.
    pub fn from_sum(sum: u64, count: u64) -> RatingSummary {
        let average = if count == 0 {
            0.0
        } else {
            (sum as f64 / count as f64 * 10.0).round() / 10.0
        };
        RatingSummary { average, count }
    }
}

/// The Bayesian average ranking uses: `PRIOR_VOTES` votes at `prior_mean`, plus the listing's
/// own. One 5-star vote does not outrank two hundred 4.8s.
pub fn bayesian_score(sum: u64, count: u64, prior_mean: f64) -> f64 {
    (PRIOR_VOTES * prior_mean + sum as f64) / (PRIOR_VOTES + count as f64)
}

/// A signature's status (signing arrives with the trust work; until then every version is
/// `unsigned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureInfo {
    /// `verified | unsigned | untrusted | invalid`.
    pub status: String,
    /// The signer's principal, when signed.
    pub signer: Option<String>,
    /// Why, for anything but `verified` (what failed, whose key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl SignatureInfo {
    /// No signature.
    pub fn unsigned() -> SignatureInfo {
        SignatureInfo {
            status: "unsigned".into(),
            signer: None,
            detail: None,
        }
    }
}

/// A listing as browse shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingSummary {
    /// `publisher/slug`.
    pub id: ListingId,
    /// Name.
    pub name: String,
    /// Publisher handle.
    pub publisher: String,
    /// Category.
    pub category: String,
    /// Description.
    pub description: String,
    /// The template slug.
    pub template: String,
    /// Visibility.
    pub visibility: Visibility,
    /// The newest version that is neither revoked nor quarantined.
    pub latest_version: Option<String>,
    /// Ratings.
    pub rating: RatingSummary,
    /// The ranking score (Bayesian average).
    pub score: f64,
    /// Launches from any version.
    pub downloads: u64,
    /// The latest version's signature.
    pub signature: SignatureInfo,
    /// Whether the newest version is revoked.
    pub revoked: bool,
    /// Whether the newest version is quarantined.
    pub quarantined: bool,
    /// The publisher's email (the principal signatures must be made by). Serialized, so a
    /// client of a registry server checks signatures itself.
    #[serde(default)]
    pub publisher_email: String,
    /// The latest version's revision and its newest signed document, for the signature status
    /// (serialized as `[revision, document or null]`, so a client of a registry server checks
    /// the signature itself).
    #[serde(default)]
    pub latest_signed: (u32, Option<crate::trust::SignedDocument>),
}

/// Why a version was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The reason given.
    pub reason: String,
    /// Who revoked it (handle).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a version is quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// What the reports said.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One version of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Semver.
    pub version: String,
    /// Revision (+1 per added region).
    pub revision: u32,
    /// Images by region.
    pub regions: BTreeMap<String, RegionImage>,
    /// Template digest.
    pub template_digest: String,
    /// When first published.
    pub created_at: DateTime<Utc>,
    /// Notes.
    pub notes: Option<String>,
    /// Speed-up over script provisioning.
    pub speedup: Option<f64>,
    /// Signature.
    pub signature: SignatureInfo,
    /// Revocation, if revoked.
    pub revoked: Option<Revocation>,
    /// Quarantine, if quarantined.
    pub quarantined: Option<Quarantine>,
    /// Launches from this version.
    pub downloads: u64,
    /// The newest signed revision's document and signature (serialized when there is one, so
    /// a client of a registry server checks the signature itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::trust::SignedDocument>,
}

impl VersionInfo {
    /// The parsed version.
    pub fn semver(&self) -> semver::Version {
        semver::Version::parse(&self.version).unwrap_or_else(|_| semver::Version::new(0, 0, 0))
    }

    /// Why this version may not be launched, if it may not.
    pub fn refusal(&self) -> Option<String> {
        if let Some(r) = &self.revoked {
            return Some(format!("revoked by {}: {}", r.by, r.reason));
        }
        if let Some(q) = &self.quarantined {
            return Some(format!("quarantined: {}", q.reason));
        }
        None
    }
}

/// A review as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Author's handle.
    pub author: String,
    /// Stars, 1–5.
    pub stars: u8,
    /// The text, if any.
    pub text: Option<String>,
    /// Whether the author launched the listing.
    pub verified_use: bool,
    /// When first rated.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// Everything `ami info` shows of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListingDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: ListingSummary,
    /// The publisher's identity as recorded at first publish.
    pub creator: String,
    /// Named channels (`latest` included).
    pub channels: BTreeMap<String, String>,
    /// Versions, newest first.
    pub versions: Vec<VersionInfo>,
    /// Reviews, newest first.
    pub reviews: Vec<Review>,
}

impl ListingDetail {
    /// A version by semver.
    pub fn version(&self, v: &semver::Version) -> Option<&VersionInfo> {
        self.versions.iter().find(|x| x.semver() == *v)
    }

    /// The version a channel points at.
    pub fn channel(&self, channel: &str) -> Option<&VersionInfo> {
        let v = self.channels.get(channel)?;
        self.versions.iter().find(|x| &x.version == v)
    }
}

/// How browse orders listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Bayesian average, then downloads.
    #[default]
    Score,
    /// Plain average, then count.
    Rating,
    /// Downloads.
    Downloads,
    /// Newest publish first.
    Recent,
}

impl FromStr for Sort {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Sort, RegistryError> {
        Ok(match s {
            "score" => Sort::Score,
            "rating" => Sort::Rating,
            "downloads" => Sort::Downloads,
            "recent" => Sort::Recent,
            _ => {
                return Err(RegistryError::invalid(
                    "sort",
                    s,
                    "score, rating, downloads or recent",
                ));
            }
        })
    }
}

/// What browse looks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrowseQuery {
    /// Only this category.
    #[serde(default)]
    pub category: Option<String>,
    /// Words that must appear in the id, name, description or category (case-insensitive).
    #[serde(default)]
    pub text: Option<String>,
    /// Only listings shared with this community.
    #[serde(default)]
    pub community: Option<String>,
    /// Order.
    #[serde(default)]
    pub sort: Sort,
    /// At most this many (0: no limit).
    #[serde(default)]
    pub limit: usize,
}

/// Report reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportReason {
    /// A security problem: three distinct reporters (or one admin) quarantine the version.
    Security,
    /// Does not work.
    Broken,
    /// Not what it says.
    Misleading,
    /// Anything else.
    Other,
}

impl ReportReason {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Security => "security",
            ReportReason::Broken => "broken",
            ReportReason::Misleading => "misleading",
            ReportReason::Other => "other",
        }
    }
}

impl FromStr for ReportReason {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<ReportReason, RegistryError> {
        Ok(match s {
            "security" => ReportReason::Security,
            "broken" => ReportReason::Broken,
            "misleading" => ReportReason::Misleading,
            "other" => ReportReason::Other,
            _ => {
                return Err(RegistryError::invalid(
                    "reason",
                    s,
                    "security, broken, misleading or other",
                ));
            }
        })
    }
}

/// What a report did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportOutcome {
    /// The listing.
    pub listing: ListingId,
    /// The version.
    pub version: String,
    /// Distinct security reporters of this version (uncleared).
    pub security_reports: u32,
    /// Whether the version is quarantined now.
    pub quarantined: bool,
}

/// Where an image id is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageListing {
    /// The listing.
    pub listing: ListingId,
    /// The version.
    pub version: String,
    /// The region.
    pub region: String,
}

/// A download to record: one launch from a listing version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Download {
    /// The listing.
    pub listing: ListingId,
    /// The version launched.
    pub version: semver::Version,
    /// The day (UTC).
    pub day: NaiveDate,
    /// Who launched (marks their rating `verified_use`).
    #[serde(default)]
    pub by: Option<String>,
}

/// A version that may not be launched, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The listing.
    pub listing: ListingId,
    /// The version.
    pub version: String,
    /// "revoked by alice: ..." or "quarantined: ...".
    pub reason: String,
}

/// A listing as one JSON document, with its versions' signed documents (`ami export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingExport {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// `publisher/slug`.
    pub id: ListingId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Template slug.
    pub template: String,
    /// Visibility.
    pub visibility: Visibility,
    /// `name <email>` of the publisher.
    pub creator: String,
    /// The publisher's email.
    pub publisher_email: String,
    /// Versions.
    pub versions: Vec<ExportedVersion>,
}

/// The export format tag.
pub const EXPORT_FORMAT: &str = "cws-listing-export/1";
/// The largest export file `ami import` reads: 16 MiB.
pub const MAX_EXPORT_BYTES: u64 = 16 * 1024 * 1024;

/// One version in an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedVersion {
    /// Semver.
    pub version: String,
    /// Revision.
    pub revision: u32,
    /// Images by region.
    pub regions: BTreeMap<String, RegionImage>,
    /// Template digest.
    pub template_digest: String,
    /// First published.
    pub created_at: DateTime<Utc>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Speed-up.
    #[serde(default)]
    pub speedup: Option<f64>,
    /// Revocation reason and who revoked.
    #[serde(default)]
    pub revoked: Option<Revocation>,
    /// The newest signed revision.
    #[serde(default)]
    pub signed: Option<crate::trust::SignedDocument>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    /// The listing.
    pub listing: ListingId,
    /// Versions added.
    pub added_versions: Vec<String>,
    /// Region entries added, in new versions and in versions that existed.
    pub added_regions: u32,
}
