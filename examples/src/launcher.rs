//! A downstream launcher built on `cws-resolver` (the `custom_launcher` example).
//!
//! A lab's own tool does not need the `cws` CLI: it chooses its provider stack, its templates
//! and its consent policy, and calls the same resolver and launch service. This one
//!
//! 1. keeps a LocalCloud (simulated EC2) under a directory it owns — swap in
//!    `cws_aws::Aws` (feature `aws`) for a real account; nothing else changes;
//! 2. wraps it in a [`CachingProvider`] so repeated resolutions within a minute cost no round
//!    trip, over a [`CountingProvider`] so it can say how many calls each decision took;
//! 3. loads its template from a YAML string with [`cws_template::parse_str`], the same
//!    validation (line and column in errors) as files on disk;
//! 4. launches with a "never copy across regions" policy ([`AssumeNo`]): when the only image
//!    is in another region, the launch falls through to script provisioning instead.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cws_cost::Hours;
use cws_localcloud::LocalCloud;
use cws_provider::wrappers::{CachingProvider, CountingProvider};
use cws_provider::*;
use cws_resolver::service::{self, LaunchReport, LaunchRequest};
use cws_resolver::*;
use cws_template::Template;

use crate::ExampleError;

/// The lab's template: its own packages on top of the official bioinformatics images, found
/// by the publisher's name pattern and tag. It lives in the launcher, not in a file.
pub const LAB_TEMPLATE: &str = r#"name: Lab Genomics
slug: lab-genomics
description: The genomics lab's workstation, on the official cws bioinformatics images.
category: Life Sciences
version: 2.1.0
base: ubuntu-24.04
package_manager: conda
packages:
  conda:
    - bioconda::minimap2
    - bioconda::samtools
instance_defaults:
  type: c6i.2xlarge
  arm64_type: c7g.2xlarge
  root_volume_gb: 200
ami_config:
  strategy: ami_preferred
  ami_search:
    owners: ["self", "704381954421"]
    name_pattern: "cws-bioinformatics-*"
    architectures: [x86_64, arm64]
    required_tags:
      cws:template: bioinformatics
  fallback_strategy: script_provisioning
  preferred_architecture: x86_64
"#;

/// The session length the launch's AMI-vs-script cost comparison assumes: a working day.
pub const SESSION: Hours = Hours::from_hours(8);

/// How long the launcher trusts a provider answer.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// The provider stack: cache over call counter over the simulated cloud.
type Stack = CachingProvider<CountingProvider<LocalCloud>>;

/// A launcher with its own provider stack.
pub struct Launcher {
    provider: Arc<Stack>,
    env: ResolveEnv,
}

impl fmt::Debug for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launcher")
            .field("provider", &self.provider.info().description)
            .finish_non_exhaustive()
    }
}

/// One resolution and what it cost.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The resolver's answer, every tier's attempt included.
    pub resolution: Resolution,
    /// Provider calls this resolution made (cache hits are not calls).
    pub provider_calls: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.resolution;
        writeln!(f, "{r}")?;
        write!(
            f,
            "  {} provider call(s), {:.1} ms; provider: {}",
            self.provider_calls,
            self.elapsed.as_secs_f64() * 1000.0,
            r.provider.description
        )
    }
}

impl Launcher {
    /// A launcher over the LocalCloud persisted under `home` (seeded on first use), behind a
    /// cache of `ttl`.
    pub fn open(home: &Path, ttl: Duration) -> Result<Launcher, ExampleError> {
        let cloud = LocalCloud::open(home)?;
        let provider = Arc::new(CachingProvider::new(CountingProvider::new(cloud), ttl));
        let env = ResolveEnv::new(provider.clone() as Arc<dyn CloudProvider>);
        Ok(Launcher { provider, env })
    }

    /// Parses and validates a template from YAML text; `origin` names it in errors.
    pub fn load_template(yaml: &str, origin: &str) -> Result<Template, ExampleError> {
        Ok(cws_template::parse_str(yaml, origin)?)
    }

    /// Resolves `template` in `region` and counts the provider calls it took.
    pub async fn decide(&self, template: &Template, region: &str) -> Decision {
        let before = self.provider.inner().total();
        let start = Instant::now();
        let resolution = Resolver::for_template(template)
            .resolve(&self.env, &ResolveRequest::new(template.clone(), region))
            .await;
        Decision {
            resolution,
            provider_calls: self.provider.inner().total() - before,
            elapsed: start.elapsed(),
        }
    }

    /// Launches `template` in `region` as `name`. The launcher's policy is to never copy an
    /// image across regions (a copy costs money and minutes): it declines, and the strategy's
    /// next tier serves the launch.
    pub async fn launch(
        &self,
        template: &Template,
        region: &str,
        name: &str,
    ) -> Result<LaunchReport, ExampleError> {
        let request = LaunchRequest {
            template: template.clone(),
            name: name.to_string(),
            region: region.to_string(),
            architecture: None,
            instance_type: None,
            dry_run: false,
            forced_tier: None,
            prefer_script: false,
            session_hours: SESSION,
            added_tiers: Vec::new(),
            known_images: Vec::new(),
            refused: Vec::new(),
            allowed_owners: None,
        };
        Ok(service::launch(&self.env, &request, &AssumeNo).await?)
    }

    /// Calls made to the simulated cloud so far.
    pub fn provider_calls(&self) -> u64 {
        self.provider.inner().total()
    }

    /// Where the simulated cloud keeps its state.
    pub fn state_path(&self) -> Option<&Path> {
        self.provider.inner().inner().state_path()
    }
}

/// What the example did, for printing and for the tests.
#[derive(Debug)]
pub struct LauncherRun {
    /// The first decision (cache cold).
    pub first: Decision,
    /// The same decision again (cache warm).
    pub repeat: Decision,
    /// The launch.
    pub launch: LaunchReport,
}

impl fmt::Display for LauncherRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "decision:\n{}", self.first)?;
        writeln!(
            f,
            "again within the cache TTL: {} -> {} provider call(s)",
            self.repeat.resolution.method, self.repeat.provider_calls
        )?;
        let r = &self.launch.resolution;
        match &self.launch.instance {
            Some(i) => write!(
                f,
                "launched {} ({}) in {} from {} via {} [simulated: {}]",
                i.name, i.id, i.region, i.ami_id, r.method, r.provider.simulated
            ),
            None => write!(f, "nothing launched: {}", r.method),
        }
    }
}

/// The example end to end in `home`: load [`LAB_TEMPLATE`], decide in `region`, decide again
/// from the cache, launch as `lab-ws-1`.
pub async fn run(home: &Path, region: &str) -> Result<LauncherRun, ExampleError> {
    let launcher = Launcher::open(home, CACHE_TTL)?;
    let template = Launcher::load_template(LAB_TEMPLATE, "lab-genomics (built in)")?;
    let first = launcher.decide(&template, region).await;
    let repeat = launcher.decide(&template, region).await;
    let launch = launcher.launch(&template, region, "lab-ws-1").await?;
    Ok(LauncherRun {
        first,
        repeat,
        launch,
    })
}
