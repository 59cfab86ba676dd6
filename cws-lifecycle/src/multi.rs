//! Create-multi.

use std::collections::BTreeSet;

use cws_provider::tags;
use cws_provider::wait::{self, Progress, ProgressEvent, WaitOptions};
use cws_provider::{
    CloudProvider, CopyImageRequest, Image, ImageCatalogExt, ImageQuery, ImageState, InstancesExt,
    LaunchPermission, ProviderError,
};
use cws_resolver::{Consent, ConsentRequest, ProviderLabel, ResolveEnv};
use cws_template::AmiConfig;
use futures::StreamExt;
use serde::Serialize;

use crate::*;

/// What `cws ami create-multi` asks for: an image in the instance's region, copied to more.
#[derive(Debug, Clone)]
pub struct CreateMultiRequest {
    /// The image to make (its region is the instance's).
    pub create: CreateRequest,
    /// The regions that should hold the image (the instance's region may be among them).
    pub regions: Vec<String>,
    /// Copies in flight at once (at least 1; [`COPY_CONCURRENCY`] by default).
    pub concurrency: usize,
}

/// How a region came out of `create-multi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionOutcome {
    /// The master image lives here.
    Source,
    /// A copy was made.
    Copied,
    /// A copy already existed (an earlier run); nothing was spent.
    AlreadyPresent,
    /// The region failed; re-running the command retries it.
    Failed,
}

/// One region of `create-multi`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionResult {
    /// Region.
    pub region: String,
    /// How it went.
    pub outcome: RegionOutcome,
    /// The image there (none when the copy could not even start).
    pub ami_id: Option<String>,
    /// Its state when cws stopped looking.
    pub state: Option<ImageState>,
    /// What went wrong.
    pub error: Option<String>,
    /// The error's kind (`throttled`, `permission_denied`, `timeout`, ...).
    pub error_kind: Option<String>,
}

/// The result of `cws ami create-multi`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateMultiReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// Template slug.
    pub template: String,
    /// Image name (every copy keeps it).
    pub name: String,
    /// Where the master image is.
    pub source_region: String,
    /// The master image.
    pub master: CreatedImage,
    /// One row per region: the source first, then the requested regions in order.
    pub regions: Vec<RegionResult>,
    /// Whether every region holds an available image.
    pub complete: bool,
    /// An `ami_config` mapping every region that holds the image, plus a search.
    pub ami_config: AmiConfig,
    /// The job that finishes what failed when run again (when not complete): it waits for
    /// copies in flight and copies only to the regions still missing.
    pub finish: Option<PendingJob>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

impl CreateMultiReport {
    /// The failed regions.
    pub fn failed(&self) -> impl Iterator<Item = &RegionResult> {
        self.regions
            .iter()
            .filter(|r| r.outcome == RegionOutcome::Failed)
    }
}

pub(crate) fn lifecycle_kind(e: &LifecycleError) -> String {
    match e {
        LifecycleError::Provider(p) => p.kind().to_string(),
        LifecycleError::Timeout { .. } => "timeout".into(),
        LifecycleError::ImageFailed { .. } => "image_failed".into(),
        LifecycleError::PendingFile { .. } | LifecycleError::PendingFileRefused(_) => {
            "pending_file".into()
        }
        LifecycleError::Declined(_) => "declined".into(),
        _ => "invalid".into(),
    }
}

/// Checks region codes and drops duplicates, keeping the order given.
pub(crate) fn checked_regions(regions: &[String]) -> Result<Vec<String>, LifecycleError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in regions {
        let r = r.trim();
        if r.is_empty() {
            continue;
        }
        cws_regions::lookup(r).map_err(|e| LifecycleError::Invalid(format!("regions: {e}")))?;
        if seen.insert(r.to_string()) {
            out.push(r.to_string());
        }
    }
    if out.is_empty() {
        return Err(LifecycleError::Invalid(
            "the list of regions needs at least one region, e.g. us-east-1,us-west-2".into(),
        ));
    }
    Ok(out)
}

