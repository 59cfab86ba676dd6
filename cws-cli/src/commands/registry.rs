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

/// The registry (embedded, or a server's) and who acts on it.
pub struct Reg {
    pub store: std::sync::Arc<dyn Registry>,
    /// The server's URL, when the registry is a server's.
    pub server: Option<String>,
    /// The identity acting (publisher rules apply to it); `None` without an identity.
    pub actor: Option<Actor>,
}

impl Reg {
    pub fn viewer(&self) -> Option<&Actor> {
        self.actor.as_ref()
    }

    /// The line table output starts with when the registry is used.
    pub fn line(&self) -> String {
        match &self.server {
            Some(url) => format!("Registry: {} (shared)", Shown(url)),
            None => format!(
                "Registry: embedded SQLite at {} (this machine only)",
                Shown(self.store.location())
            ),
        }
    }

    /// The actor, or the usage error saying how to set an identity (`doing` is what needed it).
    pub fn require_actor(&self, doing: &str) -> Result<&Actor> {
        match &self.server {
            Some(url) => self.actor.as_ref().ok_or_else(|| no_token(doing, url)),
            None => self.actor.as_ref().ok_or_else(|| no_identity(doing)),
        }
    }
}

fn no_token(doing: &str, url: &str) -> anyhow::Error {
    UsageError(format!(
        "{doing} on the registry at {} needs a token, and none is set; nothing was changed\n  \
         help: pass --token TOKEN (or CWS_TOKEN), or set it once with `cws config set \
         registry.token TOKEN`; the registry's admin makes tokens with `cws admin token create`",
        Shown(url)
    ))
    .into()
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
pub async fn require_identity(ctx: &Ctx, doing: &str) -> Result<Identity> {
    if ctx.registry_url.is_some() {
        // A server acts as its token's holder.
        let reg = open(ctx).await?;
        return Ok(reg.require_actor(doing)?.identity.clone());
    }
    identity(ctx)?.ok_or_else(|| no_identity(doing))
}

/// `$CWS_HOME/allowed_signers`: the keys trusted to sign listings, per publisher email.
pub fn allowed_signers(ctx: &Ctx) -> Result<cws_registry::trust::AllowedSigners> {
    Ok(cws_registry::trust::AllowedSigners::load(
        &ctx.home.join("allowed_signers"),
    )?)
}

/// `verified`, `unsigned (…)`, as a short word for tables.
fn signature_word(s: &cws_registry::SignatureInfo) -> String {
    match s.status.as_str() {
        "verified" => format!("✔ verified ({})", s.signer.as_deref().unwrap_or("?")),
        other => other.to_string(),
    }
}

/// The registry if `$CWS_HOME/registry.db` exists: read-only paths (refusals, ratings in
/// `ami list`) need not create it, nor pay for opening it, when nothing was ever published.
pub async fn open_existing(ctx: &Ctx) -> Result<Option<Reg>> {
    if ctx.registry_url.is_none() && !ctx.home.join("registry.db").exists() {
        return Ok(None);
    }
    open(ctx).await.map(Some)
}

/// Opens the registry: the server `--registry` names (acting as its token's holder), else
/// `$CWS_HOME/registry.db`.
pub async fn open(ctx: &Ctx) -> Result<Reg> {
    if let Some(url) = &ctx.registry_url {
        let http = cws_registry::HttpRegistry::new(
            url,
            std::sync::Arc::new(cws_registry::StaticToken(ctx.registry_token.clone())),
        )?;
        // The server acts as the token's holder: that is who publishes, rates and reports.
        let actor = match &ctx.registry_token {
            Some(_) => Some(http.whoami().await?.actor()),
            None => None,
        };
        return Ok(Reg {
            store: std::sync::Arc::new(http),
            server: Some(url.clone()),
            actor,
        });
    }
    let actor = identity(ctx)?.map(Actor::user);
    let path = ctx.home.join("registry.db");
    let store = SqliteRegistry::open(&path)
        .await
        .with_context(|| format!("opening the registry {}", path.display()))?;
    Ok(Reg {
        store: std::sync::Arc::new(store),
        server: None,
        actor,
    })
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
    let mut listings = reg.store.browse(reg.viewer(), &query).await?;
    let allowed = allowed_signers(ctx)?;
    for l in &mut listings {
        l.signature = cws_registry::trust::check_summary(l, &allowed);
    }
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
                "  {}  {}{}  ({} download{})  {}  {}",
                short_rating(&l.rating),
                Shown(&name),
                " ".repeat(pad),
                thousands(l.downloads),
                if l.downloads == 1 { "" } else { "s" },
                Shown(l.id.to_string()),
                Shown(signature_word(&l.signature))
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
    cws_registry::trust::annotate(&mut detail, &allowed_signers(ctx)?);
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
    let _ = writeln!(
        out,
        "Signature: {}{}",
        Shown(signature_word(&s.signature)),
        s.signature
            .detail
            .as_ref()
            .map(|d| format!(" — {}", Shown(d)))
            .unwrap_or_default()
    );
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
            Shown(signature_word(&v.signature)),
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
    let Some(reg) = open_existing(ctx).await? else {
        return Ok(None);
    };
    let found = reg.store.find_image(reg.viewer(), ami).await?;
    let Some(first) = found.into_iter().next() else {
        return Ok(None);
    };
    let mut d = reg.store.listing(reg.viewer(), &first.listing).await?;
    cws_registry::trust::annotate(&mut d, &allowed_signers(ctx)?);
    Ok(Some(d))
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
    super::audit::record(
        ctx,
        "rate",
        &r.id.to_string(),
        serde_json::json!({"stars": stars, "review": review.is_some()}),
    );
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
        super::audit::record(
            ctx,
            "report",
            &format!("{}@{version}", r.id),
            serde_json::json!({"cleared": true}),
        );
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
    super::audit::record(
        ctx,
        "report",
        &format!("{}@{version}", r.id),
        serde_json::json!({"reason": reason.as_str(), "quarantined": outcome.quarantined}),
    );
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

pub async fn revoke(
    ctx: &Ctx,
    target: &str,
    reason: &str,
    sign_with: Option<&std::path::Path>,
) -> Result<()> {
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
    // The key is loaded (and its passphrase asked) before anything changes.
    let key = signing_key(
        ctx,
        &PublishArgs {
            sign_with: sign_with.map(|p| p.to_path_buf()),
            ..PublishArgs::default()
        },
    )?;
    let rev = reg.store.revoke(actor, &r.id, version, reason).await?;
    let mut signed = false;
    if let Some(key) = &key
        && actor.identity.handle == r.id.publisher
    {
        let d = reg.store.listing(Some(actor), &r.id).await?;
        if let Some(v) = d.version(version)
            && v.signed.as_ref().is_none_or(|s| s.revision < v.revision)
        {
            let doc = cws_registry::trust::version_document(
                &r.id,
                &d.summary.publisher_email,
                &d.summary.template,
                v,
            );
            let text = cws_registry::trust::canonical_document(&doc);
            let signature = cws_registry::trust::sign_document(&text, key)?;
            reg.store
                .sign_version(
                    actor,
                    &r.id,
                    version,
                    &cws_registry::trust::SignedDocument {
                        revision: v.revision,
                        document: text,
                        signature,
                    },
                )
                .await?;
            signed = true;
        }
    }
    super::audit::record(
        ctx,
        "revoke",
        &format!("{}@{version}", r.id),
        serde_json::json!({"reason": rev.reason}),
    );
    if ctx.json {
        return output::json(&serde_json::json!({
            "listing": r.id, "version": version.to_string(), "revoked": rev
        }));
    }
    println!("{}", reg.line());
    println!(
        "Revoked {}@{}: {}. Launches refuse it from now on.{}",
        Shown(r.id.to_string()),
        version,
        Shown(&rev.reason),
        if signed {
            " The revocation is signed: a mirror cannot drop it unnoticed."
        } else {
            ""
        }
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
    super::audit::record(
        ctx,
        "channel",
        &r.id.to_string(),
        serde_json::json!({"channel": channel, "version": version.to_string()}),
    );
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
    /// The decrypted signing key, loaded before anything changed.
    key: Option<ssh_key::PrivateKey>,
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
    /// Who signed the version (email and key fingerprint), when it was signed.
    pub signed_by: Option<String>,
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
    let identity = require_identity(ctx, doing).await?;
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
    let existing = reg.store.listing(Some(&actor), &listing).await.ok();
    // Visibility is the listing's: publishing with another would change it for every
    // version already published, so it is refused rather than done on the side.
    if let Some(d) = &existing
        && d.summary.visibility != visibility
    {
        return Err(UsageError(format!(
            "{listing} is published as {}; publishing as {visibility} would change what every \
             version of it shows to whom. Publish with the same visibility, or under another \
             listing",
            d.summary.visibility
        ))
        .into());
    }
    // A published region never changes: refuse before anything is made or shared.
    if let Some(existing) = &existing
        && let Some(v) = existing.version(&version)
    {
        // A version is one build of one template: another template content is a new version.
        let digest = template_digest(template);
        if v.template_digest != digest {
            return Err(UsageError(format!(
                "{listing}@{version} was built from another revision of template `{}` (digest \
                 {} here, {} published); publish this one as a new version (--version)",
                template.slug, digest, v.template_digest
            ))
            .into());
        }
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
    let key = signing_key(ctx, args)?;
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
    Ok(PublishPlan {
        reg,
        actor,
        base,
        key,
    })
}

/// The signing key from `--sign-with` or `user.signing_key`, decrypted (asking for its
/// passphrase on the terminal). Loaded before anything is published, so a wrong passphrase
/// changes nothing.
fn signing_key(ctx: &Ctx, args: &PublishArgs) -> Result<Option<ssh_key::PrivateKey>> {
    let path = match &args.sign_with {
        Some(p) => p.clone(),
        None => match Config::load(&ctx.home)?.user.signing_key {
            Some(p) => std::path::PathBuf::from(p),
            None => return Ok(None),
        },
    };
    let key = cws_registry::trust::read_private_key(&path)?;
    if !key.is_encrypted() {
        return Ok(Some(key));
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(UsageError(format!(
            "the signing key {} is encrypted and there is no terminal to ask for its \
             passphrase; nothing was changed (run on a terminal; ssh-agent is not supported yet)",
            path.display()
        ))
        .into());
    }
    let pass = rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
        .context("reading the passphrase")?;
    let key = key.decrypt(pass.as_bytes()).map_err(|_| {
        UsageError(format!(
            "wrong passphrase for {}; nothing was changed",
            path.display()
        ))
    })?;
    Ok(Some(key))
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
        let mut signed_by = None;
        if let Some(key) = &self.key {
            let d = self
                .reg
                .store
                .listing(Some(&self.actor), &self.base.listing)
                .await?;
            if let Some(v) = d.version(&self.base.version) {
                let doc = cws_registry::trust::version_document(
                    &self.base.listing,
                    &d.summary.publisher_email,
                    &self.base.template,
                    v,
                );
                let text = cws_registry::trust::canonical_document(&doc);
                let signature = cws_registry::trust::sign_document(&text, key)?;
                self.reg
                    .store
                    .sign_version(
                        &self.actor,
                        &self.base.listing,
                        &self.base.version,
                        &cws_registry::trust::SignedDocument {
                            revision: v.revision,
                            document: text,
                            signature,
                        },
                    )
                    .await?;
                signed_by = Some(format!(
                    "{} ({})",
                    d.summary.publisher_email,
                    key.public_key().fingerprint(ssh_key::HashAlg::Sha256)
                ));
            }
        }
        Ok(ListingOut {
            id: self.base.listing.clone(),
            version: self.base.version.to_string(),
            revision,
            visibility: self.base.visibility.clone(),
            regions,
            registry: self.reg.store.location(),
            signed_by,
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
    match &l.signed_by {
        Some(by) => println!("   Signed revision {} as {}", l.revision, Shown(by)),
        None => println!(
            "   Not signed: launches that require signatures will refuse it (sign with \
             --sign-with KEY or `cws config set user.signing_key PATH`)"
        ),
    }
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
/// The configured signing key, loaded (and its passphrase asked) before a copy of an image this
/// user lists is made, so the new revision can be signed: `None` when the source is not listed
/// by this user or no key is configured.
pub async fn copy_signing_key(ctx: &Ctx, source_ami: &str) -> Result<Option<ssh_key::PrivateKey>> {
    let Some(reg) = open_existing(ctx).await? else {
        return Ok(None);
    };
    let Some(actor) = reg.actor.as_ref() else {
        return Ok(None);
    };
    let listed_by_me = reg
        .store
        .find_image(reg.viewer(), source_ami)
        .await?
        .iter()
        .any(|l| l.listing.publisher == actor.identity.handle);
    if !listed_by_me {
        return Ok(None);
    }
    signing_key(ctx, &PublishArgs::default())
}

pub async fn add_copy_region(
    ctx: &Ctx,
    source_ami: &str,
    copy: &Image,
    key: Option<&ssh_key::PrivateKey>,
) -> Result<Option<Result<Published, String>>> {
    let Some(reg) = open_existing(ctx).await? else {
        return Ok(None);
    };
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
    let published = match reg.store.publish(actor, &p).await {
        Ok(p) => p,
        Err(e @ RegistryError::RegionTaken { .. }) => return Ok(Some(Err(e.to_string()))),
        Err(e) => return Err(e.into()),
    };
    // The new revision is signed again when a signing key is configured.
    if published.changed
        && let Some(key) = key
    {
        let d = reg.store.listing(Some(actor), &src.listing).await?;
        if let Some(v) = d.version(&p.version) {
            let doc = cws_registry::trust::version_document(
                &src.listing,
                &d.summary.publisher_email,
                &d.summary.template,
                v,
            );
            let text = cws_registry::trust::canonical_document(&doc);
            let signature = cws_registry::trust::sign_document(&text, key)?;
            reg.store
                .sign_version(
                    actor,
                    &src.listing,
                    &p.version,
                    &cws_registry::trust::SignedDocument {
                        revision: v.revision,
                        document: text,
                        signature,
                    },
                )
                .await?;
        }
    }
    Ok(Some(Ok(published)))
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
    let reg = open(ctx).await?;
    let signers = allowed_signers(ctx)?;
    let view = cws_api::questions::RegistryView {
        registry: Some(reg.store.as_ref()),
        viewer: reg.viewer(),
        policy: &ctx.policy,
        signers: &signers,
    };
    cws_api::questions::community_plan_in(&view, template, listing)
        .await
        .map_err(super::question_error)
}

/// `--listing PUBLISHER/SLUG[@VERSION]`: the listing's template and the selection pinning the
/// community tier to it. An unknown listing exits 2 with the close ids.
pub async fn listing_launch(
    ctx: &Ctx,
    listing: &str,
    allow_unsigned: bool,
) -> Result<(Template, CommunityRef)> {
    let r = parse_listing(listing)?;
    if let Some(why) = ctx.policy.check_publisher(&r.id.publisher) {
        return Err(UsageError(format!("refused: {why}")).into());
    }
    if allow_unsigned && ctx.policy.policy.require_signature {
        return Err(UsageError(format!(
            "refused: {} requires verified signatures, so --allow-unsigned cannot be used",
            ctx.policy.rule("require_signature")
        ))
        .into());
    }
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

/// Revoked or quarantined listing versions: their images, and copies made from them (by
/// provenance tags), refused by every resolution.
pub async fn refused_sources(ctx: &Ctx) -> Result<Vec<cws_resolver::service::RefusedProvenance>> {
    let reg = open_existing(ctx).await?;
    cws_api::questions::refused_in(
        reg.as_ref().map(|r| r.store.as_ref()),
        reg.as_ref().and_then(|r| r.viewer()),
    )
    .await
    .map_err(super::question_error)
}

// ---------------------------------------------------------------------------------------------
// Export and import.

pub async fn export(ctx: &Ctx, target: &str, out: Option<&std::path::Path>) -> Result<()> {
    let r = parse_listing(target)?;
    let reg = open(ctx).await?;
    let mut d = reg.store.listing(reg.viewer(), &r.id).await?;
    if let Some(v) = &r.version {
        if d.version(v).is_none() {
            return Err(RegistryError::UnknownVersion {
                listing: r.id.to_string(),
                version: v.to_string(),
                known: d.versions.iter().map(|x| x.version.clone()).collect(),
            }
            .into());
        }
        d.versions.retain(|x| x.semver() == *v);
    }
    let doc = cws_registry::trust::export(&d);
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    match out {
        Some(path) => {
            cws_util::fs::write_atomic(path, text.as_bytes(), None)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote {} ({} version{}) to {}",
                Shown(r.id.to_string()),
                doc.versions.len(),
                if doc.versions.len() == 1 { "" } else { "s" },
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub async fn import(ctx: &Ctx, file: &std::path::Path) -> Result<()> {
    let text = cws_util::fs::read_text_bounded(file, cws_registry::MAX_EXPORT_BYTES)
        .map_err(|e| UsageError(format!("{e}")))?;
    let doc: cws_registry::ListingExport = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: not a cws listing export ({e}); make one with `cws ami export LISTING -o FILE`",
            file.display()
        ))
    })?;
    let allowed = allowed_signers(ctx)?;
    let statuses = cws_registry::trust::check_export(&doc, &allowed);
    // A tampered document is refused whole: nothing of it is added.
    if let Some((v, s)) = statuses.iter().find(|(_, s)| s.status == "invalid") {
        return Err(crate::error::TrustFailure(format!(
            "{}@{v} in {} is invalid: {}; nothing was imported",
            doc.id,
            file.display(),
            s.detail.as_deref().unwrap_or("the signature does not hold")
        ))
        .into());
    }
    let reg = open(ctx).await?;
    // Whoever runs cws administers its embedded registry: a mirror imports others' listings.
    let actor = Actor::admin(reg.require_actor("importing a listing")?.identity.clone());
    let imported = reg.store.import(&actor, &doc).await?;
    super::audit::record(
        ctx,
        "import",
        &imported.listing.to_string(),
        serde_json::json!({
            "file": file.display().to_string(),
            "versions": statuses.iter().map(|(v, s)| (v.clone(), s.status.clone())).collect::<BTreeMap<_, _>>(),
        }),
    );
    if ctx.json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            imported: &'a cws_registry::Imported,
            signatures: BTreeMap<String, cws_registry::SignatureInfo>,
        }
        return output::json(&Out {
            imported: &imported,
            signatures: statuses.into_iter().collect(),
        });
    }
    println!("{}", reg.line());
    println!(
        "Imported {}: {} new version(s), {} new region(s).",
        Shown(imported.listing.to_string()),
        imported.added_versions.len(),
        imported.added_regions
    );
    for (v, s) in &statuses {
        println!(
            "  {v}: {}{}",
            Shown(signature_word(s)),
            s.detail
                .as_ref()
                .map(|d| format!(" — {}", Shown(d)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// The policy's `allowed_owners`, with `self` replaced by the caller's account id.
pub async fn owner_policy(
    ctx: &Ctx,
    env: &cws_resolver::ResolveEnv,
) -> Result<Option<cws_resolver::OwnerPolicy>> {
    cws_api::questions::owners_for(&ctx.policy, env.provider.as_ref())
        .await
        .map_err(super::question_error)
}

/// What `ami share --public/--community` asks the publisher to check, and what cws itself
/// noticed: lines of the template's scripts that look like credentials. cws cannot see inside
/// the image; the checklist says what to remove from it.
pub fn security_review(template: &Template) -> Vec<String> {
    let mut warnings = Vec::new();
    let scripts = [
        ("post_install", template.post_install.as_deref()),
        ("user_data", template.user_data.as_deref()),
    ];
    for (field, text) in scripts {
        let Some(text) = text else { continue };
        for (n, line) in text.lines().enumerate() {
            if let Some(what) = looks_secret(line) {
                warnings.push(format!(
                    "template `{}` {field} line {} looks like it holds {what}; an image made \
                     from it may carry it too",
                    template.slug,
                    n + 1
                ));
            }
        }
    }
    warnings
}

fn looks_secret(line: &str) -> Option<&'static str> {
    let lower = line.to_ascii_lowercase();
    if line.contains("PRIVATE KEY-----") {
        return Some("a private key");
    }
    let aws_key = line.as_bytes().windows(20).any(|w| {
        (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
            && w[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    });
    if aws_key {
        return Some("an AWS access key id");
    }
    for word in ["password", "passwd", "secret", "token", "api_key", "apikey"] {
        if let Some(at) = lower.find(word) {
            let rest = lower[at + word.len()..].trim_start();
            if rest.starts_with('=') || rest.starts_with(':') {
                let value = rest[1..].trim().trim_matches(|c| c == '"' || c == '\'');
                if value.len() >= 6 && !value.starts_with('$') {
                    return Some("a password or token");
                }
            }
        }
    }
    None
}

/// The checklist shown before an image is made public.
pub const SHARING_CHECKLIST: &str = "Before an image is shared with everyone, check that it holds \
no credentials or private data (cws cannot look inside it):\n  - ~/.aws, ~/.ssh, ~/.netrc, \
cloud and API tokens, git credentials\n  - shell and Jupyter history, notebooks' outputs, \
data sets you may not share\n  - browser profiles, password stores, license files";

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secret_looking_lines_are_noticed_and_ordinary_ones_are_not() {
        assert_eq!(
            looks_secret("export AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP"),
            Some("an AWS access key id")
        );
        assert_eq!(
            looks_secret("-----BEGIN OPENSSH PRIVATE KEY-----"),
            Some("a private key")
        );
        assert_eq!(
            looks_secret("db_password = 'hunter2hunter2'"),
            Some("a password or token")
        );
        assert_eq!(
            looks_secret("TOKEN: abcdef123456"),
            Some("a password or token")
        );
        // Variables and short placeholders are not secrets; neither is prose.
        assert_eq!(looks_secret("password=$DB_PASSWORD"), None);
        assert_eq!(looks_secret("token: x"), None);
        assert_eq!(looks_secret("pip install passwordless"), None);
        assert_eq!(
            looks_secret("systemctl enable --now jupyterlab.service"),
            None
        );
    }
}
