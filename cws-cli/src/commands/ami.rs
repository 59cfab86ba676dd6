//! `cws ami resolve|test|list|costs`.

use anyhow::Result;
use cws_resolver::service::{self, RegionStatus};
use cws_resolver::{Outcome, Resolution};

use crate::cli::{AmiCommand, ResolveOpts};
use crate::context::Ctx;
use crate::error::{NoResolution, ProviderFailed, Reported};
use crate::output::{self, Table, provider_line};
use crate::sanitize::{Shown, shown_lines};

pub async fn run(ctx: &Ctx, cmd: &AmiCommand) -> Result<()> {
    match cmd {
        AmiCommand::Resolve {
            template,
            resolve,
            show_ami_resolution: _,
        } => resolve_cmd(ctx, template, resolve).await,
        AmiCommand::Test {
            template,
            all_regions,
            arch,
        } => test(ctx, template, *all_regions, arch.as_deref()).await,
        AmiCommand::List {
            template,
            all_regions,
        } => list(ctx, template, *all_regions).await,
        AmiCommand::Costs {
            template,
            hours,
            instance_type,
            arch,
            launches_per_month,
            snapshot_gb,
        } => costs(
            ctx,
            template,
            hours,
            instance_type.as_deref(),
            arch.as_deref(),
            *launches_per_month,
            *snapshot_gb,
        ),
        AmiCommand::Create(a) => super::lifecycle::create(ctx, a).await,
        AmiCommand::CreateMulti(a) => super::lifecycle::create_multi(ctx, a).await,
        AmiCommand::Copy(a) => super::lifecycle::copy(ctx, a).await,
        AmiCommand::Share(a) => super::lifecycle::share(ctx, a).await,
        AmiCommand::Info { target } if target.contains('/') => {
            super::registry::info_listing(ctx, target).await
        }
        AmiCommand::Info { target } => super::lifecycle::info(ctx, target).await,
        AmiCommand::Browse(a) => super::registry::browse(ctx, a).await,
        AmiCommand::Rate {
            target,
            stars,
            review,
        } => super::registry::rate(ctx, target, stars, review.as_deref()).await,
        AmiCommand::Reviews { listing } => super::registry::reviews(ctx, listing).await,
        AmiCommand::Report {
            target,
            reason,
            message,
            clear,
        } => {
            super::registry::report(ctx, target, reason.as_deref(), message.as_deref(), *clear)
                .await
        }
        AmiCommand::Export { target, output } => {
            super::registry::export(ctx, target, output.as_deref()).await
        }
        AmiCommand::Import { file } => super::registry::import(ctx, file).await,
        AmiCommand::Revoke {
            target,
            reason,
            sign_with,
        } => super::registry::revoke(ctx, target, reason, sign_with.as_deref()).await,
        AmiCommand::Channel {
            listing,
            channel,
            version,
        } => super::registry::channel(ctx, listing, channel, version).await,
        AmiCommand::Deregister {
            ami,
            delete_snapshots,
        } => super::lifecycle::deregister(ctx, ami, *delete_snapshots).await,
        AmiCommand::Status => super::lifecycle::status(ctx).await,
    }
}

/// Exit status for a finished resolution: 3 when nothing was found, 1 when the provider failed.
pub fn check_resolution(r: &Resolution) -> Result<()> {
    if !r.is_failed() {
        return Ok(());
    }
    if r.failed_because_provider() {
        let why = r
            .attempts
            .iter()
            .find(|a| a.outcome == Outcome::Failed)
            .map(|a| a.detail.as_str())
            .unwrap_or("the provider failed");
        Err(ProviderFailed(format!(
            "could not resolve `{}` in {}: {why}",
            r.template, r.region
        ))
        .into())
    } else {
        Err(NoResolution(format!(
            "no image and no fallback can serve `{}` in {} under strategy {}",
            r.template, r.region, r.strategy
        ))
        .into())
    }
}

