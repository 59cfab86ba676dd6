//! `cws ami create|create-multi|copy|share|info|deregister|status`: thin commands over
//! `cws_lifecycle`.
//!
//! Each command parses its flags, calls one service, and prints the report: one JSON document
//! on stdout under `--json`, otherwise a provider line and readable text. Waits show a spinner
//! per region on stderr when stderr is a terminal (never under `--json`), and race Ctrl-C:
//! interrupting stops waiting, while the images in flight stay recorded in
//! `$CWS_HOME/pending-images.json` for `cws ami status`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use cws_lifecycle as lifecycle;
use cws_lifecycle::{
    self, CopyRequest, CreateMultiRequest, CreateRequest, DeregisterRequest, NextStep, NoProgress,
    PendingImage, PendingImages, PendingJob, Progress, ProgressEvent, ShareRequest, SnapshotAction,
    WaitOptions, describe_permission,
};
use cws_provider::{ImageCatalogExt as _, LaunchPermission};
use cws_template::Template;
use cws_template::script::shell_quote;
use cws_util::duration::format_seconds as human_seconds;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{AmiCopyArgs, AmiCreateArgs, AmiCreateMultiArgs, AmiShareArgs};
use crate::context::Ctx;
use crate::error::{Reported, UsageError};
use crate::output::{self, Table, provider_line};
use crate::sanitize::{Shown, shown_lines};

/// Parses `--timeout`: a number with an optional unit `s`, `m` or `h` (seconds by default).
pub fn parse_timeout(s: Option<&str>) -> Result<WaitOptions> {
    let Some(s) = s else {
        return Ok(WaitOptions::default());
    };
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit.trim() {
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        _ => 0,
    };
    match num.parse::<u64>() {
        Ok(n) if scale > 0 => Ok(WaitOptions::with_timeout(Duration::from_secs(
            n.saturating_mul(scale),
        ))),
        _ => Err(UsageError(format!(
            "--timeout: `{s}` is not a duration; use e.g. 90s, 30m or 1h"
        ))
        .into()),
    }
}

/// Parses repeated `--tag KEY=VALUE`.
pub fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.to_string());
            }
            _ => {
                return Err(UsageError(format!(
                    "--tag: `{t}` is not KEY=VALUE (e.g. --tag project=genomics)"
                ))
                .into());
            }
        }
    }
    Ok(out)
}

