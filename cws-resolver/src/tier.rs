//! Resolution tiers: each a strategy object that probes one way of getting an image.
//!
//! A [`Tier`] is read-only: it looks, it never copies or launches. That is what lets the
//! [`Resolver`](crate::Resolver) run every tier's probe at once and commit to the
//! highest-priority success. Tiers are trait objects, so an embedding tool can list, reorder,
//! replace or add its own (e.g. an institution's image catalogue) without touching this crate.

use std::sync::Arc;

use async_trait::async_trait;
use cws_cost::{PackageCounts, PriceBook};
use cws_regions::FallbackGraph;
use cws_template::{Architecture, Template};
use futures::future::join_all;
use serde::Serialize;

use chrono::{DateTime, Utc};
use cws_provider::tags::{self, MARKETPLACE_OWNER_ALIAS};
use cws_provider::{
    Image, ImageCatalog, ImageQuery, ImageState, MarketplaceQuery, ProviderError, ProviderResult,
    select_image,
};

use crate::TierId;
use crate::report::{CopyAlternative, CopyPlan, Method};

/// Everything a tier may look at while probing. Borrowed: probing allocates little.
pub struct ResolveContext<'a> {
    /// The template (inheritance already merged).
    pub template: &'a Template,
    /// The region to launch in.
    pub region: &'a str,
    /// Acceptable architectures, preferred first (never empty).
    pub architectures: Vec<Architecture>,
    /// The image catalogue to probe (a whole provider, or a read-only catalogue).
    pub provider: &'a dyn ImageCatalog,
    /// The regional fallback graph.
    pub fallbacks: &'a FallbackGraph,
    /// Prices for copy and setup estimates.
    pub prices: &'a PriceBook,
    /// "Now", for deprecation checks (fixed in tests).
    pub now: DateTime<Utc>,
    /// Images known elsewhere to serve the template (e.g. a registry listing's regions), for
    /// cross_region.
    pub known_images: &'a [KnownImage],
    /// Images that must not be chosen, by their provenance tags.
    pub refused: &'a [RefusedProvenance],
    /// When set, the only image owners any tier may return (an institution's policy).
    pub allowed_owners: Option<&'a OwnerPolicy>,
}

/// The image owners a policy allows, and the rule's name for refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerPolicy {
    /// Account ids (the caller's own already in place of `self`) or aliases (`amazon`).
    pub owners: Vec<String>,
    /// The rule, as refusals name it (e.g. "policy rule `allowed_owners` (in policy.toml)").
    pub rule: String,
}

impl ResolveContext<'_> {
    /// Why `image` must not be chosen: a [`RefusedProvenance`] matches its tags, or its
    /// owner is not among the [`OwnerPolicy`]'s.
    pub fn refusal(&self, image: &Image) -> Option<String> {
        if let Some(p) = self.allowed_owners
            && !p.owners.contains(&image.owner_id)
        {
            return Some(format!(
                "{} is owned by {}, which {} does not allow",
                image.id, image.owner_id, p.rule
            ));
        }
        if let Some(r) = self.refused_id(&image.id) {
            return Some(format!("{} in {} is {}", image.id, image.region, r.reason));
        }
        self.refused
            .iter()
            .find(|r| {
                (!r.tags.is_empty() && r.tags.iter().all(|(k, v)| image.tags.get(k) == Some(v)))
                    || image
                        .tags
                        .get(tags::SOURCE_AMI)
                        .is_some_and(|src| r.ami_ids.contains(src))
            })
            .map(|r| {
                format!(
                    "{} in {} was made from {}",
                    image.id, image.region, r.reason
                )
            })
    }

    fn refused_id(&self, id: &str) -> Option<&RefusedProvenance> {
        self.refused.iter().find(|r| r.ami_ids.contains(id))
    }

    /// Why a candidate must not be chosen, checked for every tier's answer (built-in or
    /// not): its owner is not allowed, or it (or the image it would be copied from) is a
    /// refused image.
    pub fn candidate_refusal(&self, c: &Candidate) -> Option<String> {
        if let Some(p) = self.allowed_owners
            && !p.owners.contains(&c.owner_id)
        {
            return Some(format!(
                "{} is owned by {}, which {} does not allow",
                c.ami_id, c.owner_id, p.rule
            ));
        }
        let source = c.copy.as_ref().map(|p| p.source_ami_id.as_str());
        [Some(c.ami_id.as_str()), source]
            .into_iter()
            .flatten()
            .find_map(|id| self.refused_id(id).map(|r| format!("{id} is {}", r.reason)))
    }
}

