//! A provider of one's own (the `custom_provider` example): an institution's read-only image
//! catalogue, resolved against without a cloud.
//!
//! Resolution only reads, and every tier reads through [`ImageCatalog`]. So a site that keeps
//! its own list of vetted images — the official cws images it checked, the builds it made, the
//! base OS images it allows — implements that one trait over the list and hands it to
//! [`Resolver::resolve_in`]: no AWS account, no LocalCloud, and nothing in reach that could copy
//! an image or launch an instance. Only the required methods are written here;
//! `describe_best_image` stays the trait's default (one `describe_images`, then the shared
//! [`select_image`](cws_provider::select_image) order).
//!
//! The catalogue below is simulated: an in-memory `Vec<Image>`, and it says so in its
//! [`ProviderInfo`], which every resolution report names.

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use chrono::Utc;
use cws_cost::PriceBook;
use cws_provider::{
    Image, ImageCatalog, ImageQuery, MarketplaceProduct, MarketplaceQuery, ProviderError,
    ProviderInfo, ProviderResult, Snapshot,
};
use cws_resolver::{Resolution, ResolveRequest, Resolver};
use cws_template::{Architecture, TemplateStore};

use crate::ExampleError;
use crate::institution::INSTITUTION_ACCOUNT;

/// The catalogue's short provider name in reports.
pub const PROVIDER_NAME: &str = "vetted-catalogue";

/// The bundled template the example resolves.
pub const TEMPLATE: &str = "python-ml";

/// The account the official cws images are published from (python-ml's `ami_search` trusts it).
pub const PUBLISHER_ACCOUNT: &str = "704381954421";

/// Canonical, the publisher of the Ubuntu base images script provisioning starts from.
pub const CANONICAL_ACCOUNT: &str = "099720109477";

/// The official python-ml image python-ml maps for us-east-1, vetted by the institution.
pub const VETTED_MAPPED_AMI: &str = "ami-0c7d3e9a1b2f4a501";

/// The institution's own python-ml build in eu-west-3 (owner `self` to the catalogue).
pub const VETTED_BUILD_AMI: &str = "ami-0a11ce000000e3a01";

/// The Ubuntu 24.04 base image the institution allows in eu-north-1.
pub const VETTED_BASE_AMI: &str = "ami-0a11ce000000b0a5e";

/// The regions the example resolves in by default: a mapped image, an own build, a base image
/// only.
pub const DEFAULT_REGIONS: [&str; 3] = ["us-east-1", "eu-west-3", "eu-north-1"];

/// An institution's vetted images, answering the read-only provider calls from memory.
#[derive(Debug, Clone)]
pub struct VettedCatalogue {
    institution: String,
    account_id: String,
    images: Vec<Image>,
}

impl VettedCatalogue {
    /// An empty catalogue for `institution`, whose own images are owned by `account_id`
    /// (what `self` means in a search).
    pub fn new(institution: impl Into<String>, account_id: impl Into<String>) -> Self {
        VettedCatalogue {
            institution: institution.into(),
            account_id: account_id.into(),
            images: Vec::new(),
        }
    }

    /// Adds a vetted image.
    pub fn with_image(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }

    /// The vetted images.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// Whether `owner` is one of the trusted `owners` (`self` is the institution's account).
    fn trusts(&self, owners: &[String], owner: &str) -> bool {
        owners
            .iter()
            .any(|o| o == owner || (o == "self" && owner == self.account_id))
    }
}

#[async_trait]
impl ImageCatalog for VettedCatalogue {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: PROVIDER_NAME.to_string(),
            simulated: true,
            description: format!(
                "{}'s vetted image catalogue (simulated: an in-memory list, no cloud behind it)",
                self.institution
            ),
        }
    }

    async fn account_id(&self) -> ProviderResult<Option<String>> {
        Ok(Some(self.account_id.clone()))
    }

    async fn describe_images_by_id(
        &self,
        region: &str,
        ids: &[String],
    ) -> ProviderResult<Vec<Image>> {
        Ok(self
            .images
            .iter()
            .filter(|i| i.region == region && ids.contains(&i.id))
            .cloned()
            .collect())
    }

    async fn describe_images(
        &self,
        region: &str,
        query: &ImageQuery,
    ) -> ProviderResult<Vec<Image>> {
        if query.owners.is_empty() {
            return Err(ProviderError::InvalidInput {
                message: "an image search must name trusted owners".to_string(),
            });
        }
        let now = Utc::now();
        Ok(self
            .images
            .iter()
            .filter(|i| i.region == region && self.trusts(&query.owners, &i.owner_id))
            // Name pattern, architecture, state, tags and product codes: the shared matcher.
            .filter(|i| query.matches_filters(i))
            .filter(|i| query.include_deprecated || !i.is_deprecated_at(now))
            .cloned()
            .collect())
    }

    async fn describe_snapshots(
        &self,
        _region: &str,
        _ids: &[String],
    ) -> ProviderResult<Vec<Snapshot>> {
        // The catalogue records images, not their snapshots: every id is absent.
        Ok(Vec::new())
    }

    async fn describe_regions(&self) -> ProviderResult<Vec<String>> {
        let regions: BTreeSet<&str> = self.images.iter().map(|i| i.region.as_str()).collect();
        Ok(regions.into_iter().map(str::to_string).collect())
    }

    async fn find_marketplace_products(
        &self,
        _query: &MarketplaceQuery,
    ) -> ProviderResult<Vec<MarketplaceProduct>> {
        Err(ProviderError::Unsupported {
            provider: PROVIDER_NAME.to_string(),
            operation: "Marketplace product search".to_string(),
            reason: "an institution's catalogue lists vetted images only; resolve against a \
                     cloud provider for Marketplace products"
                .to_string(),
        })
    }
}