/// Spinners on stderr, one per region.
struct Spinners {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Spinners {
    fn new() -> Spinners {
        Spinners {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, region: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(region.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                // The template is a literal that the tests exercise; fall back to the default
                // style rather than fail a wait over a display detail.
                if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:16} {msg}") {
                    bar.set_style(style);
                }
                bar.set_prefix(region.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }
}

impl Progress for Spinners {
    fn event(&self, event: &ProgressEvent) {
        let bar = self.bar(event.region());
        match event {
            ProgressEvent::WaitingForInstance {
                instance_id,
                state,
                elapsed_s,
                ..
            } => bar.set_message(format!(
                "waiting for {} to run ({state}, {})",
                Shown(instance_id),
                human_seconds(*elapsed_s)
            )),
            ProgressEvent::WaitingForProvisioning {
                instance_id,
                elapsed_s,
                ..
            } => bar.set_message(format!(
                "{} runs; waiting for its provisioning script ({})",
                Shown(instance_id),
                human_seconds(*elapsed_s)
            )),
            ProgressEvent::Started {
                image_id, action, ..
            } => bar.set_message(format!(
                "{} {}",
                if action == "copy" {
                    "copying to"
                } else {
                    "creating"
                },
                Shown(image_id)
            )),
            ProgressEvent::Waiting {
                image_id,
                state,
                elapsed_s,
                ..
            } => bar.set_message(format!(
                "{} {state} ({})",
                Shown(image_id),
                human_seconds(*elapsed_s)
            )),
            ProgressEvent::Available { image_id, .. } => {
                bar.finish_with_message(format!("✓ {} available", Shown(image_id)));
            }
            ProgressEvent::Skipped { image_id, .. } => {
                bar.finish_with_message(format!("✓ {} already there", Shown(image_id)));
            }
            ProgressEvent::Failed { error, .. } => {
                bar.abandon_with_message(format!("✗ {}", Shown(error)));
            }
        }
    }
}

/// Spinners only for people: stderr must be a terminal and the output not JSON.
pub(crate) fn progress(ctx: &Ctx) -> Box<dyn Progress> {
    if !ctx.json && std::io::stderr().is_terminal() {
        Box::new(Spinners::new())
    } else {
        Box::new(NoProgress)
    }
}

/// Runs a service future, stopping at Ctrl-C. Dropping the future loses nothing: the
/// services record images in flight before they wait on them.
async fn interruptible<T>(fut: impl Future<Output = T>, pending: &PendingImages) -> Result<T> {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler could be installed: never fire, let the work finish.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = fut => Ok(r),
        () = ctrl_c => {
            eprintln!("\n{}", interrupted_message(pending));
            Err(Reported(130).into())
        }
    }
}

/// What Ctrl-C during a wait leaves behind, in words.
fn interrupted_message(pending: &PendingImages) -> String {
    match pending.list() {
        Ok(images) if !images.is_empty() => {
            let mut text = format!(
                "interrupted: stopped waiting. Nothing is lost: {} image(s) requested or in \
                 flight are recorded in {}; `cws ami status` shows them and how to finish or \
                 clean up",
                images.len(),
                Shown(pending.path().display())
            );
            for image in &images {
                if let Some(cmd) = finish_command(image) {
                    text.push_str(&format!(
                        "\n  {} ({}): `{}` finishes it",
                        Shown(shown_id(image)),
                        Shown(&image.region),
                        Shown(&cmd)
                    ));
                }
            }
            text
        }
        Ok(_) => "interrupted: stopped waiting before any image was requested; nothing to clean up"
            .to_string(),
        Err(e) => format!("interrupted: stopped waiting ({})", Shown(&e)),
    }
}

/// The command that runs a recorded job again (waiting for what is in flight and doing only
/// what is missing).
pub fn job_command(job: &PendingJob) -> String {
    match job {
        PendingJob::Create {
            template,
            instance,
            name,
            region,
            regions,
            public,
        } => {
            let mut cmd = format!(
                "cws ami {} {} {} --name {} --region {region}",
                if regions.is_empty() {
                    "create"
                } else {
                    "create-multi"
                },
                shell_quote(template),
                shell_quote(instance),
                shell_quote(name),
            );
            if !regions.is_empty() {
                cmd.push_str(&format!(" --regions {}", regions.join(",")));
            }
            if *public {
                cmd.push_str(" --public");
            }
            cmd
        }
        PendingJob::Copy {
            source_image,
            source_region,
            target_region,
        } => format!("cws ami copy {source_image} --from {source_region} --to {target_region}"),
        _ => "the same cws command again".to_string(),
    }
}

/// The command that finishes a recorded image's job: from its job, or the command an earlier
/// cws recorded.
fn finish_command(record: &PendingImage) -> Option<String> {
    match (&record.job, &record.legacy_finish) {
        (Some(job), _) => Some(job_command(job)),
        (None, Some(cmd)) => Some(cmd.clone()),
        (None, None) => None,
    }
}

/// A recorded image's id, or what stands for it while the creating call has not answered.
fn shown_id(record: &PendingImage) -> &str {
    match &record.image_id {
        Some(id) => id,
        None => "(requested)",
    }
}

/// The command that cleans a recorded image up instead.
fn cleanup_command(record: &PendingImage) -> String {
    format!(
        "cws ami deregister {} --region {}",
        shown_id(record),
        record.region
    )
}

/// What to do next about a recorded image, in words.
fn next_words(step: NextStep, record: &PendingImage) -> String {
    let finish = finish_command(record)
        .map(|c| format!("`{c}`"))
        .unwrap_or_else(|| "running the same command again".into());
    match step {
        NextStep::Retry => "could not read the image; try again".to_string(),
        NextStep::StartOver => {
            format!("the image no longer exists; {finish} starts over if you still want it")
        }
        NextStep::WaitAndFinish => {
            format!("still being made; {finish} waits for it and finishes the rest")
        }
        NextStep::Finish => {
            format!("available; {finish} finishes whatever else the command had to do")
        }
        NextStep::CleanUp => format!("failed; clean it up with `{}`", cleanup_command(record)),
        NextStep::Unconfirmed => format!(
            "requested, but the cloud does not list it: the request may not have arrived; \
             {finish} tries again with the same intent and never makes a second image"
        ),
        _ => format!("see {finish}"),
    }
}

/// The image name: `--name`, else "<template name> <version> <UTC time to the second>" in the
/// characters EC2 accepts in image names.
fn image_name(template: &Template, a: &AmiCreateArgs) -> Result<String> {
    match &a.name {
        Some(n) if n.trim().is_empty() => Err(UsageError(
            "--name must not be empty; images need a name (e.g. \"My Setup\"), or leave \
             --name out for \"<template> <version> <time>\""
                .into(),
        )
        .into()),
        Some(n) => Ok(n.clone()),
        None => Ok(lifecycle::default_image_name(template, chrono::Utc::now())),
    }
}

fn create_request(ctx: &Ctx, template: Template, a: &AmiCreateArgs) -> Result<CreateRequest> {
    let name = image_name(&template, a)?;
    if a.name.is_none() {
        eprintln!(
            "naming the image `{}` (pass --name to choose)",
            crate::sanitize::Shown(&name)
        );
    }
    Ok(CreateRequest {
        template,
        instance: a.instance.clone(),
        region: ctx.region()?,
        name,
        description: a.description.clone(),
        public: a.public,
        wait_for_running: a.wait_for_running,
        no_reboot: a.no_reboot,
        tags: parse_tags(&a.tags)?,
        wait: parse_timeout(a.timeout.as_deref())?,
    })
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {}", Shown(w));
    }
}

/// The `ami_config` block as YAML, ready to paste into a template.
fn ami_config_yaml(cfg: &cws_template::AmiConfig) -> String {
    let doc = BTreeMap::from([("ami_config", cfg)]);
    serde_norway::to_string(&doc).unwrap_or_default()
}

