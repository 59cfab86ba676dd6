//! Copy.

use cws_provider::tags;
use cws_provider::wait::{Progress, WaitOptions};
use cws_provider::{Image, ImageCatalogExt, ImageState, ProviderError};
use cws_resolver::{Consent, ConsentRequest, CopyPlan, ProviderLabel, ResolveEnv};
use serde::Serialize;

use crate::*;

/// What `cws ami copy` asks for.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// The image to copy.
    pub image_id: String,
    /// Where it is.
    pub source_region: String,
    /// Where to copy it.
    pub target_region: String,
    /// How long to wait for the copy.
    pub wait: WaitOptions,
}

/// The result of `cws ami copy`.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The copy's id.
    pub ami_id: String,
    /// The copy's region.
    pub region: String,
    /// Its name (the source's).
    pub name: String,
    /// Its state.
    pub state: ImageState,
    /// The image copied.
    pub source_ami: String,
    /// Where it came from.
    pub source_region: String,
    /// The template it serves, from the source's tags.
    pub template: Option<String>,
    /// True when a copy was already there (nothing was copied or spent).
    pub reused: bool,
    /// The estimate the user agreed to.
    pub estimate: CopyPlan,
}

/// Looks up an image and estimates copying it to `target_region` (size from its snapshots,
/// time and cost from the price book).
pub async fn plan_copy(
    env: &ResolveEnv,
    source_region: &str,
    image_id: &str,
    target_region: &str,
) -> Result<(Image, CopyPlan), LifecycleError> {
    let provider = env.provider.as_ref();
    let source = provider
        .image(source_region, image_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {image_id}"),
            region: source_region.to_string(),
        })?;
    let size = provider.image_size_gb(&source).await?;
    let estimate = cws_cost::copy_estimate(&env.prices, source_region, target_region, size);
    let plan = CopyPlan {
        source_ami_id: source.id.clone(),
        source_region: source_region.to_string(),
        source_name: source.name.clone(),
        snapshot_gb: size,
        estimated_seconds: estimate.estimated_seconds,
        estimated_cost_usd: estimate.total_cost,
        listing: None,
        alternatives: Vec::new(),
    };
    Ok((source, plan))
}

/// `cws ami copy`: copies an image to another region after asking (with the estimated time
/// and cost), tags the copy with its provenance and waits until it is available. A region
/// that already holds a copy of the image is not copied to again.
pub async fn copy_to_region(
    env: &ResolveEnv,
    req: &CopyRequest,
    consent: &dyn Consent,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CopyReport, LifecycleError> {
    if let Some(p) = pending {
        p.check()?;
    }
    for r in [&req.source_region, &req.target_region] {
        cws_regions::lookup(r).map_err(|e| LifecycleError::Invalid(e.to_string()))?;
    }
    if req.source_region == req.target_region {
        return Err(LifecycleError::Invalid(format!(
            "{} is already in {}; pick another target region",
            req.image_id, req.target_region
        )));
    }
    let provider = env.provider.as_ref();
    let (source, plan) =
        plan_copy(env, &req.source_region, &req.image_id, &req.target_region).await?;
    if source.state != ImageState::Available {
        return Err(LifecycleError::Invalid(format!(
            "{} in {} is {}, not available; wait until it is and copy it then",
            source.id, source.region, source.state
        )));
    }
    let existing = existing_copy(provider, &req.target_region, &source).await?;
    if existing.is_none()
        && !consent.confirm(&ConsentRequest::Copy {
            plan: plan.clone(),
            target_region: req.target_region.clone(),
            warnings: Vec::new(),
        })
    {
        return Err(LifecycleError::Declined(format!(
            "not copied: {} stays in {} only",
            source.id, source.region
        )));
    }
    let job = PendingJob::Copy {
        source_image: source.id.clone(),
        source_region: source.region.clone(),
        target_region: req.target_region.clone(),
    };
    let (copy, reused) = copy_once(
        provider,
        &source,
        &req.target_region,
        false,
        &job,
        &req.wait,
        pending,
        progress,
    )
    .await?;
    Ok(CopyReport {
        provider: (&env.provider.info()).into(),
        ami_id: copy.id,
        region: copy.region,
        name: copy.name,
        state: copy.state,
        source_ami: source.id.clone(),
        source_region: source.region.clone(),
        template: source.tags.get(tags::TEMPLATE).cloned(),
        reused,
        estimate: plan,
    })
}