/// Images that must not be launched: those carrying all of `tags` (copies of a revoked
/// registry listing version, say). A tier whose choice carries them reports `not_found` with
/// the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedProvenance {
    /// Tags that identify them, e.g. `cws:listing` and `cws:listing-version`.
    pub tags: std::collections::BTreeMap<String, String>,
    /// The refused images themselves, and what copies of them carry as `cws:source-ami`
    /// (a publisher's own image carries no listing tags).
    pub ami_ids: std::collections::BTreeSet<String>,
    /// Why, e.g. "alice/python-ml@1.0.0, which is revoked by alice: CVE-2026-1234".
    pub reason: String,
}

/// An image known to serve the template in some region, from outside the template (a
/// registry listing's region entry). cross_region looks for it in its region, after the
/// template's own mapping and searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownImage {
    /// The region it is in.
    pub region: String,
    /// The image id there.
    pub ami_id: String,
    /// The listing version it is published under, if any.
    pub listing: Option<crate::report::ListedSource>,
}

impl std::fmt::Debug for ResolveContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveContext")
            .field("template", &self.template.slug)
            .field("region", &self.region)
            .field("architectures", &self.architectures)
            .finish_non_exhaustive()
    }
}

/// An image a tier found, with what it would take to launch it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The image to launch (for script fallback, the base OS image).
    pub ami_id: String,
    /// The image's name.
    pub ami_name: String,
    /// Owner of the image.
    pub owner_id: String,
    /// Where the image is now.
    pub source_region: String,
    /// Architecture of the image.
    pub architecture: Architecture,
    /// A copy that must happen first (cross-region only).
    pub copy: Option<CopyPlan>,
    /// Seconds from launch to a usable workstation.
    pub estimated_launch_seconds: u64,
    /// Things the user should know (deprecated image, ...).
    pub warnings: Vec<String>,
    /// One line on why this image.
    pub detail: String,
    /// The registry listing version this image is published under, if a listing served it.
    pub listing: Option<crate::report::ListedSource>,
}

/// What one tier's probe concluded.
// One probe per tier per resolution: boxing the candidate would only make custom tiers
// harder to write.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// This tier can serve the launch.
    Found(Candidate),
    /// This tier looked and found nothing usable; the string says what it looked for.
    NotFound(String),
    /// This tier does not apply to the template (e.g. no `ami_search`).
    Skipped(String),
}

/// One way of getting an image. Implementations must be read-only.
#[async_trait]
pub trait Tier: Send + Sync + std::fmt::Debug {
    /// The tier's identity in reports and chains, e.g. [`TierId::DIRECT_MAPPING`].
    fn id(&self) -> TierId;

    /// The method a success of this tier is reported as.
    fn method(&self) -> Method {
        Method::from_tier(&self.id())
    }

    /// Whether a success provides a prepared image (false for script provisioning).
    fn provides_ami(&self) -> bool {
        true
    }

    /// Whether the probe looks outside the launch region (cross-region). The resolver asks
    /// the launch region first and such tiers only when it has nothing; a tier that looks
    /// only in the launch region (the default) runs in the first wave.
    fn looks_in_other_regions(&self) -> bool {
        false
    }

    /// Looks for an image. Provider errors are returned as errors; the resolver records them
    /// as a `failed` attempt and moves on.
    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe>;
}