fn print_ami_config_hint(t: &Template, cfg: &cws_template::AmiConfig) {
    if t.ami_config.is_none() {
        println!(
            "\n{} has no ami_config, so it still provisions by script. To launch it from this image, add to the template:\n",
            Shown(&t.slug)
        );
    } else {
        println!(
            "\nTo pin this image in {}, its ami_config becomes:\n",
            Shown(&t.slug)
        );
    }
    print!("{}", shown_lines(&ami_config_yaml(cfg)));
}

fn simulated(info: &cws_provider::ProviderInfo) -> &'static str {
    if info.simulated { " [simulated]" } else { "" }
}

/// `--public` publishes a public listing: planned (identity, a free region) before anything
/// is made.
async fn create_publish_plan(
    ctx: &Ctx,
    template: &Template,
    a: &AmiCreateArgs,
    regions: &[&str],
) -> Result<Option<super::registry::PublishPlan>> {
    if !a.public {
        return Ok(None);
    }
    let taken: Vec<(&str, Option<&str>)> = regions.iter().map(|r| (*r, None)).collect();
    let plan = super::registry::plan_publish(
        ctx,
        "`--public` (which publishes a listing)",
        template,
        cws_registry::Visibility::Public,
        &a.publish,
        &taken,
    )
    .await?;
    Ok(Some(plan.named(
        a.name.as_deref().unwrap_or(&template.name),
        a.description.as_deref(),
    )))
}

/// Publishes the images `ids` (region, id) with `plan`.
async fn publish_images(
    ctx: &Ctx,
    env: &cws_resolver::ResolveEnv,
    plan: super::registry::PublishPlan,
    ids: &[(String, String)],
) -> Result<super::registry::ListingOut> {
    let mut images = Vec::new();
    for (region, id) in ids {
        if let Some(i) = env.provider.image(region, id).await? {
            images.push(i);
        }
    }
    let listing = plan.publish(&images.iter().collect::<Vec<_>>()).await?;
    super::audit::record(
        ctx,
        "publish",
        &format!("{}@{}", listing.id, listing.version),
        serde_json::json!({
            "visibility": listing.visibility.to_string(),
            "revision": listing.revision,
            "signed_by": listing.signed_by,
        }),
    );
    Ok(listing)
}

pub async fn create(ctx: &Ctx, a: &AmiCreateArgs) -> Result<()> {
    let loaded = ctx.store.get(&a.template)?;
    let req = create_request(ctx, loaded.template.clone(), a)?;
    ctx.check_policy_region(&req.region)?;
    let publish = create_publish_plan(ctx, &loaded.template, a, &[req.region.as_str()]).await?;
    let env = ctx.env().await?;
    let pending = PendingImages::open(&ctx.home);
    let progress = progress(ctx);
    let report = interruptible(
        lifecycle::create(
            &env,
            &req,
            &ctx.consent(),
            Some(&pending),
            progress.as_ref(),
        ),
        &pending,
    )
    .await??;
    warn_all(&report.warnings);
    super::audit::record(
        ctx,
        "create",
        &report.image.ami_id,
        serde_json::json!({
            "region": report.image.region,
            "name": report.image.name,
            "template": report.image.template,
            "instance_id": report.image.instance_id,
            "public": report.image.public,
            "reused": report.image.reused,
        }),
    );
    let listing = match publish {
        Some(plan) => Some(
            publish_images(
                ctx,
                &env,
                plan,
                &[(report.image.region.clone(), report.image.ami_id.clone())],
            )
            .await?,
        ),
        None => None,
    };
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(l) = &listing {
            v["listing"] = serde_json::to_value(l)?;
        }
        return output::json(&v);
    }
    let info = env.provider.info();
    let i = &report.image;
    println!("{}", provider_line(&info));
    println!(
        "{} {} (`{}`) in {} from {} for {} {}: {}{}{}",
        if i.reused { "Found" } else { "Created" },
        Shown(&i.ami_id),
        Shown(&i.name),
        Shown(&i.region),
        Shown(&i.instance_id),
        Shown(&i.template),
        Shown(&i.template_version),
        i.state,
        if i.public { ", public" } else { "" },
        simulated(&info)
    );
    println!(
        "`cws ami list --template {} --region {}` lists it.",
        Shown(&i.template),
        Shown(&i.region)
    );
    print_ami_config_hint(&loaded.template, &report.ami_config);
    if let Some(l) = &listing {
        println!();
        super::registry::print_published(l);
    }
    Ok(())
}

