//! Services over a provider: launch, test across regions, list a template's images.
//!
//! These hold the logic the CLI and the REST API share, so both give the same answers and the
//! same JSON. Side effects (copies, launches) happen only after a resolution has decided, and
//! a cross-region copy only with [`Consent`].

use std::collections::BTreeMap;

use cws_cost::{CostAnalysis, CostInput};
use cws_template::{Architecture, Template};
use futures::future::join_all;
use serde::Serialize;

use cws_provider::tags::{self, MARKETPLACE_OWNER_ALIAS};
use cws_provider::{
    CopyImageRequest, Image, ImageCatalogExt, ImageQuery, ImageState, Instance, InstancesExt,
    ProviderError, ProviderResult, RunInstanceRequest, intent,
};

use crate::TierId;
use crate::consent::{Consent, ConsentRequest};
use crate::report::{CopyPlan, ListedSource, Method, Outcome, Resolution};
use crate::resolver::{ResolveEnv, ResolveRequest, Resolver, UnknownTier};
use crate::tier;

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// The template (inheritance merged).
    pub template: Template,
    /// The instance's `Name`.
    pub name: String,
    /// Region.
    pub region: String,
    /// Required architecture (`--arch`).
    pub architecture: Option<Architecture>,
    /// Instance type override (`--instance-type`).
    pub instance_type: Option<String>,
    /// Resolve and report only; no copy, no launch.
    pub dry_run: bool,
    /// A single forced tier (`--ami-strategy`).
    pub forced_tier: Option<String>,
    /// Prefer script provisioning; ask when an image is available (`--prefer-script`).
    pub prefer_script: bool,
    /// Session length for the cost comparison.
    pub session_hours: cws_cost::Hours,
    /// Tiers to add to the template's chain, each after the named tier (appended when that
    /// tier is not in the chain; first when `None`): e.g. a registry's `community` tier after
    /// dynamic_search, or first when the user launches that listing by name.
    pub added_tiers: Vec<(Option<TierId>, std::sync::Arc<dyn crate::Tier>)>,
    /// Images known elsewhere to serve the template (a listing's regions), for cross_region.
    pub known_images: Vec<crate::KnownImage>,
    /// Images refused by their provenance tags (copies of a revoked or quarantined registry
    /// listing version): a tier whose choice carries them reports `not_found` with the reason.
    pub refused: Vec<RefusedProvenance>,
    /// When set, the only image owners any tier may return (an institution's policy).
    pub allowed_owners: Option<crate::OwnerPolicy>,
}

pub use crate::tier::RefusedProvenance;

/// The launched instance, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchedInstance {
    /// Instance id.
    pub id: String,
    /// Name.
    pub name: String,
    /// State.
    pub state: String,
    /// Region.
    pub region: String,
    /// Image launched.
    pub ami_id: String,
    /// Instance type.
    pub instance_type: String,
    /// Architecture.
    pub architecture: Architecture,
}

impl From<&Instance> for LaunchedInstance {
    fn from(i: &Instance) -> Self {
        LaunchedInstance {
            id: i.id.clone(),
            name: i.name.clone(),
            state: i.state.to_string(),
            region: i.region.clone(),
            ami_id: i.ami_id.clone(),
            instance_type: i.instance_type.clone(),
            architecture: i.architecture,
        }
    }
}

/// The result of `cws launch`: the JSON contract `{dry_run, resolution, instance, costs}`.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// How the image was chosen.
    pub resolution: Resolution,
    /// The image copied into the region first, if a copy was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copied_image: Option<String>,
    /// The instance launched (null on dry runs and failures).
    pub instance: Option<LaunchedInstance>,
    /// AMI vs script cost comparison for this launch.
    pub costs: Option<CostAnalysis>,
    /// How the provisioning script ended, when the caller waited for it (`launch --wait`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<cws_template::ProvisioningOutcome>,
    /// Under `ami_fallback`: the instance whose script failed, terminated when the workstation
    /// was launched again from an image (this report's instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_instance: Option<LaunchedInstance>,
}

