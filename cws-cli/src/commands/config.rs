//! `cws config set|unset|show`.

use anyhow::Result;

use crate::cli::ConfigCommand;
use crate::config::Config;
use crate::context::Ctx;
use crate::output;

pub fn run(ctx: &Ctx, cmd: &ConfigCommand) -> Result<()> {
    let mut config = Config::load(&ctx.home)?;
    match cmd {
        ConfigCommand::Set { key, value } => {
            config.set(key, Some(value.clone()))?;
            let path = config.save(&ctx.home)?;
            let shown = if key == "registry.token" {
                crate::config::mask_token(value)
            } else {
                value.clone()
            };
            eprintln!(
                "set {key} = {} in {}",
                crate::sanitize::Shown(&shown),
                path.display()
            );
        }
        ConfigCommand::Unset { key } => {
            config.set(key, None)?;
            let path = config.save(&ctx.home)?;
            eprintln!("unset {key} in {}", path.display());
        }
        ConfigCommand::Show => {}
    }
    let config = config.masked();
    if ctx.json {
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            file: String,
            config: &'a Config,
        }
        return output::json(&Shown {
            file: Config::path(&ctx.home).display().to_string(),
            config: &config,
        });
    }
    if matches!(cmd, ConfigCommand::Show) {
        println!("# {}", Config::path(&ctx.home).display());
        print!(
            "{}",
            crate::sanitize::shown_lines(&toml::to_string_pretty(&config)?)
        );
    }
    Ok(())
}
