//! Create.

use std::collections::BTreeMap;

use cws_provider::tags;
use cws_provider::wait::{self, Progress, ProgressEvent, WaitOptions};
use cws_provider::{
    CloudProvider, CreateImageRequest, Image, ImageQuery, ImageState, InstanceState, InstancesExt,
    LaunchPermission, ProviderError,
};
use cws_resolver::{Consent, ConsentRequest, ProviderLabel, ResolveEnv};
use cws_template::{AmiConfig, AmiSearch, AmiStrategy, Architecture, Template};
use serde::Serialize;

use crate::*;

/// What `cws ami create` (and the first half of `create-multi`) asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The template the image serves (its slug and version become tags).
    pub template: Template,
    /// The instance to image: name or id.
    pub instance: String,
    /// The instance's region (the image is made there).
    pub region: String,
    /// The image name.
    pub name: String,
    /// Image description (default: one naming the template and instance).
    pub description: Option<String>,
    /// Make the image launchable by everyone.
    pub public: bool,
    /// Wait for a non-running instance to be running instead of failing.
    pub wait_for_running: bool,
    /// Image without rebooting the instance (faster; file systems may be inconsistent).
    pub no_reboot: bool,
    /// Extra tags (cws's own tags win on conflicts).
    pub tags: BTreeMap<String, String>,
    /// How long to wait.
    pub wait: WaitOptions,
}

/// An image made (or found again) from an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedImage {
    /// Image id.
    pub ami_id: String,
    /// Region.
    pub region: String,
    /// Name.
    pub name: String,
    /// State (available once the service returns).
    pub state: ImageState,
    /// Template slug.
    pub template: String,
    /// Template version the image was built from.
    pub template_version: String,
    /// The instance it was made from.
    pub instance_id: String,
    /// Architecture.
    pub architecture: Architecture,
    /// Whether everyone may launch it.
    pub public: bool,
    /// True when an earlier run had already made it (found by name and tags).
    pub reused: bool,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// The result of `cws ami create`: the JSON contract `{ami_id, region, name, state, template,
