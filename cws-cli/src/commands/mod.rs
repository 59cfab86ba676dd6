//! One module per command group; each parses nothing and prints its own output.

pub mod ami;
pub mod audit;
pub mod config;
pub mod instance;
pub mod launch;
pub mod lifecycle;
pub mod regions;
pub mod registry;
pub mod templates;

use anyhow::Result;
use cws_template::Architecture;

use crate::error::UsageError;

/// Parses `--arch`.
pub fn parse_arch(s: Option<&str>) -> Result<Option<Architecture>> {
    match s {
        None => Ok(None),
        Some(s) => s.parse::<Architecture>().map(Some).map_err(|_| {
            UsageError(format!(
                "--arch: unknown architecture `{s}`; use arm64 or x86_64"
            ))
            .into()
        }),
    }
}

/// Parses `--hours`.
pub fn parse_hours(s: &str) -> Result<cws_cost::Hours> {
    s.parse::<cws_cost::Hours>()
        .map_err(|e| UsageError(format!("--hours: {e}")).into())
}
