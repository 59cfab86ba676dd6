//! The read-only questions the CLI and the REST API both answer (`ami resolve`, `ami test`,
//! `ami list`, `ami costs`, `regions fallbacks`), computed once here so that the two give the
//! same JSON for the same question.
//!
//! A [`Site`] is everything a question needs: the provider, the templates, the registry (if
//! any), who is asking, and the policy and signers in force.

use std::collections::BTreeMap;
use std::sync::Arc;

use cws_registry::policy::LoadedPolicy;
use cws_registry::trust::AllowedSigners;
use cws_registry::{Actor, CommunityPlan, ListingDetail, ListingId, Registry, RegistryError};
use cws_resolver::service::{self, RefusedProvenance};
use cws_resolver::{OwnerPolicy, ProviderLabel, Resolution, ResolveEnv, ResolveRequest, Resolver};
use cws_template::{Architecture, CommunityRef, Template, TemplateError, TemplateStore};
use serde::{Deserialize, Serialize};

/// What can keep a question from being answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuestionError {
    /// A template could not be found or loaded.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] cws_provider::ProviderError),
    /// The prices could not answer (an unknown instance type or region).
    #[error(transparent)]
    Cost(#[from] cws_cost::CostError),
    /// A region is not in the catalogue.
    #[error(transparent)]
    Region(#[from] cws_regions::RegionError),
    /// An option's value is not acceptable: which option, and why.
    #[error("{option}: {message}")]
    Invalid {
        /// The option (`strategy`, `arch`, ...).
        option: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The policy in force refuses this (the message names the rule).
    #[error("refused: {0}")]
    Refused(String),
}

impl QuestionError {
    fn invalid(option: &str, message: impl Into<String>) -> QuestionError {
        QuestionError::Invalid {
            option: option.to_string(),
            message: message.into(),
        }
    }
}

/// Everything a question needs.
#[derive(Clone)]
pub struct Site {
    /// Provider, fallback graph and prices.
    pub env: ResolveEnv,
    /// Where templates come from.
    pub templates: TemplateStore,
    /// The registry, when there is one (`None`: nothing was ever published here).
    pub registry: Option<Arc<dyn Registry>>,
    /// Who is asking (sees the listings this actor may see).
    pub viewer: Option<Actor>,
    /// The policy in force.
    pub policy: LoadedPolicy,
    /// The keys trusted to sign listings.
    pub signers: AllowedSigners,
    /// How resolvers walk their tiers (waves by default; eager or sequential on request).
    pub walk: fn(Resolver) -> Resolver,
}

/// Leaves a resolver as it is (waves).
pub fn waves(r: Resolver) -> Resolver {
    r
}

/// Parses an architecture option (`arm64`, `x86_64`).
pub fn parse_arch(option: &str, s: Option<&str>) -> Result<Option<Architecture>, QuestionError> {
    match s {
        None => Ok(None),
        Some(s) => s.parse::<Architecture>().map(Some).map_err(|_| {
            QuestionError::invalid(
                option,
                format!(
                    "unknown architecture `{}`; use arm64 or x86_64",
                    s.escape_debug()
                ),
            )
        }),
    }
}

/// Checks a region against the catalogue and the policy.
pub fn check_region(site: &Site, region: &str) -> Result<(), QuestionError> {
    cws_regions::lookup(region)?;
    match site.policy.check_region(region) {
        Some(why) => Err(QuestionError::Refused(why)),
        None => Ok(()),
    }
}

/// Every revoked or quarantined listing version, as provenance a resolution refuses: images
/// listed for it, and copies tagged as made from it. Empty without a registry.
pub async fn refused_sources(site: &Site) -> Result<Vec<RefusedProvenance>, QuestionError> {
    refused_in(site.registry.as_deref(), site.viewer.as_ref()).await
}

/// [`refused_sources`] from a registry and a viewer alone.
pub async fn refused_in(
    registry: Option<&dyn Registry>,
    viewer: Option<&Actor>,
) -> Result<Vec<RefusedProvenance>, QuestionError> {
    let Some(reg) = registry else {
        return Ok(Vec::new());
    };
    // A refusal is never hidden: its images are looked up as the registry's admin.
    let admin = viewer.cloned().map(|a| Actor::admin(a.identity));
    let mut out = Vec::new();
    for r in reg.refusals().await? {
        let mut ami_ids = std::collections::BTreeSet::new();
        if let Ok(d) = reg.listing(admin.as_ref(), &r.listing).await
            && let Some(v) = d.versions.iter().find(|v| v.version == r.version)
        {
            ami_ids.extend(v.regions.values().map(|i| i.ami_id.clone()));
        }
        out.push(RefusedProvenance {
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
            ami_ids,
            reason: format!("{}@{}, which is {}", r.listing, r.version, r.reason),
        });
    }
    Ok(out)
}

/// The owners policy (`allowed_owners`), with `self` turned into the provider's account id.
pub async fn owner_policy(site: &Site) -> Result<Option<OwnerPolicy>, QuestionError> {
    owners_for(&site.policy, site.env.provider.as_ref()).await
}

/// [`owner_policy`] from a policy and a provider alone.
pub async fn owners_for(
    policy: &LoadedPolicy,
    provider: &dyn cws_provider::CloudProvider,
) -> Result<Option<OwnerPolicy>, QuestionError> {
    let Some(owners) = &policy.policy.allowed_owners else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for o in owners {
        if o == "self" {
            match provider.account_id().await? {
                Some(id) => out.push(id),
                None => {
                    return Err(QuestionError::Refused(format!(
                        "{} allows `self`, but the provider cannot say which account is yours",
                        policy.rule("allowed_owners")
                    )));
                }
            }
        } else {
            out.push(o.clone());
        }
    }
    Ok(Some(OwnerPolicy {
        owners: out,
        rule: policy.rule("allowed_owners"),
    }))
}

/// The community tier for a resolution: from `listing`, else from the template's
/// `ami_config.community`; `None` when neither asks for one. The policy can only tighten the
/// template's selection; a publisher the policy does not allow gives a refused plan.
pub async fn community_plan(
    site: &Site,
    template: &Template,
    listing: Option<&CommunityRef>,
) -> Result<Option<CommunityPlan>, QuestionError> {
    community_plan_in(&RegistryView::of(site), template, listing).await
}

/// The registry side of a [`Site`]: what community plans and listed images need.
#[derive(Clone, Copy)]
pub struct RegistryView<'a> {
    /// The registry, if there is one.
    pub registry: Option<&'a dyn Registry>,
    /// Who is asking.
    pub viewer: Option<&'a Actor>,
    /// The policy in force.
    pub policy: &'a LoadedPolicy,
    /// The keys trusted to sign listings.
    pub signers: &'a AllowedSigners,
}

impl<'a> RegistryView<'a> {
    /// The registry side of a site.
    pub fn of(site: &'a Site) -> RegistryView<'a> {
        RegistryView {
            registry: site.registry.as_deref(),
            viewer: site.viewer.as_ref(),
            policy: &site.policy,
            signers: &site.signers,
        }
    }
}

/// [`community_plan`] from the registry side alone.
pub async fn community_plan_in(
    site: &RegistryView<'_>,
    template: &Template,
    listing: Option<&CommunityRef>,
) -> Result<Option<CommunityPlan>, QuestionError> {
    let mut selection = match listing {
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
    let policy = site.policy;
    if policy.policy.require_signature {
        selection.require_signature = true;
    }
    if let Some(min) = policy.policy.min_rating
        && selection.min_rating.is_none_or(|m| m.0 < min)
    {
        selection.min_rating = Some(cws_template::MinRating(min));
    }
    if let Some((publisher, _)) = selection.listing.split_once('/')
        && let Some(why) = policy.check_publisher(publisher)
    {
        return Ok(Some(CommunityPlan::refused(why)));
    }
    let Some(reg) = site.registry else {
        return Err(RegistryError::UnknownListing {
            id: selection.listing.clone(),
            suggestions: Vec::new(),
        }
        .into());
    };
    let plan = CommunityPlan::prepare(reg, site.viewer, &selection, site.signers).await?;
    // A handle is only a name; an email in `allowed_publishers` is matched against the
    // verified signer of the version, which a look-alike handle cannot fake.
    if let Some(publishers) = &policy.policy.allowed_publishers
        && publishers.iter().any(|p| p.contains('@'))
        && plan.refusal.is_none()
    {
        let signer = plan
            .listing
            .as_ref()
            .and_then(|d| {
                d.versions
                    .iter()
                    .find(|v| Some(&v.version) == plan.version.as_ref())
            })
            .filter(|v| v.signature.status == "verified")
            .and_then(|v| v.signature.signer.clone());
        let handle_allowed = publishers
            .iter()
            .any(|p| !p.contains('@') && selection.listing.starts_with(&format!("{p}/")));
        let email_allowed = signer.as_ref().is_some_and(|s| publishers.contains(s));
        if !handle_allowed && !email_allowed {
            return Ok(Some(CommunityPlan::refused(format!(
                "{} does not allow {} (its version is {}; allowed: {})",
                policy.rule("allowed_publishers"),
                selection.listing,
                signer
                    .map(|s| format!("signed by {s}"))
                    .unwrap_or_else(|| "not verified".into()),
                publishers.join(", ")
            ))));
        }
    }
    Ok(Some(plan))
}

/// What `ami resolve` asks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResolveQuestion {
    /// Template name or slug.
    pub template: String,
    /// The launch region.
    pub region: String,
    /// Architecture (`arm64`, `x86_64`); the template's preference when absent.
    pub arch: Option<String>,
    /// A strategy (`ami_preferred`, ...) or a tier name, instead of the template's.
    pub strategy: Option<String>,
}

/// `ami resolve`: the decision, with every tier's attempt. A resolution that found nothing is
/// an answer too (see [`Resolution::is_failed`]).
pub async fn resolve(site: &Site, q: &ResolveQuestion) -> Result<Resolution, QuestionError> {
    let loaded = site.templates.get(&q.template)?;
    let arch = parse_arch("arch", q.arch.as_deref())?;
    let resolver = service::resolver_for(&loaded.template, q.strategy.as_deref(), false)
        .map_err(|e| QuestionError::invalid("strategy", e.to_string()))?;
    check_region(site, &q.region)?;
    let mut req = ResolveRequest::new(loaded.template.clone(), q.region.clone());
    req.architecture = arch;
    req.refused = refused_sources(site).await?;
    req.allowed_owners = owner_policy(site).await?;
    let mut resolver = resolver;
    if q.strategy.is_none()
        && let Some(plan) = community_plan(site, &loaded.template, None).await?
    {
        resolver = plan.apply(resolver, &mut req);
    }
    let resolver = (site.walk)(resolver);
    Ok(resolver.resolve(&site.env, &req).await)
}

/// What `ami test` asks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestQuestion {
    /// Template name or slug.
    pub template: String,
    /// The regions to test.
    pub regions: Vec<String>,
    /// Architecture.
    pub arch: Option<String>,
}

/// `ami test`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// The provider.
    pub provider: ProviderLabel,
    /// The template's slug.
    pub template: String,
    /// One row per region.
    pub regions: Vec<service::RegionTest>,
}