/// Errors a launch can end with besides "nothing resolved" (which is a report, not an error).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The request is invalid (unknown instance type, ...).
    #[error("{0}")]
    Invalid(String),
    /// The forced tier is not a built-in tier.
    #[error(transparent)]
    UnknownTier(#[from] UnknownTier),
    /// Waiting for a copy failed (timed out, or the image failed).
    #[error(transparent)]
    Wait(#[from] cws_provider::wait::WaitError),
    /// The copy could not be recorded before it was requested, so it was not requested.
    #[error("cannot record the copy before making it: {0}")]
    Journal(String),
}

/// Where a launch records a cross-region copy around the creating call, so that an
/// interruption or a crash never loses track of it: before `CopyImage` (with its intent),
/// when the cloud answers (with the image id), when it fails, and once it is available.
/// The CLI keeps these with the other images in flight (`ami status`).
pub trait CopyJournal: Send + Sync {
    /// Records the copy about to be requested; returns the intent to request it with: `token`,
    /// or the intent of an earlier unanswered request for the same copy (so a re-run finds
    /// what that request made instead of copying again). An error stops the copy.
    fn requested(
        &self,
        plan: &CopyPlan,
        target_region: &str,
        template: &str,
        token: String,
    ) -> Result<String, String>;
    /// The cloud answered with `image`.
    fn answered(&self, token: &str, image: &Image, template: &str, plan: &CopyPlan);
    /// The request failed with `error` (a refusal made nothing; an unanswered call may have).
    fn failed(&self, token: &str, error: &ProviderError);
    /// The copy is available: nothing is in flight any more.
    fn done(&self, image: &Image);
}

/// A journal that records nothing (embedders without state of their own).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

impl CopyJournal for NoJournal {
    fn requested(&self, _: &CopyPlan, _: &str, _: &str, token: String) -> Result<String, String> {
        Ok(token)
    }
    fn answered(&self, _: &str, _: &Image, _: &str, _: &CopyPlan) {}
    fn failed(&self, _: &str, _: &ProviderError) {}
    fn done(&self, _: &Image) {}
}

/// The most characters an instance's name may have: EC2 keeps it in the `Name` tag, and a tag
/// value holds at most 256 characters.
pub const MAX_INSTANCE_NAME_CHARS: usize = 256;

/// Checks a new instance's name the way EC2 checks a tag value, a little more strictly: not
/// empty, at most [`MAX_INSTANCE_NAME_CHARS`] characters, and none that would not show as
/// itself ([`cws_util::text::is_unsafe_to_show`]: control characters such as newline and ESC,
/// bidirectional overrides, invisible formatting characters). A name is shown in listings and
/// questions later, so it must not be able to forge a line or reorder text there.
///
/// [`launch`] checks the name first; front ends may check it earlier, before opening a
/// provider. The error is [`LaunchError::Invalid`], naming the value (escaped, and cut short
/// when long) and the rule.
pub fn check_instance_name(name: &str) -> Result<(), LaunchError> {
    const RULE: &str = "instance names are EC2 tag values: 1-256 characters, without control \
                        characters (newline, tab, ESC, ...), bidirectional overrides or other \
                        invisible formatting characters";
    if name.trim().is_empty() {
        return Err(LaunchError::Invalid(format!(
            "instance name {name:?} is empty; {RULE}"
        )));
    }
    let count = name.chars().count();
    if count > MAX_INSTANCE_NAME_CHARS {
        let start: String = name.chars().take(24).collect();
        return Err(LaunchError::Invalid(format!(
            "instance name {:?}… is {count} characters long; {RULE}",
            start
        )));
    }
    if let Some((at, c)) = cws_util::text::first_unsafe_to_show(name) {
        return Err(LaunchError::Invalid(format!(
            "instance name {name:?} contains U+{:04X} at character {}; {RULE}",
            u32::from(c),
            at + 1
        )));
    }
    Ok(())
}

/// The instance type for an architecture: the explicit choice, else the template's, else a
/// small general-purpose default (Graviton for arm64).
pub fn instance_type_for(
    template: &Template,
    arch: Architecture,
    explicit: Option<&str>,
) -> String {
    if let Some(t) = explicit {
        return t.to_string();
    }
    if let Some(t) = template.instance_type_for(arch) {
        return t.to_string();
    }
    match arch {
        Architecture::Arm64 => "t4g.medium".into(),
        Architecture::X86_64 => "t3.medium".into(),
    }
}

/// The resolver a launch or resolve request asks for.
pub fn resolver_for(
    template: &Template,
    forced_tier: Option<&str>,
    prefer_script: bool,
) -> Result<Resolver, UnknownTier> {
    let r = match forced_tier {
        Some(t) => Resolver::forced(t)?,
        None => Resolver::for_template(template),
    };
    Ok(if prefer_script {
        r.script_first().exhaustive()
    } else {
        r
    })
}

/// Cost comparison for a template launched as `instance_type` in `region`.
pub fn launch_costs(
    env: &ResolveEnv,
    template: &Template,
    region: &str,
    instance_type: &str,
    session_hours: cws_cost::Hours,
    snapshot_gb: Option<u32>,
) -> Result<CostAnalysis, cws_cost::CostError> {
    let input = CostInput {
        instance_type: instance_type.to_string(),
        region: region.to_string(),
        session_hours,
        script_setup_seconds: tier::setup_seconds(template),
        ami_boot_seconds: cws_cost::AMI_BOOT_SECONDS,
        snapshot_gb: snapshot_gb
            .or(template.instance_defaults.root_volume_gb)
            .unwrap_or(30),
        launches_per_month: 20,
    };
    cws_cost::analyze(&env.prices, &input)
}

/// Resolves, asks consent where needed, copies if agreed, and launches.
///
/// The name is checked first ([`check_instance_name`]); an invalid one is
/// [`LaunchError::Invalid`] and nothing is asked, copied or launched.
pub async fn launch(
    env: &ResolveEnv,
    req: &LaunchRequest,
    consent: &dyn Consent,
) -> Result<LaunchReport, LaunchError> {
    launch_recorded(env, req, consent, &NoJournal).await
}

/// Whether the image a resolution chose is still there and available (no image: nothing to
/// check).
async fn still_available(
    provider: &dyn cws_provider::ImageCatalog,
    resolution: &Resolution,
) -> Result<bool, ProviderError> {
    let Some(id) = &resolution.ami_id else {
        return Ok(true);
    };
    let region = resolution
        .source_region
        .as_deref()
        .unwrap_or(&resolution.region);
    let found = provider
        .describe_images_by_id(region, std::slice::from_ref(id))
        .await?;
    Ok(found
        .iter()
        .any(|i| &i.id == id && i.state == ImageState::Available))
}

/// [`launch`], recording a cross-region copy in `journal` around its creating call.
pub async fn launch_recorded(
    env: &ResolveEnv,
    req: &LaunchRequest,
    consent: &dyn Consent,
    journal: &dyn CopyJournal,
) -> Result<LaunchReport, LaunchError> {
    launch_declining(env, req, consent, journal, BTreeMap::new()).await
}

/// Waits until a launched instance runs and, when it was provisioned by script, until the
/// script reports its outcome on the console (`None` for an instance launched from an image:
/// there is nothing to wait for). At most `wait.timeout` in all.
pub async fn watch_provisioning(
    provider: &dyn cws_provider::CloudProvider,
    instance: &LaunchedInstance,
    by_script: bool,
    wait: &cws_provider::wait::WaitOptions,
    progress: &dyn cws_provider::wait::Progress,
) -> Result<Option<cws_template::ProvisioningOutcome>, cws_provider::wait::WaitError> {
    let start = tokio::time::Instant::now();
    cws_provider::wait::instance_running(provider, &instance.region, &instance.id, wait, progress)
        .await?;
    if !by_script {
        return Ok(None);
    }
    let left = cws_provider::wait::WaitOptions {
        timeout: wait.timeout.saturating_sub(start.elapsed()),
        ..*wait
    };
    cws_provider::wait::console_outcome(
        provider,
        &instance.region,
        &instance.id,
        &left,
        progress,
        cws_template::provisioning_outcome,
    )
    .await
    .map(Some)
}

/// What [`replace_failed_script`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Replacement {
    /// The workstation was launched again from an image, and the failed instance terminated.
    Replaced {
        /// The new launch.
        report: Box<LaunchReport>,
        /// The failed instance, as terminating left it.
        terminated: LaunchedInstance,
    },
    /// The failed instance was terminated, but the workstation was not launched again (the
    /// launch failed or found nothing after all): `reason` says why.
    Unreplaced {
        /// The failed instance, as terminating left it.
        terminated: LaunchedInstance,
        /// Why no replacement was launched.
        reason: String,
    },
    /// No image serves the template here: nothing was changed (the resolution says why).
    NoImage(Box<Resolution>),
    /// The user did not agree: nothing was changed.
    Declined(Box<Resolution>),
}