async fn resolve_cmd(ctx: &Ctx, name: &str, opts: &ResolveOpts) -> Result<()> {
    let site = super::site(ctx, None).await?;
    let q = cws_api::questions::ResolveQuestion {
        template: name.to_string(),
        region: ctx.region()?,
        arch: opts.arch.clone(),
        strategy: opts.ami_strategy.clone(),
    };
    let r = cws_api::questions::resolve(&site, &q)
        .await
        .map_err(super::question_error)?;
    if ctx.json {
        output::json(&r)?;
    } else {
        print!("{}", render_resolution(&r));
    }
    check_resolution(&r)
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Found => "✅",
        Outcome::NotFound => "❌",
        Outcome::Skipped => "⏭ ",
        Outcome::Declined => "🚫",
        Outcome::Failed => "⚠️",
        _ => "? ",
    }
}

/// The readable preview of a resolution (`--show-ami-resolution`).
pub fn render_resolution(r: &Resolution) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "AMI resolution for {} in {}",
        Shown(&r.template),
        Shown(&r.target_region)
    );
    let _ = writeln!(
        s,
        "  Provider:  {}{}",
        Shown(&r.provider.name),
        if r.provider.simulated {
            " (simulated EC2 — LocalCloud; no real AWS resources)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "  Strategy:  {}{}",
        r.strategy,
        r.forced_tier
            .as_ref()
            .map(|t| format!(" (forced tier: {})", Shown(t)))
            .unwrap_or_default()
    );
    match (&r.ami_id, r.is_failed()) {
        (Some(id), false) => {
            let _ = writeln!(
                s,
                "  Primary:   {} → {} ({}){}",
                r.method,
                Shown(id),
                Shown(r.ami_name.as_deref().unwrap_or("")),
                r.architecture.map(|a| format!(", {a}")).unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "  Primary:   ❌ failed — nothing can serve this template here"
            );
        }
    }
    let _ = writeln!(s, "  Fallback chain:");
    let w = r
        .attempts
        .iter()
        .map(|a| a.tier.as_str().len())
        .max()
        .unwrap_or(0);
    for a in &r.attempts {
        let _ = writeln!(
            s,
            "    {} {:w$}  {}{}",
            mark(a.outcome),
            Shown(&a.tier),
            Shown(&a.detail),
            if a.duration_ms > 0 {
                format!("  [{} ms]", a.duration_ms)
            } else {
                String::new()
            },
        );
    }
    if let Some(c) = &r.copy {
        let _ = writeln!(
            s,
            "  Copy:      {} from {} ({} GiB): ~{} + {}",
            Shown(&c.source_ami_id),
            Shown(&c.source_region),
            c.snapshot_gb,
            cws_util::duration::format_seconds(c.estimated_seconds),
            c.estimated_cost_usd
        );
    }
    if let Some(secs) = r.estimated_launch_seconds {
        let _ = writeln!(
            s,
            "  Estimated launch: ~{}",
            cws_util::duration::format_seconds(secs)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(s, "  ⚠ {}", Shown(w));
    }
    s
}

async fn test(ctx: &Ctx, name: &str, all_regions: bool, arch: Option<&str>) -> Result<()> {
    let site = super::site(ctx, None).await?;
    let q = cws_api::questions::TestQuestion {
        template: name.to_string(),
        regions: ctx.target_regions(all_regions),
        arch: arch.map(str::to_string),
    };
    let report = cws_api::questions::test(&site, &q)
        .await
        .map_err(super::question_error)?;
    let rows = &report.regions;
    let info = site.env.provider.info();
    let errors = rows
        .iter()
        .filter(|r| r.status == RegionStatus::Error)
        .count();
    if ctx.json {
        output::json(&report)?;
    } else {
        println!("{}", provider_line(&info));
        let mut t = Table::new([
            "REGION",
            "STATUS",
            "AMI",
            "SOURCE",
            "COPY",
            "LAUNCH",
            "OR SCRIPT",
        ]);
        for r in rows {
            t.row([
                r.region.clone(),
                serde_json::to_value(r.status)?
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r.ami_id.clone().unwrap_or_else(|| "-".into()),
                r.source_region.clone().unwrap_or_else(|| "-".into()),
                r.copy
                    .as_ref()
                    .map(|c| {
                        format!(
                            "~{} + {}",
                            cws_util::duration::format_seconds(c.estimated_seconds),
                            c.estimated_cost_usd
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
                r.estimated_launch_seconds
                    .map(|s| format!("~{}", cws_util::duration::format_seconds(s)))
                    .unwrap_or_else(|| "-".into()),
                r.script_alternative_seconds
                    .map(|s| format!("~{}", cws_util::duration::format_seconds(s)))
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        t.print();
        if rows.iter().any(|r| r.script_alternative_seconds.is_some()) {
            println!(
                "Regions without an image of their own can also provision by script on the \
                 template's base image (OR SCRIPT): cws launch {} NAME --ami-strategy \
                 script_fallback",
                Shown(&report.template)
            );
        }
        for r in rows.iter().filter(|r| r.status == RegionStatus::Error) {
            eprintln!("error: {}: {}", Shown(&r.region), Shown(&r.detail));
        }
    }
    if errors > 0 {
        return Err(Reported(1).into());
    }
    Ok(())
}

async fn list(ctx: &Ctx, name: &str, all_regions: bool) -> Result<()> {
    let site = super::site(ctx, None).await?;
    let regions = ctx.target_regions(all_regions);
    let answer = cws_api::questions::list(&site, name, &regions)
        .await
        .map_err(super::question_error)?;
    let info = site.env.provider.info();
    let listing = &answer.listing;
    let listed = &answer.listed;
    let failed = !listing.errors.is_empty();
    let refused = |i: &service::ListedImage| answer.refused(i);
    let label = |i: &service::ListedImage| -> Result<String> { Ok(answer.label(i)) };
    if ctx.json {
        output::json(&answer.to_json())?;
    } else {
        println!("{}", provider_line(&info));
        if listing.images.is_empty() {
            println!(
                "No images for {} in {}.",
                Shown(&listing.template),
                Shown(regions.join(", "))
            );
        } else {
            println!(
                "📋 Available AMIs for template: {}",
                Shown(&listing.template)
            );
            let mut current: Option<&str> = None;
            let mut t = Table::new([
                "", "ID", "NAME", "VERSION", "SOURCE", "RATING", "ARCH", "CREATED",
            ]);
            for i in &listing.images {
                if current != Some(i.region.as_str()) {
                    if current.is_some() {
                        t.print();
                        t = Table::new([
                            "", "ID", "NAME", "VERSION", "SOURCE", "RATING", "ARCH", "CREATED",
                        ]);
                    }
                    println!("\nRegion: {}", Shown(&i.region));
                    current = Some(i.region.as_str());
                }
                let rating = listed
                    .get(&i.id)
                    .map(|l| {
                        format!(
                            "{} ({})",
                            super::registry::short_rating(&l.rating),
                            l.signature.status
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                t.row([
                    " ".to_string(),
                    i.id.clone(),
                    format!(
                        "{}{}",
                        i.name,
                        if i.deprecated { " (deprecated)" } else { "" }
                    ),
                    i.version.clone().unwrap_or_else(|| "-".into()),
                    match refused(i) {
                        Some(_) => format!("({}) ⛔ from a refused version", label(i)?),
                        None => format!("({})", label(i)?),
                    },
                    rating,
                    i.architecture.to_string(),
                    i.creation_date.format("%Y-%m-%d").to_string(),
                ]);
            }
            t.print();
        }
        for e in &listing.errors {
            eprintln!("error: {}: {}", Shown(&e.region), Shown(&e.error));
        }
    }
    if failed {
        return Err(Reported(1).into());
    }
    Ok(())
}

fn costs(
    ctx: &Ctx,
    name: &str,
    hours: &str,
    instance_type: Option<&str>,
    arch: Option<&str>,
    launches_per_month: u32,
    snapshot_gb: Option<u32>,
) -> Result<()> {
    let q = cws_api::questions::CostsQuestion {
        template: name.to_string(),
        region: ctx.region()?,
        hours: hours.to_string(),
        instance_type: instance_type.map(str::to_string),
        arch: arch.map(str::to_string),
        launches_per_month,
        snapshot_gb,
    };
    let report = cws_api::questions::costs_with(&ctx.store, &ctx.prices()?, &q)
        .map_err(super::question_error)?;
    let (t, analysis) = (&report.template, &report.analysis);
    if ctx.json {
        return output::json(&report);
    }
    println!(
        "Cost analysis for {} (prices only; no provider calls)",
        Shown(t)
    );
    print!("{}", shown_lines(&analysis.to_string()));
    Ok(())
}
