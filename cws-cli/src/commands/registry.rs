//! The community registry: `ami browse|rate|reviews|report|revoke|channel`, listing info,
//! publishing from `ami share|create|create-multi|copy`, and the community tier for launches.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use cws_provider::Image;
use cws_registry::{
    Actor, BrowseQuery, CommunityPlan, Download, Identity, ListingDetail, ListingId, ListingRef,
    ListingSummary, Publish, Published, RegionImage, Registry, RegistryError, ReportReason,
    SqliteRegistry, Visibility,
};
use cws_template::{CommunityRef, Template};
use serde::Serialize;

use crate::cli::{AmiBrowseArgs, PublishArgs};
use crate::config::Config;
use crate::context::Ctx;
use crate::error::UsageError;
use crate::output;
use crate::sanitize::Shown;

/// The embedded registry and who acts on it.
pub struct Reg {
    pub store: SqliteRegistry,
    /// The identity acting (publisher rules apply to it); `None` without an identity.
    pub actor: Option<Actor>,
}

impl Reg {
    pub fn viewer(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The line table output starts with when the registry is used.
    pub fn line(&self) -> String {
        format!(
            "Registry: embedded SQLite at {} (this machine only)",
            Shown(self.store.location())
        )
    }

    /// The actor, or the usage error saying how to set an identity (`doing` is what needed it).
    pub fn require_actor(&self, doing: &str) -> Result<&Actor> {
        self.actor.as_ref().ok_or_else(|| no_identity(doing))
    }
}

fn no_identity(doing: &str) -> anyhow::Error {
    UsageError(format!(
        "{doing} needs an identity, and none is set; nothing was changed\n  help: `cws config \
         set user.name \"Your Name\"` and `cws config set user.email you@example.edu` (or set \
         CWS_USER=\"Your Name <you@example.edu>\"); `cws config set user.handle NAME` picks \
         your publisher name (default: the email's local part)"
    ))
    .into()
}

/// The identity from `CWS_USER` or the config file.
pub fn identity(ctx: &Ctx) -> Result<Option<Identity>> {
    Config::load(&ctx.home)?.identity()
}

/// The identity, or exit 2 saying how to set one. Checked before any side effect.
pub fn require_identity(ctx: &Ctx, doing: &str) -> Result<Identity> {
    identity(ctx)?.ok_or_else(|| no_identity(doing))
}

/// Opens `$CWS_HOME/registry.db`.
pub async fn open(ctx: &Ctx) -> Result<Reg> {
    let actor = identity(ctx)?.map(Actor::user);
    let path = ctx.home.join("registry.db");
    let store = SqliteRegistry::open(&path)
        .await
        .with_context(|| format!("opening the registry {}", path.display()))?;
    Ok(Reg { store, actor })
}

fn parse_listing(s: &str) -> Result<ListingRef> {
    s.parse::<ListingRef>()
        .map_err(|e| UsageError(e.to_string()).into())
}

/// `publisher/slug` of a listing reference, or the listing holding an image id.
async fn listing_of(reg: &Reg, target: &str) -> Result<ListingRef> {
    if target.starts_with("ami-") {
        let found = reg.store.find_image(reg.viewer(), target).await?;
        let Some(first) = found.into_iter().next() else {
            return Err(RegistryError::UnlistedImage {
                ami_id: target.to_string(),
            }
            .into());
        };
        return Ok(ListingRef {
            id: first.listing,
            version: cws_registry::parse_version(&first.version).ok(),
        });
    }
    parse_listing(target)
}

// ---------------------------------------------------------------------------------------------
// Words and numbers.

/// `1,247`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `⭐ 4.8/5` (or `☆ unrated`).
pub fn short_rating(r: &cws_registry::RatingSummary) -> String {
    if r.count == 0 {
        "☆ unrated".into()
    } else {
        format!("⭐ {:.1}/5", r.average)
    }
}

/// `⭐⭐⭐⭐⭐ (4.8/5, 23 reviews)`.
fn long_rating(r: &cws_registry::RatingSummary) -> String {
    if r.count == 0 {
        return "no ratings yet".into();
    }
    let stars = (r.average.round() as usize).clamp(1, 5);
    format!(
        "{} ({:.1}/5, {} review{})",
        "⭐".repeat(stars),
        r.average,
        r.count,
        if r.count == 1 { "" } else { "s" }
    )
}

/// `machine-learning` → `Machine Learning`.
fn category_title(c: &str) -> String {
    c.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Discovery.

#[derive(Serialize)]
struct BrowseOut<'a> {
    registry: String,
    listings: &'a [ListingSummary],
}

pub async fn browse(ctx: &Ctx, a: &AmiBrowseArgs) -> Result<()> {
    let sort = a
        .sort
        .parse()
        .map_err(|e: RegistryError| UsageError(format!("--sort: {e}")))?;
    if let Some(c) = &a.category {
        cws_registry::check_category(c).map_err(|e| UsageError(format!("--category: {e}")))?;
    }
    if let Some(q) = &a.query {
        cws_registry::check_text("--query", q, 200).map_err(|e| UsageError(e.to_string()))?;
    }
    let reg = open(ctx).await?;
    let query = BrowseQuery {
        category: a.category.clone(),
        text: a.query.clone(),
        community: a.community.clone(),
        sort,
        limit: a.limit,
    };
    let listings = reg.store.browse(reg.viewer(), &query).await?;
    if ctx.json {
        return output::json(&BrowseOut {
            registry: reg.store.location(),
            listings: &listings,
        });
    }
    println!("{}", reg.line());
    let heading = match (&a.category, &a.community) {
        (Some(c), _) => format!("📂 Community AMIs: {}", category_title(c)),
        (None, Some(c)) => format!("📂 Community AMIs shared with {}", Shown(c)),
        (None, None) => "📂 Community AMIs".to_string(),
    };
    println!("{heading}");
    if listings.is_empty() {
        println!(
            "\nNo listings match. Publish one with `cws ami share AMI --community NAME`, or \
             widen the search."
        );
        return Ok(());
    }
    // Grouped by category, groups in order of their best listing.
    let mut groups: Vec<(&str, Vec<&ListingSummary>)> = Vec::new();
    for l in &listings {
        match groups.iter_mut().find(|(c, _)| *c == l.category) {
            Some((_, v)) => v.push(l),
            None => groups.push((&l.category, vec![l])),
        }
    }
    for (category, items) in groups {
        println!("\n{}:", Shown(category_title(category)));
        let width = items
            .iter()
            .map(|l| display_name(l).chars().count())
            .max()
            .unwrap_or(0);
        for l in items {
            let name = display_name(l);
            let pad = width.saturating_sub(name.chars().count());
            println!(
                "  {}  {}{}  ({} download{})  {}",
                short_rating(&l.rating),
                Shown(&name),
                " ".repeat(pad),
                thousands(l.downloads),
                if l.downloads == 1 { "" } else { "s" },
                Shown(l.id.to_string())
            );
        }
    }
    Ok(())
}

fn display_name(l: &ListingSummary) -> String {
    match &l.latest_version {
        Some(v) => format!("{} v{v}", l.name),
        None => l.name.clone(),
    }
}

#[derive(Serialize)]
struct InfoOut<'a> {
    registry: String,
    #[serde(flatten)]
    listing: &'a ListingDetail,
}

