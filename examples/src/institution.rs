//! A tier of one's own (the `custom_tier` example): an institution's image catalogue.
//!
//! Research computing teams often keep a list of vetted images per template and region —
//! hardened, licensed, with the site's storage mounts baked in. cws has no built-in tier for
//! that, and needs none: a [`Tier`] is a trait object, so an embedding tool writes one and
//! inserts it where it belongs in the chain with [`Resolver::insert_after`]. Here that is
//! right after `dynamic_search` (the template's own images still win) and before
//! `marketplace`, `cross_region` and `script_fallback` (a vetted local image beats buying,
//! copying or provisioning one).
//!
//! Like the built-in tiers, this one is read-only: it checks its listed image with one
//! `describe_images_by_id` round trip (the catalogue can be stale) and reports a candidate;
//! the resolver runs it concurrently with the others and decides.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use cws_localcloud::LocalCloud;
use cws_provider::*;
use cws_provider::{Image, ImageState};
use cws_resolver::tier::{Candidate, Probe, ResolveContext, Tier};
use cws_resolver::*;
use cws_template::{Architecture, Template, TemplateStore};

use crate::ExampleError;

/// The tier's name in reports; a win is reported as method `institution_catalogue`.
pub const TIER: TierId = TierId::from_static("institution_catalogue");

/// The account the example institution publishes its images from.
pub const INSTITUTION_ACCOUNT: &str = "210987654321";

/// The example's vetted image: bioinformatics in eu-west-3.
pub const VETTED_AMI: &str = "ami-0a11ce0000000b10c";

/// Vetted images by (template slug, region).
#[derive(Debug, Clone, Default)]
pub struct InstitutionCatalogue {
    institution: String,
    images: BTreeMap<(String, String), String>,
}

impl InstitutionCatalogue {
    /// An empty catalogue for `institution` (named in the resolution's detail line).
    pub fn new(institution: impl Into<String>) -> Self {
        InstitutionCatalogue {
            institution: institution.into(),
            images: BTreeMap::new(),
        }
    }

    /// Lists `ami_id` as the vetted image of `template` in `region`.
    pub fn with_image(
        mut self,
        template: impl Into<String>,
        region: impl Into<String>,
        ami_id: impl Into<String>,
    ) -> Self {
        self.images
            .insert((template.into(), region.into()), ami_id.into());
        self
    }

    /// The listed image for a template in a region.
    pub fn listed(&self, template: &str, region: &str) -> Option<&str> {
        self.images
            .get(&(template.to_string(), region.to_string()))
            .map(String::as_str)
    }
}

#[async_trait]
impl Tier for InstitutionCatalogue {
    fn id(&self) -> TierId {
        TIER
    }

    async fn probe(&self, ctx: &ResolveContext<'_>) -> ProviderResult<Probe> {
        let Some(id) = self.listed(&ctx.template.slug, ctx.region) else {
            return Ok(Probe::NotFound(format!(
                "{} lists no image for {} in {}",
                self.institution, ctx.template.slug, ctx.region
            )));
        };
        // The catalogue is maintained by people: confirm the image still exists and fits.
        let found = ctx
            .provider
            .describe_images_by_id(ctx.region, &[id.to_string()])
            .await?;
        let Some(image) = found.into_iter().find(|i| i.id == id) else {
            return Ok(Probe::NotFound(format!(
                "{} lists {id}, but it no longer exists in {}",
                self.institution, ctx.region
            )));
        };
        if image.state != ImageState::Available {
            return Ok(Probe::NotFound(format!(
                "{} lists {id}, but it is {}",
                self.institution, image.state
            )));
        }
        if !ctx.architectures.contains(&image.architecture) {
            return Ok(Probe::NotFound(format!(
                "{} lists {id}, but it is {} and {} is required",
                self.institution,
                image.architecture,
                ctx.architectures
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            )));
        }
        Ok(Probe::Found(Candidate {
            ami_id: image.id.clone(),
            ami_name: image.name.clone(),
            owner_id: image.owner_id.clone(),
            source_region: ctx.region.to_string(),
            architecture: image.architecture,
            copy: None,
            estimated_launch_seconds: cws_cost::AMI_BOOT_SECONDS,
            warnings: Vec::new(),
            detail: format!(
                "{} ({}) vetted by {}",
                image.id, image.name, self.institution
            ),
            listing: None,
        }))
    }
}