// Tiers are used as `Arc<dyn Tier>`: keep the trait object-safe (checked at compile time).
const _: Option<&dyn Tier> = None;

fn found(ctx: &ResolveContext<'_>, image: &Image, deprecated: bool, detail: String) -> Probe {
    if let Some(why) = ctx.refusal(image) {
        return Probe::NotFound(why);
    }
    let mut warnings = Vec::new();
    if deprecated {
        warnings.push(format!(
            "{} ({}) is deprecated since {}; no newer non-deprecated image matched",
            image.id,
            image.name,
            image
                .deprecation_time
                .map(|t| cws_provider::ec2_time::format(&t))
                .unwrap_or_else(|| "an unknown date".to_string())
        ));
    }
    Probe::Found(Candidate {
        ami_id: image.id.clone(),
        ami_name: image.name.clone(),
        owner_id: image.owner_id.clone(),
        source_region: ctx.region.to_string(),
        architecture: image.architecture,
        copy: None,
        estimated_launch_seconds: cws_cost::AMI_BOOT_SECONDS,
        warnings,
        detail,
        listing: None,
    })
}

fn arch_list(archs: &[Architecture]) -> String {
    archs
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Looks up a template's image in one region: its mapped id there (verified), then its
/// searches. Shared by [`DirectMapping`], [`DynamicSearch`] and [`CrossRegion`].
async fn mapped_image(
    ctx: &ResolveContext<'_>,
    region: &str,
) -> ProviderResult<Result<(Image, bool), String>> {
    let Some(cfg) = &ctx.template.ami_config else {
        return Ok(Err("template has no ami_config".into()));
    };
    let Some(id) = cfg.ami_mappings.get(region) else {
        return Ok(Err(format!("no ami_mappings entry for {region}")));
    };
    let images = ctx
        .provider
        .describe_images_by_id(region, std::slice::from_ref(id))
        .await?;
    let Some(image) = images.into_iter().find(|i| &i.id == id) else {
        return Ok(Err(format!("mapped {id} does not exist in {region}")));
    };
    if image.state != ImageState::Available {
        return Ok(Err(format!(
            "mapped {id} in {region} is {}, not available",
            image.state
        )));
    }
    if !ctx.architectures.contains(&image.architecture) {
        return Ok(Err(format!(
            "mapped {id} in {region} is {}, but {} is required",
            image.architecture,
            arch_list(&ctx.architectures)
        )));
    }
    if let Some(why) = ctx.refusal(&image) {
        return Ok(Err(why));
    }
    let deprecated = image.is_deprecated_at(ctx.now);
    Ok(Ok((image, deprecated)))
}

/// The queries that find a template's own images in a region: its `ami_search`, and the
/// provenance search for copies cws made (owner `self`, tagged `cws:template`), so a region
/// pays for a copy only once even when the template's search does not trust `self`.
fn search_queries(ctx: &ResolveContext<'_>) -> Vec<ImageQuery> {
    let Some(cfg) = &ctx.template.ami_config else {
        return Vec::new();
    };
    let mut queries = Vec::new();
    let mut self_covered = false;
    if let Some(search) = &cfg.ami_search {
        let archs: Vec<Architecture> = if search.architectures.is_empty() {
            ctx.architectures.clone()
        } else {
            ctx.architectures
                .iter()
                .copied()
                .filter(|a| search.architectures.contains(a))
                .collect()
        };
        let q = search_query(search).architectures(archs);
        // The search already finds every copy when it trusts `self` and filters on nothing a
        // copy may lack: a copy keeps its source's name, which need not match the pattern
        // (a mapped image's, say), and may be of any accepted architecture.
        self_covered = search.owners.iter().any(|o| o == "self")
            && search.name_pattern.is_none()
            && ctx
                .architectures
                .iter()
                .all(|a| search.architectures.is_empty() || search.architectures.contains(a))
            && search
                .required_tags
                .iter()
                .all(|(k, v)| k == tags::TEMPLATE && v == &ctx.template.slug);
        queries.push(q);
    }
    if !self_covered && cfg.has_ami_source() {
        queries.push(
            ImageQuery::owned_by(["self"])
                .architectures(ctx.architectures.iter().copied())
                .tag(tags::TEMPLATE, ctx.template.slug.clone()),
        );
    }
    queries
}

/// The `DescribeImages` query for a template's `ami_search` (all its architectures).
pub fn search_query(search: &cws_template::AmiSearch) -> ImageQuery {
    let mut q = ImageQuery::owned_by(search.owners.iter().cloned())
        .architectures(search.architectures.iter().copied())
        .include_deprecated(search.include_deprecated);
    q.names = search.name_pattern.iter().cloned().collect();
    q.tags = search.required_tags.clone();
    q
}

/// Runs the template's searches in one region concurrently and selects the best image.
async fn searched_image(
    ctx: &ResolveContext<'_>,
    region: &str,
) -> ProviderResult<Result<(Image, bool), String>> {
    let queries = search_queries(ctx);
    if queries.is_empty() {
        return Ok(Err("template has no ami_search".into()));
    }
    // Each query's best, then the best of those: the same pick as selecting over the union.
    let results = join_all(queries.iter().map(|q| {
        ctx.provider
            .describe_best_image(region, q, &ctx.architectures, ctx.now)
    }))
    .await;
    let mut images: Vec<Image> = Vec::with_capacity(results.len());
    for r in results {
        if let Some((img, _)) = r? {
            images.push(img);
        }
    }
    let describe = describe_search(ctx);
    match select_image(&images, &ctx.architectures, ctx.now) {
        Some((img, _)) if ctx.refusal(img).is_some() => {
            Ok(Err(ctx.refusal(img).unwrap_or_default()))
        }
        Some((img, dep)) => Ok(Ok((img.clone(), dep))),
        None => Ok(Err(format!(
            "no available {} image matching {describe} in {region}",
            arch_list(&ctx.architectures)
        ))),
    }
}

fn describe_search(ctx: &ResolveContext<'_>) -> String {
    match ctx
        .template
        .ami_config
        .as_ref()
        .and_then(|c| c.ami_search.as_ref())
    {
        Some(s) => format!(
            "`{}` owned by {}",
            s.name_pattern.as_deref().unwrap_or("*"),
            s.owners.join(",")
        ),
        None => format!("{}={} owned by self", tags::TEMPLATE, ctx.template.slug),
    }
}

/// Tier 1: the template's `ami_mappings` entry for the region, verified to exist, be
/// available and match the architecture.
#[derive(Debug, Default, Clone, Copy)]
pub struct DirectMapping;

#[async_trait]
impl Tier for DirectMapping {
    fn id(&self) -> TierId {
        TierId::DIRECT_MAPPING
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let has_mapping = ctx
            .template
            .ami_config
            .as_ref()
            .is_some_and(|c| !c.ami_mappings.is_empty());
        if !has_mapping {
            return Ok(Probe::Skipped("template has no ami_mappings".into()));
        }
        Ok(match mapped_image(ctx, ctx.region).await? {
            Ok((img, dep)) => found(
                ctx,
                &img,
                dep,
                format!("{} mapped for {} and available", img.id, ctx.region),
            ),
            Err(why) => Probe::NotFound(why),
        })
    }
}

/// Tier 2: the template's `ami_search` (trusted owners, name pattern, architecture, tags) in
/// the region, plus copies cws made earlier (provenance tags).
#[derive(Debug, Default, Clone, Copy)]
pub struct DynamicSearch;

#[async_trait]
impl Tier for DynamicSearch {
    fn id(&self) -> TierId {
        TierId::DYNAMIC_SEARCH
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        if search_queries(ctx).is_empty() {
            return Ok(Probe::Skipped("template has no ami_search".into()));
        }
        Ok(match searched_image(ctx, ctx.region).await? {
            Ok((img, dep)) => {
                let how = match img.tags.get(tags::SOURCE_AMI) {
                    Some(src) => format!(
                        "a copy of {src} from {}",
                        img.tags
                            .get(tags::SOURCE_REGION)
                            .map(String::as_str)
                            .unwrap_or("another region")
                    ),
                    None => format!("owner {}", img.owner_id),
                };
                found(
                    ctx,
                    &img,
                    dep,
                    format!(
                        "{} ({}) newest match of {}; {how}",
                        img.id,
                        img.name,
                        describe_search(ctx)
                    ),
                )
            }
            Err(why) => Probe::NotFound(why),
        })
    }
}

/// Tier 3: an AWS Marketplace product's image in the region.
#[derive(Debug, Default, Clone, Copy)]
pub struct Marketplace;

#[async_trait]
impl Tier for Marketplace {
    fn id(&self) -> TierId {
        TierId::MARKETPLACE
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let Some(mp) = ctx
            .template
            .ami_config
            .as_ref()
            .and_then(|c| c.marketplace.as_ref())
        else {
            return Ok(Probe::Skipped("template has no marketplace product".into()));
        };
        // With a product code the image search needs no catalogue round trip first.
        let (codes, product_note) = match &mp.product_code {
            Some(code) => (vec![code.clone()], format!("product code {code}")),
            None => {
                let query = MarketplaceQuery {
                    product_code: None,
                    product_id: mp.product_id.clone(),
                    title: mp.title.clone(),
                };
                let products = ctx.provider.find_marketplace_products(&query).await?;
                if products.is_empty() {
                    return Ok(Probe::NotFound(format!(
                        "no Marketplace product matches {}",
                        mp.product_id
                            .as_deref()
                            .or(mp.title.as_deref())
                            .unwrap_or("the template's marketplace entry")
                    )));
                }
                let note = products
                    .iter()
                    .map(|p| format!("{} ({})", p.title, p.product_id))
                    .collect::<Vec<_>>()
                    .join(", ");
                (products.into_iter().map(|p| p.product_code).collect(), note)
            }
        };
        let mut query = ImageQuery::owned_by([MARKETPLACE_OWNER_ALIAS])
            .architectures(ctx.architectures.iter().copied());
        query.product_codes = codes;
        let best = ctx
            .provider
            .describe_best_image(ctx.region, &query, &ctx.architectures, ctx.now)
            .await?;
        Ok(match best {
            Some((img, dep)) => {
                let mut probe = found(
                    ctx,
                    &img,
                    dep,
                    format!("{} from Marketplace {product_note}", img.id),
                );
                if let Probe::Found(c) = &mut probe {
                    c.warnings.push(format!(
                        "Marketplace image: the account must be subscribed to {product_note} (software charges may apply)"
                    ));
                }
                probe
            }
            None => Probe::NotFound(format!(
                "no {} Marketplace image for {product_note} in {}",
                arch_list(&ctx.architectures),
                ctx.region
            )),
        })
    }
}

/// Tier 4: the template's image in a fallback region (in the graph's order), with a plan to
/// copy it here. All fallback regions are probed at once; the first in order that has the
/// image wins.
#[derive(Debug, Clone, Copy)]
pub struct CrossRegion {
    /// How many fallback regions to consider (direct fallbacks first, then transitively).
    pub max_regions: usize,
}

/// A fallback region that holds the image, with its copy estimate.
struct SourceHit<'a> {
    region: &'a str,
    image: cws_provider::Image,
    deprecated: bool,
    listing: Option<crate::ListedSource>,
    size: u32,
    estimate: cws_cost::CopyEstimate,
}