pub async fn create_multi(ctx: &Ctx, a: &AmiCreateMultiArgs) -> Result<()> {
    let loaded = ctx.store.get(&a.create.template)?;
    for r in a.regions.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        cws_regions::lookup(r).map_err(|e| crate::input_hints::usage("--regions", &e))?;
    }
    let req = CreateMultiRequest {
        create: create_request(ctx, loaded.template.clone(), &a.create)?,
        regions: a.regions.clone(),
        concurrency: lifecycle::COPY_CONCURRENCY,
    };
    let mut all_regions: Vec<&str> = vec![req.create.region.as_str()];
    all_regions.extend(a.regions.iter().map(|r| r.trim()).filter(|r| !r.is_empty()));
    for r in &all_regions {
        ctx.check_policy_region(r)?;
    }
    let publish = create_publish_plan(ctx, &loaded.template, &a.create, &all_regions).await?;
    let env = ctx.env().await?;
    let pending = PendingImages::open(&ctx.home);
    let progress = progress(ctx);
    let report = interruptible(
        lifecycle::create_multi(
            &env,
            &req,
            &ctx.consent(),
            Some(&pending),
            progress.as_ref(),
        ),
        &pending,
    )
    .await??;
    warn_all(&report.warnings);
    for r in &report.regions {
        if let Some(id) = &r.ami_id {
            super::audit::record(
                ctx,
                if r.region == report.source_region {
                    "create"
                } else {
                    "copy"
                },
                id,
                serde_json::json!({
                    "region": r.region,
                    "name": report.name,
                    "template": report.template,
                    "source_region": report.source_region,
                }),
            );
        }
    }
    // Every region that holds the image is listed (a re-run adds the rest).
    let listing = match publish {
        Some(plan) => {
            let ids: Vec<(String, String)> = report
                .regions
                .iter()
                .filter(|r| r.state == Some(cws_provider::ImageState::Available))
                .filter_map(|r| r.ami_id.clone().map(|id| (r.region.clone(), id)))
                .collect();
            Some(publish_images(ctx, &env, plan, &ids).await?)
        }
        None => None,
    };
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        v["finish"] = report.finish.as_ref().map(job_command).into();
        if let Some(l) = &listing {
            v["listing"] = serde_json::to_value(l)?;
        }
        output::json(&v)?;
    } else {
        let info = env.provider.info();
        println!("{}", provider_line(&info));
        println!(
            "{} `{}` for {} from {}{}",
            if report.complete {
                "Image in every region:"
            } else {
                "Image in some regions:"
            },
            Shown(&report.name),
            Shown(&report.template),
            Shown(&report.master.instance_id),
            simulated(&info)
        );
        let mut t = Table::new(["REGION", "OUTCOME", "AMI", "STATE", "ERROR"]);
        for r in &report.regions {
            t.row([
                r.region.clone(),
                serde_json::to_value(r.outcome)?
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r.ami_id.clone().unwrap_or_else(|| "-".into()),
                r.state.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                r.error.clone().unwrap_or_default(),
            ]);
        }
        t.print();
        if report.complete {
            print_ami_config_hint(&loaded.template, &report.ami_config);
        }
        if let Some(l) = &listing {
            println!();
            super::registry::print_published(l);
        }
        for r in report.failed() {
            eprintln!(
                "error: {}: {}",
                Shown(&r.region),
                Shown(r.error.as_deref().unwrap_or("failed"))
            );
        }
        if let Some(job) = &report.finish {
            eprintln!(
                "run `{}` again to finish only the failed regions",
                Shown(job_command(job))
            );
        }
    }
    if report.complete {
        Ok(())
    } else {
        Err(Reported(1).into())
    }
}

pub async fn copy(ctx: &Ctx, a: &AmiCopyArgs) -> Result<()> {
    let from = match &a.from {
        Some(f) => {
            cws_regions::lookup(f).map_err(|e| crate::input_hints::usage("--from", &e))?;
            f.clone()
        }
        None => ctx.region()?,
    };
    cws_regions::lookup(&a.to).map_err(|e| crate::input_hints::usage("--to", &e))?;
    ctx.check_policy_region(&a.to)?;
    // Nothing is spent copying a revoked or quarantined listing image.
    if let Some(r) = super::registry::refused_sources(ctx)
        .await?
        .into_iter()
        .find(|r| r.ami_ids.contains(&a.ami))
    {
        return Err(UsageError(format!("refused: {} is {}", a.ami, r.reason)).into());
    }
    // A copy of an image this user lists is signed as the listing's next revision: the key is
    // ready (its passphrase asked) before anything is spent.
    let key = super::registry::copy_signing_key(ctx, &a.ami).await?;
    let req = CopyRequest {
        image_id: a.ami.clone(),
        source_region: from,
        target_region: a.to.clone(),
        wait: parse_timeout(a.timeout.as_deref())?,
    };
    let env = ctx.env().await?;
    let pending = PendingImages::open(&ctx.home);
    let progress = progress(ctx);
    let consent = ctx.consent();
    let report = interruptible(
        lifecycle::copy_to_region(&env, &req, &consent, Some(&pending), progress.as_ref()),
        &pending,
    )
    .await??;
    if !report.reused {
        super::audit::record(
            ctx,
            "copy",
            &report.ami_id,
            serde_json::json!({
                "source_ami": report.source_ami,
                "source_region": report.source_region,
                "region": report.region,
            }),
        );
    }
    // A copy of an image listed by this user extends the same version with its region.
    let listed = match env.provider.image(&report.region, &report.ami_id).await? {
        Some(copy) if copy.state == cws_provider::ImageState::Available => {
            match super::registry::add_copy_region(ctx, &report.source_ami, &copy, key.as_ref())
                .await
            {
                Ok(listed) => listed,
                // The copy is made and paid for: say what the registry did not record.
                Err(e) => Some(Err(format!(
                    "the copy {} was made, but the registry did not list it: {e:#}",
                    report.ami_id
                ))),
            }
        }
        _ => None,
    };
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        match &listed {
            Some(Ok(p)) => v["listing"] = serde_json::to_value(p)?,
            Some(Err(why)) => v["warnings"] = serde_json::json!([why]),
            None => {}
        }
        return output::json(&v);
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    if let Some(Ok(p)) = &listed
        && p.changed
    {
        super::audit::record(
            ctx,
            "publish",
            &format!("{}@{}", p.listing, p.version),
            serde_json::json!({"region": p.region, "ami_id": p.ami_id, "revision": p.revision}),
        );
    }
    match &listed {
        Some(Ok(p)) if p.changed => println!(
            "Added {} to listing {}@{} (revision {})",
            Shown(&p.region),
            Shown(p.listing.to_string()),
            Shown(&p.version),
            p.revision
        ),
        Some(Err(why)) => eprintln!("warning: {}", Shown(why)),
        _ => {}
    }
    if report.reused {
        println!(
            "{} already holds a copy of {}: {} ({}); nothing was copied{}",
            Shown(&report.region),
            Shown(&report.source_ami),
            Shown(&report.ami_id),
            report.state,
            simulated(&info)
        );
    } else {
        println!(
            "Copied {} from {} to {} as {} ({}; estimated ~{} + {}, tagged with its provenance){}",
            Shown(&report.source_ami),
            Shown(&report.source_region),
            Shown(&report.region),
            Shown(&report.ami_id),
            report.state,
            human_seconds(report.estimate.estimated_seconds),
            report.estimate.estimated_cost_usd,
            simulated(&info)
        );
    }
    Ok(())
}