/// `ami info LISTING[@VERSION]`.
pub async fn info_listing(ctx: &Ctx, target: &str) -> Result<()> {
    let r = parse_listing(target)?;
    let reg = open(ctx).await?;
    let mut detail = reg.store.listing(reg.viewer(), &r.id).await?;
    if let Some(v) = &r.version {
        if detail.version(v).is_none() {
            return Err(RegistryError::UnknownVersion {
                listing: r.id.to_string(),
                version: v.to_string(),
                known: detail.versions.iter().map(|x| x.version.clone()).collect(),
            }
            .into());
        }
        detail.versions.retain(|x| x.semver() == *v);
    }
    if ctx.json {
        return output::json(&InfoOut {
            registry: reg.store.location(),
            listing: &detail,
        });
    }
    println!("{}", reg.line());
    print!("{}", render_listing(ctx, &detail));
    Ok(())
}

/// The readable block `ami info` prints for a listing.
pub fn render_listing(ctx: &Ctx, d: &ListingDetail) -> String {
    let s = &d.summary;
    let mut out = String::new();
    let title = display_name(s);
    let _ = writeln!(
        out,
        "📋 AMI: {}  [{}]",
        Shown(&title),
        Shown(s.id.to_string())
    );
    let _ = writeln!(out, "Creator: {}", Shown(&d.creator));
    if !s.description.is_empty() {
        let _ = writeln!(out, "Description: {}", Shown(&s.description));
    }
    let _ = writeln!(out, "Category: {}", Shown(&s.category));
    let _ = writeln!(out, "Template: {}", Shown(&s.template));
    let _ = writeln!(out, "Rating: {}", long_rating(&s.rating));
    let _ = writeln!(out, "Downloads: {}", thousands(s.downloads));
    let speedup = d
        .versions
        .iter()
        .find(|v| Some(&v.version) == s.latest_version.as_ref())
        .or(d.versions.first())
        .and_then(|v| v.speedup)
        .or_else(|| modelled_speedup(ctx, &s.template));
    if let Some(x) = speedup {
        let _ = writeln!(
            out,
            "Performance: {x:.1}x faster than script installation (modelled boot vs setup time)"
        );
    }
    let _ = writeln!(out, "Visibility: {}", Shown(s.visibility.to_string()));
    let _ = writeln!(out, "Signature: {}", Shown(&s.signature.status),);
    if s.quarantined {
        let _ = writeln!(
            out,
            "⚠ The newest version is quarantined after security reports."
        );
    }
    let channels: Vec<String> = d
        .channels
        .iter()
        .map(|(c, v)| format!("{c} → {v}"))
        .collect();
    if !channels.is_empty() {
        let _ = writeln!(out, "Channels: {}", Shown(channels.join(", ")));
    }
    let _ = writeln!(out, "Versions:");
    for v in &d.versions {
        let regions: Vec<String> = v
            .regions
            .iter()
            .map(|(r, i)| format!("{r} {} ({})", i.ami_id, i.architecture))
            .collect();
        let state = match v.refusal() {
            Some(why) => format!("  ⛔ {why}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} (revision {}, {} download{}, {}): {}{}",
            Shown(&v.version),
            v.revision,
            thousands(v.downloads),
            if v.downloads == 1 { "" } else { "s" },
            v.signature.status,
            Shown(regions.join(", ")),
            Shown(&state)
        );
    }
    if !d.reviews.is_empty() {
        let _ = writeln!(
            out,
            "Reviews (newest first; `cws ami reviews {}` for all):",
            s.id
        );
        for r in d.reviews.iter().take(3) {
            let _ = writeln!(out, "  {}", render_review(r));
        }
    }
    out
}

fn modelled_speedup(ctx: &Ctx, template: &str) -> Option<f64> {
    let loaded = ctx.store.get(template).ok()?;
    speedup_of(&loaded.template)
}

/// Script setup time over image boot time, from the timing model.
pub fn speedup_of(t: &Template) -> Option<f64> {
    let script = cws_resolver::tier::setup_seconds(t) as f64;
    let boot = cws_cost::AMI_BOOT_SECONDS as f64;
    (boot > 0.0 && script > boot).then(|| (script / boot * 10.0).round() / 10.0)
}

fn render_review(r: &cws_registry::Review) -> String {
    format!(
        "{} {}{}, {}{}",
        "⭐".repeat(usize::from(r.stars)),
        Shown(&r.author),
        if r.verified_use { " (launched it)" } else { "" },
        r.updated_at.format("%Y-%m-%d"),
        r.text
            .as_deref()
            .map(|t| format!(": {}", Shown(t)))
            .unwrap_or_default()
    )
}

/// The listing block `ami info AMI` adds when a listing holds the image (JSON: `listing`).
pub async fn listing_for_image(ctx: &Ctx, ami: &str) -> Result<Option<ListingDetail>> {
    let reg = open(ctx).await?;
    let found = reg.store.find_image(reg.viewer(), ami).await?;
    let Some(first) = found.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(reg.store.listing(reg.viewer(), &first.listing).await?))
}