/// `ami test`: can each region launch the template, and how.
pub async fn test(site: &Site, q: &TestQuestion) -> Result<TestReport, QuestionError> {
    let loaded = site.templates.get(&q.template)?;
    for r in &q.regions {
        cws_regions::lookup(r)?;
    }
    let arch = parse_arch("arch", q.arch.as_deref())?;
    let mut resolver = Resolver::for_template(&loaded.template);
    let mut known = Vec::new();
    if let Some(plan) = community_plan(site, &loaded.template, None).await? {
        resolver = resolver.insert_after(&cws_resolver::TierId::DYNAMIC_SEARCH, plan.tier.clone());
        known = plan.known_images.clone();
    }
    let resolver = (site.walk)(resolver);
    let refused = refused_sources(site).await?;
    let owners = owner_policy(site).await?;
    let extras = service::TestExtras {
        architecture: arch,
        known_images: &known,
        refused: &refused,
        allowed_owners: owners.as_ref(),
    };
    let rows =
        service::test_regions_known(&site.env, &resolver, &loaded.template, &q.regions, &extras)
            .await;
    Ok(TestReport {
        provider: (&site.env.provider.info()).into(),
        template: loaded.template.slug.clone(),
        regions: rows,
    })
}

/// A listed image's registry entry, as `ami list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedImage {
    /// `publisher/slug`.
    pub listing: String,
    /// The version.
    pub version: String,
    /// The listing's ratings.
    pub rating: cws_registry::RatingSummary,
    /// The version's signature status.
    pub signature: cws_registry::SignatureInfo,
}

