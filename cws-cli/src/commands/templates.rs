//! `cws templates list|show|validate|schema`.

use anyhow::Result;
use serde::Serialize;

use crate::cli::TemplatesCommand;
use crate::context::Ctx;
use crate::error::Reported;
use crate::output::{self, Table};
use crate::sanitize::{Shown, shown_lines};

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
    warn_broken(&entries);
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
        let strategy = if e.error.is_some() {
            "broken".to_string()
        } else if e.has_ami_config {
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

/// Names on stderr every template file that could not be loaded (malformed, over the size
/// limit, not a regular file): it is listed as broken, and every other template is served.
fn warn_broken(entries: &[cws_template::TemplateEntry]) {
    let broken: Vec<&str> = entries.iter().filter_map(|e| e.error.as_deref()).collect();
    for error in &broken {
        // One warning per problem (a file may have several); their own `help:` lines stay
        // lines of their own. Every line is escaped.
        for line in error.lines() {
            match line.strip_prefix("  ") {
                Some(more) => eprintln!("  {}", Shown(more)),
                None => eprintln!("warning: {}", Shown(line)),
            }
        }
    }
    if !broken.is_empty() {
        eprintln!(
            "  help: {} broken template file(s) are skipped; fix or move them \
             (`cws templates validate FILE` checks one)",
            broken.len()
        );
    }
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
        Shown(&loaded.template.slug),
        Shown(&loaded.origin),
        loaded
            .file
            .as_ref()
            .map(|f| format!(" ({})", Shown(f.display())))
            .unwrap_or_default()
    );
    if loaded.template.inherits.is_some() {
        println!("# inheritance merged");
    }
    // The YAML keeps its layout; anything else a template file holds is escaped.
    print!(
        "{}",
        shown_lines(&serde_norway::to_string(&loaded.template)?)
    );
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
    /// Everything wrong with the file, as one text.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The same, one entry per problem (a template file's problems in line order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
    /// Defaults filled in where the file was terse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    /// `errors` for a terminal (escaped); JSON keeps the real text.
    #[serde(skip)]
    shown_errors: Vec<String>,
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
                errors: Vec::new(),
                notes: t.notes.clone(),
                shown_errors: Vec::new(),
            },
            Err(e) => {
                let problems = crate::input_hints::problems(&e);
                Checked {
                    file: f.display().to_string(),
                    valid: false,
                    slug: None,
                    version: None,
                    notes: Vec::new(),
                    error: Some(crate::input_hints::with_hint(&e)),
                    errors: problems
                        .iter()
                        .map(|p| crate::input_hints::with_hint(*p))
                        .collect(),
                    shown_errors: problems
                        .iter()
                        .map(|p| crate::input_hints::shown_with_hint(*p))
                        .collect(),
                }
            }
        });
    }
    let bad = results.iter().filter(|r| !r.valid).count();
    if ctx.json {
        output::json(&results)?;
    } else {
        for r in &results {
            if r.valid {
                println!(
                    "ok    {} ({} {})",
                    Shown(&r.file),
                    Shown(r.slug.as_deref().unwrap_or("")),
                    Shown(r.version.as_deref().unwrap_or(""))
                );
                for n in &r.notes {
                    println!("      note: {} (set it in the file to choose)", Shown(n));
                }
            } else {
                // Every problem of the file, each on its own `error:` line.
                for e in &r.shown_errors {
                    eprintln!("error: {e}");
                }
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