// ---------------------------------------------------------------------------------------------
// Feedback.

#[derive(Serialize)]
struct RateOut {
    listing: ListingId,
    stars: u8,
    review: Option<String>,
    rating: cws_registry::RatingSummary,
}

pub async fn rate(ctx: &Ctx, target: &str, stars: &str, review: Option<&str>) -> Result<()> {
    let stars = stars
        .trim()
        .parse::<i64>()
        .map_err(|_| RegistryError::invalid("stars", stars, "a whole number of stars from 1 to 5"))
        .and_then(cws_registry::check_stars)?;
    if let Some(r) = review {
        cws_registry::check_text("--review", r, cws_registry::MAX_REVIEW_CHARS)?;
    }
    let reg = open(ctx).await?;
    let actor = reg.require_actor("rating a listing")?;
    let r = listing_of(&reg, target).await?;
    let summary = reg.store.rate(actor, &r.id, stars, review).await?;
    if ctx.json {
        return output::json(&RateOut {
            listing: r.id,
            stars,
            review: review.map(str::to_string),
            rating: summary,
        });
    }
    println!("{}", reg.line());
    println!(
        "Rated {} {} as {}. It is now {}.",
        Shown(r.id.to_string()),
        "⭐".repeat(usize::from(stars)),
        Shown(&actor.identity.handle),
        long_rating(&summary)
    );
    Ok(())
}

