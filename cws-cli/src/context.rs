//! Everything a command needs, resolved once from flags, environment and config file:
//! home directory, region, provider, template store, fallback graph, prices, output mode.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use cws_provider::disk_cache::DiskCache;
use cws_provider::{CloudProvider, ImageCatalog};
use cws_resolver::ResolveEnv;
use cws_resolver::{Consent, ConsentRequest};
use cws_template::{SearchPath, TemplateStore};

use crate::cli::{GlobalArgs, OutputFormat, ResolveMode};
use crate::config::Config;
use crate::error::UsageError;

/// Resolved global settings.
pub struct Ctx {
    pub home: PathBuf,
    pub regions: Vec<String>,
    pub provider_name: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub json: bool,
    pub yes: bool,
    pub debug: bool,
    pub store: TemplateStore,
    regions_file: Option<PathBuf>,
    prices_file: Option<PathBuf>,
    /// How long AWS read answers are kept on disk.
    pub cache_ttl: std::time::Duration,
    /// How resolutions ask the provider (`--resolve-mode`).
    pub resolve_mode: ResolveMode,
    /// `$CWS_HOME/policy.toml`, if there is one.
    pub policy: cws_registry::policy::LoadedPolicy,
    /// `--allow-cost`.
    pub allow_cost: bool,
    /// A shared registry (`--registry`, `CWS_REGISTRY`, `registry.url`); `None`: embedded.
    pub registry_url: Option<String>,
    /// Its bearer token (`--token`, `CWS_TOKEN`, `registry.token`).
    pub registry_token: Option<String>,
}

impl Ctx {
    pub fn new(g: &GlobalArgs) -> Result<Ctx> {
        let home = match &g.home {
            Some(h) => h.clone(),
            None => default_home()?,
        };
        let config = Config::load(&home)?;
        let json = g.json || g.output == Some(OutputFormat::Json);

        // Where the regions came from, so a bad one is blamed on the right source.
        let mut regions = g.region.clone();
        let mut region_source = if std::env::var_os("CWS_REGION").is_some_and(|v| !v.is_empty()) {
            "--region (or CWS_REGION)".to_string()
        } else {
            "--region".to_string()
        };
        if regions.is_empty()
            && let Ok(r) = std::env::var("AWS_REGION")
            && !r.is_empty()
        {
            regions.push(r);
            region_source = "AWS_REGION".into();
        }
        if regions.is_empty()
            && let Some(r) = &config.region
        {
            regions.push(r.clone());
            region_source = format!(
                "`region` in {} (change it with `cws config set region REGION`)",
                Config::path(&home).display()
            );
        }
        for r in &regions {
            cws_regions::lookup(r).map_err(|e| crate::input_hints::usage(&region_source, &e))?;
        }

        let provider_name = g
            .provider
            .clone()
            .or(config.provider.clone())
            .unwrap_or_else(|| "local".into());
        if provider_name != "local" && provider_name != "aws" {
            return Err(UsageError(format!(
                "unknown provider `{provider_name}`; use `local` (simulated EC2) or `aws`"
            ))
            .into());
        }
        let endpoint_url = g.endpoint_url.clone().or(config.endpoint.clone());

        let mut template_dirs = g.templates.clone();
        if let Some(t) = &config.templates {
            template_dirs.push(PathBuf::from(t));
        }
        let env_path = std::env::var("CWS_TEMPLATES_PATH").ok();
        let store = TemplateStore::new(SearchPath::new(
            &template_dirs,
            env_path.as_deref(),
            Some(&home),
        ));

        let cache_ttl = match &g.cache_ttl {
            None => cws_provider::disk_cache::DEFAULT_TTL,
            Some(t) if t.trim() == "0" => std::time::Duration::ZERO,
            Some(t) => cws_util::duration::parse(t).map_err(|e| {
                UsageError(format!(
                    "--cache-ttl (or CWS_CACHE_TTL) `{}`: {e}; write it like `2m` or `30s`, or `0` to keep nothing",
                    t.escape_debug()
                ))
            })?,
        };

        let registry_url = g
            .registry
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or(config.registry.url.clone());
        if let Some(u) = &registry_url {
            crate::config::check_registry_url(u)?;
        }
        let registry_token = g
            .token
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or(config.registry.token.clone());

        Ok(Ctx {
            registry_url,
            registry_token,
            regions,
            provider_name,
            endpoint_url,
            profile: g.profile.clone().or(config.profile.clone()),
            json,
            yes: g.yes,
            debug: g.debug,
            store,
            regions_file: g.regions_file.clone(),
            prices_file: g.prices_file.clone(),
            cache_ttl,
            resolve_mode: g.resolve_mode.unwrap_or(ResolveMode::Waves),
            policy: cws_registry::policy::LoadedPolicy::load(&home.join("policy.toml"))?,
            allow_cost: g.allow_cost,
            home,
        })
    }