/// An available image created on `date` (`YYYY-MM-DD`), with its root volume size.
fn image(
    id: &str,
    region: &str,
    name: &str,
    owner: &str,
    date: &str,
    root_gb: u32,
    template: Option<&str>,
) -> Image {
    let created =
        cws_provider::ec2_time::parse(&format!("{date}T09:00:00.000Z")).expect("a valid date");
    let mut image = Image::new(id, region, name, owner, Architecture::X86_64, created);
    image.root_volume_gb = Some(root_gb);
    if let Some(slug) = template {
        image
            .tags
            .insert(cws_provider::tags::TEMPLATE.to_string(), slug.to_string());
    }
    image
}

/// The example's catalogue: the official python-ml image in us-east-1, the institution's own
/// python-ml build in eu-west-3, and an Ubuntu 24.04 base image in eu-north-1.
pub fn example_catalogue() -> VettedCatalogue {
    VettedCatalogue::new(
        "Université de Paris research computing",
        INSTITUTION_ACCOUNT,
    )
    .with_image(image(
        VETTED_MAPPED_AMI,
        "us-east-1",
        "cws-python-ml-1.2.0-x86_64-20251001",
        PUBLISHER_ACCOUNT,
        "2025-10-01",
        40,
        Some(TEMPLATE),
    ))
    .with_image(image(
        VETTED_BUILD_AMI,
        "eu-west-3",
        "cws-python-ml-1.2.0-x86_64-uni-paris-20251015",
        INSTITUTION_ACCOUNT,
        "2025-10-15",
        60,
        Some(TEMPLATE),
    ))
    .with_image(image(
        VETTED_BASE_AMI,
        "eu-north-1",
        "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001",
        CANONICAL_ACCOUNT,
        "2025-10-01",
        8,
        None,
    ))
}

/// Resolves bundled `template` in `region` against `catalogue`, with the published fallback
/// graph and the bundled price book.
pub async fn resolve(
    catalogue: &VettedCatalogue,
    template: &str,
    region: &str,
) -> Result<Resolution, ExampleError> {
    let template = TemplateStore::bundled_only().get(template)?.template;
    let resolver = Resolver::for_template(&template);
    let req = ResolveRequest::new(template, region);
    // `FallbackGraph::default()` is the published graph (named by inference: this crate does
    // not depend on cws-regions itself).
    let fallbacks = Default::default();
    Ok(resolver
        .resolve_in(catalogue, &fallbacks, &PriceBook::bundled(), &req)
        .await)
}

/// What the example did, for printing and for the tests.
#[derive(Debug, Clone)]
pub struct CatalogueRun {
    /// Who answered (the catalogue's own description).
    pub provider: ProviderInfo,
    /// How many images the catalogue holds.
    pub images: usize,
    /// The regions the catalogue has images in.
    pub regions: Vec<String>,
    /// One resolution per requested region, in order.
    pub resolutions: Vec<Resolution>,
}

impl fmt::Display for CatalogueRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "provider: {} [simulated: {}], {} vetted image(s) in {}",
            self.provider.description,
            self.provider.simulated,
            self.images,
            self.regions.join(", ")
        )?;
        for r in &self.resolutions {
            write!(f, "\n{}", Shown(r))?;
        }
        Ok(())
    }
}

/// A resolution as the example prints it: the library's summary, plus the tier that gave
/// the answer and why.
struct Shown<'a>(&'a Resolution);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        match r.decision_detail() {
            Some(detail) => writeln!(f, "answered by {}: {detail}", r.method)?,
            None => writeln!(f, "no tier could serve the launch")?,
        }
        writeln!(f, "{r}")
    }
}

/// The example end to end: the [`TEMPLATE`] resolved in each of `regions` against
/// [`example_catalogue`].
pub async fn run(regions: &[&str]) -> Result<CatalogueRun, ExampleError> {
    let catalogue = example_catalogue();
    let mut resolutions = Vec::with_capacity(regions.len());
    for region in regions {
        resolutions.push(resolve(&catalogue, TEMPLATE, region).await?);
    }
    Ok(CatalogueRun {
        provider: catalogue.info(),
        images: catalogue.images().len(),
        regions: catalogue.describe_regions().await?,
        resolutions,
    })
}
