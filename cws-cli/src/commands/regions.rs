//! `cws regions list|fallbacks`.

use anyhow::Result;

use crate::cli::RegionsCommand;
use crate::context::Ctx;
use crate::output::{self, Table};

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
            let out = cws_api::questions::fallbacks(&graph, region.as_deref())
                .map_err(super::question_error)?;
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