/// A copy of `source` the account already holds in `region` (pending or available).
pub(crate) async fn existing_copy(
    provider: &dyn CloudProvider,
    region: &str,
    source: &Image,
) -> Result<Option<Image>, ProviderError> {
    let mut q = ImageQuery::owned_by(["self"])
        .tag(tags::SOURCE_AMI, source.id.clone())
        .include_deprecated(true);
    q.states = in_flight_or_done();
    let mut found = provider.describe_images(region, &q).await?;
    // Prefer an available copy, then the oldest id for determinism.
    found.sort_by(|a, b| {
        (a.state != ImageState::Available)
            .cmp(&(b.state != ImageState::Available))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(found.into_iter().next())
}

/// Copies `source` into `region` unless a copy is already there, then waits for it.
/// Returns the copy and whether it already existed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy_once(
    provider: &dyn CloudProvider,
    source: &Image,
    region: &str,
    public: bool,
    job: &PendingJob,
    wait: &WaitOptions,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<(Image, bool), LifecycleError> {
    let template = source.tags.get(tags::TEMPLATE).map(String::as_str);
    let (copy, existed) = match existing_copy(provider, region, source).await? {
        Some(c) => {
            if c.state == ImageState::Available {
                progress.event(&ProgressEvent::Skipped {
                    region: region.to_string(),
                    image_id: c.id.clone(),
                });
            }
            (c, true)
        }
        None => {
            let mut copy_tags = copy_tags(source);
            // One intent for this copy, recorded before the call: a retry after a lost answer,
            // or a re-run after an interruption, adopts the copy the first attempt made
            // instead of paying for another.
            let (token, resumed) = intent_for(pending, region, &source.name, template, job)?;
            copy_tags.insert(tags::INTENT.to_string(), token.clone());
            let request = CopyImageRequest {
                source_region: source.region.clone(),
                source_image_id: source.id.clone(),
                target_region: region.to_string(),
                name: source.name.clone(),
                description: Some(cws_provider::intent::describe_with_intent(
                    &format!(
                        "cws copy of {} from {}{}",
                        source.id,
                        source.region,
                        template
                            .map(|t| format!(" for template {t}"))
                            .unwrap_or_default()
                    ),
                    &token,
                )),
                tags: copy_tags.clone(),
            };
            // An interrupted earlier request with this intent may have made the copy already.
            let earlier = if resumed {
                cws_provider::intent::find_image(provider, region, &request.name, &token).await?
            } else {
                None
            };
            let copy = match earlier {
                Some(copy) => copy,
                None => cws_provider::intent::create_once(
                    || provider.copy_image(&request),
                    || cws_provider::intent::find_image(provider, region, &request.name, &token),
                )
                .await
                .inspect_err(|e| settle_failed_intent(pending, &token, e))?,
            };
            settle_answered_intent(pending, &token, &copy, template, job)?;
            // CopyImage does not carry tags on every backend; provenance is how re-runs and
            // the resolver find the copy.
            if copy_tags.iter().any(|(k, v)| copy.tags.get(k) != Some(v)) {
                cws_provider::intent::retry_idempotent(|| {
                    provider.create_tags(region, &copy.id, &copy_tags)
                })
                .await?;
            }
            progress.event(&ProgressEvent::Started {
                region: region.to_string(),
                image_id: copy.id.clone(),
                action: "copy".into(),
            });
            (copy, false)
        }
    };
    if copy.state != ImageState::Available {
        record(pending, &copy, template, job)?;
    }
    let copy = wait::image_available(provider, region, &copy.id, wait, progress).await?;
    if public && !copy.public {
        provider
            .modify_launch_permission(region, &copy.id, &LaunchPermission::Public, true)
            .await?;
    }
    forget(pending, region, &copy.id);
    Ok((copy, existed))
}

/// The size the copies will have: the image an earlier run made, else the larger of the image
/// the instance was launched from and the template's root volume (the new image holds at
/// least the instance's disk), else a small guess. A missing
/// instance with no earlier image is an error here, before anything is asked.
async fn estimated_size_gb(
    provider: &dyn CloudProvider,
    c: &CreateRequest,
    made: Option<&Image>,
) -> Result<(u32, bool), LifecycleError> {
    const GUESS_GB: u32 = 8;
    if let Some(image) = made {
        return Ok((provider.image_size_gb(image).await?, false));
    }
    let instance = provider.require_instance(&c.region, &c.instance).await?;
    // The instance's disk is at least its image's, and at least the root volume the template
    // launches with (what cws gave the instance): the image made from it is that large.
    let from_template = c.template.instance_defaults.root_volume_gb.unwrap_or(0);
    let from_source = match provider.image(&c.region, &instance.ami_id).await {
        Ok(Some(source)) => provider.image_size_gb(&source).await.unwrap_or(0),
        _ => 0,
    };
    match from_source.max(from_template) {
        0 => Ok((GUESS_GB, true)),
        gb => Ok((gb, false)),
    }
}

/// `cws ami create-multi`: the master image in the instance's region (made, or found again
/// by name and tags), then copies to the other regions, [`CreateMultiRequest::concurrency`]
/// at a time, skipping regions that already hold a copy (tag `cws:source-ami`). Each region
/// succeeds or fails on its own; the report says which, and running the same request again
/// does only what is missing.
///
/// An error is returned only when the master image cannot be made; per-region failures are in
/// the report (`complete == false`).
pub async fn create_multi(
    env: &ResolveEnv,
    req: &CreateMultiRequest,
    consent: &dyn Consent,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CreateMultiReport, LifecycleError> {
    let regions = checked_regions(&req.regions)?;
    let provider = env.provider.as_ref();
    let c = &req.create;
    if c.name.trim().is_empty() {
        return Err(LifecycleError::Invalid(
            "the image name must not be empty; images need a name (e.g. \"My Setup\")".into(),
        ));
    }
    // Checked before the question: a name EC2 would refuse must not cost a "yes".
    cws_provider::check_image_name(&c.name).map_err(LifecycleError::Invalid)?;

    if let Some(p) = pending {
        p.check()?;
    }
    // The copies spend money: say where, how long and how much, and ask, before anything
    // is made. A re-run asks only about what is missing: the image an earlier run made, and
    // the regions that already hold a copy of it, are not priced again.
    let (existing, instance) = futures::join!(
        own_images_named(provider, &c.region, &c.name, &c.template.slug),
        provider.require_instance(&c.region, &c.instance)
    );
    let existing = existing?;
    // The image this request would reuse, by the rule `ami create` follows; a name taken by an
    // image of another instance is refused before anything is asked.
    let made = crate::create::reusable_image(&existing, &instance);
    if made.is_none()
        && instance.is_ok()
        && let Some(other) = existing.first()
    {
        return Err(crate::create::name_taken(c, other));
    }
    let (size_gb, size_guessed) = estimated_size_gb(provider, c, made.as_ref()).await?;
    let mut missing = Vec::new();
    let mut already_copied = Vec::new();
    let targets = regions.iter().filter(|r| **r != c.region).count();
    for region in regions.iter().filter(|r| **r != c.region) {
        let copied = match &made {
            Some(m) => existing_copy(provider, region, m).await?.is_some(),
            None => false,
        };
        if copied {
            already_copied.push(region.clone());
        } else {
            missing.push(region.clone());
        }
    }
    let copies: Vec<_> = missing
        .iter()
        .map(|r| cws_cost::copy_estimate(&env.prices, &c.region, r, size_gb))
        .collect();
    let asked = ConsentRequest::CreateMulti {
        template: c.template.slug.clone(),
        name: c.name.clone(),
        instance: c.instance.clone(),
        source_region: c.region.clone(),
        copies,
        public: c.public,
        size_guessed,
        existing_image: made.as_ref().map(|m| m.id.clone()),
        already_copied,
    };
    // Nothing left to make, copy or publish: nothing to ask.
    let nothing_to_do = made.is_some() && missing.is_empty() && !c.public;
    if !nothing_to_do && !consent.confirm(&asked) {
        return Err(LifecycleError::Declined(match &made {
            Some(m) => format!(
                "nothing was copied: `{}` ({}) stays in {} only{}",
                c.name,
                m.id,
                c.region,
                if missing.len() < targets {
                    " and the regions that already hold a copy"
                } else {
                    ""
                }
            ),
            None => format!(
                "nothing was made: `{}` stays unmade in {} and uncopied",
                c.name, c.region
            ),
        }));
    }

    let job = create_job(c, &regions);
    // The master's record stays until every region is done: if the copies are interrupted,
    // the record still says how to finish.
    let (master, mut warnings) =
        create_or_find(env, c, &job, pending, progress, true, consent).await?;
    let master_image = provider
        .image(&master.region, &master.ami_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", master.ami_id),
            region: master.region.clone(),
        })?;

    let targets: Vec<String> = regions
        .iter()
        .filter(|r| **r != c.region)
        .cloned()
        .collect();
    let concurrency = req.concurrency.max(1);
    let master_ref = &master_image;
    let job_ref = &job;
    let mut results: Vec<(usize, RegionResult)> =
        futures::stream::iter(targets.iter().enumerate().map(|(i, region)| async move {
            let r = copy_once(
                provider, master_ref, region, c.public, job_ref, &c.wait, pending, progress,
            )
            .await;
            let row = match r {
                Ok((copy, existed)) => RegionResult {
                    region: region.clone(),
                    outcome: if existed {
                        RegionOutcome::AlreadyPresent
                    } else {
                        RegionOutcome::Copied
                    },
                    ami_id: Some(copy.id),
                    state: Some(copy.state),
                    error: None,
                    error_kind: None,
                },
                Err(e) => {
                    progress.event(&ProgressEvent::Failed {
                        region: region.clone(),
                        error: e.to_string(),
                    });
                    let (ami_id, state) = match &e {
                        LifecycleError::ImageFailed { image, state, .. } => {
                            (Some(image.clone()), Some(*state))
                        }
                        LifecycleError::Timeout { id, .. } => {
                            (Some(id.clone()), Some(ImageState::Pending))
                        }
                        _ => (None, None),
                    };
                    RegionResult {
                        region: region.clone(),
                        outcome: RegionOutcome::Failed,
                        ami_id,
                        state,
                        error_kind: Some(lifecycle_kind(&e)),
                        error: Some(e.to_string()),
                    }
                }
            };
            (i, row)
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);

    let mut rows = vec![RegionResult {
        region: master.region.clone(),
        outcome: RegionOutcome::Source,
        ami_id: Some(master.ami_id.clone()),
        state: Some(master.state),
        error: None,
        error_kind: None,
    }];
    rows.extend(results.into_iter().map(|(_, r)| r));
    let complete = rows.iter().all(|r| r.outcome != RegionOutcome::Failed);
    if complete {
        forget(pending, &master.region, &master.ami_id);
    } else {
        warnings.push(format!(
            "{} of {} regions failed",
            rows.iter()
                .filter(|r| r.outcome == RegionOutcome::Failed)
                .count(),
            rows.len()
        ));
    }
    let mapped: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.outcome != RegionOutcome::Failed)
        .filter_map(|r| r.ami_id.clone().map(|id| (r.region.clone(), id)))
        .collect();
    Ok(CreateMultiReport {
        provider: (&env.provider.info()).into(),
        template: c.template.slug.clone(),
        name: c.name.clone(),
        source_region: master.region.clone(),
        ami_config: suggested_ami_config(&c.template, &mapped),
        master,
        regions: rows,
        complete,
        finish: (!complete).then_some(job),
        warnings,
    })
}
