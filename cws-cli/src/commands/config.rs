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
            eprintln!("set {key} = {value} in {}", path.display());
        }
        ConfigCommand::Unset { key } => {
            config.set(key, None)?;
            let path = config.save(&ctx.home)?;
            eprintln!("unset {key} in {}", path.display());
        }
        ConfigCommand::Show => {}
    }
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
