//! `$CWS_HOME/config.toml`: defaults below flags and environment variables.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// The keys `cws config set` accepts.
pub const KEYS: [&str; 5] = ["provider", "region", "profile", "endpoint", "templates"];

/// Defaults from the config file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
}

impl Config {
    pub fn path(home: &Path) -> PathBuf {
        home.join("config.toml")
    }

    pub fn load(home: &Path) -> Result<Config> {
        let path = Config::path(home);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                UsageError(format!(
                    "{}: {}\n  help: valid keys are {}; fix the file or `cws config unset KEY`",
                    path.display(),
                    e.message(),
                    KEYS.join(", ")
                ))
                .into()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn set(&mut self, key: &str, value: Option<String>) -> Result<()> {
        let slot = match key {
            "provider" => {
                if let Some(v) = &value
                    && v != "local"
                    && v != "aws"
                {
                    return Err(UsageError(format!(
                        "provider must be `local` or `aws`, not `{v}`"
                    ))
                    .into());
                }
                &mut self.provider
            }
            "region" => {
                if let Some(v) = &value {
                    cws_regions::lookup(v)?;
                }
                &mut self.region
            }
            "profile" => &mut self.profile,
            "endpoint" => &mut self.endpoint,
            "templates" => &mut self.templates,
            other => {
                return Err(UsageError(format!(
                    "unknown config key `{other}`; use one of: {}",
                    KEYS.join(", ")
                ))
                .into());
            }
        };
        *slot = value;
        Ok(())
    }

    /// Writes atomically (temp file, fsync, rename, fsync of the directory) so a crash never
    /// leaves half a file.
    pub fn save(&self, home: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = Config::path(home);
        let text = toml::to_string_pretty(self).context("serialising config")?;
        cws_util::fs::write_atomic(&path, text.as_bytes(), None)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
