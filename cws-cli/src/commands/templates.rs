//! `cws templates list|show|validate|schema`.

use anyhow::Result;
use serde::Serialize;

use crate::cli::TemplatesCommand;
use crate::context::Ctx;
use crate::error::Reported;
use crate::output::{self, Table};

pub fn run(ctx: &Ctx, cmd: &TemplatesCommand) -> Result<()> {
    match cmd {
        TemplatesCommand::List => list(ctx),
        TemplatesCommand::Show { name } => show(ctx, name),
        TemplatesCommand::Validate { files } => validate(ctx, files),
        TemplatesCommand::Schema => {
            print!("{}", cws_template::json_schema_string());
            Ok(())
        }
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    let entries = ctx.store.list()?;
    if ctx.json {
        return output::json(&entries);
    }
    let mut t = Table::new(["SLUG", "NAME", "VERSION", "STRATEGY", "FROM"]);
    for e in &entries {
        let from = match &e.file {
            Some(f) => format!("{} ({})", e.origin, f.display()),
            None => e.origin.to_string(),
        };
        let from = match &e.shadowed_by {
            Some(by) => format!("{from} [shadowed by {by}]"),
            None => from,
        };
        let strategy = if e.has_ami_config {
            e.strategy.to_string()
        } else {
            "script".to_string()
        };
        t.row([
            e.slug.clone(),
            e.name.clone(),
            e.version.clone(),
            strategy,
            from,
        ]);
    }
    t.print();
    Ok(())
}

fn show(ctx: &Ctx, name: &str) -> Result<()> {
    let loaded = ctx.store.get(name)?;
    if ctx.json {
        #[derive(Serialize)]
        struct Shown<'a> {
            origin: &'a cws_template::Origin,
            file: Option<&'a std::path::Path>,
            template: &'a cws_template::Template,
        }
        return output::json(&Shown {
            origin: &loaded.origin,
            file: loaded.file.as_deref(),
            template: &loaded.template,
        });
    }
    println!(
        "# {} from {}{}",
        loaded.template.slug,
        loaded.origin,
        loaded
            .file
            .as_ref()
            .map(|f| format!(" ({})", f.display()))
            .unwrap_or_default()
    );
    if loaded.template.inherits.is_some() {
        println!("# inheritance merged");
    }
    print!("{}", serde_norway::to_string(&loaded.template)?);
    Ok(())
}

#[derive(Serialize)]
struct Checked {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn validate(ctx: &Ctx, files: &[std::path::PathBuf]) -> Result<()> {
    let mut results = Vec::new();
    for f in files {
        let r = ctx.store.validate_file(f);
        results.push(match r {
            Ok(t) => Checked {
                file: f.display().to_string(),
                valid: true,
                slug: Some(t.slug.clone()),
                version: Some(t.version.to_string()),
                error: None,
            },
            Err(e) => Checked {
                file: f.display().to_string(),
                valid: false,
                slug: None,
                version: None,
                error: Some(crate::input_hints::with_hint(&e)),
            },
        });
    }
    let bad = results.iter().filter(|r| !r.valid).count();
    if ctx.json {
        output::json(&results)?;
    } else {
        for r in &results {
            match &r.error {
                None => println!(
                    "ok    {} ({} {})",
                    r.file,
                    r.slug.as_deref().unwrap_or(""),
                    r.version.as_deref().unwrap_or("")
                ),
                Some(e) => eprintln!("error: {e}"),
            }
        }
    }
    if bad > 0 {
        if !ctx.json {
            eprintln!("{bad} of {} template file(s) invalid", results.len());
        }
        return Err(Reported(2).into());
    }
    Ok(())
}