/// The listing visibility `ami share` publishes with, if it publishes.
fn share_visibility(a: &AmiShareArgs) -> Result<Option<cws_registry::Visibility>> {
    use cws_registry::Visibility;
    if a.revoke {
        return Ok(None);
    }
    Ok(if let Some(c) = &a.community {
        Some(
            format!("community:{}", c.trim())
                .parse::<Visibility>()
                .map_err(|e| UsageError(format!("--community: {e}")))?,
        )
    } else if let Some(o) = &a.institution {
        Some(
            format!("institutional:{}", o.trim())
                .parse::<Visibility>()
                .map_err(|e| UsageError(format!("--institution: {e}")))?,
        )
    } else if a.private {
        Some(Visibility::Private)
    } else if a.public {
        Some(Visibility::Public)
    } else {
        None
    })
}

pub async fn share(ctx: &Ctx, a: &AmiShareArgs) -> Result<()> {
    use cws_registry::Visibility;
    // One audience at a time; an institution names its organization with --org-arn.
    let kinds = [
        (!a.accounts.is_empty(), "--account"),
        (a.org_arn.is_some() && a.institution.is_none(), "--org-arn"),
        (a.public, "--public"),
        (a.community.is_some(), "--community"),
        (a.institution.is_some(), "--institution"),
        (a.private, "--private"),
    ];
    let given: Vec<&str> = kinds
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    if given.len() > 1 {
        return Err(UsageError(format!(
            "share with one audience at a time, not {} (an institution's organization goes \
             with --institution ORG --org-arn ARN)",
            given.join(" and ")
        ))
        .into());
    }
    let visibility = share_visibility(a)?;
    // Identity first: a publish without one changes nothing, not even a permission.
    if visibility.is_some() {
        super::registry::require_identity(ctx, "publishing a listing").await?;
    }
    let mut permissions: Vec<LaunchPermission> = a
        .accounts
        .iter()
        .map(|id| LaunchPermission::Account(id.trim().to_string()))
        .collect();
    if let Some(arn) = &a.org_arn {
        permissions.push(LaunchPermission::Organization(arn.trim().to_string()));
    }
    // On AWS a community is not an IAM group: EC2's "Community AMIs" are public images.
    if a.public || a.community.is_some() {
        permissions.push(LaunchPermission::Public);
    }
    let mut warnings = Vec::new();
    if let Some(org) = &a.institution
        && a.org_arn.is_none()
    {
        warnings.push(format!(
            "the listing is for members of {org}, but no organization was granted launch              permission, so they cannot launch it yet: add --org-arn ARN (their AWS              Organizations ARN)"
        ));
    }
    if permissions.is_empty() && visibility.is_none() {
        return Err(UsageError(
            "say who to share with: --account ID (repeatable), --org-arn ARN, --public, \
             --community NAME, --institution ORG or --private"
                .into(),
        )
        .into());
    }
    let region = ctx.region()?;
    let env = ctx.env().await?;
    // What would be published is decided (and a taken region refused) before any change.
    let publishing = match &visibility {
        Some(v) => {
            let image = env.provider.image(&region, &a.ami).await?.ok_or_else(|| {
                cws_provider::ProviderError::NotFound {
                    what: format!("image {}", a.ami),
                    region: region.clone(),
                }
            })?;
            let template = super::registry::template_of_image(ctx, &image)?;
            if matches!(v, Visibility::Public | Visibility::Community(_)) {
                eprintln!("{}", super::registry::SHARING_CHECKLIST);
                for w in super::registry::security_review(&template) {
                    eprintln!("warning: {}", Shown(&w));
                }
            }
            let plan = super::registry::plan_publish(
                ctx,
                "publishing a listing",
                &template,
                v.clone(),
                &a.publish,
                &[(region.as_str(), Some(a.ami.as_str()))],
            )
            .await?;
            Some((plan, image))
        }
        None => None,
    };
    let report = if permissions.is_empty() {
        None
    } else {
        let req = ShareRequest {
            image_id: a.ami.clone(),
            region: region.clone(),
            permissions,
            revoke: a.revoke,
        };
        Some(lifecycle::share(&env, &req, &ctx.consent()).await?)
    };
    if let Some(r) = &report {
        super::audit::record(
            ctx,
            "share",
            &a.ami,
            serde_json::json!({
                "region": region,
                "revoke": a.revoke,
                "changed": r.changed.iter().map(describe_permission).collect::<Vec<_>>(),
            }),
        );
    }
    let mut listing_error = None;
    let listing = match publishing {
        Some((plan, image)) => match plan.publish(&[&image]).await {
            Ok(l) => Some(l),
            // The permission is already granted: report it, and what the registry did not do.
            Err(e) => {
                listing_error = Some(format!("the registry did not list it: {e:#}"));
                None
            }
        },
        None => None,
    };
    if let Some(l) = &listing {
        super::audit::record(
            ctx,
            "publish",
            &format!("{}@{}", l.id, l.version),
            serde_json::json!({
                "visibility": l.visibility.to_string(),
                "revision": l.revision,
                "regions": l.regions.iter().map(|r| (r.region.clone(), r.ami_id.clone())).collect::<std::collections::BTreeMap<_, _>>(),
                "signed_by": l.signed_by,
            }),
        );
    }
    let complete = report.as_ref().is_none_or(|r| r.complete()) && listing_error.is_none();
    if let Some(e) = &listing_error {
        warnings.push(e.clone());
    }
    if ctx.json {
        let mut v = match &report {
            Some(r) => serde_json::to_value(r)?,
            None => serde_json::json!({"ami_id": a.ami, "region": region}),
        };
        if let Some(l) = &listing {
            v["listing"] = serde_json::to_value(l)?;
        }
        if !warnings.is_empty() {
            v["warnings"] = serde_json::to_value(&warnings)?;
        }
        output::json(&v)?;
        return finished(complete);
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    for w in &warnings {
        eprintln!("warning: {}", Shown(w));
    }
    let Some(report) = report else {
        if let Some(l) = &listing {
            super::registry::print_published(l);
            if l.visibility == Visibility::Private {
                println!("   No launch permission was changed: only you can launch it.");
            }
        }
        return finished(complete);
    };
    println!(
        "{} launch permission on {} in {} {}: {}{}",
        if a.revoke { "Revoked" } else { "Granted" },
        Shown(&report.ami_id),
        Shown(&report.region),
        if a.revoke { "from" } else { "to" },
        Shown(
            report
                .changed
                .iter()
                .map(describe_permission)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        simulated(&info)
    );
    println!(
        "Shared with now: {}",
        Shown(shared_with(&report.launch_permissions))
    );
    println!("Snapshots: {}", Shown(&report.snapshots.detail));
    snapshot_failures(&report.snapshots);
    if let Some(l) = &listing {
        if let Some(c) = &a.community {
            println!("✅ AMI shared with {} community", Shown(c));
        }
        super::registry::print_published(l);
    }
    finished(report.complete())
}

/// Errors on stderr for the snapshots that could not be changed.
fn snapshot_failures(snapshots: &SnapshotAction) {
    for f in &snapshots.failed {
        eprintln!(
            "error: snapshot {}: {}",
            Shown(&f.snapshot_id),
            Shown(&f.error)
        );
    }
}

/// Partial success (the image changed, some of its snapshots did not) is reported in full
/// and exits 1, as `create-multi` does for failed regions.
fn finished(complete: bool) -> Result<()> {
    if complete {
        Ok(())
    } else {
        Err(Reported(1).into())
    }
}

fn shared_with(perms: &[LaunchPermission]) -> String {
    if perms.is_empty() {
        "nobody else (private)".into()
    } else {
        perms
            .iter()
            .map(describe_permission)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn info(ctx: &Ctx, ami: &str) -> Result<()> {
    let region = ctx.region()?;
    let env = ctx.env().await?;
    let report = lifecycle::image_info(&env, &region, ami).await?;
    let listing = super::registry::listing_for_image(ctx, ami).await?;
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        v["listing"] = serde_json::to_value(&listing)?;
        return output::json(&v);
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    if let Some(l) = &listing {
        print!("{}", super::registry::render_listing(ctx, l));
        println!();
    }
    let i = &report.image;
    let mut t = Table::new(["FIELD", "VALUE"]);
    t.row(["id", i.id.as_str()]);
    t.row(["name", i.name.as_str()]);
    t.row(["region", i.region.as_str()]);
    t.row(["state", i.state.as_str()]);
    t.row(["owner", i.owner_id.as_str()]);
    t.row(["architecture", i.architecture.as_str()]);
    t.row(["created", &cws_provider::ec2_time::format(&i.creation_date)]);
    if let Some(d) = &i.deprecation_time {
        t.row(["deprecated from", &cws_provider::ec2_time::format(d)]);
    }
    if let Some(d) = &i.description {
        t.row(["description", d.as_str()]);
    }
    t.row([
        "size".to_string(),
        format!(
            "{} GiB ({}/month storage)",
            report.size_gb, report.monthly_storage_cost
        ),
    ]);
    t.row([
        "snapshots".to_string(),
        if i.snapshot_ids.is_empty() {
            "-".to_string()
        } else {
            i.snapshot_ids.join(", ")
        },
    ]);
    t.row([
        "shared with".to_string(),
        match (&report.shared_with, &report.shared_with_error) {
            (Some(p), _) => shared_with(p),
            (None, Some(e)) => format!("unknown ({e})"),
            (None, None) => "unknown".into(),
        },
    ]);
    for (k, v) in &i.tags {
        t.row([format!("tag {k}"), v.clone()]);
    }
    t.print();
    Ok(())
}

pub async fn deregister(ctx: &Ctx, ami: &str, delete_snapshots: bool) -> Result<()> {
    let req = DeregisterRequest {
        image_id: ami.to_string(),
        region: ctx.region()?,
        delete_snapshots,
    };
    let env = ctx.env().await?;
    let pending = PendingImages::open(&ctx.home);
    let consent = ctx.consent();
    let report = lifecycle::deregister(&env, &req, &consent, Some(&pending)).await?;
    super::audit::record(
        ctx,
        "deregister",
        ami,
        serde_json::json!({"region": req.region, "delete_snapshots": delete_snapshots}),
    );
    if ctx.json {
        output::json(&report)?;
        return finished(report.complete());
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    println!(
        "Deregistered {} (`{}`) in {}{}",
        Shown(&report.ami_id),
        Shown(&report.name),
        Shown(&report.region),
        simulated(&info)
    );
    if !report.snapshots.snapshot_ids.is_empty() {
        println!(
            "Snapshots {}: {}",
            Shown(report.snapshots.snapshot_ids.join(", ")),
            Shown(&report.snapshots.detail)
        );
        if !delete_snapshots {
            println!("Pass --delete-snapshots when deregistering to delete them with the image.");
        }
    }
    snapshot_failures(&report.snapshots);
    finished(report.complete())
}

pub async fn status(ctx: &Ctx) -> Result<()> {
    let env = ctx.env().await?;
    let pending = PendingImages::open(&ctx.home);
    let report = lifecycle::pending_status(&env, &pending).await?;
    if ctx.json {
        let mut v = serde_json::to_value(&report)?;
        if let Some(rows) = v["images"].as_array_mut() {
            for (row, s) in rows.iter_mut().zip(&report.images) {
                row["finish"] = finish_command(&s.record).into();
                row["cleanup"] = cleanup_command(&s.record).into();
                row["next"] = next_words(s.next, &s.record).into();
            }
        }
        return output::json(&v);
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    if report.images.is_empty() {
        println!(
            "No images in flight (nothing recorded in {}).",
            Shown(report.file.display())
        );
        return Ok(());
    }
    let mut t = Table::new(["IMAGE", "REGION", "NAME", "COMMAND", "STATE", "RECORDED"]);
    for s in &report.images {
        t.row([
            shown_id(&s.record).to_string(),
            s.record.region.clone(),
            s.record.name.clone(),
            s.record.operation.clone(),
            match (s.state, s.next) {
                (Some(st), _) => st.to_string(),
                (None, NextStep::Unconfirmed) => "not listed".into(),
                (None, _) => "gone".into(),
            },
            s.record.started_at.chars().take(19).collect(),
        ]);
    }
    t.print();
    for s in &report.images {
        println!(
            "{} ({}): {}",
            Shown(shown_id(&s.record)),
            Shown(&s.record.region),
            Shown(next_words(s.next, &s.record))
        );
        if let Some(e) = &s.error {
            eprintln!(
                "error: {} ({}): {}",
                Shown(shown_id(&s.record)),
                Shown(&s.record.region),
                Shown(e)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_job(name: &str, regions: &[&str]) -> PendingJob {
        PendingJob::Create {
            template: "python-research".into(),
            instance: "box".into(),
            name: name.into(),
            region: "us-east-1".into(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            public: false,
        }
    }

    fn record(job: Option<PendingJob>, legacy: Option<&str>) -> PendingImage {
        PendingImage {
            image_id: Some("ami-0123456789abcdef0".into()),
            region: "us-east-1".into(),
            name: "n".into(),
            operation: "create".into(),
            template: Some("python-research".into()),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            job,
            legacy_finish: legacy.map(str::to_string),
            intent: None,
        }
    }

    #[test]
    fn jobs_are_worded_as_commands_that_paste_into_a_shell() {
        assert_eq!(
            job_command(&create_job("Slow Image", &[])),
            "cws ami create python-research box --name 'Slow Image' --region us-east-1"
        );
        assert_eq!(
            job_command(&create_job("Interrupted", &["us-east-1", "us-west-2"])),
            "cws ami create-multi python-research box --name Interrupted --region us-east-1 \
             --regions us-east-1,us-west-2"
        );
        let mut public = create_job("it's", &[]);
        if let PendingJob::Create { public: p, .. } = &mut public {
            *p = true;
        }
        assert_eq!(
            job_command(&public),
            r"cws ami create python-research box --name 'it'\''s' --region us-east-1 --public"
        );
        assert_eq!(
            job_command(&PendingJob::Copy {
                source_image: "ami-0123456789abcdef0".into(),
                source_region: "us-east-1".into(),
                target_region: "eu-west-1".into(),
            }),
            "cws ami copy ami-0123456789abcdef0 --from us-east-1 --to eu-west-1"
        );
    }

    #[test]
    fn next_steps_name_the_command_that_finishes_or_cleans_up() {
        let r = record(Some(create_job("Slow Image", &[])), None);
        let finish = "`cws ami create python-research box --name 'Slow Image' --region us-east-1`";
        assert_eq!(
            next_words(NextStep::WaitAndFinish, &r),
            format!("still being made; {finish} waits for it and finishes the rest")
        );
        assert!(next_words(NextStep::Finish, &r).contains(finish));
        assert!(next_words(NextStep::StartOver, &r).contains(finish));
        assert_eq!(
            next_words(NextStep::CleanUp, &r),
            "failed; clean it up with `cws ami deregister ami-0123456789abcdef0 --region us-east-1`"
        );
        // A record from an earlier cws keeps the command it recorded.
        let old = record(None, Some("cws ami create t box --name n"));
        assert!(next_words(NextStep::Finish, &old).contains("`cws ami create t box --name n`"));
        let bare = record(None, None);
        assert!(
            next_words(NextStep::Finish, &bare).contains("running the same command again"),
            "{}",
            next_words(NextStep::Finish, &bare)
        );
    }

    #[test]
    fn an_interrupted_create_says_what_is_recorded_and_how_to_finish() {
        let home = tempfile::tempdir().unwrap();
        let pending = PendingImages::open(home.path());
        assert!(interrupted_message(&pending).contains("nothing to clean up"));
        pending
            .add(record(Some(create_job("My Setup", &[])), None))
            .unwrap();
        let text = interrupted_message(&pending);
        assert!(text.contains("1 image(s) requested or in flight"), "{text}");
        assert!(text.contains("`cws ami status` shows them"), "{text}");
        assert!(
            text.contains(
                "ami-0123456789abcdef0 (us-east-1): `cws ami create python-research box --name \
                 'My Setup' --region us-east-1` finishes it"
            ),
            "{text}"
        );
    }

    #[test]
    fn timeouts_take_units() {
        assert_eq!(
            parse_timeout(Some("90s")).unwrap().timeout,
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_timeout(Some("30m")).unwrap().timeout,
            Duration::from_secs(1800)
        );
        assert_eq!(
            parse_timeout(Some("2h")).unwrap().timeout,
            Duration::from_secs(7200)
        );
        assert_eq!(
            parse_timeout(Some("45")).unwrap().timeout,
            Duration::from_secs(45)
        );
        assert_eq!(
            parse_timeout(None).unwrap().timeout,
            lifecycle::DEFAULT_TIMEOUT
        );
        assert!(parse_timeout(Some("soon")).is_err());
        assert!(parse_timeout(Some("5d")).is_err());
    }

    #[test]
    fn tags_are_key_value() {
        let t = parse_tags(&["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(t["a"], "1");
        assert_eq!(t["b"], "x=y");
        assert_eq!(t["c"], "");
        assert!(parse_tags(&["novalue".into()]).is_err());
        assert!(parse_tags(&["=v".into()]).is_err());
    }

    #[test]
    fn the_spinner_template_is_valid() {
        assert!(ProgressStyle::with_template("{spinner} {prefix:16} {msg}").is_ok());
    }

    #[test]
    fn ami_config_yaml_is_a_pasteable_block() {
        let t = cws_template::TemplateStore::bundled_only()
            .get("python-research")
            .unwrap()
            .template;
        let cfg = lifecycle::suggested_ami_config(
            &t,
            &[("us-east-1".into(), "ami-0123456789abcdef0".into())],
        );
        let y = ami_config_yaml(&cfg);
        assert!(y.starts_with("ami_config:\n"), "{y}");
        assert!(y.contains("us-east-1: ami-0123456789abcdef0"), "{y}");
        assert!(y.contains("cws:template: python-research"), "{y}");
        assert!(y.contains("strategy: ami_preferred"), "{y}");
    }
}

#[cfg(test)]
mod naming_tests {
    use cws_lifecycle::default_image_name;

    #[test]
    fn default_image_names_use_only_characters_ec2_accepts() {
        let t = cws_template::parse_str(
            "name: \"Python ML: GPU+CUDA\"\nslug: p\nversion: 1.2.0\nbase: ubuntu-24.04\n",
            "t.yaml",
        )
        .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T03:10:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            default_image_name(&t, now),
            "Python ML- GPU-CUDA 1.2.0 2026-11-30 03.10.05 UTC"
        );
    }
}
