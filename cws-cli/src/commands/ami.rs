//! `cws ami resolve|test|list|costs`.

use anyhow::Result;
use cws_resolver::service::{self, RegionStatus};
use cws_resolver::{Outcome, Resolution, ResolveRequest};
use serde::Serialize;

use super::{parse_arch, parse_hours};
use crate::cli::{AmiCommand, ResolveOpts};
use crate::context::Ctx;
use crate::error::{NoResolution, ProviderFailed, Reported, UsageError};
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
    let loaded = ctx.store.get(name)?;
    let region = ctx.region()?;
    let env = ctx.env().await?;
    let resolver = service::resolver_for(&loaded.template, opts.ami_strategy.as_deref(), false)
        .map_err(|e| UsageError(format!("--ami-strategy: {e}")))?;
    ctx.check_policy_region(&region)?;
    let mut req = ResolveRequest::new(loaded.template.clone(), region);
    req.architecture = parse_arch(opts.arch.as_deref())?;
    req.refused = super::registry::refused_sources(ctx).await?;
    req.allowed_owners = super::registry::owner_policy(ctx, &env).await?;
    let mut resolver = resolver;
    if opts.ami_strategy.is_none()
        && let Some(plan) = super::registry::community_plan(ctx, &loaded.template, None).await?
    {
        resolver = plan.apply(resolver, &mut req);
    }
    let resolver = ctx.walk(resolver);
    let r = resolver.resolve(&env, &req).await;
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

#[derive(Serialize)]
struct TestReport {
    provider: cws_resolver::ProviderLabel,
    template: String,
    regions: Vec<service::RegionTest>,
}

async fn test(ctx: &Ctx, name: &str, all_regions: bool, arch: Option<&str>) -> Result<()> {
    let loaded = ctx.store.get(name)?;
    let regions = ctx.target_regions(all_regions);
    let env = ctx.env().await?;
    let arch = parse_arch(arch)?;
    let mut resolver = cws_resolver::Resolver::for_template(&loaded.template);
    let mut known = Vec::new();
    if let Some(plan) = super::registry::community_plan(ctx, &loaded.template, None).await? {
        resolver = resolver.insert_after(&cws_resolver::TierId::DYNAMIC_SEARCH, plan.tier.clone());
        known = plan.known_images.clone();
    }
    let resolver = ctx.walk(resolver);
    let refused = super::registry::refused_sources(ctx).await?;
    let owners = super::registry::owner_policy(ctx, &env).await?;
    let extras = service::TestExtras {
        architecture: arch,
        known_images: &known,
        refused: &refused,
        allowed_owners: owners.as_ref(),
    };
    let rows =
        service::test_regions_known(&env, &resolver, &loaded.template, &regions, &extras).await;
    let info = env.provider.info();
    let errors = rows
        .iter()
        .filter(|r| r.status == RegionStatus::Error)
        .count();
    if ctx.json {
        output::json(&TestReport {
            provider: (&info).into(),
            template: loaded.template.slug.clone(),
            regions: rows,
        })?;
    } else {
        println!("{}", provider_line(&info));
        let mut t = Table::new(["REGION", "STATUS", "AMI", "SOURCE", "COPY", "LAUNCH"]);
        for r in &rows {
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
            ]);
        }
        t.print();
        for r in rows.iter().filter(|r| r.status == RegionStatus::Error) {
            eprintln!("error: {}: {}", Shown(&r.region), Shown(&r.detail));
        }
    }
    if errors > 0 {
        return Err(Reported(1).into());
    }
    Ok(())
}

#[derive(Serialize)]
struct ListReport {
    provider: cws_resolver::ProviderLabel,
    #[serde(flatten)]
    listing: service::ImageListing,
}

async fn list(ctx: &Ctx, name: &str, all_regions: bool) -> Result<()> {
    let loaded = ctx.store.get(name)?;
    let regions = ctx.target_regions(all_regions);
    let env = ctx.env().await?;
    let listing = service::list_template_images(&env, &loaded.template, &regions).await;
    let info = env.provider.info();
    let failed = !listing.errors.is_empty();
    // Images a registry listing holds are `community`, with the listing's rating.
    let ids: Vec<String> = listing.images.iter().map(|i| i.id.clone()).collect();
    let listed = super::registry::listed_images(ctx, &ids).await?;
    // Images made from a revoked or quarantined listing version are flagged.
    let refusals = super::registry::refused_sources(ctx).await?;
    let refused = |i: &service::ListedImage| -> Option<String> {
        refusals
            .iter()
            .find(|r| {
                r.ami_ids.contains(&i.id)
                    || i.made_from.as_ref().is_some_and(|from| {
                        r.tags.get(cws_provider::tags::LISTING) == Some(&from.listing)
                            && r.tags.get(cws_provider::tags::LISTING_VERSION)
                                == Some(&from.version)
                    })
            })
            .map(|r| r.reason.clone())
    };
    let label = |i: &service::ListedImage| -> Result<String> {
        Ok(match (listed.get(&i.id), i.source) {
            (Some(_), service::ImageSource::Official | service::ImageSource::Marketplace)
            | (None, _) => serde_json::to_value(i.source)?
                .as_str()
                .unwrap_or("")
                .to_string(),
            (Some(_), _) => "community".into(),
        })
    };
    if ctx.json {
        let mut v = serde_json::to_value(ListReport {
            provider: (&info).into(),
            listing: listing.clone(),
        })?;
        if let Some(images) = v["images"].as_array_mut() {
            for (json, image) in images.iter_mut().zip(&listing.images) {
                // `source` says whose image it is; `label` is what the table shows: a listed
                // image is `community`.
                json["label"] = label(image)?.into();
                if let Some(why) = refused(image) {
                    json["refused"] = format!("made from {why}").into();
                }
                if let Some(l) = listed.get(&image.id) {
                    json["listing"] = l.listing.clone().into();
                    json["listing_version"] = l.version.clone().into();
                    json["rating"] = serde_json::to_value(l.rating)?;
                    json["signature"] = serde_json::to_value(&l.signature)?;
                }
            }
        }
        output::json(&v)?;
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

#[derive(Serialize)]
struct CostsReport {
    template: String,
    #[serde(flatten)]
    analysis: cws_cost::CostAnalysis,
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
    let loaded = ctx.store.get(name)?;
    let t = &loaded.template;
    let region = ctx.region()?;
    let arch = parse_arch(arch)?
        .or_else(|| t.ami_config.as_ref().and_then(|c| c.preferred_architecture))
        .unwrap_or(cws_template::Architecture::X86_64);
    let instance_type = service::instance_type_for(t, arch, instance_type);
    let input = cws_cost::CostInput {
        instance_type,
        region,
        session_hours: parse_hours(hours)?,
        script_setup_seconds: cws_resolver::tier::setup_seconds(t),
        ami_boot_seconds: cws_cost::AMI_BOOT_SECONDS,
        snapshot_gb: snapshot_gb
            .or(t.instance_defaults.root_volume_gb)
            .unwrap_or(30),
        launches_per_month,
    };
    let analysis = cws_cost::analyze(&ctx.prices()?, &input)?;
    if ctx.json {
        return output::json(&CostsReport {
            template: t.slug.clone(),
            analysis,
        });
    }
    println!(
        "Cost analysis for {} (prices only; no provider calls)",
        Shown(&t.slug)
    );
    print!("{}", shown_lines(&analysis.to_string()));
    Ok(())
}
