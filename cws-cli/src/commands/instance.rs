//! `cws instance list|status|stop|terminate`.

use std::collections::BTreeMap;

use anyhow::Result;
use cws_provider::{Instance, InstanceFilter, InstancesExt};
use cws_resolver::{Consent, ConsentRequest};
use futures::future::join_all;
use serde::Serialize;

use crate::cli::InstanceCommand;
use crate::context::Ctx;
use crate::error::Reported;
use crate::output::{self, Table, provider_line};
use crate::sanitize::Shown;

#[derive(Serialize)]
struct Listing<'a> {
    provider: cws_resolver::ProviderLabel,
    instances: &'a [Instance],
}

#[derive(Serialize)]
struct One<'a> {
    provider: cws_resolver::ProviderLabel,
    instance: &'a Instance,
    /// For a workstation provisioned by script: what its console says of the script.
    #[serde(skip_serializing_if = "Option::is_none")]
    provisioning: Option<serde_json::Value>,
}

/// What the console of a script-provisioned workstation says of its script: `succeeded`,
/// `failed` (with step and exit code), `pending` (no outcome yet) or `unknown` (the console
/// could not be read). `None` for a workstation launched from an image.
async fn provisioning(
    p: &dyn cws_provider::CloudProvider,
    i: &Instance,
) -> Option<(serde_json::Value, String)> {
    if i.tags.get("cws:method").map(String::as_str) != Some("script_fallback") {
        return None;
    }
    Some(match p.console_output(&i.region, &i.id).await {
        Ok(console) => match console
            .as_deref()
            .and_then(cws_template::provisioning_outcome)
        {
            Some(outcome) => (
                serde_json::to_value(&outcome).unwrap_or_default(),
                outcome.to_string(),
            ),
            None => (
                serde_json::json!({"outcome": "pending"}),
                "no outcome found on the console: the script may still be running, or the \
                 line is no longer there (a workstation launched by an older cws, a stop and \
                 start, or more than the console's last 64 KiB written since)"
                    .to_string(),
            ),
        },
        Err(e) => (
            serde_json::json!({"outcome": "unknown", "reason": e.to_string()}),
            format!("unknown: the console could not be read: {e}"),
        ),
    })
}

pub async fn run(ctx: &Ctx, cmd: &InstanceCommand) -> Result<()> {
    let env = ctx.env().await?;
    let p = env.provider.clone();
    let info = p.info();
    match cmd {
        InstanceCommand::List { all_regions, all } => {
            let regions: Vec<String> = if *all_regions {
                cws_regions::all()
                    .iter()
                    .map(|r| r.code.to_string())
                    .collect()
            } else {
                vec![ctx.region()?]
            };
            let filter = InstanceFilter {
                tags: BTreeMap::from([("cws:managed".to_string(), "true".to_string())]),
                include_terminated: *all,
                ..InstanceFilter::default()
            };
            let results = join_all(regions.iter().map(|r| p.describe_instances(r, &filter))).await;
            let mut instances = Vec::new();
            for r in results {
                instances.extend(r?);
            }
            if ctx.json {
                return output::json(&Listing {
                    provider: (&info).into(),
                    instances: &instances,
                });
            }
            println!("{}", provider_line(&info));
            if instances.is_empty() {
                println!("No workstations in {}.", Shown(regions.join(", ")));
                return Ok(());
            }
            let mut t = Table::new(["NAME", "ID", "STATE", "REGION", "TYPE", "AMI", "TEMPLATE"]);
            for i in &instances {
                t.row([
                    i.name.clone(),
                    i.id.clone(),
                    i.state.to_string(),
                    i.region.clone(),
                    i.instance_type.clone(),
                    i.ami_id.clone(),
                    i.tags.get("cws:template").cloned().unwrap_or_default(),
                ]);
            }
            t.print();
            Ok(())
        }
        InstanceCommand::Status { name } => {
            let i = p.require_instance(&ctx.region()?, name).await?;
            let script = provisioning(p.as_ref(), &i).await;
            if ctx.json {
                return output::json(&One {
                    provider: (&info).into(),
                    instance: &i,
                    provisioning: script.map(|(v, _)| v),
                });
            }
            show(ctx, &info, &i)?;
            if let Some((_, text)) = script {
                println!(
                    "Provisioning: {}{}",
                    Shown(text),
                    if info.simulated {
                        " [simulated: LocalCloud runs no script]"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        InstanceCommand::Stop { name } => {
            let region = ctx.region()?;
            let i = p.require_instance(&region, name).await?;
            let i = p.stop_instance(&region, &i.id).await?;
            show(ctx, &info, &i)
        }
        InstanceCommand::Start { name } => {
            let region = ctx.region()?;
            let i = p.require_instance(&region, name).await?;
            let i = p.start_instance(&region, &i.id).await?;
            show(ctx, &info, &i)
        }
        InstanceCommand::Terminate { name } => {
            let region = ctx.region()?;
            let i = p.require_instance(&region, name).await?;
            if !ctx.consent().confirm(&ConsentRequest::Terminate {
                instance: i.clone(),
            }) {
                eprintln!("not terminated");
                return Err(Reported(1).into());
            }
            let i = p.terminate_instance(&region, &i.id).await?;
            show(ctx, &info, &i)
        }
    }
}

fn show(ctx: &Ctx, info: &cws_provider::ProviderInfo, i: &Instance) -> Result<()> {
    if ctx.json {
        return output::json(&One {
            provider: info.into(),
            instance: i,
            provisioning: None,
        });
    }
    println!("{}", provider_line(info));
    println!(
        "{} ({}) in {}: {} — {} from {}",
        Shown(&i.name),
        Shown(&i.id),
        Shown(&i.region),
        i.state,
        Shown(&i.instance_type),
        Shown(&i.ami_id)
    );
    Ok(())
}
