//! `cws launch`.

use anyhow::Result;
use cws_resolver::Outcome;
use cws_resolver::service::{self, LaunchRequest};

use super::ami::{check_resolution, render_resolution};
use super::{parse_arch, parse_hours};
use crate::cli::LaunchArgs;
use crate::context::Ctx;
use crate::output::{self, provider_line};
use crate::sanitize::{Shown, shown_lines};

pub async fn run(ctx: &Ctx, args: &LaunchArgs) -> Result<()> {
    // Checked before anything is opened; the launch service checks it again for embedders.
    service::check_instance_name(&args.name)?;
    let loaded = ctx.store.get(&args.template)?;
    let region = ctx.region()?;
    let env = ctx.env().await?;
    let req = LaunchRequest {
        template: loaded.template.clone(),
        name: args.name.clone(),
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
    let report = match launched {
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
    if ctx.json {
        output::json(&report)?;
        return check_resolution(&report.resolution);
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
            Shown(&args.name),
            Shown(&r.target_region),
            Shown(r.ami_id.as_deref().unwrap_or("?")),
            r.method
        ),
    }
    Ok(())
}

/// Resolves at Ctrl-C; never when no handler could be installed (the launch then runs to the
/// end).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
