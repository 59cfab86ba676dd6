//! `cws regions list|fallbacks`.

use anyhow::Result;
use serde::Serialize;

use crate::cli::RegionsCommand;
use crate::context::Ctx;
use crate::output::{self, Table};

#[derive(Serialize)]
struct RegionRef {
    code: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
struct Fallbacks {
    region: &'static str,
    name: &'static str,
    source: cws_regions::EdgeSource,
    fallbacks: Vec<RegionRef>,
}

pub fn run(ctx: &Ctx, cmd: &RegionsCommand) -> Result<()> {
    match cmd {
        RegionsCommand::List => {
            let all = cws_regions::all();
            if ctx.json {
                return output::json(all);
            }
            let mut t = Table::new(["CODE", "NAME", "CONTINENT", "OPT-IN"]);
            for r in all {
                t.row([
                    r.code.to_string(),
                    r.name.to_string(),
                    r.continent.to_string(),
                    if r.opt_in { "yes" } else { "no" }.to_string(),
                ]);
            }
            t.print();
            Ok(())
        }
        RegionsCommand::Fallbacks { region } => {
            let graph = ctx.fallbacks()?;
            let regions: Vec<&'static cws_regions::Region> = match region {
                Some(r) => vec![cws_regions::lookup(r)?],
                None => cws_regions::all().iter().collect(),
            };
            let mut out = Vec::new();
            for r in regions {
                let fb = graph.fallbacks(r.code)?;
                out.push(Fallbacks {
                    region: r.code,
                    name: r.name,
                    source: graph.source(r.code)?,
                    fallbacks: fb
                        .iter()
                        .filter_map(|c| cws_regions::get(c))
                        .map(|x| RegionRef {
                            code: x.code,
                            name: x.name,
                        })
                        .collect(),
                });
            }
            if ctx.json {
                return if region.is_some() {
                    output::json(&out[0])
                } else {
                    output::json(&out)
                };
            }
            let mut t = Table::new(["REGION", "FALLBACKS (in order)", "SOURCE"]);
            for f in &out {
                t.row([
                    f.region.to_string(),
                    f.fallbacks
                        .iter()
                        .map(|x| x.code)
                        .collect::<Vec<_>>()
                        .join(" → "),
                    format!("{:?}", f.source).to_lowercase(),
                ]);
            }
            t.print();
            Ok(())
        }
    }
}