    /// The one region a command works in (the first `--region`, else us-east-1).
    pub fn region(&self) -> Result<String> {
        match self.regions.as_slice() {
            [] => Ok("us-east-1".into()),
            [one] => Ok(one.clone()),
            many => Err(UsageError(format!(
                "--region was given {} times ({}); this command works in one region",
                many.len(),
                many.join(", ")
            ))
            .into()),
        }
    }

    /// The regions a multi-region command covers: the whole catalogue with `--all-regions`,
    /// else every `--region` given, else us-east-1.
    pub fn target_regions(&self, all_regions: bool) -> Vec<String> {
        if all_regions {
            cws_regions::all()
                .iter()
                .map(|r| r.code.to_string())
                .collect()
        } else if self.regions.is_empty() {
            vec!["us-east-1".into()]
        } else {
            self.regions.clone()
        }
    }

    /// The fallback graph: `--regions-file`, else `$CWS_HOME/regions.yaml`, else published.
    pub fn fallbacks(&self) -> Result<cws_regions::FallbackGraph> {
        let path = self
            .regions_file
            .clone()
            .unwrap_or_else(|| self.home.join(cws_regions::OVERRIDE_FILE_NAME));
        // An explicit --regions-file must exist; the implicit one in $CWS_HOME is optional.
        Ok(if self.regions_file.is_some() {
            cws_regions::FallbackGraph::load(&path)?
        } else {
            cws_regions::FallbackGraph::load_optional(&path)?
        })
    }

    /// The price book: bundled, with `--prices-file` or `$CWS_HOME/prices.toml` over it.
    pub fn prices(&self) -> Result<cws_cost::PriceBook> {
        let path = self
            .prices_file
            .clone()
            .or_else(|| Some(self.home.join("prices.toml")).filter(|p| p.exists()));
        let book = cws_cost::PriceBook::bundled();
        Ok(match path {
            Some(p) => book.with_overrides_file(&p)?,
            None => book,
        })
    }