/// ...}` plus the `ami_config` that makes the template launch from the image.
#[derive(Debug, Clone, Serialize)]
pub struct CreateReport {
    /// The provider used.
    pub provider: ProviderLabel,
    /// The image.
    #[serde(flatten)]
    pub image: CreatedImage,
    /// An `ami_config` for the template that resolves to this image (mapping and search).
    pub ami_config: AmiConfig,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// The name an image gets when none is given: "<template name> <version> <UTC time to the
/// second>", in the characters EC2 accepts in image names (others become `-`), at most 128.
pub fn default_image_name(template: &Template, now: chrono::DateTime<chrono::Utc>) -> String {
    let raw = format!(
        "{} {} {}",
        template.name,
        template.version,
        now.format("%Y-%m-%d %H.%M.%S UTC")
    );
    let allowed = |c: char| c.is_ascii_alphanumeric() || " ()[]./-'@_".contains(c);
    let cleaned: String = raw
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    cleaned.chars().take(128).collect()
}

/// The tags cws puts on an image it makes for `template` from `instance_id`.
pub fn creation_tags(
    template: &Template,
    name: &str,
    instance_id: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = extra.clone();
    t.insert(tags::TEMPLATE.into(), template.slug.clone());
    t.insert(tags::TEMPLATE_VERSION.into(), template.version.to_string());
    t.insert(tags::CREATED_BY.into(), "cws".into());
    t.insert(SOURCE_INSTANCE_TAG.into(), instance_id.to_string());
    t.insert("Name".into(), name.to_string());
    t
}

/// Tags marking `copy` as a copy of `source`: the source's own tags (so `cws:template` and
/// the version carry over) plus where it came from.
pub fn copy_tags(source: &Image) -> BTreeMap<String, String> {
    let mut t = source.tags.clone();
    t.insert(tags::SOURCE_AMI.into(), source.id.clone());
    t.insert(tags::SOURCE_REGION.into(), source.region.clone());
    t.insert(tags::CREATED_BY.into(), "cws".into());
    t.entry("Name".into())
        .or_insert_with(|| source.name.clone());
    t
}

/// The `ami_config` that switches `template` to its images: a mapping per region that has
/// one and a search for the account's own images of the template (which also finds later
/// images and copies).
pub fn suggested_ami_config(template: &Template, images: &[(String, String)]) -> AmiConfig {
    let mut cfg = template.ami_config.clone().unwrap_or(AmiConfig {
        strategy: AmiStrategy::AmiPreferred,
        ..AmiConfig::default()
    });
    for (region, id) in images {
        cfg.ami_mappings.insert(region.clone(), id.clone());
    }
    if cfg.ami_search.is_none() {
        cfg.ami_search = Some(AmiSearch {
            owners: vec!["self".into()],
            name_pattern: None,
            architectures: Vec::new(),
            required_tags: BTreeMap::from([(tags::TEMPLATE.to_string(), template.slug.clone())]),
            include_deprecated: false,
        });
    }
    cfg
}

/// The states a re-run accepts when looking for what an earlier run made.
pub(crate) fn in_flight_or_done() -> Vec<ImageState> {
    vec![ImageState::Pending, ImageState::Available]
}

/// Images the account owns in `region` named `name` and made for `template`.
pub(crate) async fn own_images_named(
    provider: &dyn CloudProvider,
    region: &str,
    name: &str,
    template: &str,
) -> Result<Vec<Image>, ProviderError> {
    let mut q = ImageQuery::owned_by(["self"])
        .tag(tags::TEMPLATE, template)
        .include_deprecated(true);
    // Image names cannot contain wildcards on EC2, so the name is its own exact pattern.
    q.names = vec![name.to_string()];
    q.states = in_flight_or_done();
    let found = provider.describe_images(region, &q).await?;
    Ok(found.into_iter().filter(|i| i.name == name).collect())
}

pub(crate) fn create_job(req: &CreateRequest, multi_regions: &[String]) -> PendingJob {
    PendingJob::Create {
        template: req.template.slug.clone(),
        instance: req.instance.clone(),
        name: req.name.clone(),
        region: req.region.clone(),
        regions: multi_regions.to_vec(),
        public: req.public,
    }
}

/// Asks before an image is made public; a refusal is [`LifecycleError::Declined`].
pub(crate) fn ask_public(req: &CreateRequest, consent: &dyn Consent) -> Result<(), LifecycleError> {
    let asked = ConsentRequest::Share {
        image_id: None,
        name: req.name.clone(),
        region: req.region.clone(),
        permissions: vec![LaunchPermission::Public],
        snapshot_ids: Vec::new(),
    };
    if consent.confirm(&asked) {
        Ok(())
    } else {
        Err(LifecycleError::Declined(format!(
            "nothing was made: `{}` would have been public",
            req.name
        )))
    }
}

/// Finds the image an earlier run made (same name, template and instance) or makes it;
/// records it as pending and waits until it is available.
/// Among the account's images of this name for the template, the one an earlier run made
/// from `instance` (or from an instance that is gone since): a re-run reuses it.
pub(crate) fn reusable_image(
    existing: &[Image],
    instance: &Result<cws_provider::Instance, ProviderError>,
) -> Option<Image> {
    match instance {
        Ok(i) => existing
            .iter()
            .find(|img| {
                img.tags
                    .get(SOURCE_INSTANCE_TAG)
                    .is_none_or(|src| *src == i.id)
            })
            .cloned(),
        // The instance is gone, but the image made from it is what matters.
        Err(ProviderError::NotFound { .. }) => existing.first().cloned(),
        Err(_) => None,
    }
}

/// The name is taken by `other`, an image made from another instance.
pub(crate) fn name_taken(req: &CreateRequest, other: &Image) -> LifecycleError {
    LifecycleError::NameTaken {
        name: req.name.clone(),
        region: req.region.clone(),
        image: other.id.clone(),
        source_instance: other
            .tags
            .get(SOURCE_INSTANCE_TAG)
            .cloned()
            .unwrap_or_else(|| "another instance".into()),
    }
}

pub(crate) async fn create_or_find(
    env: &ResolveEnv,
    req: &CreateRequest,
    job: &PendingJob,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
    keep_record: bool,
    consent: &dyn Consent,
) -> Result<(CreatedImage, Vec<String>), LifecycleError> {
    let provider = env.provider.as_ref();
    if req.name.trim().is_empty() {
        return Err(LifecycleError::Invalid(
            "the image name must not be empty; images need a name (e.g. \"My Setup\")".into(),
        ));
    }
    cws_provider::check_image_name(&req.name).map_err(LifecycleError::Invalid)?;
    let slug = req.template.slug.as_str();
    let (existing, instance) = futures::join!(
        own_images_named(provider, &req.region, &req.name, slug),
        provider.require_instance(&req.region, &req.instance)
    );
    let existing = existing?;
    let mut warnings = Vec::new();

    // A re-run: the image this command made before, found by name and tags.
    let reusable = reusable_image(&existing, &instance);
    let (image, reused) = match reusable {
        Some(img) => {
            warnings.push(format!(
                "{} (`{}`) was already made by an earlier run; reusing it (deregister it or pick \
                 another name for a fresh image)",
                img.id, img.name
            ));
            (img, true)
        }
        None => {
            let instance = instance?;
            if let Some(other) = existing.first() {
                return Err(name_taken(req, other));
            }
            let instance = match instance.state {
                InstanceState::Running => instance,
                InstanceState::ShuttingDown | InstanceState::Terminated => {
                    return Err(LifecycleError::InstanceGone {
                        name: instance.name,
                        id: instance.id,
                        region: req.region.clone(),
                        state: instance.state,
                    });
                }
                // A stopped instance never comes up by itself: offer to start it.
                InstanceState::Stopped if req.wait_for_running => {
                    let asked = ConsentRequest::StartInstance {
                        instance: instance.clone(),
                        purpose: format!("to image it as `{}`", req.name),
                    };
                    if !consent.confirm(&asked) {
                        return Err(LifecycleError::Declined(format!(
                            "nothing was made: {} stays stopped",
                            instance.name
                        )));
                    }
                    provider.start_instance(&req.region, &instance.id).await?;
                    wait::instance_running(provider, &req.region, &instance.id, &req.wait, progress)
                        .await?
                }
                _ if req.wait_for_running => {
                    wait::instance_running(provider, &req.region, &instance.id, &req.wait, progress)
                        .await?
                }
                state => {
                    return Err(LifecycleError::InstanceNotRunning {
                        name: instance.name,
                        id: instance.id,
                        region: req.region.clone(),
                        state,
                    });
                }
            };
            if let Some(t) = instance.tags.get(tags::TEMPLATE)
                && t != slug
            {
                warnings.push(format!(
                    "instance {} was launched from template {t}, but the image is tagged for {slug}",
                    instance.name
                ));
            }
            let mut image_tags = creation_tags(&req.template, &req.name, &instance.id, &req.tags);
            // One intent for this image, recorded before the call: a retry after a lost
            // answer, or a re-run after an interruption, adopts the image the first attempt
            // made (EC2's CreateImage takes no client token).
            let (token, _) = intent_for(pending, &req.region, &req.name, Some(slug), job)?;
            image_tags.insert(tags::INTENT.to_string(), token.clone());
            let request = CreateImageRequest {
                region: req.region.clone(),
                instance_id: instance.id.clone(),
                name: req.name.clone(),
                description: Some(req.description.clone().unwrap_or_else(|| {
                    format!(
                        "cws image of {} for template {} {}",
                        instance.name, slug, req.template.version
                    )
                })),
                no_reboot: req.no_reboot,
                tags: image_tags.clone(),
            };
            let made = cws_provider::intent::create_once(
                || provider.create_image(&request),
                || cws_provider::intent::find_image(provider, &req.region, &req.name, &token),
            )
            .await
            .inspect_err(|e| settle_failed_intent(pending, &token, e))?;
            settle_answered_intent(pending, &token, &made, Some(slug), job)?;
            // Some backends drop tags on CreateImage; the tags are how cws finds it again.
            if image_tags.iter().any(|(k, v)| made.tags.get(k) != Some(v)) {
                cws_provider::intent::retry_idempotent(|| {
                    provider.create_tags(&req.region, &made.id, &image_tags)
                })
                .await?;
            }
            progress.event(&ProgressEvent::Started {
                region: req.region.clone(),
                image_id: made.id.clone(),
                action: "create".into(),
            });
            (made, false)
        }
    };

    record(pending, &image, Some(slug), job)?;
    let image =
        wait::image_available(provider, &req.region, &image.id, &req.wait, progress).await?;
    if req.public && !image.public {
        provider
            .modify_launch_permission(&req.region, &image.id, &LaunchPermission::Public, true)
            .await?;
    }
    if !keep_record {
        forget(pending, &req.region, &image.id);
    }
    let instance_id = image
        .tags
        .get(SOURCE_INSTANCE_TAG)
        .cloned()
        .unwrap_or_else(|| req.instance.clone());
    Ok((
        CreatedImage {
            ami_id: image.id.clone(),
            region: image.region.clone(),
            name: image.name.clone(),
            state: image.state,
            template: slug.to_string(),
            template_version: image
                .tags
                .get(tags::TEMPLATE_VERSION)
                .cloned()
                .unwrap_or_else(|| req.template.version.to_string()),
            instance_id,
            architecture: image.architecture,
            public: req.public || image.public,
            reused,
            tags: image.tags,
        },
        warnings,
    ))
}

/// `cws ami create`: images an instance for a template, tags it (`cws:template`,
/// `cws:template-version`, `cws:created-by`, `cws:source-instance`, `Name`), waits until it
/// is available and optionally makes it public.
///
/// Running it again with the same name finds the image made before (and waits for it if it
/// is still pending) instead of failing on the duplicate name.
///
/// An image made public widens access, so `public` is asked first
/// ([`ConsentRequest::Share`]); a refusal makes nothing.
pub async fn create(
    env: &ResolveEnv,
    req: &CreateRequest,
    consent: &dyn Consent,
    pending: Option<&PendingImages>,
    progress: &dyn Progress,
) -> Result<CreateReport, LifecycleError> {
    if let Some(p) = pending {
        p.check()?;
    }
    // A name EC2 would refuse must not cost a "yes".
    cws_provider::check_image_name(&req.name).map_err(LifecycleError::Invalid)?;
    if req.public {
        ask_public(req, consent)?;
    }
    let job = create_job(req, &[]);
    let (image, warnings) =
        create_or_find(env, req, &job, pending, progress, false, consent).await?;
    let ami_config = suggested_ami_config(
        &req.template,
        &[(image.region.clone(), image.ami_id.clone())],
    );
    Ok(CreateReport {
        provider: (&env.provider.info()).into(),
        image,
        ami_config,
        warnings,
    })
}