pub async fn reviews(ctx: &Ctx, listing: &str) -> Result<()> {
    let r = parse_listing(listing)?;
    let reg = open(ctx).await?;
    let reviews = reg.store.reviews(reg.viewer(), &r.id).await?;
    if ctx.json {
        #[derive(Serialize)]
        struct Out<'a> {
            listing: &'a ListingId,
            reviews: &'a [cws_registry::Review],
        }
        return output::json(&Out {
            listing: &r.id,
            reviews: &reviews,
        });
    }
    println!("{}", reg.line());
    if reviews.is_empty() {
        println!(
            "{} has no ratings yet; `cws ami rate {} STARS --review TEXT` adds one.",
            Shown(r.id.to_string()),
            Shown(r.id.to_string())
        );
    }
    for rv in &reviews {
        println!("{}", render_review(rv));
    }
    Ok(())
}

/// The version a `LISTING[@VERSION]` names: the one given, else the listing's latest.
async fn version_of(reg: &Reg, r: &ListingRef) -> Result<semver::Version> {
    if let Some(v) = &r.version {
        return Ok(v.clone());
    }
    let d = reg.store.listing(reg.viewer(), &r.id).await?;
    let v = d
        .summary
        .latest_version
        .or_else(|| d.versions.first().map(|v| v.version.clone()))
        .ok_or_else(|| UsageError(format!("{} has no versions", r.id)))?;
    Ok(cws_registry::parse_version(&v)?)
}