/// Which of these image ids a registry listing holds (as the viewer may see), with the
/// listing's rating and the version's signature status.
pub async fn listed_images(
    site: &RegistryView<'_>,
    ids: &[String],
) -> Result<BTreeMap<String, ListedImage>, QuestionError> {
    let Some(reg) = site.registry else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    let mut details: BTreeMap<ListingId, ListingDetail> = BTreeMap::new();
    for id in ids {
        let Some(hit) = reg.find_image(site.viewer, id).await?.into_iter().next() else {
            continue;
        };
        if !details.contains_key(&hit.listing) {
            let mut d = reg.listing(site.viewer, &hit.listing).await?;
            cws_registry::trust::annotate(&mut d, site.signers);
            details.insert(hit.listing.clone(), d);
        }
        let d = &details[&hit.listing];
        let signature = d
            .versions
            .iter()
            .find(|v| v.version == hit.version)
            .map(|v| v.signature.clone())
            .unwrap_or_else(cws_registry::SignatureInfo::unsigned);
        out.insert(
            id.clone(),
            ListedImage {
                listing: hit.listing.to_string(),
                version: hit.version,
                rating: d.summary.rating,
                signature,
            },
        );
    }
    Ok(out)
}

/// `ami list`'s answer: the images, which of them a listing holds, and the refusals.
#[derive(Debug, Clone)]
pub struct ListAnswer {
    /// The provider.
    pub provider: ProviderLabel,
    /// The images found (and the regions that failed).
    pub listing: service::ImageListing,
    /// Listed images by id.
    pub listed: BTreeMap<String, ListedImage>,
    /// Refused provenance.
    pub refusals: Vec<RefusedProvenance>,
}