/// Which of several copy sources to use, given each one's `(seconds, cost)` in fallback
/// order: the cheapest among those within 25% of the fastest copy, the earlier in fallback
/// order on a tie. Time matters first (a copy is a wait), money decides between copies
/// that take about as long. Returns an index into `sources` (0 for an empty slice).
pub fn choose_copy_source(sources: &[(u64, cws_cost::Money)]) -> usize {
    let Some(fastest) = sources.iter().map(|(s, _)| *s).min() else {
        return 0;
    };
    let limit = fastest.saturating_add(fastest / 4);
    sources
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s <= limit)
        .min_by(|(i, (_, a)), (j, (_, b))| a.cmp(b).then(i.cmp(j)))
        .map_or(0, |(i, _)| i)
}

impl Default for CrossRegion {
    fn default() -> Self {
        CrossRegion { max_regions: 3 }
    }
}

#[async_trait]
impl Tier for CrossRegion {
    fn id(&self) -> TierId {
        TierId::CROSS_REGION
    }

    fn looks_in_other_regions(&self) -> bool {
        true
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let Some(cfg) = &ctx.template.ami_config else {
            return Ok(Probe::Skipped("template has no ami_config".into()));
        };
        if cfg.ami_mappings.is_empty()
            && search_queries(ctx).is_empty()
            && ctx.known_images.is_empty()
        {
            return Ok(Probe::Skipped(
                "template has no mapping or search to look for in other regions".into(),
            ));
        }
        let mut regions: Vec<&str> =
            ctx.fallbacks
                .walk(ctx.region, self.max_regions)
                .map_err(|e| ProviderError::InvalidInput {
                    message: e.to_string(),
                })?;
        // Regions where an image is known (a listing's) come after the fallback walk, nearest
        // first.
        let mut known_regions: Vec<&str> = ctx
            .known_images
            .iter()
            .map(|k| k.region.as_str())
            .filter(|r| *r != ctx.region && !regions.contains(r))
            .collect();
        known_regions.sort_by(|a, b| {
            let d = |r: &str| match (cws_regions::get(ctx.region), cws_regions::get(r)) {
                (Some(from), Some(to)) => cws_regions::distance_km(from, to),
                _ => f64::MAX,
            };
            d(a).total_cmp(&d(b)).then_with(|| a.cmp(b))
        });
        known_regions.dedup();
        regions.extend(known_regions);
        if regions.is_empty() {
            return Ok(Probe::NotFound(format!(
                "{} has no fallback regions",
                ctx.region
            )));
        }
        let lookups = regions.iter().map(|r| async move {
            let (mapped, searched, known) = futures::join!(
                mapped_image(ctx, r),
                searched_image(ctx, r),
                known_image(ctx, r)
            );
            (r, mapped, searched, known)
        });
        let results = join_all(lookups).await;
        let mut misses = Vec::new();
        let mut errors: Vec<ProviderError> = Vec::new();
        // Every region that holds the image, in fallback order, up to the first region that
        // could not be checked (a region past it might have been the better answer).
        let mut hits: Vec<SourceHit> = Vec::new();
        for (region, mapped, searched, known) in results {
            let mut listing = None;
            let hit = match (mapped, searched, known) {
                (Ok(Ok(m)), _, _) => Some(m),
                (_, Ok(Ok(s)), _) => Some(s),
                (_, _, Ok(Some((k, dep, l)))) => {
                    listing = l;
                    Some((k, dep))
                }
                (m, s, k) => {
                    for e in [m.err(), s.err(), k.err()].into_iter().flatten() {
                        errors.push(e);
                    }
                    None
                }
            };
            if !errors.is_empty() {
                break;
            }
            let Some((image, deprecated)) = hit else {
                misses.push(*region);
                continue;
            };
            // The template's own sources may find the very image a listing publishes there.
            if listing.is_none() {
                listing = ctx
                    .known_images
                    .iter()
                    .find(|k| k.region == *region && k.ami_id == image.id)
                    .and_then(|k| k.listing.clone());
            }
            let size = image.root_volume_gb.unwrap_or(8);
            let estimate = cws_cost::copy_estimate(ctx.prices, region, ctx.region, size);
            hits.push(SourceHit {
                region,
                image,
                deprecated,
                listing,
                size,
                estimate,
            });
        }
        if !hits.is_empty() {
            let chosen = choose_copy_source(
                &hits
                    .iter()
                    .map(|h| (h.estimate.estimated_seconds, h.estimate.total_cost))
                    .collect::<Vec<_>>(),
            );
            let alternatives: Vec<CopyAlternative> = hits
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != chosen)
                .map(|(_, h)| CopyAlternative {
                    source_ami_id: h.image.id.clone(),
                    source_region: h.region.to_string(),
                    estimated_seconds: h.estimate.estimated_seconds,
                    estimated_cost_usd: h.estimate.total_cost,
                })
                .collect();
            let h = hits.swap_remove(chosen);
            let (region, image, size, estimate) = (h.region, h.image, h.size, h.estimate);
            let plan = CopyPlan {
                source_ami_id: image.id.clone(),
                source_region: region.to_string(),
                source_name: image.name.clone(),
                snapshot_gb: size,
                estimated_seconds: estimate.estimated_seconds,
                estimated_cost_usd: estimate.total_cost,
                listing: h.listing,
                alternatives,
            };
            let mut warnings = Vec::new();
            if h.deprecated {
                warnings.push(format!("source image {} is deprecated", image.id));
            }
            let script = setup_seconds(ctx.template);
            let by_copy = estimate.estimated_seconds + cws_cost::AMI_BOOT_SECONDS;
            if by_copy > script {
                warnings.push(format!(
                    "this first launch is slower by copy (~{}) than by script (~{}); the copy pays off from the next launch in {}",
                    cws_util::duration::format_seconds(by_copy),
                    cws_util::duration::format_seconds(script),
                    ctx.region
                ));
            }
            let checked = if misses.is_empty() {
                String::new()
            } else {
                format!(" (not in {})", misses.join(", "))
            };
            let others = if plan.alternatives.is_empty() {
                String::new()
            } else {
                format!(
                    "; also in {} (the rule: the cheapest source within 25% of the fastest copy)",
                    plan.alternatives
                        .iter()
                        .map(|a| format!(
                            "{}: ~{} + {}",
                            a.source_region,
                            cws_util::duration::format_seconds(a.estimated_seconds),
                            a.estimated_cost_usd
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Ok(Probe::Found(Candidate {
                ami_id: image.id.clone(),
                ami_name: image.name.clone(),
                owner_id: image.owner_id.clone(),
                source_region: region.to_string(),
                architecture: image.architecture,
                estimated_launch_seconds: estimate.estimated_seconds + cws_cost::AMI_BOOT_SECONDS,
                detail: format!(
                    "{} in {region}{checked}; copy {} GiB to {}: ~{} + {}{others}",
                    image.id,
                    size,
                    ctx.region,
                    cws_util::duration::format_seconds(estimate.estimated_seconds),
                    estimate.total_cost
                ),
                copy: Some(plan),
                warnings,
                listing: None,
            }));
        }
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        Ok(Probe::NotFound(format!(
            "not in fallback regions {}",
            regions.join(", ")
        )))
    }
}

/// The image known (from a listing) to serve the template in `region`, if it is there,
/// available and of an accepted architecture.
async fn known_image(
    ctx: &ResolveContext<'_>,
    region: &str,
) -> ProviderResult<Option<(Image, bool, Option<crate::report::ListedSource>)>> {
    let Some(known) = ctx.known_images.iter().find(|k| k.region == region) else {
        return Ok(None);
    };
    let images = ctx
        .provider
        .describe_images_by_id(region, std::slice::from_ref(&known.ami_id))
        .await?;
    Ok(images
        .into_iter()
        .find(|i| {
            i.id == known.ami_id
                && i.state == ImageState::Available
                && ctx.architectures.contains(&i.architecture)
                && ctx.refusal(i).is_none()
        })
        .map(|i| {
            let dep = i.is_deprecated_at(ctx.now);
            (i, dep, known.listing.clone())
        }))
}

/// Tier 5: provision on a base OS image with the template's script. Finds the template's
/// `base` the way its publisher publishes it, newest available first.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScriptFallback;

/// How a base OS is published: owner account and EC2 name pattern (arch-agnostic).
pub fn base_image_query(base: &str) -> Option<ImageQuery> {
    let (owner, pattern) = match base {
        "ubuntu-24.04" => (
            "099720109477",
            "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-*-server-*",
        ),
        "ubuntu-22.04" => (
            "099720109477",
            "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-*-server-*",
        ),
        "al2023" => ("137112412989", "al2023-ami-2023.*-kernel-*"),
        "debian-12" => ("136693071363", "debian-12-*"),
        _ => return None,
    };
    Some(ImageQuery::owned_by([owner]).name(pattern))
}

#[async_trait]
impl Tier for ScriptFallback {
    fn id(&self) -> TierId {
        TierId::SCRIPT_FALLBACK
    }

    fn provides_ami(&self) -> bool {
        false
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let base = ctx.template.base.as_str();
        let Some(query) = base_image_query(base) else {
            return Ok(Probe::NotFound(format!(
                "no known publisher for base `{base}`"
            )));
        };
        let query = query.architectures(ctx.architectures.iter().copied());
        let best = ctx
            .provider
            .describe_best_image(ctx.region, &query, &ctx.architectures, ctx.now)
            .await?;
        let Some((img, deprecated)) = best else {
            return Ok(Probe::NotFound(format!(
                "no {} {base} base image in {}",
                arch_list(&ctx.architectures),
                ctx.region
            )));
        };
        let setup = setup_seconds(ctx.template);
        let mut probe = found(
            ctx,
            &img,
            deprecated,
            format!(
                "{base} base image {} ({}); provisioning script ~{}",
                img.id,
                img.name,
                cws_util::duration::format_seconds(setup)
            ),
        );
        if let Probe::Found(c) = &mut probe {
            c.estimated_launch_seconds = setup;
        }
        Ok(probe)
    }
}

/// Estimated seconds to provision a template by script (boot included).
pub fn setup_seconds(template: &Template) -> u64 {
    let (system, conda, pip, spack) = template.package_counts();
    cws_cost::script_setup_seconds(&PackageCounts {
        system,
        conda,
        pip,
        spack,
        custom_script: template.post_install.is_some() || template.user_data.is_some(),
    })
}

/// The built-in tier with this id, if there is one.
pub fn builtin(id: &TierId) -> Option<Arc<dyn Tier>> {
    let tiers: [Arc<dyn Tier>; 5] = [
        Arc::new(DirectMapping),
        Arc::new(DynamicSearch),
        Arc::new(Marketplace),
        Arc::new(CrossRegion::default()),
        Arc::new(ScriptFallback),
    ];
    tiers.into_iter().find(|t| t.id() == *id)
}

#[cfg(test)]
mod copy_source_tests {
    use super::choose_copy_source;
    use cws_cost::Money;

    fn usd(cents: i64) -> Money {
        Money::from_cents(cents)
    }

    #[test]
    fn the_cheapest_within_a_quarter_of_the_fastest_wins() {
        // ap-southeast-1 is nearer (faster) but twice the price of us-east-1, which is 20%
        // slower: us-east-1.
        assert_eq!(choose_copy_source(&[(400, usd(840)), (480, usd(420))]), 1);
        // 50% slower is too slow, however cheap.
        assert_eq!(choose_copy_source(&[(400, usd(840)), (600, usd(100))]), 0);
        // Exactly 25% slower still counts.
        assert_eq!(choose_copy_source(&[(400, usd(840)), (500, usd(420))]), 1);
        // Equal prices: the earlier in fallback order.
        assert_eq!(choose_copy_source(&[(400, usd(420)), (410, usd(420))]), 0);
        // The fastest need not be first.
        assert_eq!(
            choose_copy_source(&[(900, usd(10)), (400, usd(840)), (450, usd(500))]),
            2
        );
        assert_eq!(choose_copy_source(&[]), 0);
        assert_eq!(choose_copy_source(&[(1, usd(1))]), 0);
    }
}