pub async fn report(
    ctx: &Ctx,
    target: &str,
    reason: Option<&str>,
    message: Option<&str>,
    clear: bool,
) -> Result<()> {
    let r = parse_listing(target)?;
    if clear {
        let Some(version) = &r.version else {
            return Err(UsageError(format!(
                "--clear names one version: `cws ami report --clear {}@VERSION`",
                r.id
            ))
            .into());
        };
        let reg = open(ctx).await?;
        // Whoever runs cws on this machine administers its embedded registry.
        let actor = Actor::admin(reg.require_actor("clearing reports")?.identity.clone());
        reg.store.clear_reports(&actor, &r.id, version).await?;
        if ctx.json {
            return output::json(&serde_json::json!({
                "listing": r.id, "version": version.to_string(), "quarantined": false
            }));
        }
        println!("{}", reg.line());
        println!(
            "Cleared the security reports of {}@{}; it is no longer quarantined.",
            Shown(r.id.to_string()),
            version
        );
        return Ok(());
    }
    let reason: ReportReason = reason
        .unwrap_or_default()
        .parse()
        .map_err(|e: RegistryError| UsageError(format!("--reason: {e}")))?;
    if let Some(m) = message {
        cws_registry::check_text("--message", m, cws_registry::MAX_REPORT_MESSAGE_CHARS)?;
    }
    let reg = open(ctx).await?;
    let actor = reg.require_actor("reporting a listing")?;
    let version = version_of(&reg, &r).await?;
    let outcome = reg
        .store
        .report(actor, &r.id, &version, reason, message)
        .await?;
    if ctx.json {
        return output::json(&outcome);
    }
    println!("{}", reg.line());
    println!(
        "Reported {}@{} ({}).{}",
        Shown(r.id.to_string()),
        version,
        reason.as_str(),
        if outcome.quarantined {
            " The version is quarantined: hidden from browse and refused at launch until an \
             admin clears it."
                .to_string()
        } else if reason == ReportReason::Security {
            format!(
                " {} of {} security reports needed to quarantine it.",
                outcome.security_reports,
                cws_registry::QUARANTINE_REPORTS
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

pub async fn revoke(ctx: &Ctx, target: &str, reason: &str) -> Result<()> {
    let r = parse_listing(target)?;
    let Some(version) = &r.version else {
        return Err(UsageError(format!(
            "name the version to revoke: `cws ami revoke {}@VERSION --reason TEXT`",
            r.id
        ))
        .into());
    };
    let reg = open(ctx).await?;
    let actor = reg.require_actor("revoking a version")?;
    let rev = reg.store.revoke(actor, &r.id, version, reason).await?;
    if ctx.json {
        return output::json(&serde_json::json!({
            "listing": r.id, "version": version.to_string(), "revoked": rev
        }));
    }
    println!("{}", reg.line());
    println!(
        "Revoked {}@{}: {}. Launches refuse it from now on.",
        Shown(r.id.to_string()),
        version,
        Shown(&rev.reason)
    );
    Ok(())
}

pub async fn channel(ctx: &Ctx, listing: &str, channel: &str, version: &str) -> Result<()> {
    let r = parse_listing(listing)?;
    let version = cws_registry::parse_version(version)?;
    let reg = open(ctx).await?;
    let actor = reg.require_actor("moving a channel")?;
    reg.store
        .set_channel(actor, &r.id, channel, &version)
        .await?;
    if ctx.json {
        return output::json(&serde_json::json!({
            "listing": r.id, "channel": channel, "version": version.to_string()
        }));
    }
    println!("{}", reg.line());
    println!(
        "{} channel {} → {}",
        Shown(r.id.to_string()),
        Shown(channel),
        version
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Publishing.

/// A publish decided before anything is changed: identity, listing and version known, the
/// region entry checked to be free.
pub struct PublishPlan {
    reg: Reg,
    actor: Actor,
    base: Publish,
}

/// What publishing printed under `"listing"`.
#[derive(Debug, Serialize)]
pub struct ListingOut {
    pub id: ListingId,
    pub version: String,
    pub revision: u32,
    pub visibility: Visibility,
    pub regions: Vec<Published>,
    pub registry: String,
}

/// Plans publishing `template`'s images as a listing with `visibility`. Fails (exit 2) without
/// an identity, and when a region in `regions` is already published with another image.
pub async fn plan_publish(
    ctx: &Ctx,
    doing: &str,
    template: &Template,
    visibility: Visibility,
    args: &PublishArgs,
    regions_taken_check: &[(&str, Option<&str>)],
) -> Result<PublishPlan> {
    let identity = require_identity(ctx, doing)?;
    let reg = open(ctx).await?;
    let actor = Actor::user(identity);
    let slug = template.slug.clone();
    let listing = ListingId::new(&actor.identity.handle, &slug)?;
    let version = match &args.listing_version {
        Some(v) => {
            cws_registry::parse_version(v).map_err(|e| UsageError(format!("--version: {e}")))?
        }
        None => template.version.clone(),
    };
    let category = args
        .category
        .clone()
        .or_else(|| template.category.clone().map(|c| slugify(&c)))
        .unwrap_or_else(|| "general".into());
    cws_registry::check_category(&category).map_err(|e| UsageError(format!("--category: {e}")))?;
    // A published region never changes: refuse before anything is made or shared.
    if let Ok(existing) = reg.store.listing(Some(&actor), &listing).await
        && let Some(v) = existing.version(&version)
    {
        for (region, ami) in regions_taken_check {
            if let Some(entry) = v.regions.get(*region)
                && Some(entry.ami_id.as_str()) != *ami
            {
                return Err(RegistryError::RegionTaken {
                    listing: listing.to_string(),
                    version: version.to_string(),
                    region: region.to_string(),
                    existing: entry.ami_id.clone(),
                }
                .into());
            }
        }
    }
    let base = Publish {
        listing,
        name: template.name.clone(),
        description: template.description.clone().unwrap_or_default(),
        category,
        template: slug,
        visibility,
        version,
        template_digest: template_digest(template),
        region: String::new(),
        image: RegionImage {
            ami_id: String::new(),
            architecture: String::new(),
            snapshot_ids: Vec::new(),
            size_gib: None,
        },
        notes: None,
        speedup: speedup_of(template),
    };
    Ok(PublishPlan { reg, actor, base })
}

impl PublishPlan {
    /// The listing's name and description from `ami create --name/--description`.
    pub fn named(mut self, name: &str, description: Option<&str>) -> PublishPlan {
        self.base.name = name.trim().to_string();
        if let Some(d) = description {
            self.base.description = d.to_string();
        }
        self
    }

    /// Publishes the images (one region entry each) and returns what `"listing"` shows.
    pub async fn publish(self, images: &[&Image]) -> Result<ListingOut> {
        let mut regions = Vec::new();
        for image in images {
            let mut p = self.base.clone();
            p.region = image.region.clone();
            p.image = RegionImage {
                ami_id: image.id.clone(),
                architecture: image.architecture.to_string(),
                snapshot_ids: image.snapshot_ids.clone(),
                size_gib: image.root_volume_gb,
            };
            regions.push(self.reg.store.publish(&self.actor, &p).await?);
        }
        let revision = regions.iter().map(|r| r.revision).max().unwrap_or(0);
        Ok(ListingOut {
            id: self.base.listing.clone(),
            version: self.base.version.to_string(),
            revision,
            visibility: self.base.visibility.clone(),
            regions,
            registry: self.reg.store.location(),
        })
    }
}

/// Prints what was published (table output).
pub fn print_published(l: &ListingOut) {
    let regions: Vec<String> = l
        .regions
        .iter()
        .map(|r| {
            format!(
                "{} {}{}",
                r.region,
                r.ami_id,
                if r.changed { "" } else { " (already listed)" }
            )
        })
        .collect();
    println!(
        "✅ Listed as {}@{} (revision {}, {}): {}",
        Shown(l.id.to_string()),
        Shown(&l.version),
        l.revision,
        Shown(l.visibility.to_string()),
        Shown(regions.join(", "))
    );
    println!(
        "   `cws ami info {}` shows it; others launch it with `cws launch --listing {} NAME`.",
        Shown(l.id.to_string()),
        Shown(l.id.to_string())
    );
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A stable digest of the template as cws reads it (FNV-1a 64 over its JSON form), so a
/// version says which template it was built from.
fn template_digest(t: &Template) -> String {
    let json = serde_json::to_vec(t).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// The template an image was made for, from its provenance tags (exit 2 when it has none).
pub fn template_of_image(ctx: &Ctx, image: &Image) -> Result<Template> {
    let Some(slug) = image.tags.get(cws_provider::tags::TEMPLATE) else {
        return Err(UsageError(format!(
            "{} has no `{}` tag, so cws cannot tell which template it serves; listings are \
             made from images cws created (`cws ami create TEMPLATE INSTANCE`) or copied",
            image.id,
            cws_provider::tags::TEMPLATE
        ))
        .into());
    };
    Ok(ctx.store.get(slug)?.template)
}

/// When the source of a copy is listed by this user, adds the copy's region to the same
/// version. Returns what was added, or why nothing was.
pub async fn add_copy_region(
    ctx: &Ctx,
    source_ami: &str,
    copy: &Image,
) -> Result<Option<Result<Published, String>>> {
    let reg = open(ctx).await?;
    let found = reg.store.find_image(reg.viewer(), source_ami).await?;
    let Some(src) = found.into_iter().next() else {
        return Ok(None);
    };
    let Some(actor) = reg.actor.as_ref() else {
        return Ok(Some(Err(format!(
            "{source_ami} is listed as {}@{}, but no identity is set, so the copy was not added \
             to it",
            src.listing, src.version
        ))));
    };
    if actor.identity.handle != src.listing.publisher {
        return Ok(None);
    }
    let d = reg.store.listing(Some(actor), &src.listing).await?;
    let version = cws_registry::parse_version(&src.version)?;
    let Some(v) = d.version(&version) else {
        return Ok(None);
    };
    let p = Publish {
        listing: src.listing.clone(),
        name: d.summary.name.clone(),
        description: d.summary.description.clone(),
        category: d.summary.category.clone(),
        template: d.summary.template.clone(),
        visibility: d.summary.visibility.clone(),
        version,
        template_digest: v.template_digest.clone(),
        region: copy.region.clone(),
        image: RegionImage {
            ami_id: copy.id.clone(),
            architecture: copy.architecture.to_string(),
            snapshot_ids: copy.snapshot_ids.clone(),
            size_gib: copy.root_volume_gb,
        },
        notes: v.notes.clone(),
        speedup: v.speedup,
    };
    Ok(Some(match reg.store.publish(actor, &p).await {
        Ok(p) => Ok(p),
        Err(e @ RegistryError::RegionTaken { .. }) => Err(e.to_string()),
        Err(e) => return Err(e.into()),
    }))
}

// ---------------------------------------------------------------------------------------------
// Launching from listings.

/// The community tier for a launch or resolve: from `--listing`, else from the template's
/// `ami_config.community`. `None` when neither asks for one.
pub async fn community_plan(
    ctx: &Ctx,
    template: &Template,
    listing: Option<&CommunityRef>,
) -> Result<Option<CommunityPlan>> {
    let selection = match listing {
        Some(l) => l.clone(),
        None => match template
            .ami_config
            .as_ref()
            .and_then(|c| c.community.clone())
        {
            Some(c) => c,
            None => return Ok(None),
        },
    };
    let reg = open(ctx).await?;
    let plan = CommunityPlan::prepare(&reg.store, reg.viewer(), &selection).await?;
    Ok(Some(plan))
}

/// `--listing PUBLISHER/SLUG[@VERSION]`: the listing's template and the selection pinning the
/// community tier to it. An unknown listing exits 2 with the close ids.
pub async fn listing_launch(
    ctx: &Ctx,
    listing: &str,
    allow_unsigned: bool,
) -> Result<(Template, CommunityRef)> {
    let r = parse_listing(listing)?;
    let reg = open(ctx).await?;
    let d = reg.store.listing(reg.viewer(), &r.id).await?;
    let mut template = ctx
        .store
        .get(&d.summary.template)
        .with_context(|| {
            format!(
                "the listing {} is built from the template `{}`, which is not on this machine",
                r.id, d.summary.template
            )
        })?
        .template;
    let selection = CommunityRef {
        listing: r.id.to_string(),
        channel: None,
        version: r.version.clone(),
        min_rating: None,
        require_signature: !allow_unsigned,
    };
    // The listing is the image source: a template without an ami_config (script only) gets
    // one that prefers images, with the listing as its community source.
    let mut cfg = template
        .ami_config
        .take()
        .unwrap_or_else(|| cws_template::AmiConfig {
            strategy: cws_template::AmiStrategy::AmiPreferred,
            ..Default::default()
        });
    cfg.community = Some(selection.clone());
    template.ami_config = Some(cfg);
    Ok((template, selection))
}

/// Counts a launch from a listing version (and marks the launcher's rating as verified use).
pub async fn record_download(ctx: &Ctx, listing: &str, version: &str) -> Result<()> {
    let reg = open(ctx).await?;
    let download = Download {
        listing: listing.parse()?,
        version: cws_registry::parse_version(version)?,
        day: chrono::Utc::now().date_naive(),
        by: reg.actor.as_ref().map(|a| a.identity.handle.clone()),
    };
    reg.store.record_download(&download).await?;
    Ok(())
}

/// Ratings of listed images, for `ami list`: image id → (listing, version, rating).
pub async fn listed_images(
    ctx: &Ctx,
    ids: &[String],
) -> Result<BTreeMap<String, (String, String, cws_registry::RatingSummary)>> {
    let reg = open(ctx).await?;
    let mut out = BTreeMap::new();
    let mut details: BTreeMap<ListingId, cws_registry::RatingSummary> = BTreeMap::new();
    for id in ids {
        let Some(hit) = reg
            .store
            .find_image(reg.viewer(), id)
            .await?
            .into_iter()
            .next()
        else {
            continue;
        };
        let rating = match details.get(&hit.listing) {
            Some(r) => *r,
            None => {
                let d = reg.store.listing(reg.viewer(), &hit.listing).await?;
                details.insert(hit.listing.clone(), d.summary.rating);
                d.summary.rating
            }
        };
        out.insert(id.clone(), (hit.listing.to_string(), hit.version, rating));
    }
    Ok(out)
}

/// Copies of revoked or quarantined listing versions, refused at launch by their provenance
/// tags.
pub async fn refused_sources(ctx: &Ctx) -> Result<Vec<cws_resolver::service::RefusedProvenance>> {
    let reg = open(ctx).await?;
    Ok(reg
        .store
        .refusals()
        .await?
        .into_iter()
        .map(|r| cws_resolver::service::RefusedProvenance {
            tags: BTreeMap::from([
                (
                    cws_provider::tags::LISTING.to_string(),
                    r.listing.to_string(),
                ),
                (
                    cws_provider::tags::LISTING_VERSION.to_string(),
                    r.version.clone(),
                ),
            ]),
            reason: format!("{}@{}, which is {}", r.listing, r.version, r.reason),
        })
        .collect())
}