/// The template's standard chain with `catalogue` inserted right after `dynamic_search`.
pub fn resolver_with(template: &Template, catalogue: InstitutionCatalogue) -> Resolver {
    Resolver::for_template(template).insert_after(&TierId::DYNAMIC_SEARCH, Arc::new(catalogue))
}

/// The example's simulated cloud: the seeded LocalCloud plus the institution's vetted image.
pub fn cloud_with_vetted_image() -> Result<LocalCloud, ExampleError> {
    let cloud = LocalCloud::in_memory();
    cloud.insert_image(
        Image {
            id: VETTED_AMI.to_string(),
            region: "eu-west-3".to_string(),
            name: "uni-paris-bioinformatics-2025.10".to_string(),
            owner_id: INSTITUTION_ACCOUNT.to_string(),
            architecture: Architecture::X86_64,
            state: ImageState::Available,
            creation_date: cws_provider::ec2_time::parse("2025-10-01T09:00:00.000Z")
                .expect("valid"),
            deprecation_time: None,
            description: Some("bioinformatics, hardened, /scratch on the site's Lustre".into()),
            tags: BTreeMap::new(),
            product_codes: Vec::new(),
            snapshot_ids: Vec::new(),
            root_volume_gb: None,
            public: true,
        },
        60,
    )?;
    Ok(cloud)
}

/// The example's catalogue: bioinformatics in eu-west-3.
pub fn example_catalogue() -> InstitutionCatalogue {
    InstitutionCatalogue::new("Université de Paris research computing").with_image(
        "bioinformatics",
        "eu-west-3",
        VETTED_AMI,
    )
}

/// The same request resolved by the standard chain and by the chain with the custom tier.
#[derive(Debug, Clone)]
pub struct TierRun {
    /// The chain with the custom tier, in priority order.
    pub tiers: Vec<TierId>,
    /// The standard chain's answer.
    pub standard: Resolution,
    /// The answer with the custom tier.
    pub custom: Resolution,
}

impl fmt::Display for TierRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |r: &Resolution| {
            format!(
                "{} -> {}",
                r.method,
                r.ami_id.as_deref().unwrap_or("no image")
            )
        };
        writeln!(f, "chain: {}", self.tiers.join(" > "))?;
        writeln!(
            f,
            "{} in {}, standard chain: {}",
            self.standard.template,
            self.standard.target_region,
            show(&self.standard)
        )?;
        write!(
            f,
            "{} in {}, with {TIER}: {}",
            self.custom.template,
            self.custom.target_region,
            show(&self.custom)
        )?;
        if let Some(detail) = self.custom.decision_detail() {
            write!(f, "\n  {detail}")?;
        }
        Ok(())
    }
}

/// The example end to end: bundled `bioinformatics` in `region`, without and with the
/// institution's catalogue.
pub async fn run(region: &str) -> Result<TierRun, ExampleError> {
    let template = TemplateStore::bundled_only()
        .get("bioinformatics")?
        .template;
    let env = ResolveEnv::new(Arc::new(cloud_with_vetted_image()?));
    let req = ResolveRequest::new(template.clone(), region);
    let standard = Resolver::for_template(&template).resolve(&env, &req).await;
    let resolver = resolver_with(&template, example_catalogue());
    let custom = resolver.resolve(&env, &req).await;
    Ok(TierRun {
        tiers: resolver.tier_ids(),
        standard,
        custom,
    })
}