    /// The provider named by `--provider` (what commands spend and change things with, and
    /// read fresh from), and where resolutions read from when that is a cache in front of it
    /// (the AWS provider's answers kept under `$CWS_HOME/cache` for `--cache-ttl`). Changes
    /// made through the provider empty that cache.
    async fn provider_and_reads(
        &self,
    ) -> Result<(Arc<dyn CloudProvider>, Option<Arc<dyn ImageCatalog>>)> {
        let provider = self.backend().await?;
        if self.provider_name != "aws" {
            return Ok((provider, None));
        }
        // One cache per endpoint and set of credentials (as far as they can be told apart
        // without a call); only a hash of this is written.
        let mut namespace = format!(
            "aws\n{}\n{}",
            self.endpoint_url.as_deref().unwrap_or(""),
            self.profile.as_deref().unwrap_or(""),
        );
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ] {
            namespace.push('\n');
            namespace.push_str(&std::env::var(var).unwrap_or_default());
        }
        let cache = DiskCache::new(
            provider,
            &self.home.join("cache").join("reads"),
            &namespace,
            self.cache_ttl,
        );
        Ok((Arc::new(cache.fresh()), Some(Arc::new(cache))))
    }

    async fn backend(&self) -> Result<Arc<dyn CloudProvider>> {
        match self.provider_name.as_str() {
            #[cfg(not(feature = "aws"))]
            "aws" => Err(UsageError(
                "this cws was built without the AWS provider (cargo feature `aws`); build it \
                 with the default features: cargo build --release -p cws-cli"
                    .into(),
            )
            .into()),
            #[cfg(feature = "aws")]
            "aws" => {
                use cws_aws::{
                    AwsConfig, AwsProvider, DEFAULT_MAX_ATTEMPTS, DEFAULT_OPERATION_TIMEOUT,
                };
                let provider = AwsProvider::new(AwsConfig {
                    profile: self.profile.clone(),
                    endpoint_url: self.endpoint_url.clone(),
                    max_attempts: DEFAULT_MAX_ATTEMPTS,
                    operation_timeout: DEFAULT_OPERATION_TIMEOUT,
                    default_region: self.region().unwrap_or_else(|_| "us-east-1".into()),
                })
                .await?;
                Ok(Arc::new(provider))
            }
            _ => {
                if let Some(url) = &self.endpoint_url {
                    eprintln!(
                        "warning: the endpoint URL {} (--endpoint-url, CWS_ENDPOINT_URL or \
                         config) is for the AWS provider; LocalCloud, the simulated provider in \
                         use, ignores it (pass --provider aws to use it)",
                        url.escape_debug()
                    );
                }
                let cloud = cws_localcloud::LocalCloud::open(&self.home).with_context(|| {
                    format!("opening the simulated cloud under {}", self.home.display())
                })?;
                Ok(Arc::new(cloud))
            }
        }
    }

    /// Provider, fallback graph and prices together.
    pub async fn env(&self) -> Result<ResolveEnv> {
        let (provider, reads) = self.provider_and_reads().await?;
        Ok(ResolveEnv {
            provider,
            fallbacks: self.fallbacks()?,
            prices: self.prices()?,
            reads,
        })
    }

    /// How commands ask before spending money or destroying things.
    pub fn consent(&self) -> TerminalConsent {
        TerminalConsent {
            yes: self.yes,
            policy: self.policy.clone(),
            allow_cost: self.allow_cost,
        }
    }

    /// Exit 2 naming the policy rule when `region` is not allowed.
    pub fn check_policy_region(&self, region: &str) -> Result<()> {
        match self.policy.check_region(region) {
            Some(why) => Err(UsageError(format!("refused: {why}")).into()),
            None => Ok(()),
        }
    }
}

fn default_home() -> Result<PathBuf> {
    directories::ProjectDirs::from("org", "cws", "cws")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            UsageError(
                "cannot find a home directory for cws state; set CWS_HOME or pass --home DIR"
                    .into(),
            )
            .into()
        })
}

/// Asks on the terminal (stderr), defaulting to No. Without a terminal it answers No and says
/// how to pass `--yes`, so nothing ever hangs waiting for input.
pub struct TerminalConsent {
    yes: bool,
    policy: cws_registry::policy::LoadedPolicy,
    allow_cost: bool,
}

impl Consent for TerminalConsent {
    fn confirm(&self, request: &ConsentRequest) -> bool {
        // The question quotes names and warnings from the cloud: escape what it holds, keep
        // the lines the CLI laid out.
        let question =
            crate::sanitize::shown_lines(&crate::questions::question(request)).into_owned();
        // A copy above the policy's cost cap needs --allow-cost as well as a yes.
        let costs: Vec<f64> = match request {
            ConsentRequest::Copy { plan, .. } => vec![plan.estimated_cost_usd.as_f64()],
            ConsentRequest::CreateMulti { copies, .. } => copies
                .iter()
                .map(|c| (c.transfer_cost + c.monthly_storage).as_f64())
                .collect(),
            _ => Vec::new(),
        };
        if !self.allow_cost
            && let Some(why) = costs.iter().find_map(|c| self.policy.check_copy_cost(*c))
        {
            eprintln!(
                "{question} [y/N] no ({}; pass --allow-cost as well to agree)",
                crate::sanitize::Shown(&why)
            );
            return false;
        }
        if self.yes {
            eprintln!("{question} [y/N] yes (--yes)");
            return true;
        }
        if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
            eprintln!("{question} [y/N] no (no terminal to ask on; pass --yes to agree)");
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return false;
        }
        matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
    }
}
