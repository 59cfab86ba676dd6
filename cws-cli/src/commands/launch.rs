//! `cws launch`.

use std::io::IsTerminal;

use anyhow::Result;
use cws_resolver::Outcome;
use cws_resolver::service::{self, LaunchRequest};

use super::ami::{check_resolution, render_resolution};
use super::{parse_arch, parse_hours};
use crate::cli::LaunchArgs;
use crate::context::Ctx;
use crate::error::UsageError;
use crate::output::{self, provider_line};
use crate::sanitize::{Shown, shown_lines};

pub async fn run(ctx: &Ctx, args: &LaunchArgs) -> Result<()> {
    // `--listing L NAME`: the only positional argument is the name.
    let (name, listing) = match (&args.listing, &args.name) {
        (Some(l), None) => (args.template.clone(), Some(l.as_str())),
        (Some(_), Some(extra)) => {
            return Err(UsageError(format!(
                "with --listing, give only the workstation's name (the listing names the \
                 template): `cws launch --listing {} {}`",
                args.listing.as_deref().unwrap_or_default(),
                Shown(extra)
            ))
            .into());
        }
        (None, Some(n)) => (n.clone(), None),
        (None, None) => {
            return Err(UsageError(format!(
                "name the workstation: `cws launch {} NAME`",
                Shown(&args.template)
            ))
            .into());
        }
    };
    if listing.is_some() && args.resolve.ami_strategy.is_some() {
        return Err(UsageError(
            "--listing and --ami-strategy do not go together: the listing decides the image \
             (drop --ami-strategy, or launch the template without --listing)"
                .into(),
        )
        .into());
    }
    if args.allow_unsigned && listing.is_none() {
        return Err(UsageError(
            "--allow-unsigned goes with --listing (a template opts out with \
             `ami_config.community.require_signature: false`)"
                .into(),
        )
        .into());
    }
    // Checked before anything is opened; the launch service checks it again for embedders.
    service::check_instance_name(&name)?;
    // A bad --timeout is refused before anything is launched.
    let wait = if args.wait {
        Some(super::lifecycle::parse_timeout(args.timeout.as_deref())?)
    } else {
        None
    };
    let (template, selection) = match listing {
        Some(l) => {
            let (t, s) = super::registry::listing_launch(ctx, l, args.allow_unsigned).await?;
            (t, Some(s))
        }
        None => (ctx.store.get(&args.template)?.template, None),
    };
    let community = if args.resolve.ami_strategy.is_none() {
        super::registry::community_plan(ctx, &template, selection.as_ref()).await?
    } else {
        None
    };
    if let Some(plan) = &community
        && let (Some(newer), Some(used)) = (&plan.newer, &plan.version)
    {
        eprintln!(
            "notice: {} has a newer version, {} (this launch uses {})",
            Shown(
                plan.listing
                    .as_ref()
                    .map(|l| l.summary.id.to_string())
                    .unwrap_or_default()
            ),
            Shown(newer),
            Shown(used)
        );
    }
    let unsigned_ok = args.allow_unsigned
        || template
            .ami_config
            .as_ref()
            .and_then(|c| c.community.as_ref())
            .is_some_and(|c| !c.require_signature);
    if community.is_some() && unsigned_ok {
        eprintln!(
            "warning: signatures are not required for this listing (require_signature: false \
             or --allow-unsigned): an unsigned or untrusted version may be launched"
        );
    }
    // A listing named on the command line whose signature does not hold is evidence of
    // tampering: stop, rather than fall through.
    if listing.is_some()
        && let Some(plan) = community.as_ref()
        && plan.invalid_signature
        && let Some(why) = &plan.refusal
    {
        return Err(crate::error::TrustFailure(format!("refused: {why}")).into());
    }
    if let Some(why) = community.as_ref().and_then(|p| p.refusal.as_ref()) {
        eprintln!("notice: the community listing is not used: {}", Shown(why));
    }
    let script_secs = cws_resolver::tier::setup_seconds(&template);
    let region = ctx.region()?;
    ctx.check_policy_region(&region)?;
    let env = ctx.env().await?;
    let req = LaunchRequest {
        allowed_owners: super::registry::owner_policy(ctx, &env).await?,
        added_tiers: community
            .iter()
            .map(|p| {
                if listing.is_some() {
                    p.pinned_tier()
                } else {
                    p.added_tier()
                }
            })
            .collect(),
        known_images: community
            .as_ref()
            .map(|p| p.known_images.clone())
            .unwrap_or_default(),
        refused: super::registry::refused_sources(ctx).await?,
        template,
        name: name.clone(),
        region,
        architecture: parse_arch(args.resolve.arch.as_deref())?,
        instance_type: args.instance_type.clone(),
        dry_run: args.dry_run,
        forced_tier: args.resolve.ami_strategy.clone(),
        prefer_script: args.prefer_script,
        session_hours: parse_hours(&args.hours)?,
    };
    let consent = ctx.consent();
    // Ctrl-C stops waiting, never silently: a copy or an instance may already have been
    // requested, and both carry the intent tag and provenance the next run finds them by.
    // A copy the launch makes is recorded with the images in flight (`ami status`).
    let pending = cws_lifecycle::PendingImages::open(&ctx.home);
    let launched = tokio::select! {
        r = service::launch_recorded(&env, &req, &consent, &pending) => r,
        () = ctrl_c() => {
            eprintln!(
                "\ninterrupted: cws stopped before the launch finished. A cross-region copy or \
                 the instance `{}` in {} may already have been requested: `cws instance list \
                 --region {}` shows the instance if it was, and `cws ami status` lists a copy \
                 requested or in flight with how to finish it (the next launch uses a finished \
                 copy rather than copying again). Running the same launch again refuses a name \
                 that was taken.",
                Shown(&req.name),
                Shown(&req.region),
                Shown(&req.region),
            );
            return Err(crate::error::Reported(130).into());
        }
    };
    let mut report = match launched {
        Ok(r) => r,
        Err(service::LaunchError::Provider(cws_provider::ProviderError::Conflict { message })) => {
            // The one conflict a launch meets: the name is taken. Say how to free it.
            return Err(cws_provider::ProviderError::Conflict {
                message: format!(
                    "{message}; pick another name or `cws instance terminate {}`",
                    req.name
                ),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    // A dry run says what the launch itself would refuse or ask about the copy it plans.
    if args.dry_run
        && let Some(plan) = &report.resolution.copy
    {
        let cost = plan.estimated_cost_usd.as_f64();
        if let (false, Some(why)) = (ctx.allow_cost, ctx.policy.check_copy_cost(cost)) {
            report.resolution.warnings.push(format!(
                "the launch would not make this copy: {why}; pass --allow-cost as well as \
                 agreeing, or it moves on to the next tier"
            ));
        } else if !(ctx.yes || (std::io::stdin().is_terminal() && std::io::stderr().is_terminal()))
        {
            report.resolution.warnings.push(
                "the launch asks before this copy, and without a terminal the answer is No: \
                 pass --yes to agree, or it moves on to the next tier"
                    .into(),
            );
        }
    }
    audit_launch(ctx, &report, &name, None);
    // One download per launch from a listing version (a copy from one counts too).
    if let (Some(_), Some(l), Some(v)) = (
        &report.instance,
        &report.resolution.listing,
        &report.resolution.listing_version,
    ) && let Err(e) = super::registry::record_download(ctx, l, v).await
    {
        eprintln!(
            "warning: the launch from {} was not counted: {e:#}",
            Shown(l)
        );
    }
    if ctx.json {
        // The report is printed whatever the wait ends with: the launch happened.
        let failed = match &wait {
            Some(w) => watch(ctx, &env, &req, &mut report, w, &consent, &pending).await,
            None => None,
        };
        output::json(&report)?;
        return match failed {
            Some(e) => Err(e),
            None => check_resolution(&report.resolution),
        };
    }
    let info = env.provider.info();
    println!("{}", provider_line(&info));
    if args.show_ami_resolution || args.dry_run || ctx.debug || report.resolution.is_failed() {
        print!("{}", render_resolution(&report.resolution));
    }
    if (args.show_costs || args.dry_run)
        && let Some(c) = &report.costs
    {
        print!("{}", shown_lines(&c.to_string()));
        // The plan and the recommendation must not seem to disagree without a word.
        let image_plan = report.resolution.ami_id.is_some()
            && report.resolution.method != cws_resolver::Method::ScriptFallback;
        match (image_plan, c.recommendation.choice) {
            (true, cws_cost::Choice::Script) => println!(
                "The plan launches from an image: the template's strategy ({}) prefers images \
                 for the faster start; by cost alone the script is cheaper. To provision by \
                 script instead: --ami-strategy script_fallback",
                report.resolution.strategy
            ),
            (false, cws_cost::Choice::Ami) if !report.resolution.is_failed() => println!(
                "The plan provisions by script: no image serves this template here (or the \
                 strategy asks for the script first); by cost an image would pay: `cws ami \
                 create` one from a tuned workstation"
            ),
            _ => {}
        }
    }
    let r = &report.resolution;
    for a in r.attempts.iter().filter(|a| a.outcome == Outcome::Declined) {
        println!("Declined {}: {}", Shown(&a.tier), Shown(&a.detail));
    }
    if r.is_failed() {
        return check_resolution(r);
    }
    println!(
        "Image: {} via {}{}",
        Shown(r.ami_id.as_deref().unwrap_or("?")),
        r.method,
        r.decision_detail()
            .map(|d| format!(" — {}", Shown(d)))
            .unwrap_or_default()
    );
    // The guide's "📈 Performance" line, from the timing model: an image path against
    // provisioning the same template by script.
    if r.method != cws_resolver::Method::ScriptFallback
        && let Some(image_secs) = r.estimated_launch_seconds
        && image_secs > 0
        && script_secs > image_secs
    {
        println!(
            "📈 Performance: {:.1}x faster launch ({} vs {} by script)",
            script_secs as f64 / image_secs as f64,
            cws_util::duration::format_seconds(image_secs),
            cws_util::duration::format_seconds(script_secs)
        );
    }
    if !(args.show_ami_resolution || args.dry_run || ctx.debug) {
        for w in &r.warnings {
            println!("⚠ {}", Shown(w));
        }
    }
    if let Some(copy) = &report.copied_image {
        println!(
            "Copied {} from {} to {} as {} (tagged with its provenance; later launches here find it directly)",
            Shown(r.ami_id.as_deref().unwrap_or("?")),
            Shown(r.source_region.as_deref().unwrap_or("?")),
            Shown(&r.target_region),
            Shown(copy)
        );
    }
    match &report.instance {
        Some(i) => {
            println!(
                "Launched {} ({}) in {}: {} {} from {} via {}{}",
                Shown(&i.name),
                Shown(&i.id),
                Shown(&i.region),
                Shown(&i.instance_type),
                i.architecture,
                Shown(&i.ami_id),
                r.method,
                if info.simulated { " [simulated]" } else { "" }
            );
            if let Some(secs) = r.estimated_launch_seconds {
                println!(
                    "Ready in ~{} (state: {})",
                    cws_util::duration::format_seconds(secs),
                    Shown(&i.state)
                );
            }
        }
        None => println!(
            "Dry run: would launch {} in {} from {} via {} (nothing was copied or launched)",
            Shown(&name),
            Shown(&r.target_region),
            Shown(r.ami_id.as_deref().unwrap_or("?")),
            r.method
        ),
    }
    let by_script = r.method == cws_resolver::Method::ScriptFallback;
    if let (Some(i), Some(w)) = (report.instance.clone(), &wait) {
        if let Some(e) = watch(ctx, &env, &req, &mut report, w, &consent, &pending).await {
            return Err(e);
        }
        match (&report.provisioning, &report.replaced_instance) {
            (_, Some(_)) => println!(
                "{} is running.",
                Shown(report.instance.as_ref().map_or(&i.name, |n| &n.name))
            ),
            (Some(outcome), None) => println!(
                "Provisioning {outcome}: {} is ready{}.",
                Shown(&i.name),
                if info.simulated {
                    " [simulated: LocalCloud runs no script]"
                } else {
                    ""
                }
            ),
            (None, None) => println!("{} is running.", Shown(&i.name)),
        }
    } else if report.instance.is_some()
        && by_script
        && ami_fallback(&req.template)
        && args.resolve.ami_strategy.is_none()
        && !args.prefer_script
    {
        println!(
            "Strategy ami_fallback: a failed script is noticed (and replaced by an image, with \
             consent) only while cws waits: pass --wait, or check `cws instance status {}`",
            Shown(&name)
        );
    }
    Ok(())
}

/// Records a launch's copy (if it made one) and its instance in the audit log; `replaces`
/// names the instance a replacement launch stands in for.
fn audit_launch(ctx: &Ctx, report: &service::LaunchReport, name: &str, replaces: Option<&str>) {
    if let Some(copy) = &report.copied_image {
        super::audit::record(
            ctx,
            "copy",
            copy,
            serde_json::json!({
                "source_ami": report.resolution.ami_id,
                "source_region": report.resolution.source_region,
                "region": report.resolution.target_region,
                "for_launch": name,
            }),
        );
    }
    if let Some(i) = &report.instance {
        let mut details = serde_json::json!({
            "instance_id": i.id,
            "region": i.region,
            "ami_id": i.ami_id,
            "method": report.resolution.method.to_string(),
            "template": report.resolution.template,
            "listing": report.resolution.listing,
            "listing_version": report.resolution.listing_version,
            "provider": report.resolution.provider.name,
        });
        if let Some(old) = replaces {
            details["replaces"] = serde_json::json!(old);
        }
        super::audit::record(ctx, "launch", &i.name, details);
    }
}

/// Whether the template asks for "script first, an image if the script fails" (a template
/// without `ami_config` is provisioned by script only: there is no image to fall back to).
fn ami_fallback(t: &cws_template::Template) -> bool {
    t.ami_config
        .as_ref()
        .is_some_and(|c| c.strategy == cws_template::AmiStrategy::AmiFallback)
}

/// `--wait`: until the instance runs and, for a script, until its outcome. Under
/// `ami_fallback`, a failed script leads (with consent) to a launch from an image in its
/// place. Updates `report`; answers the error to exit with once the report is shown (a failed
/// script that was not replaced, a wait that ended early, Ctrl-C), so that `--json` always
/// prints what was launched. Ctrl-C stops waiting, never the workstation.
async fn watch(
    ctx: &Ctx,
    env: &cws_resolver::ResolveEnv,
    req: &LaunchRequest,
    report: &mut service::LaunchReport,
    wait: &cws_provider::wait::WaitOptions,
    consent: &dyn cws_resolver::Consent,
    pending: &cws_lifecycle::PendingImages,
) -> Option<anyhow::Error> {
    let launched = report.instance.clone()?;
    let by_script = report.resolution.method == cws_resolver::Method::ScriptFallback;
    let progress = super::lifecycle::progress(ctx);
    let started = tokio::time::Instant::now();
    let stopped_waiting = |i: &service::LaunchedInstance| {
        eprintln!(
            "\ninterrupted: cws stopped waiting; {} ({}) keeps running: `cws instance status {}` \
             shows its provisioning",
            Shown(&i.name),
            Shown(&i.id),
            Shown(&i.name)
        );
        anyhow::Error::from(crate::error::Reported(130))
    };
    let outcome = tokio::select! {
        r = service::watch_provisioning(env.provider.as_ref(), &launched, by_script, wait, progress.as_ref()) => r,
        () = ctrl_c() => return Some(stopped_waiting(&launched)),
    };
    let outcome = match outcome {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return None,
        Err(e) => return Some(e.into()),
    };
    report.provisioning = Some(outcome.clone());
    if outcome == cws_template::ProvisioningOutcome::Succeeded {
        return None;
    }
    let failed = format!(
        "the provisioning script of {} ({}) {outcome}",
        launched.name, launched.id
    );
    let keeps = format!(
        "it keeps running (and is billed) so you can look at it: `cws instance status {}`; \
         `cws instance terminate {}` when done",
        launched.name, launched.name
    );
    let fallback = ami_fallback(&req.template) && req.forced_tier.is_none() && !req.prefer_script;
    if !fallback {
        return Some(anyhow::anyhow!("{failed}; {keeps}"));
    }
    if !ctx.json {
        println!(
            "Provisioning {} on {}",
            Shown(outcome.to_string()),
            Shown(&launched.id)
        );
    }
    let replaced = tokio::select! {
        r = service::replace_failed_script(env, req, &launched, &outcome, consent, pending) => r,
        () = ctrl_c() => {
            eprintln!(
                "\ninterrupted while replacing {}: the failed instance {} may already be \
                 terminated and its replacement requested: `cws instance list --all` shows which",
                Shown(&launched.name),
                Shown(&launched.id)
            );
            return Some(crate::error::Reported(130).into());
        }
    };
    let audit_termination = |terminated: &service::LaunchedInstance| {
        super::audit::record(
            ctx,
            "terminate",
            &terminated.name,
            serde_json::json!({
                "instance_id": terminated.id,
                "region": terminated.region,
                "reason": "provisioning script failed (ami_fallback)",
            }),
        );
    };
    match replaced {
        Err(e) => Some(anyhow::Error::from(e).context(format!("{failed}; {keeps}"))),
        Ok(service::Replacement::Replaced {
            report: new,
            terminated,
        }) => {
            audit_termination(&terminated);
            audit_launch(ctx, &new, &req.name, Some(&terminated.id));
            let failed_outcome = report.provisioning.take();
            *report = *new;
            report.provisioning = failed_outcome;
            report.replaced_instance = Some(terminated.clone());
            let Some(i) = report.instance.clone() else {
                return Some(anyhow::anyhow!(
                    "{failed}; the replacement launched nothing"
                ));
            };
            if !ctx.json {
                println!(
                    "Launched {} again ({}) from {} via {}{}; terminated {} whose script failed",
                    Shown(&i.name),
                    Shown(&i.id),
                    Shown(&i.ami_id),
                    report.resolution.method,
                    if report.resolution.provider.simulated {
                        " [simulated]"
                    } else {
                        ""
                    },
                    Shown(&terminated.id)
                );
            }
            // What is left of --timeout (it is the total).
            let left = cws_provider::wait::WaitOptions {
                timeout: wait.timeout.saturating_sub(started.elapsed()),
                ..*wait
            };
            tokio::select! {
                r = service::watch_provisioning(env.provider.as_ref(), &i, false, &left, progress.as_ref()) => r.err().map(anyhow::Error::from),
                () = ctrl_c() => Some(stopped_waiting(&i)),
            }
        }
        Ok(service::Replacement::Unreplaced { terminated, reason }) => {
            audit_termination(&terminated);
            report.replaced_instance = Some(terminated.clone());
            report.instance = None;
            Some(anyhow::anyhow!(
                "{failed}; it was terminated to be replaced, but the workstation was not launched \
                 again: {reason}; `cws launch {} {}` tries again",
                req.template.slug,
                req.name
            ))
        }
        Ok(service::Replacement::NoImage(resolution)) => Some(anyhow::anyhow!(
            "{failed}, and no image serves {} in {} either (ami_fallback): {}; {keeps}",
            req.template.slug,
            req.region,
            resolution
                .attempts
                .iter()
                .filter(|a| a.tier != cws_resolver::TierId::SCRIPT_FALLBACK)
                .map(|a| format!("{}: {}", a.tier, a.detail))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Ok(service::Replacement::Declined(_)) => Some(anyhow::anyhow!(
            "{failed}; not replaced by a launch from an image (not agreed; --yes agrees); {keeps}"
        )),
        Ok(other) => Some(anyhow::anyhow!("{failed}: {other:?}")),
    }
}

/// Resolves at Ctrl-C; never when no handler could be installed (the launch then runs to the
/// end).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