impl ListAnswer {
    /// Why an image may not be launched (made from a refused listing version), if so.
    pub fn refused(&self, i: &service::ListedImage) -> Option<String> {
        self.refusals
            .iter()
            .find(|r| {
                r.ami_ids.contains(&i.id)
                    || i.made_from.as_ref().is_some_and(|from| {
                        r.tags.get(cws_provider::tags::LISTING) == Some(&from.listing)
                            && r.tags.get(cws_provider::tags::LISTING_VERSION)
                                == Some(&from.version)
                    })
            })
            .map(|r| r.reason.clone())
    }

    /// What the image is shown as: its source, or `community` for an image a listing holds
    /// that is not official or a Marketplace product.
    pub fn label(&self, i: &service::ListedImage) -> String {
        match (self.listed.get(&i.id), i.source) {
            (Some(_), service::ImageSource::Official | service::ImageSource::Marketplace)
            | (None, _) => serde_json::to_value(i.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            (Some(_), _) => "community".into(),
        }
    }

    /// The JSON document: the provider, the listing, and per image its `label`, `refused`
    /// and listing fields.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct ListReport<'a> {
            provider: &'a ProviderLabel,
            #[serde(flatten)]
            listing: &'a service::ImageListing,
        }
        let mut v = serde_json::to_value(ListReport {
            provider: &self.provider,
            listing: &self.listing,
        })
        .unwrap_or_default();
        if let Some(images) = v.get_mut("images").and_then(|i| i.as_array_mut()) {
            for (json, image) in images.iter_mut().zip(&self.listing.images) {
                json["label"] = self.label(image).into();
                if let Some(why) = self.refused(image) {
                    json["refused"] = format!("made from {why}").into();
                }
                if let Some(l) = self.listed.get(&image.id) {
                    json["listing"] = l.listing.clone().into();
                    json["listing_version"] = l.version.clone().into();
                    json["rating"] = serde_json::to_value(l.rating).unwrap_or_default();
                    json["signature"] = serde_json::to_value(&l.signature).unwrap_or_default();
                }
            }
        }
        v
    }
}

