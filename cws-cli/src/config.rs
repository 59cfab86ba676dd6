//! `$CWS_HOME/config.toml`: defaults below flags and environment variables.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use cws_util::fs::ReadError;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// The keys `cws config set` accepts.
pub const KEYS: [&str; 11] = [
    "provider",
    "region",
    "profile",
    "endpoint",
    "templates",
    "user.name",
    "user.email",
    "user.handle",
    "user.signing_key",
    "registry.url",
    "registry.token",
];

/// The largest `config.toml` cws reads: 64 KiB. The file holds a handful of short keys (a
/// full one is about 200 bytes); a larger file, or a path that is not a regular file, is
/// refused before it is read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// `config.toml` was refused before it was parsed: larger than [`MAX_CONFIG_BYTES`], not a
/// regular file, or not UTF-8. The [`ReadError`] names the path and the limit; the fix is worded
/// by `input_hints`.
#[derive(Debug, thiserror::Error)]
#[error("config file {0}")]
pub struct ConfigRefused(pub ReadError);

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
    /// Who publishes, rates and reports in the registry.
    #[serde(default, skip_serializing_if = "UserConfig::is_empty")]
    pub user: UserConfig,
    /// A shared registry (`cws serve`) instead of the embedded one.
    #[serde(default, skip_serializing_if = "RegistryConfig::is_empty")]
    pub registry: RegistryConfig,
}

/// `[registry]`: the server registry commands talk to, and the token they present.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A bearer token: the file is written 0600 and `config show` masks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl RegistryConfig {
    fn is_empty(&self) -> bool {
        self.url.is_none() && self.token.is_none()
    }
}

/// A token as shown: its first characters, the rest masked.
pub fn mask_token(token: &str) -> String {
    let shown: String = token.chars().take(8).collect();
    format!("{shown}… (masked)")
}

/// `[user]`: the identity registry commands act as.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// The OpenSSH private key publishing signs with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

impl UserConfig {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.handle.is_none()
            && self.signing_key.is_none()
    }
}

/// A registry URL: `http://` or `https://`, with a host.
pub fn check_registry_url(v: &str) -> Result<()> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !v.chars().any(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(UsageError(format!(
            "registry URL `{}` is not an http:// or https:// URL; write it like \
             https://registry.example.edu or http://127.0.0.1:8947",
            v.escape_debug()
        ))
        .into()),
    }
}

fn check_user_value(key: &str, v: &str) -> Result<()> {
    let checked = match key {
        "user.name" => {
            cws_registry::Identity::new(v, "probe@example.org", Some("probe".into())).map(|_| ())
        }
        "user.email" => cws_registry::Identity::new("probe", v, Some("probe".into())).map(|_| ()),
        _ => cws_registry::check_handle(v),
    };
    checked.map_err(|e| UsageError(e.to_string()).into())
}

impl Config {
    pub fn path(home: &Path) -> PathBuf {
        home.join("config.toml")
    }

    /// Reads the file if there is one. A file over [`MAX_CONFIG_BYTES`], or a path that is not
    /// a regular file, is refused ([`ConfigRefused`], exit 2) without being read.
    pub fn load(home: &Path) -> Result<Config> {
        let path = Config::path(home);
        match cws_util::fs::read_text_bounded(&path, MAX_CONFIG_BYTES) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                // Line and column of the error (1-based), from its byte span.
                let at = e
                    .span()
                    .map(|span| {
                        let before = &text[..span.start.min(text.len())];
                        let line = before.matches('\n').count() + 1;
                        let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
                        format!(":{line}:{column}")
                    })
                    .unwrap_or_default();
                UsageError(format!(
                    "{}{at}: {}\n  help: valid keys are {}; fix the file in an editor, or move \
                     it aside (`mv {} {}.bak`) and set the keys again with `cws config set`",
                    path.display(),
                    e.message().trim_end(),
                    KEYS.join(", "),
                    path.display(),
                    path.display(),
                ))
                .into()
            }),
            Err(e) if e.is_not_found() => Ok(Config::default()),
            Err(ReadError::Io { source, .. }) => {
                Err(source).with_context(|| format!("reading {}", path.display()))
            }
            Err(refused) => Err(ConfigRefused(refused).into()),
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
            "user.name" | "user.email" | "user.handle" => {
                if let Some(v) = &value {
                    check_user_value(key, v)?;
                }
                match key {
                    "user.name" => &mut self.user.name,
                    "user.email" => &mut self.user.email,
                    _ => &mut self.user.handle,
                }
            }
            "user.signing_key" => &mut self.user.signing_key,
            "registry.url" => {
                if let Some(v) = &value {
                    check_registry_url(v)?;
                }
                &mut self.registry.url
            }
            "registry.token" => &mut self.registry.token,
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

    /// The identity registry commands act as: `CWS_USER="NAME <EMAIL>"`, else `user.name` and
    /// `user.email`; the handle is `user.handle`, else the email's local part. `None` when
    /// neither is set.
    pub fn identity(&self) -> Result<Option<cws_registry::Identity>> {
        let handle = self.user.handle.clone();
        if let Ok(user) = std::env::var("CWS_USER")
            && !user.trim().is_empty()
        {
            return Ok(Some(
                cws_registry::Identity::parse(&user, handle)
                    .map_err(|e| UsageError(e.to_string()))?,
            ));
        }
        match (&self.user.name, &self.user.email) {
            (Some(name), Some(email)) => Ok(Some(
                cws_registry::Identity::new(name, email, handle)
                    .map_err(|e| UsageError(format!("{e} (in {})", "config.toml")))?,
            )),
            _ => Ok(None),
        }
    }

    /// The config as shown to a person: the registry token masked.
    pub fn masked(&self) -> Config {
        let mut c = self.clone();
        if let Some(t) = &c.registry.token {
            c.registry.token = Some(mask_token(t));
        }
        c
    }

    /// Writes atomically (temp file, fsync, rename, fsync of the directory) so a crash never
    /// leaves half a file.
    pub fn save(&self, home: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = Config::path(home);
        let text = toml::to_string_pretty(self).context("serialising config")?;
        // It may hold a registry token: only its owner reads it.
        cws_util::fs::write_atomic(&path, text.as_bytes(), Some(0o600))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}