/// Under `ami_fallback` ("script first, an image if the script fails"): after the script on
/// `failed` reported `outcome`, finds an image for the template (script provisioning excluded,
/// resolved against the backend itself), asks consent
/// ([`ConsentRequest::ReplaceFailedScript`]), makes the copy into the region the image needs
/// (asked on its own, as in any launch) — all before anything is terminated, so a "no" keeps
/// the failed instance — then terminates the failed instance (freeing its name) and launches
/// the workstation again under that name from the image.
pub async fn replace_failed_script(
    env: &ResolveEnv,
    req: &LaunchRequest,
    failed: &LaunchedInstance,
    outcome: &cws_template::ProvisioningOutcome,
    consent: &dyn Consent,
    journal: &dyn CopyJournal,
) -> Result<Replacement, LaunchError> {
    // What is about to be spent is decided on the backend's own answers, not a cache's.
    let mut fresh = env.clone();
    fresh.reads = None;
    let env = &fresh;
    let provider = env.provider.as_ref();
    let declined = BTreeMap::from([(
        TierId::SCRIPT_FALLBACK,
        format!("the provisioning script of {} {outcome}", failed.id),
    )]);
    // The same chain and request the replacement launch resolves with (a listing's community
    // tier included), so the image asked about is the image launched.
    let resolver = launch_resolver(req)?;
    let mut rreq = launch_resolve_request(req);
    rreq.declined = declined.clone();
    let preview = resolver.resolve(env, &rreq).await;
    let Some(ami_id) = preview.ami_id.clone().filter(|_| !preview.is_failed()) else {
        return Ok(Replacement::NoImage(Box::new(preview)));
    };
    let instance = provider
        .require_instance(&failed.region, &failed.id)
        .await?;
    let copy = preview.copy.clone().filter(|_| preview.requires_copy);
    if !consent.confirm(&ConsentRequest::ReplaceFailedScript {
        instance,
        outcome: outcome.to_string(),
        ami_id,
        method: preview.method.to_string(),
        launch_seconds: preview.estimated_launch_seconds,
        copy: copy.clone(),
    }) {
        return Ok(Replacement::Declined(Box::new(preview)));
    }
    let mut copied = None;
    if let Some(plan) = copy {
        if !consent.confirm(&ConsentRequest::Copy {
            plan: plan.clone(),
            target_region: req.region.clone(),
            warnings: preview.warnings.clone(),
        }) {
            return Ok(Replacement::Declined(Box::new(preview)));
        }
        let image = copy_for_template(env, &req.template, &plan, &req.region, journal).await?;
        copied = Some(image.id);
    }
    // The name is freed first: a workstation keeps its name across the replacement.
    let terminated = LaunchedInstance::from(
        &provider
            .terminate_instance(&failed.region, &failed.id)
            .await?,
    );
    match launch_declining(env, req, consent, journal, declined).await {
        Ok(mut report) if report.instance.is_some() => {
            report.copied_image = report.copied_image.or(copied);
            Ok(Replacement::Replaced {
                report: Box::new(report),
                terminated,
            })
        }
        Ok(report) => Ok(Replacement::Unreplaced {
            terminated,
            reason: format!(
                "the launch found no image after all ({})",
                report
                    .resolution
                    .attempts
                    .iter()
                    .map(|a| format!("{}: {}", a.tier, a.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
        Err(e) => Ok(Replacement::Unreplaced {
            terminated,
            reason: e.to_string(),
        }),
    }
}

/// The tier chain a launch resolves with: the template's (or the forced tier), the script
/// first for `--prefer-script`, and the tiers the request adds.
fn launch_resolver(req: &LaunchRequest) -> Result<Resolver, UnknownTier> {
    let mut resolver = resolver_for(&req.template, req.forced_tier.as_deref(), req.prefer_script)?;
    if req.forced_tier.is_none() {
        for (after, tier) in &req.added_tiers {
            resolver = match after {
                Some(after) => resolver.insert_after(after, tier.clone()),
                None => resolver.insert_first(tier.clone()),
            };
        }
    }
    Ok(resolver)
}

/// What a launch asks its resolver.
fn launch_resolve_request(req: &LaunchRequest) -> ResolveRequest {
    let mut rreq = ResolveRequest::new(req.template.clone(), req.region.clone());
    rreq.architecture = req.architecture;
    rreq.known_images = req.known_images.clone();
    rreq.refused = req.refused.clone();
    rreq.allowed_owners = req.allowed_owners.clone();
    rreq
}

/// [`launch_recorded`] with tiers the user already turned down (tier → why).
async fn launch_declining(
    env: &ResolveEnv,
    req: &LaunchRequest,
    consent: &dyn Consent,
    journal: &dyn CopyJournal,
    declined: BTreeMap<TierId, String>,
) -> Result<LaunchReport, LaunchError> {
    check_instance_name(&req.name)?;
    let provider = env.provider.as_ref();
    // A dry run predicts this refusal too: it answers what the launch would.
    if let Some(existing) = provider.instance_by_name(&req.region, &req.name).await? {
        return Err(ProviderError::Conflict {
            message: format!(
                "an instance named `{}` already exists in {}: {} ({})",
                req.name, req.region, existing.id, existing.state
            ),
        }
        .into());
    }
    let resolver = launch_resolver(req)?;
    let mut rreq = launch_resolve_request(req);
    rreq.declined = declined;
    // The account id (whose images' storage is the user's cost) is asked beside the
    // resolution, never in front of it.
    let (mut resolution, account) =
        futures::join!(resolver.resolve(env, &rreq), provider.account_id());
    let account = account.ok().flatten();
    // An answer that may come from a cache is checked against the backend before anything
    // is spent on it, and from then on this launch resolves against the backend itself. A
    // hit by the first tier that looked is checked by id (one call); anything that rests on
    // a cached "not found" (a copy from elsewhere, script provisioning, nothing at all) is
    // resolved again: an image made in the meantime must not be paid for twice.
    let mut fresh_env;
    let mut env = env;
    if !req.dry_run && env.reads.is_some() {
        fresh_env = env.clone();
        fresh_env.reads = None;
        env = &fresh_env;
        let winner = resolution
            .attempts
            .iter()
            .position(|a| a.outcome == Outcome::Found);
        let rests_on_a_miss = match winner {
            Some(w) => resolution.attempts[..w]
                .iter()
                .any(|a| matches!(a.outcome, Outcome::NotFound | Outcome::Failed)),
            None => true,
        };
        if rests_on_a_miss || !still_available(provider, &resolution).await? {
            resolution = resolver.resolve(env, &rreq).await;
        }
    }

    // --prefer-script: the script won, but an image exists. Ask which to use.
    if req.prefer_script
        && resolution.method == Method::ScriptFallback
        && let Some(alt) = resolution
            .attempts
            .iter()
            .find(|a| a.outcome == Outcome::Found && a.tier != TierId::SCRIPT_FALLBACK)
    {
        let question = ConsentRequest::PreferScript {
            ami_id: alt.ami_id.clone().unwrap_or_default(),
            tier: alt.tier.clone(),
            image_seconds: cws_cost::AMI_BOOT_SECONDS,
            script_seconds: resolution.estimated_launch_seconds.unwrap_or_default(),
        };
        // The question is "continue with script provisioning?": yes keeps the script; no (the
        // default, and the answer without a terminal) takes the faster image.
        if !req.dry_run && !consent.confirm(&question) {
            rreq.declined.insert(
                TierId::SCRIPT_FALLBACK,
                "script provisioning not confirmed: the available image is faster".into(),
            );
            resolution = resolver.resolve(env, &rreq).await;
        }
    }

    // A copy needs consent. Declining moves on to the next tier the strategy allows.
    if resolution.requires_copy
        && !req.dry_run
        && let Some(plan) = resolution.copy.clone()
        && !consent.confirm(&ConsentRequest::Copy {
            plan: plan.clone(),
            target_region: req.region.clone(),
            warnings: resolution.warnings.clone(),
        })
    {
        rreq.declined.insert(
            TierId::CROSS_REGION,
            format!(
                "copy of {} from {} declined ({} + {})",
                plan.source_ami_id,
                plan.source_region,
                cws_util::duration::format_seconds(plan.estimated_seconds),
                plan.estimated_cost_usd
            ),
        );
        resolution = resolver.resolve(env, &rreq).await;
    }

    let arch = resolution
        .architecture
        .or(req.architecture)
        .unwrap_or(Architecture::X86_64);
    let instance_type = instance_type_for(&req.template, arch, req.instance_type.as_deref());
    // Storage is the user's cost only for images the user owns: a copy they make, or their
    // own images. Official, Marketplace and community images are stored by their publisher.
    let storage_gb = match (&resolution.copy, &resolution.ami_owner) {
        (Some(c), _) => Some(c.snapshot_gb),
        (None, Some(owner)) if Some(owner) == account.as_ref() => None,
        _ => Some(0),
    };
    let costs = launch_costs(
        env,
        &req.template,
        &req.region,
        &instance_type,
        req.session_hours,
        storage_gb,
    )
    .map_err(|e| LaunchError::Invalid(e.to_string()))?;

    let mut report = LaunchReport {
        dry_run: req.dry_run,
        resolution,
        copied_image: None,
        instance: None,
        costs: Some(costs),
        provisioning: None,
        replaced_instance: None,
    };
    if req.dry_run || report.resolution.is_failed() {
        return Ok(report);
    }

    let Some(mut ami_id) = report.resolution.ami_id.clone() else {
        return Ok(report);
    };
    if let Some(plan) = report.resolution.copy.clone() {
        let copy = copy_for_template(env, &req.template, &plan, &req.region, journal).await?;
        ami_id = copy.id.clone();
        report.copied_image = Some(copy.id);
    }

    let mut instance_tags = BTreeMap::from([
        (tags::TEMPLATE.to_string(), req.template.slug.clone()),
        (
            tags::TEMPLATE_VERSION.to_string(),
            req.template.version.to_string(),
        ),
        ("cws:managed".to_string(), "true".to_string()),
        (
            "cws:method".to_string(),
            report.resolution.method.to_string(),
        ),
    ]);
    if let (Some(l), Some(v)) = (
        &report.resolution.listing,
        &report.resolution.listing_version,
    ) {
        instance_tags.insert(tags::LISTING.to_string(), l.clone());
        instance_tags.insert(tags::LISTING_VERSION.to_string(), v.clone());
    }
    for (k, v) in &req.template.tags {
        instance_tags.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // One intent for this launch: the client token of RunInstances and the tag a retry
    // after a lost answer finds the instance by, so one launch never makes two instances.
    let token = intent::new_token();
    instance_tags.insert(tags::INTENT.to_string(), token.clone());
    let run = RunInstanceRequest {
        region: req.region.clone(),
        name: req.name.clone(),
        ami_id,
        instance_type,
        architecture: arch,
        user_data: (report.resolution.method == Method::ScriptFallback)
            .then(|| req.template.provisioning_script()),
        root_volume_gb: req.template.instance_defaults.root_volume_gb,
        tags: instance_tags,
    };
    let instance = intent::create_once(
        || provider.run_instance(&run),
        || intent::find_instance(provider, &run.region, &token),
    )
    .await?;
    report.instance = Some(LaunchedInstance::from(&instance));
    Ok(report)
}

/// Copies a template's image into `target_region`, tags the copy with its provenance (some
/// backends drop tags on copy) and waits until it is available.
pub async fn copy_for_template(
    env: &ResolveEnv,
    template: &Template,
    plan: &CopyPlan,
    target_region: &str,
    journal: &dyn CopyJournal,
) -> Result<Image, LaunchError> {
    let provider = env.provider.as_ref();
    let source = provider
        .image(&plan.source_region, &plan.source_ami_id)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            what: format!("image {}", plan.source_ami_id),
            region: plan.source_region.clone(),
        })?;
    let mut tags = tags::provenance_tags(&source, &template.slug, &template.version.to_string());
    if let Some(l) = &plan.listing {
        tags.insert(tags::LISTING.to_string(), l.listing.clone());
        tags.insert(tags::LISTING_VERSION.to_string(), l.version.clone());
    }
    // One intent for this copy (see `launch`), recorded before the call: a lost answer or an
    // interruption never leaves two copies, nor one nobody tracks.
    let fresh = intent::new_token();
    let token = journal
        .requested(plan, target_region, &template.slug, fresh.clone())
        .map_err(LaunchError::Journal)?;
    let resumed = token != fresh;
    tags.insert(tags::INTENT.to_string(), token.clone());
    let request = CopyImageRequest {
        source_region: plan.source_region.clone(),
        source_image_id: plan.source_ami_id.clone(),
        target_region: target_region.to_string(),
        name: source.name.clone(),
        description: Some(intent::describe_with_intent(
            &format!(
                "cws copy of {} from {} for template {}",
                source.id, source.region, template.slug
            ),
            &token,
        )),
        tags: tags.clone(),
    };
    // An interrupted earlier request with this intent may have made the copy already.
    let earlier = if resumed {
        intent::find_image(provider, target_region, &request.name, &token).await?
    } else {
        None
    };
    let copy = match earlier {
        Some(copy) => copy,
        None => intent::create_once(
            || provider.copy_image(&request),
            || intent::find_image(provider, target_region, &request.name, &token),
        )
        .await
        .inspect_err(|e| journal.failed(&token, e))?,
    };
    journal.answered(&token, &copy, &template.slug, plan);
    intent::retry_idempotent(|| provider.create_tags(target_region, &copy.id, &tags)).await?;
    // One waiting loop for every lifecycle step: polls, fails at once on failed/invalid.
    let copy = cws_provider::wait::image_available(
        provider,
        target_region,
        &copy.id,
        &cws_provider::wait::WaitOptions::default(),
        &cws_provider::wait::NoProgress,
    )
    .await?;
    journal.done(&copy);
    Ok(copy)
}

/// A region's status in `cws ami test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionStatus {
    /// An image is in the region.
    Available,
    /// An image is in a fallback region and can be copied.
    CopyRequired,
    /// No image; script provisioning on a base image.
    ScriptFallback,
    /// Nothing can serve the template there.
    Unavailable,
    /// The provider failed for this region.
    Error,
}

/// One row of `cws ami test`.
#[derive(Debug, Clone, Serialize)]
pub struct RegionTest {
    /// Region.
    pub region: String,
    /// Status.
    pub status: RegionStatus,
    /// How it resolved.
    pub method: Method,
    /// Image (base image for script fallback).
    pub ami_id: Option<String>,
    /// Where the image is.
    pub source_region: Option<String>,
    /// Copy estimate when a copy is required.
    pub copy: Option<CopyPlan>,
    /// Seconds to a usable workstation.
    pub estimated_launch_seconds: Option<u64>,
    /// Why, from the deciding tier (or the provider error).
    pub detail: String,
    /// Seconds to a usable workstation by script provisioning instead, for a region without
    /// an image of its own (a copy is required, or nothing serves it under the template's
    /// strategy): the alternative to weigh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_alternative_seconds: Option<u64>,
}

/// Resolves a template in many regions together: every region's first wave in one round
/// trip, and a region's cross-region plan read from the other regions' answers rather than
/// asked again.
pub async fn test_regions(
    env: &ResolveEnv,
    template: &Template,
    regions: &[String],
    architecture: Option<Architecture>,
) -> Vec<RegionTest> {
    let resolver = Resolver::for_template(template);
    test_regions_with(env, &resolver, template, regions, architecture).await
}

/// [`test_regions`] with a given resolver (e.g. [`Resolver::eager`] or
/// [`Resolver::sequential`], for comparison).
pub async fn test_regions_with(
    env: &ResolveEnv,
    resolver: &Resolver,
    template: &Template,
    regions: &[String],
    architecture: Option<Architecture>,
) -> Vec<RegionTest> {
    let extras = TestExtras {
        architecture,
        ..TestExtras::default()
    };
    test_regions_known(env, resolver, template, regions, &extras).await
}

/// What [`test_regions_known`] adds to each region's request.
#[derive(Debug, Clone, Default)]
pub struct TestExtras<'a> {
    /// Required architecture.
    pub architecture: Option<Architecture>,
    /// Images known elsewhere to serve the template (a listing's regions).
    pub known_images: &'a [crate::KnownImage],
    /// Images refused by provenance (revoked or quarantined listing versions).
    pub refused: &'a [RefusedProvenance],
    /// The only image owners allowed (a policy).
    pub allowed_owners: Option<&'a crate::OwnerPolicy>,
}

/// [`test_regions_with`], with images known elsewhere to serve the template (a registry
/// listing's regions) for cross_region, and images refused by their provenance.
pub async fn test_regions_known(
    env: &ResolveEnv,
    resolver: &Resolver,
    template: &Template,
    regions: &[String],
    extras: &TestExtras<'_>,
) -> Vec<RegionTest> {
    let reqs: Vec<ResolveRequest> = regions
        .iter()
        .map(|region| {
            let mut req = ResolveRequest::new(template.clone(), region.clone());
            req.architecture = extras.architecture;
            req.known_images = extras.known_images.to_vec();
            req.refused = extras.refused.to_vec();
            req.allowed_owners = extras.allowed_owners.cloned();
            req
        })
        .collect();
    let resolutions = resolver.resolve_many(env, &reqs).await;
    regions
        .iter()
        .zip(resolutions)
        .map(|(region, r)| {
            let status = match &r.method {
                Method::Failed if r.failed_because_provider() => RegionStatus::Error,
                Method::Failed => RegionStatus::Unavailable,
                Method::CrossRegion => RegionStatus::CopyRequired,
                Method::ScriptFallback => RegionStatus::ScriptFallback,
                _ => RegionStatus::Available,
            };
            let detail = r.decision_detail().map(str::to_string).unwrap_or_else(|| {
                r.attempts
                    .iter()
                    .filter(|a| a.outcome != Outcome::Skipped)
                    .map(|a| format!("{}: {}", a.tier, a.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            RegionTest {
                region: region.clone(),
                status,
                method: r.method.clone(),
                ami_id: r.ami_id.clone(),
                source_region: r.source_region.clone(),
                copy: r.copy.clone(),
                estimated_launch_seconds: r.estimated_launch_seconds,
                detail,
                script_alternative_seconds: matches!(
                    status,
                    RegionStatus::CopyRequired | RegionStatus::Unavailable
                )
                .then(|| crate::tier::setup_seconds(template)),
            }
        })
        .collect()
}

/// Where a listed image comes from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Published by the cws project.
    Official,
    /// Owned by another account and shared with this one, or public. (A registry listing
    /// makes an image `community`: the CLI labels those from the registry.)
    Shared,
    /// Owned by this account (made or copied by the user) and not public (it may still be
    /// shared with chosen accounts).
    Private,
    /// Owned by this account and launchable by everyone.
    Public,
    /// An AWS Marketplace product.
    Marketplace,
}

/// One row of `cws ami list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListedImage {
    /// Image id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Template version the image carries (tag), if known.
    pub version: Option<String>,
    /// Region.
    pub region: String,
    /// Where it comes from.
    pub source: ImageSource,
    /// Architecture.
    pub architecture: Architecture,
    /// Creation date.
    #[serde(with = "cws_provider::ec2_time")]
    pub creation_date: chrono::DateTime<chrono::Utc>,
    /// State.
    pub state: ImageState,
    /// Whether it is deprecated now.
    pub deprecated: bool,
    /// The registry listing version it was made from (its `cws:listing` provenance tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_from: Option<ListedSource>,
}

/// A region the listing could not read.
#[derive(Debug, Clone, Serialize)]
pub struct RegionError {
    /// Region.
    pub region: String,
    /// What failed.
    pub error: String,
}

/// The result of `cws ami list`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageListing {
    /// Template slug.
    pub template: String,
    /// Images, sorted by region, then newest first.
    pub images: Vec<ListedImage>,
    /// Regions that could not be read.
    pub errors: Vec<RegionError>,
}

/// Lists the images that serve a template in the given regions: mapped ids, search matches
/// (including the user's copies) and Marketplace images.
pub async fn list_template_images(
    env: &ResolveEnv,
    template: &Template,
    regions: &[String],
) -> ImageListing {
    let now = chrono::Utc::now();
    let per_region = regions.iter().map(|region| async move {
        let r = list_region(env, template, region).await;
        (region.clone(), r)
    });
    // Whose images are the user's: asked beside the listing, not before it.
    let (listed, account) = futures::join!(join_all(per_region), env.provider.account_id());
    let account = account.ok().flatten();
    let mine = |owner: &str| account.as_deref() == Some(owner);
    let mut images = Vec::new();
    let mut errors = Vec::new();
    for (region, r) in listed {
        match r {
            Ok(imgs) => {
                for img in imgs {
                    let source = if mine(&img.owner_id) && img.public {
                        ImageSource::Public
                    } else if mine(&img.owner_id) {
                        ImageSource::Private
                    } else if !img.product_codes.is_empty() {
                        ImageSource::Marketplace
                    } else if img.owner_id == cws_template::CWS_PUBLISHER_ACCOUNT {
                        ImageSource::Official
                    } else {
                        ImageSource::Shared
                    };
                    images.push(ListedImage {
                        made_from: match (
                            img.tags.get(tags::LISTING),
                            img.tags.get(tags::LISTING_VERSION),
                        ) {
                            (Some(l), Some(v)) => Some(ListedSource {
                                listing: l.clone(),
                                version: v.clone(),
                            }),
                            _ => None,
                        },
                        deprecated: img.is_deprecated_at(now),
                        version: img.tags.get(tags::TEMPLATE_VERSION).cloned(),
                        id: img.id,
                        name: img.name,
                        region: img.region,
                        source,
                        architecture: img.architecture,
                        creation_date: img.creation_date,
                        state: img.state,
                    });
                }
            }
            Err(e) => errors.push(RegionError {
                region,
                error: e.to_string(),
            }),
        }
    }
    images.sort_by(|a, b| {
        a.region
            .cmp(&b.region)
            .then_with(|| b.creation_date.cmp(&a.creation_date))
            .then_with(|| a.id.cmp(&b.id))
    });
    ImageListing {
        template: template.slug.clone(),
        images,
        errors,
    }
}

async fn list_region(
    env: &ResolveEnv,
    template: &Template,
    region: &str,
) -> ProviderResult<Vec<Image>> {
    let p = env.provider.as_ref();
    let mut queries: Vec<ImageQuery> = Vec::new();
    let mut mapped: Vec<String> = Vec::new();
    if let Some(cfg) = &template.ami_config {
        if let Some(id) = cfg.ami_mappings.get(region) {
            mapped.push(id.clone());
        }
        if let Some(s) = &cfg.ami_search {
            queries.push(tier::search_query(s).include_deprecated(true));
        }
        if let Some(mp) = &cfg.marketplace
            && let Some(code) = &mp.product_code
        {
            queries
                .push(ImageQuery::owned_by([MARKETPLACE_OWNER_ALIAS]).product_code(code.clone()));
        }
    }
    // The user's own images for the template, with or without an ami_config (`ami create`).
    queries.push(
        ImageQuery::owned_by(["self"])
            .tag(tags::TEMPLATE, template.slug.clone())
            .include_deprecated(true),
    );
    let by_id = async {
        if mapped.is_empty() {
            Ok(Vec::new())
        } else {
            p.describe_images_by_id(region, &mapped).await
        }
    };
    let (by_id, searched) = futures::join!(
        by_id,
        join_all(queries.iter().map(|q| p.describe_images(region, q)))
    );
    let mut out: Vec<Image> = by_id?;
    for r in searched {
        for img in r? {
            if !out.iter().any(|o| o.id == img.id) {
                out.push(img);
            }
        }
    }
    Ok(out)
}