/// `ami list`: the template's images in these regions.
pub async fn list(
    site: &Site,
    template: &str,
    regions: &[String],
) -> Result<ListAnswer, QuestionError> {
    let loaded = site.templates.get(template)?;
    for r in regions {
        cws_regions::lookup(r)?;
    }
    let listing = service::list_template_images(&site.env, &loaded.template, regions).await;
    let ids: Vec<String> = listing.images.iter().map(|i| i.id.clone()).collect();
    Ok(ListAnswer {
        provider: (&site.env.provider.info()).into(),
        listed: listed_images(&RegistryView::of(site), &ids).await?,
        refusals: refused_sources(site).await?,
        listing,
    })
}

/// What `ami costs` asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostsQuestion {
    /// Template name or slug.
    pub template: String,
    /// The region whose prices apply.
    pub region: String,
    /// Session length (`8`, `8h`, `30m`).
    pub hours: String,
    /// Instance type, instead of the template's.
    pub instance_type: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// Launches per month.
    pub launches_per_month: u32,
    /// Snapshot size in GB, instead of the template's root volume.
    pub snapshot_gb: Option<u32>,
}

/// `ami costs`' answer.
#[derive(Debug, Clone, Serialize)]
pub struct CostsReport {
    /// The template's slug.
    pub template: String,
    /// The analysis.
    #[serde(flatten)]
    pub analysis: cws_cost::CostAnalysis,
}

/// `ami costs`: AMI against script provisioning, from the price book alone.
pub fn costs(site: &Site, q: &CostsQuestion) -> Result<CostsReport, QuestionError> {
    costs_with(&site.templates, &site.env.prices, q)
}

/// [`costs`] from templates and prices alone (no provider).
pub fn costs_with(
    templates: &TemplateStore,
    prices: &cws_cost::PriceBook,
    q: &CostsQuestion,
) -> Result<CostsReport, QuestionError> {
    let loaded = templates.get(&q.template)?;
    let t = &loaded.template;
    cws_regions::lookup(&q.region)?;
    let arch = parse_arch("arch", q.arch.as_deref())?
        .or_else(|| t.ami_config.as_ref().and_then(|c| c.preferred_architecture))
        .unwrap_or(Architecture::X86_64);
    let instance_type = service::instance_type_for(t, arch, q.instance_type.as_deref());
    let hours = q
        .hours
        .parse::<cws_cost::Hours>()
        .map_err(|e| QuestionError::invalid("hours", e.to_string()))?;
    let input = cws_cost::CostInput {
        instance_type,
        region: q.region.clone(),
        session_hours: hours,
        script_setup_seconds: cws_resolver::tier::setup_seconds(t),
        ami_boot_seconds: cws_cost::AMI_BOOT_SECONDS,
        snapshot_gb: q
            .snapshot_gb
            .or(t.instance_defaults.root_volume_gb)
            .unwrap_or(30),
        launches_per_month: q.launches_per_month,
    };
    let analysis = cws_cost::analyze(prices, &input)?;
    Ok(CostsReport {
        template: t.slug.clone(),
        analysis,
    })
}

/// A region named in a fallback list.
#[derive(Debug, Clone, Serialize)]
pub struct RegionRef {
    /// Code.
    pub code: &'static str,
    /// Name.
    pub name: &'static str,
}

/// A region's fallbacks (`regions fallbacks`).
#[derive(Debug, Clone, Serialize)]
pub struct Fallbacks {
    /// The region.
    pub region: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Where the list came from (built in, or an override file).
    pub source: cws_regions::EdgeSource,
    /// The fallbacks, in order.
    pub fallbacks: Vec<RegionRef>,
}

/// `regions fallbacks [REGION]`: one region's fallbacks, or every region's.
pub fn fallbacks(
    graph: &cws_regions::FallbackGraph,
    region: Option<&str>,
) -> Result<Vec<Fallbacks>, QuestionError> {
    let regions: Vec<&'static cws_regions::Region> = match region {
        Some(r) => vec![cws_regions::lookup(r)?],
        None => cws_regions::all().iter().collect(),
    };
    let mut out = Vec::new();
    for r in regions {
        let fb = graph.fallbacks(r.code)?;
        out.push(Fallbacks {
            region: r.code,
            name: r.name,
            source: graph.source(r.code)?,
            fallbacks: fb
                .iter()
                .filter_map(|c| cws_regions::get(c))
                .map(|x| RegionRef {
                    code: x.code,
                    name: x.name,
                })
                .collect(),
        });
    }
    Ok(out)
}
